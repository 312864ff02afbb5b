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
from keras_linformer.export.model_loading import read_class_names
from keras_linformer.export.model_loading import write_class_names

FORMATS = ("saved_model", "tflite")
TFLITE_FILE_NAME = "model.tflite"


def export_model(
    model_path,
    format,
    out,
    overwrite=False,
    quantize=False,
    include_text=False,
    class_names=None,
    verbose=True,
):
    """Exports a saved keras-linformer model for serving.

    The export always runs with the TensorFlow backend. When this process
    uses JAX or PyTorch, a TensorFlow-backend subprocess loads the model
    file (`.keras` files and presets load on every backend) and exports it
    there, so models trained on any backend export the same way.

    Args:
        model_path: string. A `.keras` file or a local preset folder.
        format: string. `"saved_model"` (a SavedModel folder for TF
            Serving whose `serving_default` takes token ids and loads with
            core TensorFlow alone) or `"tflite"` (a folder holding
            `model.tflite`, builtin ops only).
        out: string. The folder to create.
        overwrite: bool. Whether to replace an existing `out`. Defaults to
            `False`: an existing folder is never touched.
        quantize: bool. Dynamic-range quantization of a TFLite export.
            Defaults to `False`.
        include_text: bool. Whether a classifier's SavedModel also gets
            `classify_text` (strings in). Its tokenizer ops come from
            TensorFlow Text, so such a SavedModel loads only after
            `import tensorflow_text` and serves only from a TF Serving
            build that links those ops. Defaults to `False`.
        class_names: list of strings or `None`. A classifier's class names
            in class index order: the SavedModel outputs them as `classes`,
            the `.tflite` file holds them as `class_names.txt`. Defaults to
            `None`: the `class_names.txt` of a preset folder, if it has one.
        verbose: bool. Whether to print each step as it starts. Defaults
            to `True`.

    Returns:
        The path of the SavedModel folder or of the `.tflite` file.

    Raises:
        ExportError: for a missing model, a model that is not a
            keras-linformer model or not functional, an unsupported format
            or option, class names that do not match the model, an
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
    if include_text and format != "saved_model":
        raise ExportError(
            "The text signature needs TensorFlow Text ops, which TFLite "
            "builtins do not include; it applies to the 'saved_model' format "
            f"only. Received: format={format!r} with include_text=True."
        )
    check_model_path(model_path)
    if class_names is None:
        class_names = read_class_names(model_path)
    else:
        class_names = _checked_class_names(class_names)
    out = os.fspath(out)
    if os.path.exists(out) and not overwrite:
        raise ExportError(
            f"Output folder {out!r} already exists; pass --overwrite "
            "(overwrite=True) to replace it."
        )
    options = dict(
        quantize=quantize, include_text=include_text, class_names=class_names
    )
    if keras.backend.backend() == "tensorflow":
        _export_in_this_process(model_path, format, out, verbose, **options)
    else:
        _export_in_tensorflow_process(
            model_path, format, out, verbose, **options
        )
    if format == "tflite":
        return os.path.join(out, TFLITE_FILE_NAME)
    return out


def _checked_class_names(class_names):
    if isinstance(class_names, str) or not all(
        isinstance(name, str) and name.strip() and "\n" not in name
        for name in class_names
    ):
        raise ExportError(
            "class_names must be a list of non-empty strings without line "
            f"breaks. Received: class_names={class_names!r}"
        )
    return list(class_names)


def _export_in_this_process(
    model_path, format, out, verbose, quantize, include_text, class_names
):
    from keras_linformer.export.model_loading import load_model
    from keras_linformer.export.saved_model import write_saved_model
    from keras_linformer.export.tflite import write_tflite

    _progress(verbose, f"Loading {model_path} ...")
    model = load_model(model_path)
    with _replaced_folder(out) as staging:
        if format == "saved_model":
            _progress(verbose, "Writing the SavedModel ...")
            write_saved_model(model, staging, include_text, class_names)
        else:
            _progress(
                verbose, "Converting to TFLite (builtin ops only) ..."
            )
            write_tflite(
                model,
                os.path.join(staging, TFLITE_FILE_NAME),
                quantize,
                class_names,
            )
    if class_names is not None:
        format += f" with {len(class_names)} class names"
    _progress(verbose, f"Exported {model_path} as {format}: {out}")


def _export_in_tensorflow_process(
    model_path, format, out, verbose, quantize, include_text, class_names
):
    _progress(
        verbose,
        f"Exporting in a TensorFlow-backend process (this one uses "
        f"{keras.backend.backend()}) ...",
    )
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
    if include_text:
        command.append("--with-text")
    if not verbose:
        command.append("--quiet")
    environment = dict(os.environ, KERAS_BACKEND="tensorflow")
    with tempfile.TemporaryDirectory() as folder:
        if class_names is not None:
            names_path = os.path.join(folder, "class_names.txt")
            write_class_names(names_path, class_names)
            command += ["--class-names", names_path]
        with tempfile.TemporaryFile("w+") as stderr:
            # Progress lines pass through as they come (also into notebooks);
            # TensorFlow's log lines on stderr only matter on failure.
            process = subprocess.Popen(
                command,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
            for line in process.stdout:
                print(line, end="", flush=True)
            returncode = process.wait()
            stderr.seek(0)
            lines = [
                line for line in stderr.read().splitlines() if line.strip()
            ]
    if returncode != 0:
        message = lines[-1] if lines else f"exit status {returncode}"
        raise ExportError(
            "Export in the TensorFlow-backend process failed: "
            + message.removeprefix("error: ")
        )


def _progress(verbose, message):
    if verbose:
        print(message, flush=True)


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
