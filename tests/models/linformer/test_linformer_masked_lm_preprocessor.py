import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_linformer.models import LinformerByteTokenizer
from keras_linformer.models import LinformerMaskedLMPreprocessor
from keras_linformer.models import LinformerTokenizer
from tests.testing import run_serialization_test
from tests.testing import to_numpy

WORDS = "the quick brown fox jumps over lazy dog".split()
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SEQUENCE_LENGTH = 24
MASK_SELECTION_LENGTH = 12
# Rows of different lengths, so some are padded and one is truncated.
TEXTS = [" ".join(WORDS[: 1 + i % 8] * (1 + i % 4)) for i in range(64)]


def word_tokenizer():
    return LinformerTokenizer(vocabulary=SPECIAL_TOKENS + WORDS)


def unmasked_token_ids(tokenizer, texts):
    """The packed token ids the preprocessor masks: `[CLS] ... [SEP]`,
    truncated to `SEQUENCE_LENGTH` and padded."""
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=SEQUENCE_LENGTH,
        start_value=tokenizer.start_token_id,
        end_value=tokenizer.end_token_id,
        pad_value=tokenizer.pad_token_id,
    )
    return to_numpy(packer(tokenizer(texts)))


def preprocess(preprocessor, texts, in_tf_data):
    """The preprocessor's `(x, y, sample_weight)` for `texts` as NumPy: an
    eager call (keras-hub's Python path) or one `tf.data` batch (its
    TensorFlow path)."""
    if not in_tf_data:
        return to_numpy(preprocessor(texts))
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts))
    return to_numpy(next(iter(dataset.map(preprocessor))))


def assert_masks_agree(x, y, sample_weight, original, mask_token_id):
    """`mask_positions`, `y`, `sample_weight` and the masked `token_ids`
    describe the same masking of `original`, with every selected token
    replaced by `mask_token_id`."""
    positions = x["mask_positions"]
    selected = sample_weight == 1
    assert set(np.unique(sample_weight)) <= {0, 1}
    for row in range(len(original)):
        row_positions = positions[row][selected[row]]
        # The selected positions come first, in order, without repeats.
        assert selected[row].tolist() == sorted(selected[row], reverse=True)
        assert np.all(np.diff(row_positions) > 0)
        np.testing.assert_array_equal(
            y[row][selected[row]], original[row][row_positions]
        )
        assert np.all(y[row][~selected[row]] == 0)
        expected = original[row].copy()
        expected[row_positions] = mask_token_id
        np.testing.assert_array_equal(x["token_ids"][row], expected)


@pytest.mark.parametrize("in_tf_data", [False, True], ids=["eager", "tf_data"])
def test_masks_only_ordinary_tokens_at_the_configured_rate(in_tf_data):
    keras.utils.set_random_seed(0)
    tokenizer = word_tokenizer()
    rate = 0.3
    preprocessor = LinformerMaskedLMPreprocessor(
        tokenizer,
        sequence_length=SEQUENCE_LENGTH,
        mask_selection_rate=rate,
        mask_selection_length=MASK_SELECTION_LENGTH,
        mask_token_rate=1.0,
        random_token_rate=0.0,
    )
    x, y, sample_weight = preprocess(preprocessor, TEXTS, in_tf_data)
    original = unmasked_token_ids(tokenizer, TEXTS)

    assert sorted(x) == ["mask_positions", "padding_mask", "token_ids"]
    assert x["token_ids"].shape == (len(TEXTS), SEQUENCE_LENGTH)
    assert x["mask_positions"].shape == (len(TEXTS), MASK_SELECTION_LENGTH)
    assert y.shape == sample_weight.shape == x["mask_positions"].shape
    for name in ("token_ids", "padding_mask", "mask_positions"):
        assert x[name].dtype == np.int32, name
    np.testing.assert_array_equal(
        x["padding_mask"], original != tokenizer.pad_token_id
    )
    assert_masks_agree(x, y, sample_weight, original, tokenizer.mask_token_id)

    special_ids = set(tokenizer.special_token_ids)
    assert not special_ids & set(y[sample_weight == 1].tolist())
    eligible = ~np.isin(original, list(special_ids))
    observed_rate = sample_weight.sum() / eligible.sum()
    # About 1,000 eligible tokens: the rate is within 0.05 of 0.3 with
    # probability far above 99.9%.
    assert abs(observed_rate - rate) < 0.05, observed_rate


def test_masks_differ_between_calls():
    preprocessor = LinformerMaskedLMPreprocessor(
        word_tokenizer(), sequence_length=SEQUENCE_LENGTH
    )
    first, _, _ = to_numpy(preprocessor(TEXTS))
    second, _, _ = to_numpy(preprocessor(TEXTS))
    assert not np.array_equal(first["mask_positions"], second["mask_positions"])


def test_kept_and_random_replacements_keep_the_labels():
    keras.utils.set_random_seed(1)
    tokenizer = word_tokenizer()
    preprocessor = LinformerMaskedLMPreprocessor(
        tokenizer,
        sequence_length=SEQUENCE_LENGTH,
        mask_selection_rate=0.5,
        mask_token_rate=0.0,
        random_token_rate=0.0,
    )
    x, y, sample_weight = to_numpy(preprocessor(TEXTS))
    original = unmasked_token_ids(tokenizer, TEXTS)
    # Selected tokens are left as they are, but still predicted.
    np.testing.assert_array_equal(x["token_ids"], original)
    assert sample_weight.sum() > 0
    selected = sample_weight == 1
    rows = np.nonzero(selected)[0]
    np.testing.assert_array_equal(
        y[selected], original[rows, x["mask_positions"][selected]]
    )


@pytest.mark.parametrize("kind", ["byte", "bert"])
def test_byte_and_bert_tokenizers(kind):
    if kind == "byte":
        tokenizer = LinformerByteTokenizer()
    else:
        tokenizer = keras_hub.models.BertTokenizer(
            vocabulary=SPECIAL_TOKENS + WORDS
        )
    preprocessor = LinformerMaskedLMPreprocessor(
        tokenizer,
        sequence_length=SEQUENCE_LENGTH,
        mask_selection_rate=0.3,
        mask_selection_length=MASK_SELECTION_LENGTH,
        mask_token_rate=1.0,
        random_token_rate=0.0,
    )
    x, y, sample_weight = to_numpy(preprocessor(TEXTS))
    original = unmasked_token_ids(tokenizer, TEXTS)
    assert sample_weight.sum() > 0
    assert_masks_agree(x, y, sample_weight, original, tokenizer.mask_token_id)


def test_a_tokenizer_without_a_mask_token_is_rejected():
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=SPECIAL_TOKENS + WORDS
    )
    with pytest.raises(ValueError, match="needs a tokenizer with a `'\\[MASK\\]'"):
        LinformerMaskedLMPreprocessor(tokenizer)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sequence_length": 0}, "`sequence_length` must be a positive"),
        ({"mask_selection_length": 2.5}, "`mask_selection_length` must be"),
        ({"mask_selection_rate": 0}, r"`mask_selection_rate` must be in \(0"),
        ({"mask_token_rate": 1.5}, r"`mask_token_rate` must be in \[0, 1\]"),
        ({"random_token_rate": -0.1}, "`random_token_rate` must be in"),
        (
            {"mask_token_rate": 0.8, "random_token_rate": 0.3},
            "must not exceed 1",
        ),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LinformerMaskedLMPreprocessor(word_tokenizer(), **kwargs)


def test_config_round_trip():
    run_serialization_test(
        LinformerMaskedLMPreprocessor(
            word_tokenizer(),
            sequence_length=SEQUENCE_LENGTH,
            mask_selection_rate=0.2,
            mask_selection_length=5,
            mask_token_rate=0.7,
            random_token_rate=0.2,
        )
    )
