import keras
import keras_hub
import numpy as np
import pytest

import keras_linformer
from keras_linformer.models import LinformerBackbone
from keras_linformer.models import LinformerMaskedLM
from keras_linformer.models import LinformerMaskedLMPreprocessor
from keras_linformer.models import LinformerTextClassifier
from keras_linformer.models import LinformerTokenizer
from tests.testing import to_numpy

SEQUENCE_LENGTH = 16
MASK_SELECTION_LENGTH = 5
# A repetitive corpus: the masked words are easy to learn.
TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog sat",
    "the mat and the log",
] * 8


def tiny_masked_lm(tokenizer, **backbone_overrides):
    """A compiled `LinformerMaskedLM` small enough for tests."""
    preprocessor = LinformerMaskedLMPreprocessor(
        tokenizer,
        sequence_length=SEQUENCE_LENGTH,
        mask_selection_rate=0.3,
        mask_selection_length=MASK_SELECTION_LENGTH,
    )
    backbone_kwargs = dict(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=SEQUENCE_LENGTH,
        projected_length=4,
        dropout=0.0,
    )
    backbone_kwargs.update(backbone_overrides)
    masked_lm = LinformerMaskedLM(
        LinformerBackbone(**backbone_kwargs), preprocessor
    )
    masked_lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    return masked_lm


@pytest.fixture(scope="module")
def tokenizer():
    return LinformerTokenizer.from_corpus(TEXTS, vocabulary_size=40)


@pytest.fixture(scope="module")
def trained(tokenizer):
    """A masked LM fitted on the raw strings, and its fit history."""
    keras.utils.set_random_seed(0)
    masked_lm = tiny_masked_lm(tokenizer)
    history = masked_lm.fit(TEXTS, batch_size=8, epochs=6, verbose=0)
    return masked_lm, history.history


def preprocessed_batch(masked_lm, texts=TEXTS[:4]):
    """One fixed preprocessed batch, as NumPy."""
    x, _, _ = to_numpy(masked_lm.preprocessor(texts))
    return x


def test_fits_on_raw_strings_and_the_loss_falls(trained):
    _, history = trained
    losses = history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], losses
    accuracy = history["sparse_categorical_accuracy"]
    assert accuracy[-1] > accuracy[0], accuracy


def test_predicts_only_at_the_mask_positions(trained, tokenizer):
    masked_lm, _ = trained
    x = preprocessed_batch(masked_lm)
    logits = to_numpy(masked_lm(x))
    assert logits.shape == (
        4,
        MASK_SELECTION_LENGTH,
        tokenizer.vocabulary_size(),
    )
    # Each prediction follows its position: reversing the positions
    # reverses the predictions.
    reversed_x = dict(x, mask_positions=x["mask_positions"][:, ::-1])
    np.testing.assert_allclose(
        to_numpy(masked_lm(reversed_x)), logits[:, ::-1], atol=1e-5
    )


def test_output_layer_is_tied_to_the_token_embedding(trained):
    masked_lm, _ = trained
    head = masked_lm.masked_lm_head
    assert head.token_embedding is masked_lm.backbone.token_embedding
    embedding = masked_lm.backbone.token_embedding.embeddings
    assert not any(w.shape == tuple(embedding.shape[::-1]) for w in head.weights)


def test_preset_round_trip(trained, tmp_path):
    masked_lm, _ = trained
    preset = str(tmp_path / "preset")
    masked_lm.save_to_preset(preset)
    x = preprocessed_batch(masked_lm)

    revived = keras_hub.models.MaskedLM.from_preset(preset)
    assert isinstance(revived, LinformerMaskedLM)
    assert isinstance(revived.preprocessor, LinformerMaskedLMPreprocessor)
    assert revived.preprocessor.get_config() == (
        masked_lm.preprocessor.get_config()
    )
    np.testing.assert_array_equal(to_numpy(revived(x)), to_numpy(masked_lm(x)))

    # The pretrained backbone is what a classifier fine-tunes from.
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        preset, sequence_length=SEQUENCE_LENGTH
    )
    classifier = keras_hub.models.TextClassifier.from_preset(
        preset, num_classes=2, preprocessor=preprocessor
    )
    assert isinstance(classifier, LinformerTextClassifier)
    for pretrained, loaded in zip(
        masked_lm.backbone.weights, classifier.backbone.weights
    ):
        np.testing.assert_array_equal(to_numpy(pretrained), to_numpy(loaded))


def test_keras_file_round_trip(trained, tmp_path):
    masked_lm, _ = trained
    path = str(tmp_path / "masked_lm.keras")
    masked_lm.save(path)
    revived = keras.saving.load_model(path)
    x = preprocessed_batch(masked_lm)
    np.testing.assert_array_equal(to_numpy(revived(x)), to_numpy(masked_lm(x)))


def test_goes_on_pretraining_a_converted_bert_at_a_longer_length():
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocabulary += sorted(set(" ".join(TEXTS).split()))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary)
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=SEQUENCE_LENGTH // 2,
    )
    backbone = LinformerBackbone.from_transformer(
        bert, max_sequence_length=SEQUENCE_LENGTH, projected_length=4
    )
    assert "segment_ids" in backbone.input
    preprocessor = LinformerMaskedLMPreprocessor(
        tokenizer,
        sequence_length=SEQUENCE_LENGTH,
        mask_selection_length=MASK_SELECTION_LENGTH,
    )
    masked_lm = LinformerMaskedLM(backbone, preprocessor)
    masked_lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = masked_lm.fit(TEXTS[:8], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    x = preprocessed_batch(masked_lm)
    assert x["token_ids"].max() < tokenizer.vocabulary_size()
    assert to_numpy(masked_lm(x)).shape == (
        4,
        MASK_SELECTION_LENGTH,
        tokenizer.vocabulary_size(),
    )


@pytest.mark.parametrize(
    "backbone_overrides, message",
    [
        (
            {"max_sequence_length": SEQUENCE_LENGTH - 1},
            "`sequence_length` must not exceed",
        ),
        ({"vocabulary_size": 10}, "vocabulary is larger than the backbone's"),
    ],
)
def test_a_preprocessor_the_backbone_cannot_embed_is_rejected(
    tokenizer, backbone_overrides, message
):
    with pytest.raises(ValueError, match=message):
        tiny_masked_lm(tokenizer, **backbone_overrides)


def test_exported_from_the_package():
    assert keras_linformer.LinformerMaskedLM is LinformerMaskedLM
    assert keras_linformer.models.LinformerMaskedLMPreprocessor is (
        LinformerMaskedLMPreprocessor
    )
