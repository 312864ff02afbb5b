"""Turns raw strings into masked-token training data for a Linformer."""

import keras
from keras_hub.models import MaskedLMPreprocessor

from keras_linformer.layers.validation import check_positive_int
from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.models.linformer.linformer_tokenizer import LinformerTokenizer
from keras_linformer.preprocessing_utils import single_segment_inputs


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerMaskedLMPreprocessor(MaskedLMPreprocessor):
    """Tokenizes, packs and masks strings for `LinformerMaskedLM`.

    A `keras_hub.models.MaskedLMPreprocessor`: it tokenizes each string,
    adds `"[CLS]"` and `"[SEP]"`, truncates to `sequence_length` and pads
    with `"[PAD]"`, then picks `mask_selection_rate` of the other tokens at
    random (special tokens are never picked; at most `mask_selection_length`
    per sequence) and replaces each picked token by `"[MASK]"`
    (`mask_token_rate`), by a random token (`random_token_rate`) or leaves it
    (the rest), as in BERT. It returns `(x, y, sample_weight)`: `x` holds
    `"token_ids"` (masked), `"padding_mask"` (int32, 1 at real tokens) and
    `"mask_positions"`; `y` holds the original ids at those positions and
    `sample_weight` is 1 where a position was picked, 0 where it pads
    `mask_positions` to `mask_selection_length`. A new mask is drawn every
    call, so `fit()` sees new masks every epoch. It runs in `tf.data` on
    every backend.

    Args:
        tokenizer: a `LinformerTokenizer`, `LinformerByteTokenizer` or any
            keras-hub tokenizer with `"[MASK]"`, start, end and padding tokens,
            such as the `keras_hub.models.BertTokenizer` of a converted BERT
            checkpoint.
        sequence_length: int. The length of the packed inputs; it must not
            exceed the backbone's `max_sequence_length`. Defaults to `512`.
        truncate: string. How to truncate several segments to fit:
            `"round_robin"` or `"waterfall"` (see
            `keras_hub.layers.MultiSegmentPacker`). Defaults to
            `"round_robin"`.
        mask_selection_rate: float. The probability that a token is picked
            for prediction. Defaults to `0.15`.
        mask_selection_length: int. The most tokens picked per sequence; the
            length of `mask_positions`. Defaults to `96`.
        mask_token_rate: float. The probability that a picked token becomes
            `"[MASK]"`. Defaults to `0.8`.
        random_token_rate: float. The probability that a picked token becomes
            a random token. Defaults to `0.1`.
        **kwargs: other keyword arguments passed to
            `keras_hub.models.MaskedLMPreprocessor`.

    Example:

    ```python
    tokenizer = keras_linformer.models.LinformerTokenizer.from_corpus(
        ["The quick brown fox.", "The lazy dog."], vocabulary_size=100
    )
    preprocessor = keras_linformer.models.LinformerMaskedLMPreprocessor(
        tokenizer, sequence_length=16, mask_selection_length=4
    )
    x, y, sample_weight = preprocessor(["The quick dog."])
    x["mask_positions"]  # (1, 4): where y's original tokens were
    ```

    References:
     - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    backbone_cls = LinformerBackbone
    tokenizer_cls = LinformerTokenizer

    def __init__(
        self,
        tokenizer,
        sequence_length=512,
        truncate="round_robin",
        mask_selection_rate=0.15,
        mask_selection_length=96,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        **kwargs,
    ):
        if getattr(tokenizer, "mask_token", None) is None:
            raise ValueError(
                "`LinformerMaskedLMPreprocessor` needs a tokenizer with a "
                "`'[MASK]'` token (a `mask_token`), such as a "
                "`LinformerTokenizer`, `LinformerByteTokenizer` or "
                "`keras_hub.models.BertTokenizer`. Received: "
                f"tokenizer={type(tokenizer).__name__}"
            )
        check_positive_int("sequence_length", sequence_length)
        check_positive_int("mask_selection_length", mask_selection_length)
        check_rate("mask_selection_rate", mask_selection_rate, allow_zero=False)
        check_rate("mask_token_rate", mask_token_rate)
        check_rate("random_token_rate", random_token_rate)
        if mask_token_rate + random_token_rate > 1:
            raise ValueError(
                "`mask_token_rate + random_token_rate` must not exceed 1. "
                f"Received: mask_token_rate={mask_token_rate!r}, "
                f"random_token_rate={random_token_rate!r}"
            )
        super().__init__(
            tokenizer,
            sequence_length=sequence_length,
            truncate=truncate,
            mask_selection_rate=mask_selection_rate,
            mask_selection_length=mask_selection_length,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
            **kwargs,
        )

    def call(self, x, y=None, sample_weight=None):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
            super().call(x, y, sample_weight)
        )
        x = single_segment_inputs(x, "mask_positions")
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


def check_rate(name, value, allow_zero=True):
    """Raises a ValueError unless `value` is a probability in [0, 1] (in
    (0, 1] unless `allow_zero`)."""
    interval = "[0, 1]" if allow_zero else "(0, 1]"
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not (0 <= value <= 1) or (value == 0 and not allow_zero):
        raise ValueError(
            f"`{name}` must be in {interval}. Received: {name}={value!r}"
        )
