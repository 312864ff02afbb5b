"""A WordPiece tokenizer for Linformer models, trainable on your own corpus."""

import keras
from keras_hub.tokenizers import WordPieceTokenizer
from keras_hub.tokenizers import compute_word_piece_vocabulary

from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.preprocessing_utils import batched_text_dataset
from keras_linformer.preprocessing_utils import clean_up_tokenization_spaces
from keras_linformer.preprocessing_utils import is_dataset

# Reserved first, in this order, so their ids are the same in every vocabulary.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerTokenizer(WordPieceTokenizer):
    """A WordPiece tokenizer with the special tokens Linformer models use.

    A `keras_hub.tokenizers.WordPieceTokenizer` whose vocabulary holds
    `"[PAD]"`, `"[UNK]"`, `"[CLS]"`, `"[SEP]"` and `"[MASK]"`. Build one from a
    vocabulary, or learn the vocabulary from your own texts with
    `LinformerTokenizer.from_corpus(texts)`. `start_token` is `"[CLS]"` and
    `end_token` is `"[SEP]"`, so the tokenizer serves classification and
    language-model preprocessors alike. The vocabulary is saved as an asset by
    `save_to_preset` and in `.keras` files.

    Batched string inputs give ragged token ids; like every keras-hub
    tokenizer it runs inside `tf.data` on all backends.

    Args:
        vocabulary: list of strings or string path. The WordPiece vocabulary,
            one token per entry or per line of a file; it must hold the five
            special tokens.
        lowercase: bool. Whether to lowercase the text first. Defaults to
            `True`.
        clean_up_tokenization_spaces: bool. Whether `detokenize` removes
            the spaces the word pieces were joined with before punctuation
            and in English contractions (`"it ' s here ."` becomes
            `"it's here."`), with the rules of Hugging Face's
            `clean_up_tokenization` and the same for colons, semicolons
            and parentheses. Defaults to `True`.
        **kwargs: other keyword arguments passed to
            `keras_hub.tokenizers.WordPieceTokenizer`, such as `strip_accents`.

    Example:

    ```python
    tokenizer = keras_linformer.models.LinformerTokenizer.from_corpus(
        ["The quick brown fox.", "The lazy dog."], vocabulary_size=100
    )
    token_ids = tokenizer(["The quick dog."])
    tokenizer.detokenize(token_ids)  # ["the quick dog."]
    ```
    """

    backbone_cls = LinformerBackbone

    def __init__(
        self,
        vocabulary=None,
        lowercase=True,
        clean_up_tokenization_spaces=True,
        **kwargs,
    ):
        if not isinstance(clean_up_tokenization_spaces, bool):
            raise ValueError(
                "`clean_up_tokenization_spaces` must be True or False. "
                f"Received: clean_up_tokenization_spaces="
                f"{clean_up_tokenization_spaces!r}"
            )
        add_special_tokens(self)
        super().__init__(vocabulary=vocabulary, lowercase=lowercase, **kwargs)
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces

    def detokenize(self, inputs):
        outputs = super().detokenize(inputs)
        if self.clean_up_tokenization_spaces:
            outputs = clean_up_tokenization_spaces(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {"clean_up_tokenization_spaces": self.clean_up_tokenization_spaces}
        )
        return config

    @classmethod
    def from_corpus(
        cls, texts, vocabulary_size=8000, lowercase=True, **kwargs
    ):
        """Learns a WordPiece vocabulary from `texts` and returns a tokenizer.

        Args:
            texts: a list of strings or a `tf.data.Dataset` of strings (batched
                or not).
            vocabulary_size: int. The largest vocabulary to learn, special
                tokens included. Small corpora may give fewer tokens.
                Defaults to `8000`.
            lowercase: bool. Whether to lowercase the text first. Defaults to
                `True`.
            **kwargs: other keyword arguments for the tokenizer.

        Returns:
            A `LinformerTokenizer` with the learned vocabulary.
        """
        if not isinstance(vocabulary_size, int) or vocabulary_size <= len(
            SPECIAL_TOKENS
        ):
            raise ValueError(
                "`vocabulary_size` must be an integer larger than the "
                f"{len(SPECIAL_TOKENS)} special tokens. Received: "
                f"vocabulary_size={vocabulary_size!r}"
            )
        if not is_dataset(texts):
            texts = [texts] if isinstance(texts, str) else list(texts)
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError(
                    "`texts` must be a non-empty list of strings or a "
                    f"tf.data.Dataset of strings. Received: {type(texts)} "
                    f"with {len(texts)} items"
                )
            if not any(text.strip() for text in texts):
                raise ValueError(
                    "`texts` holds only empty strings: there is nothing to "
                    "learn a vocabulary from."
                )
        vocabulary = compute_word_piece_vocabulary(
            batched_text_dataset(texts),
            vocabulary_size=vocabulary_size,
            lowercase=lowercase,
            strip_accents=kwargs.get("strip_accents", False),
            reserved_tokens=list(SPECIAL_TOKENS),
        )
        return cls(vocabulary=vocabulary, lowercase=lowercase, **kwargs)


def add_special_tokens(tokenizer):
    """Declares the special tokens every Linformer tokenizer has.

    `start_token`/`end_token` alias `"[CLS]"`/`"[SEP]"`, so generic
    keras-hub preprocessors (classification and language modelling) find
    them. Called before the parent constructor, which looks up their ids.
    """
    for token, name in (
        ("[PAD]", "pad_token"),
        ("[CLS]", "cls_token"),
        ("[SEP]", "sep_token"),
        ("[MASK]", "mask_token"),
        ("[CLS]", "start_token"),
        ("[SEP]", "end_token"),
    ):
        tokenizer._add_special_token(token, name)
