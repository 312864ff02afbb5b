"""`export_model`: one entry point for every export format and backend."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

import keras

from keras_linformer.export.errors import ExportError
from keras_linformer.export.model_loading import check_model_path

FORMATS = ("saved_model", "tflite")
TFLITE_FILE_NAME = "model.tflite"


def export_model(model_path, format, out, overwrite=False, quantize=False):
    """Exports a saved keras-linformer model for serving.

    The export always runs with the TensorFlow backend. When this process
    uses JAX or PyTorch, a TensorFlow-backend subprocess loads the model
    file (`.keras` files and presets load on every backend) and exports it
    there, so models trained on any backend export the same way.

    Args:
        model_path: string. A `.keras` file or a local preset folder.
        format: string. `"saved_model"` (a SavedModel folder for TF
            Serving, with `serving_default` on token ids and, for a
            classifier with a preprocessor, `classify_text` on strings) or
            `"tflite"` (a folder holding `model.tflite`, builtin ops only).
        out: string. The folder to create.
        overwrite: bool. Whether to replace an existing `out`. Defaults to
            `False`: an existing folder is never touched.
        quantize: bool. Dynamic-range quantization of a TFLite export.
            Defaults to `False`.

    Returns:
        The path of the SavedModel folder or of the `.tflite` file.

    Raises:
        ExportError: for a missing model, a model that is not a
            keras-linformer model, an unsupported format or option, an
            existing `out` without `overwrite`, or a failed conversion.

    Example:

    ```python
    keras_linformer.export.export_model(
        "saved_models/bbc_news", format="tflite", out="saved_models/tflite"
    )
    ```
    """
    if format not in FORMATS:
        raise ExportError(
            f"Unsupported export format {format!r}; use one of {FORMATS}."
        )
    if quantize and format != "tflite":
        raise ExportError(
            "Quantization applies to the 'tflite' format only; received "
            f"format={format!r} with quantize=True."
        )
    check_model_path(model_path)
    out = os.fspath(out)
    if os.path.exists(out) and not overwrite:
        raise ExportError(
            f"Output folder {out!r} already exists; pass --overwrite "
            "(overwrite=True) to replace it."
        )
    if keras.backend.backend() == "tensorflow":
        _export_in_this_process(model_path, format, out, quantize)
    else:
        _export_in_tensorflow_process(model_path, format, out, quantize)
    if format == "tflite":
        return os.path.join(out, TFLITE_FILE_NAME)
    return out


def _export_in_this_process(model_path, format, out, quantize):
    from keras_linformer.export.model_loading import load_model
    from keras_linformer.export.saved_model import write_saved_model
    from keras_linformer.export.tflite import write_tflite

    model = load_model(model_path)
    with _replaced_folder(out) as staging:
        if format == "saved_model":
            write_saved_model(model, staging)
        else:
            write_tflite(
                model, os.path.join(staging, TFLITE_FILE_NAME), quantize
            )


def _export_in_tensorflow_process(model_path, format, out, quantize):
    command = [
        sys.executable,
        "-m",
        "keras_linformer.export",
        os.fspath(model_path),
        "--format",
        format,
        "--out",
        out,
        "--overwrite",  # `out` was checked in this process.
    ]
    if quantize:
        command.append("--quantize")
    environment = dict(os.environ, KERAS_BACKEND="tensorflow")
    result = subprocess.run(
        command, env=environment, capture_output=True, text=True
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else f"exit status {result.returncode}"
        raise ExportError(
            "Export in the TensorFlow-backend process failed: "
            + message.removeprefix("error: ")
        )


@contextlib.contextmanager
def _replaced_folder(out):
    """Yields a staging folder that replaces `out` only once complete.

    A failed export leaves `out` (existing or not) exactly as it was.
    """
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(
        prefix=f".{os.path.basename(out)}.", dir=parent
    )
    # mkdtemp makes a private folder; the export is meant to be shared.
    os.chmod(staging, 0o755)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    if os.path.lexists(out):
        previous = staging + ".previous"
        os.rename(out, previous)
    os.rename(staging, out)
    if previous is not None:
        if os.path.isdir(previous) and not os.path.islink(previous):
            shutil.rmtree(previous)
        else:
            os.remove(previous)
