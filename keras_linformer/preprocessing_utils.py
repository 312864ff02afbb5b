"""The `tf.data`-side preprocessing helpers: the one place models use TF.

keras-hub tokenizers and preprocessors run inside `tf.data` on every backend
(their string operations come from TensorFlow Text), so there they receive
and return `tf.Tensor`s and `tf.RaggedTensor`s whatever `KERAS_BACKEND` is,
and `keras.ops` of the JAX and PyTorch backends cannot take those. Layers
and models keep to `keras.ops`; the few preprocessing steps that must handle
TensorFlow values directly live here. Backend-specific model computations
live in `keras_linformer.backend_utils`.
"""

import keras
import tensorflow as tf


def is_dataset(value):
    """Whether `value` is a `tf.data.Dataset`."""
    return isinstance(value, tf.data.Dataset)


def is_tf_tensor(value):
    """Whether `value` is a dense or ragged TensorFlow tensor, as tokenizers
    return inside `tf.data` and on the TensorFlow backend."""
    return isinstance(value, (tf.Tensor, tf.RaggedTensor))


def batched_text_dataset(texts, batch_size=256):
    """A `tf.data.Dataset` of batches of strings.

    Args:
        texts: a list of strings, or a `tf.data.Dataset` of strings, batched
            (kept as it is) or not (batched here).
        batch_size: int. The batch size for unbatched strings. Defaults to
            `256`.

    Returns:
        A `tf.data.Dataset` whose elements are 1D string tensors, as
        `keras_hub.tokenizers.compute_word_piece_vocabulary` reads them.
    """
    if is_dataset(texts):
        dataset = texts
    else:
        dataset = tf.data.Dataset.from_tensor_slices(texts)
    if dataset.element_spec.shape.rank == 0:
        dataset = dataset.batch(batch_size)
    return dataset


def zero_ids_from(token_ids, first_id):
    """Replaces every id from `first_id` on by 0 in TensorFlow token ids.

    Args:
        token_ids: a `tf.Tensor` or `tf.RaggedTensor` of integer ids (see
            `is_tf_tensor`).
        first_id: int. The smallest id to replace.

    Returns:
        The ids, of the same type and (ragged) shape, with every id
        `>= first_id` set to 0.
    """
    return tf.ragged.map_flat_values(
        lambda ids: tf.where(ids < first_id, ids, tf.zeros_like(ids)),
        token_ids,
    )


def cast_preprocessed(tensor, dtype):
    """Casts a preprocessing output to `dtype` on any backend.

    A `tf.Tensor` (inside `tf.data`, and in eager calls on the TensorFlow
    backend) is cast with TensorFlow, anything else (eager calls on the
    other backends) with `keras.ops.cast`.
    """
    if isinstance(tensor, tf.Tensor):
        return tf.cast(tensor, dtype)
    return keras.ops.cast(tensor, dtype)
