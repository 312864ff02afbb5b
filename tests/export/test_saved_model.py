"""SavedModel export: standalone, named signatures, outputs equal Keras'."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

# Runs in a fresh process that imports TensorFlow (and TensorFlow Text for
# the tokenizer ops), never keras_linformer: what a TF Serving host has.
LOAD_AND_RUN = textwrap.dedent(
    """
    import sys

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the tokenizer ops of classify_text)

    saved_model_dir, inputs_path, outputs_path = sys.argv[1:]
    inputs = np.load(inputs_path)
    signatures = tf.saved_model.load(saved_model_dir).signatures
    outputs = {}
    index = 0
    while f"token_ids_{index}" in inputs:
        result = signatures["serving_default"](
            token_ids=tf.constant(inputs[f"token_ids_{index}"]),
            padding_mask=tf.constant(inputs[f"padding_mask_{index}"]),
        )
        outputs[f"logits_{index}"] = result["logits"].numpy()
        outputs[f"probabilities_{index}"] = result["probabilities"].numpy()
        index += 1
    result = signatures["classify_text"](text=tf.constant(inputs["texts"]))
    outputs["text_probabilities"] = result["probabilities"].numpy()
    outputs["modules"] = np.array(sorted(sys.modules), dtype=str)
    np.savez(outputs_path, **outputs)
    """
)


@pytest.fixture(scope="module")
def served_outputs(trained_classifier, saved_model_dir, tmp_path_factory):
    """The SavedModel's outputs, computed in a fresh TensorFlow process."""
    folder = tmp_path_factory.mktemp("served")
    inputs = {"texts": np.array(trained_classifier.texts)}
    for index, batch in enumerate(trained_classifier.batches):
        inputs[f"token_ids_{index}"] = batch["token_ids"]
        inputs[f"padding_mask_{index}"] = batch["padding_mask"]
    np.savez(folder / "inputs.npz", **inputs)
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_RUN,
            saved_model_dir,
            str(folder / "inputs.npz"),
            str(folder / "outputs.npz"),
        ],
        check=True,
        timeout=300,
    )
    return dict(np.load(folder / "outputs.npz"))


def test_loads_without_keras_linformer(served_outputs):
    modules = set(served_outputs["modules"])
    assert "tensorflow" in modules
    assert "keras_linformer" not in modules
    assert "keras_hub" not in modules


def test_token_signature_matches_keras(trained_classifier, served_outputs):
    for index, expected in enumerate(trained_classifier.logits):
        served = served_outputs[f"logits_{index}"]
        assert served.shape == expected.shape
        np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
        probabilities = served_outputs[f"probabilities_{index}"]
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1, atol=1e-6)


def test_text_signature_matches_keras(trained_classifier, served_outputs):
    np.testing.assert_allclose(
        served_outputs["text_probabilities"],
        trained_classifier.text_probabilities,
        atol=1e-5,
        rtol=0,
    )


def test_saved_model_cli_lists_signatures(saved_model_dir):
    saved_model_cli = os.path.join(
        os.path.dirname(sys.executable), "saved_model_cli"
    )
    result = subprocess.run(
        [saved_model_cli, "show", "--all", "--dir", saved_model_dir],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    for expected in (
        "signature_def['serving_default']",
        "signature_def['classify_text']",
        "inputs['token_ids']",
        "inputs['padding_mask']",
        "inputs['text']",
        "outputs['logits']",
        "outputs['probabilities']",
    ):
        assert expected in result.stdout
    # Dynamic batch and length.
    assert "shape: (-1, -1)" in result.stdout
