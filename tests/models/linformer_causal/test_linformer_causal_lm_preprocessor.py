import keras_hub
import numpy as np
import pytest

from keras_linformer.models import LinformerCausalBackbone
from keras_linformer.models import LinformerCausalLM
from keras_linformer.models import LinformerCausalLMPreprocessor
from keras_linformer.models import LinformerCausalTokenizer
from tests.testing import causal_backbone_kwargs
from tests.testing import library_tokenizer
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



# (start, end, pad) tokens each kind of tokenizer is packed with; a byte
# tokenizer has none but pads with 0, so start and end are given.
SPECIAL_TOKENS = {
    "word_piece": ("[CLS]", "[SEP]", "[PAD]"),
    "bert": ("[CLS]", "[SEP]", "[PAD]"),
    "sentence_piece": ("<s>", "</s>", "<pad>"),
    "byte": ("\x02", "\x03", "\x00"),
}


def library_preprocessor(kind, library="keras_hub", sequence_length=8):
    tokens = {}
    if kind == "byte":
        tokens = {"start_token": "\x02", "end_token": "\x03"}
    return LinformerCausalLMPreprocessor(
        library_tokenizer(kind, library),
        sequence_length=sequence_length,
        **tokens,
    )


@pytest.mark.parametrize("library", ["keras_hub", "keras_nlp"])
@pytest.mark.parametrize("kind", list(SPECIAL_TOKENS))
def test_any_keras_hub_tokenizer(library, kind):
    preprocessor = library_preprocessor(kind, library)
    tokenizer = preprocessor.tokenizer
    start, end, pad = map(tokenizer.token_to_id, SPECIAL_TOKENS[kind])
    ids = [start] + to_numpy(tokenizer("the fox")).tolist() + [end]
    ids = (ids + [pad] * 9)[:9]
    x, y, sample_weight = preprocessor(["the fox"])
    assert to_numpy(x["token_ids"]).tolist() == [ids[:-1]]
    assert to_numpy(y).tolist() == [ids[1:]]
    # `generate()` stops at the end token declared on the tokenizer.
    assert tokenizer.end_token_id == end


def test_byte_tokenizer_needs_a_start_token():
    preprocessor = LinformerCausalLMPreprocessor(
        keras_hub.tokenizers.ByteTokenizer(), sequence_length=8
    )
    with pytest.raises(ValueError, match="needs a start token.*start_token="):
        preprocessor(["the fox"])


def test_generate_with_a_sentence_piece_tokenizer():
    preprocessor = library_preprocessor("sentence_piece", sequence_length=12)
    backbone = LinformerCausalBackbone(
        **causal_backbone_kwargs(
            preprocessor.tokenizer.vocabulary_size(),
            max_sequence_length=12,
            hidden_dim=8,
        )
    )
    causal_lm = LinformerCausalLM(backbone, preprocessor)
    causal_lm.compile(sampler="greedy")
    (generated,) = causal_lm.generate(["the lazy"], max_length=8)
    assert generated.startswith("the lazy")
