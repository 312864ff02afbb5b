"""`python -m keras_linformer.export`: one-line errors a user can cause."""

import os
import subprocess
import sys
import warnings

import keras
import pytest

from keras_linformer.export import ExportError
from keras_linformer.export import export_model
from keras_linformer.export.__main__ import main
from keras_linformer.export.__main__ import parse_args
from keras_linformer.export.exporter import FORMATS
from keras_linformer.export.model_loading import load_model
from tests.testing import BACKEND
from tests.testing import run_in_backend


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


def test_help_lists_formats(capsys):
    with pytest.raises(SystemExit) as raised:
        parse_args(["--help"])
    assert raised.value.code == 0
    shown = capsys.readouterr().out
    for format in FORMATS:
        assert format in shown
    assert "--with-text" in shown and "--class-names" in shown


def test_unsupported_format_is_a_usage_error(capsys, tmp_path):
    # Refused while parsing, before the model path is even looked at.
    with pytest.raises(SystemExit) as raised:
        parse_args(export_argv(tmp_path / "missing.keras", "onnx", tmp_path))
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'onnx'" in error
    assert "saved_model" in error and "tflite" in error


def test_unsupported_format_from_python(tmp_path):
    with pytest.raises(ExportError, match="'onnx'.*saved_model.*tflite"):
        export_model(tmp_path / "missing.keras", "onnx", tmp_path / "out")


def test_text_signature_needs_saved_model(capsys, trained_classifier, tmp_path):
    status, error = run_main(
        capsys,
        trained_classifier.keras_path,
        "tflite",
        tmp_path / "out",
        "--with-text",
    )
    assert_one_line_error(status, error, "TensorFlow Text", "saved_model")


def test_class_names_must_match_the_model(capsys, trained_classifier, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("only one class\n")
    status, error = run_main(
        capsys,
        trained_classifier.keras_path,
        "saved_model",
        tmp_path / "out",
        "--class-names",
        str(names),
    )
    assert_one_line_error(status, error, "1 class names", "2 classes")
    assert not os.path.exists(tmp_path / "out")


def test_export_model_after_import_keras_linformer():
    printed = run_in_backend(
        BACKEND,
        "import keras_linformer\n"
        "print(keras_linformer.export.export_model.__name__)",
    )
    assert printed.strip() == "export_model"


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


def test_loading_a_trained_file_skips_its_optimizer_state_quietly(
    trained_classifier,
):
    # The command prints one-line errors; Keras's warning about the skipped
    # optimizer state would come before them.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(trained_classifier.keras_path)
    assert model.count_params() > 0
    assert not [w for w in caught if "optimizer" in str(w.message)]
