import keras_hub
import pytest

from keras_linformer.models import LinformerByteTokenizer
from keras_linformer.models import LinformerCausalBackbone
from keras_linformer.models import LinformerCausalByteTokenizer
from keras_linformer.models import LinformerCausalLM
from keras_linformer.models import LinformerCausalLMPreprocessor
from keras_linformer.models import LinformerCausalTokenizer
from keras_linformer.models import LinformerTokenizer
from tests.testing import causal_backbone_kwargs

TEXTS = ["the quick brown fox", "the lazy dog sleeps"]


def test_from_corpus_gives_the_causal_class():
    tokenizer = LinformerCausalTokenizer.from_corpus(TEXTS, vocabulary_size=40)
    assert isinstance(tokenizer, LinformerCausalTokenizer)
    assert tokenizer.backbone_cls is LinformerCausalBackbone
    assert tokenizer.start_token_id == tokenizer.token_to_id("[CLS]")


@pytest.mark.parametrize(
    "tokenizer_cls, loader_cls",
    [
        (LinformerCausalTokenizer, keras_hub.tokenizers.Tokenizer),
        (LinformerCausalTokenizer, LinformerTokenizer),
        (LinformerCausalByteTokenizer, keras_hub.tokenizers.Tokenizer),
        (LinformerCausalByteTokenizer, LinformerByteTokenizer),
    ],
)
def test_generic_loaders_find_the_tokenizer_of_a_causal_preset(
    tokenizer_cls, loader_cls, tmp_path
):
    if tokenizer_cls is LinformerCausalTokenizer:
        tokenizer = tokenizer_cls.from_corpus(TEXTS, vocabulary_size=40)
    else:
        tokenizer = tokenizer_cls()
    backbone = LinformerCausalBackbone(
        **causal_backbone_kwargs(tokenizer.vocabulary_size(), 8, 4)
    )
    causal_lm = LinformerCausalLM(
        backbone,
        LinformerCausalLMPreprocessor(tokenizer, sequence_length=8),
    )
    preset = str(tmp_path / "preset")
    causal_lm.save_to_preset(preset)
    revived = loader_cls.from_preset(preset)
    assert type(revived) is tokenizer_cls
    assert revived.get_vocabulary() == tokenizer.get_vocabulary()
