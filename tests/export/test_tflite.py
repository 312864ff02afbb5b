"""TFLite export: builtin ops only, dynamic shapes, outputs close to Keras."""

import os
import zipfile

import keras
import numpy as np
import pytest

from keras_linformer.export import export_model
from tests.export.conftest import SEQUENCE_LENGTH
from tests.export.conftest import TOKEN_SHAPES
from tests.export.conftest import token_batch
from tests.testing import tflite_op_names
from tests.testing import tflite_runner
from tests.testing import tiny_text_classifier
from tests.testing import to_numpy


@pytest.fixture(scope="module")
def tflite_path(trained_classifier):
    out = trained_classifier.folder / "tflite"
    # An existing folder is replaced only once the export succeeded.
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier export")
    return export_model(
        trained_classifier.preset_path, format="tflite", out=out, overwrite=True
    )


def test_overwrite_replaces_folder(tflite_path):
    folder = os.path.dirname(tflite_path)
    assert sorted(os.listdir(folder)) == ["model.tflite"]


def test_class_names_from_preset_are_packed(trained_classifier, tflite_path):
    with zipfile.ZipFile(tflite_path) as archive:
        names = archive.read("class_names.txt").decode("utf-8").splitlines()
    assert names == trained_classifier.class_names


def test_builtin_ops_only(tflite_path):
    interpreter, _ = tflite_runner(tflite_path)
    op_names = tflite_op_names(interpreter)
    assert op_names
    assert not any(name.startswith("Flex") for name in op_names)
    assert "CUSTOM" not in op_names
    # Variables are frozen into constants: LiteRT would not initialize them.
    assert "READ_VARIABLE" not in op_names


def test_matches_keras_for_two_shapes(trained_classifier, tflite_path):
    _, runner = tflite_runner(tflite_path)
    for batch, expected in zip(
        trained_classifier.batches, trained_classifier.logits
    ):
        outputs = runner(**batch)
        assert outputs["logits"].shape == expected.shape
        np.testing.assert_allclose(
            outputs["logits"], expected, atol=1e-4, rtol=0
        )


def test_quantized_is_smaller_and_close(trained_classifier, tflite_path):
    quantized_path = export_model(
        trained_classifier.keras_path,
        format="tflite",
        out=trained_classifier.folder / "tflite_quantized",
        quantize=True,
    )
    assert os.path.getsize(quantized_path) < os.path.getsize(tflite_path)
    # A `.keras` file has no class names unless they are given.
    assert not zipfile.is_zipfile(quantized_path)
    interpreter, runner = tflite_runner(quantized_path)
    assert not any(
        name.startswith("Flex") for name in tflite_op_names(interpreter)
    )
    for batch, expected in zip(
        trained_classifier.batches, trained_classifier.logits
    ):
        probabilities = runner(**batch)["probabilities"]
        expected = np.exp(expected) / np.exp(expected).sum(-1, keepdims=True)
        np.testing.assert_allclose(probabilities, expected, atol=0.05)


def test_adaptive_mean_pool_exports_with_builtins_and_matches_keras(tmp_path):
    # Its slots come from the padding mask (cumsum, floor division, equal).
    keras.utils.set_random_seed(0)
    classifier = tiny_text_classifier(
        sequence_length=SEQUENCE_LENGTH,
        projected_length=8,
        projection="adaptive_mean_pool",
    )
    keras_path = str(tmp_path / "classifier.keras")
    classifier.save(keras_path)
    path = export_model(keras_path, format="tflite", out=tmp_path / "tflite")
    interpreter, runner = tflite_runner(path)
    assert not any(
        name.startswith("Flex") for name in tflite_op_names(interpreter)
    )
    vocabulary_size = classifier.backbone.vocabulary_size
    for seed, shape in enumerate(TOKEN_SHAPES):
        batch = token_batch(*shape, vocabulary_size, seed)
        np.testing.assert_allclose(
            runner(**batch)["logits"],
            to_numpy(classifier(batch, training=False)),
            atol=1e-4,
            rtol=0,
        )
