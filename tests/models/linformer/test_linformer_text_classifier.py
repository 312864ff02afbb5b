import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_linformer
from keras_linformer.models import LinformerBackbone
from keras_linformer.models import LinformerByteTokenizer
from keras_linformer.models import LinformerTextClassifier
from keras_linformer.models import LinformerTextClassifierPreprocessor
from keras_linformer.models import LinformerTokenizer
from tests.testing import CLASSIFICATION_LABELS
from tests.testing import CLASSIFICATION_TEXTS
from tests.testing import tiny_text_classifier
from tests.testing import to_numpy

SEQUENCE_LENGTH = 16
TEXTS = CLASSIFICATION_TEXTS
LABELS = CLASSIFICATION_LABELS


@pytest.fixture(scope="module")
def tokenizer():
    return LinformerTokenizer.from_corpus(TEXTS, vocabulary_size=100)


@pytest.fixture(scope="module")
def classifier(tokenizer):
    classifier = tiny_text_classifier(tokenizer, SEQUENCE_LENGTH)
    classifier.fit(x=TEXTS, y=LABELS, batch_size=4, epochs=1, verbose=0)
    return classifier


def test_preprocessor_packs_strings_eagerly_and_in_tf_data(tokenizer):
    preprocessor = LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    x = preprocessor(["the team won", TEXTS[0] * 5])
    assert sorted(x) == ["padding_mask", "token_ids"]
    token_ids = to_numpy(x["token_ids"])
    padding_mask = to_numpy(x["padding_mask"])
    assert token_ids.shape == (2, SEQUENCE_LENGTH)
    assert token_ids[0, 0] == tokenizer.start_token_id
    assert token_ids[1, -1] == tokenizer.end_token_id  # truncated
    np.testing.assert_array_equal(
        padding_mask, token_ids != tokenizer.pad_token_id
    )
    assert 4 < padding_mask[0].sum() < SEQUENCE_LENGTH

    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(4)
    x_batch, y_batch = next(iter(dataset.map(preprocessor)))
    assert x_batch["token_ids"].shape == (4, SEQUENCE_LENGTH)
    np.testing.assert_array_equal(y_batch.numpy(), LABELS[:4])
    np.testing.assert_array_equal(
        x_batch["token_ids"].numpy()[:2],
        to_numpy(preprocessor(TEXTS[:2])["token_ids"]),
    )


def test_fit_on_tf_data_predict_and_evaluate(classifier):
    # The fixture trained on a list of strings; go on with (text, label)
    # batches, which `fit()` maps the preprocessor over.
    before = [to_numpy(w) for w in classifier.trainable_weights]
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(4)
    history = classifier.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(
        not np.allclose(b, to_numpy(w))
        for b, w in zip(before, classifier.trainable_weights)
    )
    assert classifier.predict(["the team won"], verbose=0).shape == (1, 2)
    loss, accuracy = classifier.evaluate(TEXTS, LABELS, verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1


def test_preset_round_trip(classifier, tmp_path):
    preset = str(tmp_path / "preset")
    classifier.save_to_preset(preset)
    expected = classifier.predict(TEXTS, batch_size=4, verbose=0)

    revived = keras_hub.models.TextClassifier.from_preset(preset)
    assert isinstance(revived, LinformerTextClassifier)
    np.testing.assert_allclose(
        revived.predict(TEXTS, batch_size=4, verbose=0), expected, atol=1e-6
    )
    backbone = keras_hub.models.Backbone.from_preset(preset)
    assert isinstance(backbone, LinformerBackbone)
    assert backbone.get_config() == classifier.backbone.get_config()
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    assert tokenizer.get_vocabulary() == (
        classifier.preprocessor.tokenizer.get_vocabulary()
    )
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        preset
    )
    assert preprocessor.sequence_length == SEQUENCE_LENGTH


def test_keras_file_round_trip(classifier, tmp_path):
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    revived = keras.saving.load_model(path)
    np.testing.assert_allclose(
        revived.predict(TEXTS, batch_size=4, verbose=0),
        classifier.predict(TEXTS, batch_size=4, verbose=0),
        atol=1e-6,
    )


def test_byte_level_classifier_round_trips(tmp_path):
    classifier = tiny_text_classifier(
        LinformerByteTokenizer(), SEQUENCE_LENGTH, parameter_sharing="layerwise"
    )
    classifier.fit(x=TEXTS, y=LABELS, batch_size=4, epochs=1, verbose=0)
    preset = str(tmp_path / "byte_preset")
    classifier.save_to_preset(preset)
    revived = keras_hub.models.TextClassifier.from_preset(preset)
    assert isinstance(revived.preprocessor.tokenizer, LinformerByteTokenizer)
    np.testing.assert_allclose(
        revived.predict(TEXTS, batch_size=4, verbose=0),
        classifier.predict(TEXTS, batch_size=4, verbose=0),
        atol=1e-6,
    )


def test_exported_from_the_package():
    assert keras_linformer.LinformerTextClassifier is LinformerTextClassifier
    assert keras_linformer.models.LinformerBackbone is LinformerBackbone


def test_invalid_num_classes(tokenizer):
    backbone = tiny_text_classifier(tokenizer).backbone
    with pytest.raises(ValueError, match="num_classes"):
        LinformerTextClassifier(backbone, num_classes=1)


@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_pooling_is_configurable_and_round_trips(tokenizer, pooling, tmp_path):
    tiny = tiny_text_classifier(tokenizer, SEQUENCE_LENGTH)
    classifier = LinformerTextClassifier(
        tiny.backbone,
        num_classes=2,
        preprocessor=tiny.preprocessor,
        pooling=pooling,
    )
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    revived = keras.saving.load_model(path)
    assert revived.pooling == pooling
    assert type(revived.pooler) is type(classifier.pooler)
    np.testing.assert_allclose(
        revived.predict(TEXTS, batch_size=4, verbose=0),
        classifier.predict(TEXTS, batch_size=4, verbose=0),
        atol=1e-6,
    )


def test_invalid_pooling(tokenizer):
    backbone = tiny_text_classifier(tokenizer).backbone
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        LinformerTextClassifier(backbone, num_classes=2, pooling="max")


def test_configs_saved_before_pooling_existed_load_with_mean_pooling(
    tokenizer,
):
    tiny = tiny_text_classifier(tokenizer, SEQUENCE_LENGTH)
    config = tiny.get_config()
    del config["pooling"]
    revived = LinformerTextClassifier.from_config(config)
    assert revived.pooling == "mean"
    assert isinstance(revived.pooler, keras.layers.GlobalAveragePooling1D)
