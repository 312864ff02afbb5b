"""The classifier preprocessor takes any keras-hub or keras_nlp tokenizer."""

import keras_hub
import numpy as np
import pytest

from keras_linformer.models import LinformerTextClassifierPreprocessor
from tests.testing import TOKENIZER_KINDS
from tests.testing import TOKENIZER_WORDS
from tests.testing import library_tokenizer
from tests.testing import to_numpy

TEXT = "the lazy fox"
SEQUENCE_LENGTH = 8
# (start, end, pad) tokens each kind of tokenizer is packed with.
SPECIAL_TOKENS = {
    "word_piece": ("[CLS]", "[SEP]", "[PAD]"),
    "bert": ("[CLS]", "[SEP]", "[PAD]"),
    "sentence_piece": ("<s>", "</s>", "<pad>"),
    "byte": (None, None, "\x00"),
}


def expected_packing(tokenizer, kind):
    start, end, pad = (
        None if token is None else tokenizer.token_to_id(token)
        for token in SPECIAL_TOKENS[kind]
    )
    ids = [start] + to_numpy(tokenizer(TEXT)).tolist() + [end]
    ids = [i for i in ids if i is not None][:SEQUENCE_LENGTH]
    padding = SEQUENCE_LENGTH - len(ids)
    return ids + [pad] * padding, [1] * len(ids) + [0] * padding


@pytest.mark.parametrize("library", ["keras_hub", "keras_nlp"])
@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_packs_with_the_tokenizers_special_tokens(library, kind):
    tokenizer = library_tokenizer(kind, library)
    preprocessor = LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    x = preprocessor([TEXT])
    token_ids, padding_mask = expected_packing(tokenizer, kind)
    assert to_numpy(x["token_ids"]).tolist() == [token_ids]
    assert to_numpy(x["padding_mask"]).tolist() == [padding_mask]


def custom_vocabulary_tokenizer():
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=["<blank>", "[UNK]", "<begin>", "<finish>"]
        + TOKENIZER_WORDS
    )


def test_explicit_tokens_pack_and_round_trip():
    preprocessor = LinformerTextClassifierPreprocessor(
        custom_vocabulary_tokenizer(),
        sequence_length=6,
        start_token="<begin>",
        end_token="<finish>",
        pad_token="<blank>",
    )
    # <begin> the lazy fox <finish> <blank>
    expected = [[2, 4, 10, 7, 3, 0]]
    assert to_numpy(preprocessor([TEXT])["token_ids"]).tolist() == expected
    # The vocabulary is an asset, saved apart from the config.
    config = preprocessor.get_config()
    config["tokenizer"] = custom_vocabulary_tokenizer()
    revived = LinformerTextClassifierPreprocessor.from_config(config)
    assert revived.start_token == "<begin>"
    assert to_numpy(revived([TEXT])["token_ids"]).tolist() == expected


def test_missing_pad_token_is_a_clear_error():
    preprocessor = LinformerTextClassifierPreprocessor(
        custom_vocabulary_tokenizer(), sequence_length=6
    )
    with pytest.raises(ValueError, match="needs a pad token.*`pad_token=`"):
        preprocessor([TEXT])


def test_explicit_token_must_be_in_the_vocabulary():
    preprocessor = LinformerTextClassifierPreprocessor(
        library_tokenizer("word_piece"), pad_token="<nothing>"
    )
    with pytest.raises(ValueError, match="pad_token='<nothing>'"):
        preprocessor([TEXT])


def test_token_arguments_are_strings():
    with pytest.raises(ValueError, match="start_token=2"):
        LinformerTextClassifierPreprocessor(
            library_tokenizer("word_piece"), start_token=2
        )


def test_classifier_trains_on_a_vocabulary_without_mask(tmp_path):
    from tests.testing import tiny_text_classifier

    classifier = tiny_text_classifier(
        tokenizer=library_tokenizer("word_piece"), sequence_length=8
    )
    texts = ["the quick fox", "the lazy dog"] * 2
    history = classifier.fit(texts, np.array([0, 1] * 2), verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    classifier.save_to_preset(str(tmp_path))
    revived = keras_hub.models.TextClassifier.from_preset(str(tmp_path))
    np.testing.assert_allclose(
        to_numpy(revived.predict(texts, verbose=0)),
        to_numpy(classifier.predict(texts, verbose=0)),
        atol=1e-5,
    )
