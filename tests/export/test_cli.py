"""`python -m keras_linformer.export`: one-line errors a user can cause."""

import os
import subprocess
import sys

import keras
import pytest

from keras_linformer.export.__main__ import main


def export_argv(model, format, out, *options):
    """The command line arguments to export `model` to `format` in `out`."""
    return [str(model), "--format", format, "--out", str(out), *options]


def run_main(capsys, *argv):
    """Runs the command's `main` on `export_argv(*argv)`; returns its exit
    status and what it printed to stderr."""
    status = main(export_argv(*argv))
    captured = capsys.readouterr()
    return status, captured.err.strip()


def assert_one_line_error(status, error, *fragments):
    assert status == 2
    assert len(error.splitlines()) == 1
    assert error.startswith("error: ")
    for fragment in fragments:
        assert fragment in error


def test_missing_file(capsys, tmp_path):
    missing = str(tmp_path / "nothing.keras")
    status, error = run_main(capsys, missing, "tflite", tmp_path / "out")
    assert_one_line_error(status, error, "not found", missing)


def test_model_that_is_not_ours(capsys, tmp_path):
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = str(tmp_path / "plain.keras")
    plain.save(path)
    status, error = run_main(capsys, path, "saved_model", tmp_path / "out")
    assert_one_line_error(status, error, "not a keras-linformer model")


def test_file_that_is_not_a_model(capsys, tmp_path):
    path = tmp_path / "broken.keras"
    path.write_text("not a zip archive")
    status, error = run_main(capsys, path, "tflite", tmp_path / "o")
    assert_one_line_error(status, error, "not a readable `.keras` file")


def test_folder_that_is_not_a_preset(capsys, tmp_path):
    status, error = run_main(capsys, tmp_path, "tflite", tmp_path / "out")
    assert_one_line_error(status, error, "not a Keras preset")


def test_unsupported_format(capsys, trained_classifier, tmp_path):
    status, error = run_main(
        capsys, trained_classifier.keras_path, "onnx", tmp_path / "out"
    )
    assert_one_line_error(status, error, "'onnx'", "saved_model", "tflite")


def test_quantize_needs_tflite(capsys, trained_classifier, tmp_path):
    status, error = run_main(
        capsys,
        trained_classifier.keras_path,
        "saved_model",
        tmp_path / "out",
        "--quantize",
    )
    assert_one_line_error(status, error, "tflite")


def test_existing_output_is_kept_without_overwrite(
    capsys, trained_classifier, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier export")
    status, error = run_main(
        capsys, trained_classifier.keras_path, "tflite", out
    )
    assert_one_line_error(status, error, "already exists", "--overwrite")
    assert os.listdir(out) == ["keep.txt"]


def test_command_line_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_linformer.export"]
        + export_argv(tmp_path / "missing.keras", "tflite", tmp_path / "out"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not os.path.exists(tmp_path / "out")
