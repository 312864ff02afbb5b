"""Turns raw strings into the inputs of a Linformer text classifier."""

import keras
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import TextClassifierPreprocessor

from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.models.linformer.linformer_tokenizer import LinformerTokenizer
from keras_linformer.preprocessing_utils import declare_special_tokens
from keras_linformer.preprocessing_utils import set_special_token_arguments
from keras_linformer.preprocessing_utils import single_segment_inputs
from keras_linformer.preprocessing_utils import special_token_arguments


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerTextClassifierPreprocessor(TextClassifierPreprocessor):
    """Tokenizes and packs strings for `LinformerTextClassifier`.

    Tokenizes each string with the `tokenizer`, adds its start token (e.g.
    `"[CLS]"`) and end token (e.g. `"[SEP]"`) where it has them, truncates
    to `sequence_length` and pads with its pad token, then returns a
    dictionary with `"token_ids"` and `"padding_mask"` (int32, 1 at real
    tokens), the inputs of `LinformerBackbone`. Labels and sample weights
    pass through unchanged, so the layer maps `(text, label)` `tf.data`
    pipelines and is applied to raw strings by `fit()`, `evaluate()` and
    `predict()` on every backend.

    Any keras-hub (or keras_nlp) tokenizer works: the special tokens are
    those the tokenizer declares (`start_token_id`, ...), else the ones its
    vocabulary holds (`"[CLS]"`/`"<s>"`, `"[SEP]"`/`"</s>"`,
    `"[PAD]"`/`"<pad>"`), else the arguments below. Only a pad token is
    required (byte and codepoint tokenizers pad with id 0); without start or
    end tokens the texts are packed without them.

    Args:
        tokenizer: a keras-hub tokenizer, e.g. `LinformerTokenizer`,
            `LinformerByteTokenizer`, `keras_hub.tokenizers.WordPieceTokenizer`,
            `SentencePieceTokenizer` or `keras_hub.models.BertTokenizer`.
        sequence_length: int. The length of the packed inputs; it must not
            exceed the backbone's `max_sequence_length`. Defaults to `512`.
        truncate: string. How to truncate several segments to fit:
            `"round_robin"` or `"waterfall"` (see
            `keras_hub.layers.MultiSegmentPacker`). Defaults to
            `"round_robin"`.
        start_token: string or `None`. The token to start each sequence
            with, overriding the one found on the tokenizer. Defaults to
            `None`.
        end_token: string or `None`. The token to end each sequence with.
            Defaults to `None`.
        pad_token: string or `None`. The token to pad with. Defaults to
            `None`.
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

    # A tokenizer you already have:
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary)
    preprocessor = keras_linformer.models.LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=512
    )
    ```
    """

    backbone_cls = LinformerBackbone
    tokenizer_cls = LinformerTokenizer

    def __init__(
        self,
        tokenizer,
        sequence_length=512,
        truncate="round_robin",
        start_token=None,
        end_token=None,
        pad_token=None,
        **kwargs,
    ):
        super().__init__(
            tokenizer,
            sequence_length=sequence_length,
            truncate=truncate,
            **kwargs,
        )
        set_special_token_arguments(self, start_token, end_token, pad_token)

    def build(self, input_shape):
        # The tokenizer's vocabulary is loaded by now (also from a preset).
        ids = declare_special_tokens(
            self.tokenizer,
            special_token_arguments(self),
            required=("pad_token",),
            owner=type(self).__name__,
        )
        self.packer = MultiSegmentPacker(
            start_value=_id_list(ids["start_token"]),
            end_value=_id_list(ids["end_token"]),
            pad_value=ids["pad_token"],
            truncate=self.truncate,
            sequence_length=self.sequence_length,
        )
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
            super().call(x, y, sample_weight)
        )
        x = single_segment_inputs(x)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(special_token_arguments(self))
        return config


def _id_list(token_id):
    """A packer's special value: the id, or none when there is no token."""
    return [] if token_id is None else [token_id]
