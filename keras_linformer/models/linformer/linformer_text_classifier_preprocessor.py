"""Turns raw strings into the inputs of a Linformer text classifier."""

import keras
from keras_hub.models import TextClassifierPreprocessor

from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.models.linformer.linformer_tokenizer import LinformerTokenizer
from keras_linformer.preprocessing_utils import cast_preprocessed


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerTextClassifierPreprocessor(TextClassifierPreprocessor):
    """Tokenizes and packs strings for `LinformerTextClassifier`.

    Tokenizes each string with the `tokenizer`, adds `"[CLS]"` and `"[SEP]"`,
    truncates to `sequence_length` and pads with `"[PAD]"`, then returns a
    dictionary with `"token_ids"` and `"padding_mask"` (int32, 1 at real
    tokens), the inputs of `LinformerBackbone`. Labels and sample weights
    pass through unchanged, so the layer maps `(text, label)` `tf.data`
    pipelines and is applied to raw strings by `fit()`, `evaluate()` and
    `predict()` on every backend.

    Args:
        tokenizer: a `LinformerTokenizer` or `LinformerByteTokenizer`.
        sequence_length: int. The length of the packed inputs; it must not
            exceed the backbone's `max_sequence_length`. Defaults to `512`.
        truncate: string. How to truncate several segments to fit:
            `"round_robin"` or `"waterfall"` (see
            `keras_hub.layers.MultiSegmentPacker`). Defaults to
            `"round_robin"`.
        **kwargs: other keyword arguments passed to
            `keras_hub.models.TextClassifierPreprocessor`.

    Example:

    ```python
    tokenizer = keras_linformer.models.LinformerTokenizer.from_corpus(texts)
    preprocessor = keras_linformer.models.LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=512
    )
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(32)
    dataset = dataset.map(preprocessor)
    ```
    """

    backbone_cls = LinformerBackbone
    tokenizer_cls = LinformerTokenizer

    def call(self, x, y=None, sample_weight=None):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
            super().call(x, y, sample_weight)
        )
        # One segment type only: the backbone has no segment embedding. The
        # boolean mask becomes int32, the backbone's input dtype:
        # `tf.distribute.MirroredStrategy` cannot distribute boolean inputs.
        x = {
            "token_ids": x["token_ids"],
            "padding_mask": cast_preprocessed(x["padding_mask"], "int32"),
        }
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
