"""The one place that knows about the difference between backends."""

import keras
import numpy as np
from keras import ops


def concrete_numpy(tensor):
    """Returns the tensor's values as a NumPy array, or None while tracing.

    Eager tensors on every backend convert; symbolic ones (a `tf.function`
    graph, a JAX tracer, torch meta tensors during shape inference) raise,
    and then there are no values to check.
    """
    try:
        return np.asarray(ops.convert_to_numpy(tensor))
    except Exception:  # Each backend raises its own tracing error type.
        return None


def keras_mask(tensor):
    """The implicit Keras mask of a tensor (e.g. from `mask_zero=True`).

    Keras exposes no public getter; keras-hub reads it the same way.
    """
    from keras.src.backend import get_keras_mask

    return get_keras_mask(tensor)


def has_fused_attention():
    """Whether `ops.dot_product_attention` runs a fused attention kernel.

    PyTorch's scaled-dot-product attention has CPU kernels that never hold
    the full attention weights, which saves memory over two matmuls. On
    TensorFlow and JAX (CPU) the op is the same einsum, softmax and einsum
    that a layer can write itself, in a layout XLA compiles less well.
    """
    return keras.config.backend() == "torch"


def softmax(logits):
    """Softmax over the last axis, with the gradient `y (g - sum(g y))`.

    TensorFlow and PyTorch register that gradient for their softmax. JAX's
    `jax.nn.softmax` (while the `jax_softmax_custom_jvp` flag is off, its
    default up to at least JAX 0.10) differentiates through its exp, sum
    and division instead, which keeps more logits-sized buffers and passes
    over them: about 4% of a LinformerAttention forward+backward at
    n = 16384 on CPU.
    """
    if keras.config.backend() != "jax":
        return ops.softmax(logits, axis=-1)
    return _softmax_with_output_gradient(logits)


@ops.custom_gradient
def _softmax_with_output_gradient(logits):
    weights = ops.softmax(logits, axis=-1)

    def gradient(upstream):
        weighted_sum = ops.sum(upstream * weights, axis=-1, keepdims=True)
        return weights * (upstream - weighted_sum)

    return weights, gradient
