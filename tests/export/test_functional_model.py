"""Functional models with their own inputs export; other models are told how."""

import subprocess
import sys
import textwrap

import keras
import keras_hub
import numpy as np
import pytest

import keras_linformer
from keras_linformer.export import ExportError
from keras_linformer.export import export_model
from keras_linformer.export.signatures import serving_endpoints
from tests.testing import tflite_runner
from tests.testing import to_numpy

SEQUENCE_LENGTH, VOCABULARY_SIZE = 16, 50

LOAD_AND_SERVE = textwrap.dedent(
    """
    import sys

    import numpy as np
    import tensorflow as tf

    saved_model_dir, inputs_path, outputs_path = sys.argv[1:]
    signature = tf.saved_model.load(saved_model_dir).signatures[
        "serving_default"
    ]
    inputs = {
        name: tf.constant(value) for name, value in np.load(inputs_path).items()
    }
    outputs = {name: out.numpy() for name, out in signature(**inputs).items()}
    np.savez(outputs_path, **outputs)
    """
)


def readme_functional_model():
    """The README's functional example, tiny: one int input, no names."""
    token_ids = keras.Input(shape=(None,), dtype="int32")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        VOCABULARY_SIZE, SEQUENCE_LENGTH, embedding_dim=8, mask_zero=True
    )(token_ids)
    x = keras_linformer.layers.LinformerEncoderBlock(
        intermediate_dim=16,
        num_heads=2,
        sequence_length=SEQUENCE_LENGTH,
        projected_length=4,
    )(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(token_ids, outputs)


@pytest.fixture(scope="module")
def functional_model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("functional")
    model = readme_functional_model()
    path = str(folder / "functional.keras")
    model.save(path)
    token_ids = np.random.default_rng(0).integers(
        1, VOCABULARY_SIZE, (2, SEQUENCE_LENGTH)
    ).astype("int32")
    token_ids[0, 5:] = 0  # padding, masked by `mask_zero`
    return folder, path, model, token_ids


def test_saved_model_keeps_the_input_name(functional_model):
    folder, path, model, token_ids = functional_model
    input_name = model.layers[0].name  # the `InputLayer`, "input_layer"
    saved_model_dir = export_model(
        path, format="saved_model", out=folder / "saved_model"
    )
    np.savez(folder / "inputs.npz", **{input_name: token_ids})
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_SERVE,
            saved_model_dir,
            str(folder / "inputs.npz"),
            str(folder / "outputs.npz"),
        ],
        check=True,
        timeout=300,
    )
    (served,) = dict(np.load(folder / "outputs.npz")).values()
    expected = to_numpy(model(token_ids, training=False))
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)


def test_tflite_keeps_the_input_name(functional_model):
    folder, path, model, token_ids = functional_model
    tflite_path = export_model(path, format="tflite", out=folder / "tflite")
    _, runner = tflite_runner(tflite_path)
    (served,) = runner(**{model.layers[0].name: token_ids}).values()
    expected = to_numpy(model(token_ids, training=False))
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_subclassed_model_is_told_what_to_do():
    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ExportError, match=r"functional.*keras\.Model\(inputs"):
        serving_endpoints(model)
