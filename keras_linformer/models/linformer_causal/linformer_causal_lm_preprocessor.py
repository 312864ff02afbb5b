"""Preprocessing for the causal Linformer language model."""

import keras
from keras_hub.models import CausalLMPreprocessor

from keras_linformer.models.linformer_causal.linformer_causal_backbone import (
    LinformerCausalBackbone,
)
from keras_linformer.models.linformer_causal.linformer_causal_tokenizer import (  # noqa: E501
    LinformerCausalTokenizer,
)
from keras_linformer.preprocessing_utils import declare_special_tokens
from keras_linformer.preprocessing_utils import set_special_token_arguments
from keras_linformer.preprocessing_utils import special_token_arguments


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerCausalLMPreprocessor(CausalLMPreprocessor):
    """Turns strings into next-token training data for `LinformerCausalLM`.

    A `keras_hub.models.CausalLMPreprocessor`: it tokenizes, adds the start
    (e.g. `"[CLS]"`) and end (e.g. `"[SEP]"`) tokens, pads or truncates to
    `sequence_length` and returns `(x, y, sample_weight)`, where `x` holds
    `"token_ids"` and `"padding_mask"`, `y` the same ids shifted left by one
    and `sample_weight` marks real targets. `generate_preprocess` and
    `generate_postprocess` serve `LinformerCausalLM.generate()`, which stops
    at the end token. It runs in `tf.data` on every backend.

    Any keras-hub (or keras_nlp) tokenizer works: the start, end and pad
    tokens are those the tokenizer declares (`start_token_id`, ...), else
    the ones its vocabulary holds (`"[CLS]"`/`"<s>"`, `"[SEP]"`/`"</s>"`,
    `"[PAD]"`/`"<pad>"`), else the arguments below; all three are needed
    (byte and codepoint tokenizers pad with id 0). They are declared on the
    tokenizer, as keras-hub tokenizers declare theirs.

    Args:
        tokenizer: a keras-hub tokenizer, e.g. `LinformerCausalTokenizer`,
            `LinformerCausalByteTokenizer`,
            `keras_hub.tokenizers.SentencePieceTokenizer` or
            `keras_hub.tokenizers.ByteTokenizer` with `start_token="\x02"`
            and `end_token="\x03"` (ASCII start and end of text).
        sequence_length: int. The padded length of the token ids. Defaults to
            `1024`.
        add_start_token: bool. Whether to prepend the start token. Defaults
            to `True`.
        add_end_token: bool. Whether to append the end token. Defaults to
            `True`.
        start_token: string or `None`. The start token, overriding the one
            found on the tokenizer. Defaults to `None`.
        end_token: string or `None`. The end token. Defaults to `None`.
        pad_token: string or `None`. The pad token. Defaults to `None`.
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

    def __init__(
        self,
        tokenizer,
        sequence_length=1024,
        add_start_token=True,
        add_end_token=True,
        start_token=None,
        end_token=None,
        pad_token=None,
        **kwargs,
    ):
        super().__init__(
            tokenizer,
            sequence_length=sequence_length,
            add_start_token=add_start_token,
            add_end_token=add_end_token,
            **kwargs,
        )
        set_special_token_arguments(self, start_token, end_token, pad_token)

    def build(self, input_shape):
        # The tokenizer's vocabulary is loaded by now (also from a preset);
        # the parent's packer reads the ids declared on it.
        declare_special_tokens(
            self.tokenizer,
            special_token_arguments(self),
            required=("start_token", "end_token", "pad_token"),
            owner=type(self).__name__,
        )
        super().build(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(special_token_arguments(self))
        return config
