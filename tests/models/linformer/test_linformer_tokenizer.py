import numpy as np
import pytest
import tensorflow as tf

from keras_linformer.models import LinformerByteTokenizer
from keras_linformer.models import LinformerTokenizer
from keras_linformer.models.linformer.linformer_tokenizer import (
    SPECIAL_TOKENS,
)
from tests.testing import to_numpy

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy afternoon: the dog sleeps, the fox runs.",
    "Quick thinking wins the day.",
]


def as_strings(texts):
    """Detokenized text as a list of str, from lists or string tensors."""
    if isinstance(texts, tf.Tensor):
        texts = texts.numpy().tolist()
    return [t.decode() if isinstance(t, bytes) else t for t in texts]


@pytest.fixture(scope="module")
def tokenizer():
    return LinformerTokenizer.from_corpus(CORPUS, vocabulary_size=80)


def test_from_corpus_reserves_special_tokens(tokenizer):
    vocabulary = tokenizer.get_vocabulary()
    assert tuple(vocabulary[: len(SPECIAL_TOKENS)]) == SPECIAL_TOKENS
    assert 40 < tokenizer.vocabulary_size() <= 80
    assert tokenizer.pad_token_id == 0
    assert tokenizer.start_token_id == tokenizer.token_to_id("[CLS]")
    assert tokenizer.end_token_id == tokenizer.token_to_id("[SEP]")


def test_tokenize_and_detokenize(tokenizer):
    token_ids = tokenizer(["the quick fox", "THE LAZY DOG"])
    assert len(token_ids[0]) >= 3
    assert as_strings(tokenizer.detokenize(token_ids)) == [
        "the quick fox",
        "the lazy dog",
    ]
    assert tokenizer.token_to_id("[UNK]") in list(tokenizer("ζ"))


def test_from_corpus_accepts_a_dataset():
    dataset = tf.data.Dataset.from_tensor_slices(CORPUS)
    from_dataset = LinformerTokenizer.from_corpus(dataset, vocabulary_size=80)
    from_list = LinformerTokenizer.from_corpus(CORPUS, vocabulary_size=80)
    assert from_dataset.get_vocabulary() == from_list.get_vocabulary()


@pytest.mark.parametrize(
    "texts, vocabulary_size, message",
    [
        ([], 80, "non-empty list of strings"),
        (["", "  "], 80, "only empty strings"),
        ([1, 2], 80, "non-empty list of strings"),
        (CORPUS, 5, "vocabulary_size"),
    ],
)
def test_from_corpus_rejects_bad_input(texts, vocabulary_size, message):
    with pytest.raises(ValueError, match=message):
        LinformerTokenizer.from_corpus(texts, vocabulary_size=vocabulary_size)


def test_config_round_trip(tokenizer):
    revived = LinformerTokenizer.from_config(tokenizer.get_config())
    revived.set_vocabulary(tokenizer.get_vocabulary())
    np.testing.assert_array_equal(
        to_numpy(revived("the quick fox")), to_numpy(tokenizer("the quick fox"))
    )


def test_byte_tokenizer_needs_no_vocabulary():
    tokenizer = LinformerByteTokenizer()
    assert tokenizer.vocabulary_size() == 260
    assert to_numpy(tokenizer("Hé")).tolist() == [104, 195, 169]
    special = [tokenizer.token_to_id(t) for t in ("[PAD]", "[CLS]", "[SEP]")]
    assert special == [256, 257, 258]
    assert [tokenizer.id_to_token(i) for i in special] == [
        "[PAD]",
        "[CLS]",
        "[SEP]",
    ]
    assert tokenizer.pad_token_id == 256
    assert tokenizer.start_token_id == 257
    assert tokenizer.end_token_id == 258


@pytest.mark.parametrize(
    "token_ids",
    [
        [[257, 104, 105, 258, 256]],
        np.array([[257, 104, 105, 258, 256]]),
        tf.ragged.constant([[257, 104, 105, 258]]),
    ],
    ids=["list", "numpy", "ragged"],
)
def test_byte_tokenizer_detokenize_drops_special_tokens(token_ids):
    text = LinformerByteTokenizer().detokenize(token_ids)
    assert as_strings(text) == ["hi"]


def test_detokenize_cleans_up_the_spaces_around_punctuation():
    tokenizer = LinformerTokenizer.from_corpus(
        ["It's here, isn't it? We're sure (it is): they've said so; yes!"],
        vocabulary_size=80,
    )
    token_ids = tokenizer(["it's here, isn't it? we're (sure): they've; so!"])
    expected = ["it's here, isn't it? we're (sure): they've; so!"]
    assert as_strings(tokenizer.detokenize(token_ids)) == expected
    # Inside tf.data, on string tensors, the same.
    dataset = tf.data.Dataset.from_tensor_slices(token_ids).batch(1)
    (detokenized,) = dataset.map(tokenizer.detokenize).take(1)
    assert as_strings(detokenized) == expected
    tokenizer.clean_up_tokenization_spaces = False
    assert as_strings(tokenizer.detokenize(token_ids)) == [
        "it ' s here , isn ' t it ? we ' re ( sure ) : they ' ve ; so !"
    ]


def test_clean_up_setting_round_trips_and_is_checked(tokenizer):
    config = dict(tokenizer.get_config(), clean_up_tokenization_spaces=False)
    revived = LinformerTokenizer.from_config(config)
    assert revived.clean_up_tokenization_spaces is False
    with pytest.raises(ValueError, match="clean_up_tokenization_spaces"):
        LinformerTokenizer(
            vocabulary=tokenizer.get_vocabulary(),
            clean_up_tokenization_spaces="yes",
        )
