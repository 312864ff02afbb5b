import numpy as np

from keras_linformer.models import LinformerCausalLMPreprocessor
from keras_linformer.models import LinformerCausalTokenizer
from tests.testing import to_numpy

TEXTS = ["the quick brown fox", "the lazy dog sleeps"]


def make_preprocessor(sequence_length=8):
    tokenizer = LinformerCausalTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + "the quick brown fox lazy dog sleeps".split()
    )
    return LinformerCausalLMPreprocessor(
        tokenizer, sequence_length=sequence_length
    )


def test_targets_are_inputs_shifted_by_one():
    x, y, sample_weight = make_preprocessor()(TEXTS)
    token_ids = to_numpy(x["token_ids"])
    np.testing.assert_array_equal(
        token_ids[0], [2, 5, 6, 7, 8, 3, 0, 0]
    )  # [CLS] the quick brown fox [SEP] [PAD] [PAD]
    np.testing.assert_array_equal(to_numpy(y)[0], [5, 6, 7, 8, 3, 0, 0, 0])
    np.testing.assert_array_equal(
        to_numpy(sample_weight)[0], [1, 1, 1, 1, 1, 0, 0, 0]
    )
    np.testing.assert_array_equal(
        to_numpy(x["padding_mask"])[0], token_ids[0] > 0
    )


def test_generate_preprocess_and_postprocess():
    preprocessor = make_preprocessor()
    prompt = preprocessor.generate_preprocess(["the lazy"], sequence_length=6)
    np.testing.assert_array_equal(
        to_numpy(prompt["token_ids"])[0], [2, 5, 9, 0, 0, 0]
    )
    assert preprocessor.generate_postprocess(prompt) == ["the lazy"]

