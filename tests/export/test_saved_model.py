"""SavedModel export: standalone, named signatures, outputs equal Keras'."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

# Runs in a fresh process that imports TensorFlow alone, never TensorFlow
# Text or keras_linformer: what a stock TF Serving host has. It serves the
# default SavedModel and records why the one with `classify_text` fails.
LOAD_WITH_CORE_TENSORFLOW = textwrap.dedent(
    """
    import sys

    import numpy as np
    import tensorflow as tf

    saved_model_dir, text_saved_model_dir, inputs_path, outputs_path = (
        sys.argv[1:]
    )
    inputs = np.load(inputs_path)
    signatures = tf.saved_model.load(saved_model_dir).signatures
    outputs = {"signatures": np.array(sorted(signatures.keys()), dtype=str)}
    index = 0
    while f"token_ids_{index}" in inputs:
        result = signatures["serving_default"](
            token_ids=tf.constant(inputs[f"token_ids_{index}"]),
            padding_mask=tf.constant(inputs[f"padding_mask_{index}"]),
        )
        for name in ("logits", "probabilities", "classes"):
            outputs[f"{name}_{index}"] = result[name].numpy().astype(
                str if name == "classes" else "float32"
            )
        index += 1
    try:
        tf.saved_model.load(text_saved_model_dir)
        outputs["text_load_error"] = np.array("")
    except Exception as error:
        outputs["text_load_error"] = np.array(str(error))
    outputs["modules"] = np.array(sorted(sys.modules), dtype=str)
    np.savez(outputs_path, **outputs)
    """
)

# With TensorFlow Text imported first, the text signature loads and runs.
LOAD_WITH_TENSORFLOW_TEXT = textwrap.dedent(
    """
    import sys

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the tokenizer ops of classify_text)

    saved_model_dir, inputs_path, outputs_path = sys.argv[1:]
    texts = np.load(inputs_path)["texts"]
    signature = tf.saved_model.load(saved_model_dir).signatures["classify_text"]
    result = signature(text=tf.constant(texts))
    np.savez(
        outputs_path,
        probabilities=result["probabilities"].numpy(),
        classes=result["classes"].numpy().astype(str),
    )
    """
)


def run_script(script, *args):
    subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def served_outputs(
    trained_classifier, saved_model_dir, text_saved_model_dir, tmp_path_factory
):
    """Outputs of both SavedModels, each loaded in a fresh process."""
    folder = tmp_path_factory.mktemp("served")
    inputs = {"texts": np.array(trained_classifier.texts)}
    for index, batch in enumerate(trained_classifier.batches):
        inputs[f"token_ids_{index}"] = batch["token_ids"]
        inputs[f"padding_mask_{index}"] = batch["padding_mask"]
    np.savez(folder / "inputs.npz", **inputs)
    run_script(
        LOAD_WITH_CORE_TENSORFLOW,
        saved_model_dir,
        text_saved_model_dir,
        folder / "inputs.npz",
        folder / "core.npz",
    )
    run_script(
        LOAD_WITH_TENSORFLOW_TEXT,
        text_saved_model_dir,
        folder / "inputs.npz",
        folder / "text.npz",
    )
    return {
        "core": dict(np.load(folder / "core.npz")),
        "text": dict(np.load(folder / "text.npz")),
    }


def test_default_loads_with_core_tensorflow_alone(served_outputs):
    core = served_outputs["core"]
    modules = set(core["modules"])
    assert "tensorflow" in modules
    assert "tensorflow_text" not in modules
    assert "keras_linformer" not in modules
    assert "keras_hub" not in modules
    assert list(core["signatures"]) == ["serving_default"]


def test_token_signature_matches_keras(trained_classifier, served_outputs):
    core = served_outputs["core"]
    for index, expected in enumerate(trained_classifier.logits):
        served = core[f"logits_{index}"]
        assert served.shape == expected.shape
        np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
        probabilities = core[f"probabilities_{index}"]
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1, atol=1e-6)


def test_class_names_from_preset_are_served(trained_classifier, served_outputs):
    for index, expected in enumerate(trained_classifier.logits):
        classes = served_outputs["core"][f"classes_{index}"]
        assert classes.tolist() == [trained_classifier.class_names] * len(
            expected
        )


def test_text_signature_needs_tensorflow_text(served_outputs):
    assert "Op type not registered" in str(
        served_outputs["core"]["text_load_error"]
    )


def test_text_signature_matches_keras(trained_classifier, served_outputs):
    text = served_outputs["text"]
    np.testing.assert_allclose(
        text["probabilities"],
        trained_classifier.text_probabilities,
        atol=1e-5,
        rtol=0,
    )
    assert text["classes"].tolist() == [trained_classifier.class_names] * len(
        trained_classifier.texts
    )


def saved_model_cli_show(saved_model_dir):
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
    return result.stdout


def test_saved_model_cli_lists_signatures(
    saved_model_dir, text_saved_model_dir
):
    shown = saved_model_cli_show(saved_model_dir)
    for expected in (
        "signature_def['serving_default']",
        "inputs['token_ids']",
        "inputs['padding_mask']",
        "outputs['logits']",
        "outputs['probabilities']",
        "outputs['classes']",
    ):
        assert expected in shown
    assert "classify_text" not in shown
    # Dynamic batch and length.
    assert "shape: (-1, -1)" in shown
    shown = saved_model_cli_show(text_saved_model_dir)
    assert "signature_def['classify_text']" in shown
    assert "inputs['text']" in shown
