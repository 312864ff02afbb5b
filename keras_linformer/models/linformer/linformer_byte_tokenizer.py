"""A byte-level tokenizer for Linformer models: no vocabulary to learn."""

import keras
import numpy as np
from keras_hub.tokenizers import ByteTokenizer

from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.models.linformer.linformer_tokenizer import (
    add_special_tokens,
)
from keras_linformer.preprocessing_utils import is_tf_tensor
from keras_linformer.preprocessing_utils import zero_ids_from

BYTE_COUNT = 256
# Special tokens take the ids after the 256 byte values, in this order.
SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerByteTokenizer(ByteTokenizer):
    """A byte-level tokenizer with the special tokens Linformer models use.

    A `keras_hub.tokenizers.ByteTokenizer`: every UTF-8 byte of the text is
    one token (ids 0-255), so any text in any language is covered without
    learning a vocabulary. `"[PAD]"`, `"[CLS]"`, `"[SEP]"` and `"[MASK]"`
    follow as ids 256-259, so the vocabulary size is 260. `start_token` is
    `"[CLS]"` and `end_token` is `"[SEP]"`. Byte sequences are about four
    times longer than WordPiece ones, which is where Linformer's linear cost
    helps.

    Args:
        lowercase: bool. Whether to lowercase the text first. Defaults to
            `True`.
        **kwargs: other keyword arguments passed to
            `keras_hub.tokenizers.ByteTokenizer`, such as
            `normalization_form`.

    Example:

    ```python
    tokenizer = keras_linformer.models.LinformerByteTokenizer()
    tokenizer(["Héllo!"])  # [[104, 195, 169, 108, 108, 111, 33]]
    tokenizer.detokenize([[257, 104, 105, 258]])  # ["hi"]: specials dropped
    ```
    """

    backbone_cls = LinformerBackbone

    def __init__(self, lowercase=True, **kwargs):
        add_special_tokens(self)
        super().__init__(lowercase=lowercase, **kwargs)

    def vocabulary_size(self):
        return BYTE_COUNT + len(SPECIAL_TOKENS)

    def get_vocabulary(self):
        return [chr(i) for i in range(BYTE_COUNT)] + list(SPECIAL_TOKENS)

    def id_to_token(self, id):
        if BYTE_COUNT <= id < self.vocabulary_size():
            return SPECIAL_TOKENS[id - BYTE_COUNT]
        return super().id_to_token(id)

    def token_to_id(self, token):
        if token in SPECIAL_TOKENS:
            return BYTE_COUNT + SPECIAL_TOKENS.index(token)
        return super().token_to_id(token)

    def detokenize(self, inputs):
        # Special tokens stand for no bytes: map them to 0, which
        # `ByteTokenizer` drops like padding.
        return super().detokenize(without_special_ids(inputs))

    def save_assets(self, dir_path):
        """Nothing to save: the byte vocabulary is fixed."""

    def load_assets(self, dir_path):
        """Nothing to load: the byte vocabulary is fixed."""

    def load_preset_assets(self, preset):
        """Nothing to load: the byte vocabulary is fixed."""


def without_special_ids(token_ids):
    """Replaces ids of special tokens by 0 in any batch of token ids."""
    if is_tf_tensor(token_ids):
        return zero_ids_from(token_ids, BYTE_COUNT)
    if isinstance(token_ids, (list, tuple)):
        return [without_special_ids(ids) for ids in token_ids]
    token_ids = np.asarray(keras.ops.convert_to_numpy(token_ids))
    return np.where(token_ids < BYTE_COUNT, token_ids, 0)
