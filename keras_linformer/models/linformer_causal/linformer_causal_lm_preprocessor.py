"""Preprocessing for the causal Linformer language model."""

import keras
from keras_hub.models import CausalLMPreprocessor

from keras_linformer.models.linformer_causal.linformer_causal_backbone import (
    LinformerCausalBackbone,
)
from keras_linformer.models.linformer_causal.linformer_causal_tokenizer import (  # noqa: E501
    LinformerCausalTokenizer,
)


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerCausalLMPreprocessor(CausalLMPreprocessor):
    """Turns strings into next-token training data for `LinformerCausalLM`.

    A `keras_hub.models.CausalLMPreprocessor`: it tokenizes, adds the start
    (`"[CLS]"`) and end (`"[SEP]"`) tokens, pads or truncates to
    `sequence_length` and returns `(x, y, sample_weight)`, where `x` holds
    `"token_ids"` and `"padding_mask"`, `y` the same ids shifted left by one
    and `sample_weight` marks real targets. `generate_preprocess` and
    `generate_postprocess` serve `LinformerCausalLM.generate()`. It runs in
    `tf.data` on every backend.

    Args:
        tokenizer: a `LinformerCausalTokenizer` or
            `LinformerCausalByteTokenizer` (or their encoder twins).
        sequence_length: int. The padded length of the token ids. Defaults to
            `1024`.
        add_start_token: bool. Whether to prepend the start token. Defaults
            to `True`.
        add_end_token: bool. Whether to append the end token. Defaults to
            `True`.
        **kwargs: other keyword arguments passed to
            `keras_hub.models.CausalLMPreprocessor`.

    Example:

    ```python
    tokenizer = keras_linformer.models.LinformerCausalTokenizer.from_corpus(
        ["The quick brown fox.", "The lazy dog."], vocabulary_size=100
    )
    preprocessor = keras_linformer.models.LinformerCausalLMPreprocessor(
        tokenizer, sequence_length=16
    )
    x, y, sample_weight = preprocessor(["The quick dog."])
    ```
    """

    backbone_cls = LinformerCausalBackbone
    tokenizer_cls = LinformerCausalTokenizer
