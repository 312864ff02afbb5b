"""The tokenizers of causal Linformer language models."""

import keras

from keras_linformer.models.linformer.linformer_byte_tokenizer import (
    LinformerByteTokenizer,
)
from keras_linformer.models.linformer.linformer_tokenizer import (
    LinformerTokenizer,
)
from keras_linformer.models.linformer_causal.linformer_causal_backbone import (
    LinformerCausalBackbone,
)


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerCausalTokenizer(LinformerTokenizer):
    """`LinformerTokenizer` for `LinformerCausalBackbone` models.

    The same WordPiece tokenizer with the same special tokens, bound to the
    causal backbone, so keras-hub's generic loaders
    (`keras_hub.tokenizers.Tokenizer.from_preset(path)` on a
    `LinformerCausalLM` preset) find it, like keras-hub's one tokenizer class
    per model. Learn a vocabulary with
    `LinformerCausalTokenizer.from_corpus(texts)`.

    Args:
        vocabulary: list of strings or string path. See `LinformerTokenizer`.
        lowercase: bool. Whether to lowercase the text first. Defaults to
            `True`.
        **kwargs: other keyword arguments passed to `LinformerTokenizer`.

    Example:

    ```python
    tokenizer = keras_linformer.models.LinformerCausalTokenizer.from_corpus(
        ["The quick brown fox.", "The lazy dog."], vocabulary_size=100
    )
    tokenizer(["The quick dog."])
    ```
    """

    backbone_cls = LinformerCausalBackbone


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerCausalByteTokenizer(LinformerByteTokenizer):
    """`LinformerByteTokenizer` for `LinformerCausalBackbone` models.

    The same byte-level tokenizer (vocabulary size 260), bound to the causal
    backbone so keras-hub's generic loaders find it.

    Args:
        lowercase: bool. Whether to lowercase the text first. Defaults to
            `True`.
        **kwargs: other keyword arguments passed to `LinformerByteTokenizer`.

    Example:

    ```python
    tokenizer = keras_linformer.models.LinformerCausalByteTokenizer()
    tokenizer(["Héllo!"])  # [[104, 195, 169, 108, 108, 111, 33]]
    ```
    """

    backbone_cls = LinformerCausalBackbone
