"""Converts a model to a TFLite flatbuffer that LiteRT runs with builtins."""

import re
import tempfile
import zipfile

import tensorflow as tf

from keras_linformer.export.errors import ExportError
from keras_linformer.export.model_loading import CLASS_NAMES_FILE
from keras_linformer.export.model_loading import class_names_text
from keras_linformer.export.saved_model import write_saved_model
from keras_linformer.export.signatures import serving_endpoints


def write_tflite(model, path, quantize=False, class_names=None):
    """Writes `model`'s numeric signatures as a `.tflite` file at `path`.

    Only TFLite builtin ops are allowed, so the file runs on any LiteRT
    runtime without the Select-TF (Flex) delegate; a model that needs another
    op fails here, naming the op, rather than at load time on a device.
    Inputs keep a dynamic batch and length: resize them with the signature
    runner or `resize_tensor_input`. Text signatures are left out (the
    tokenizer's ops are not builtins): tokenize in the app.

    Class names travel as an associated file, `class_names.txt` (one name
    per line, in class index order), packed the way TFLite metadata packs
    associated files: a zip archive appended to the flatbuffer, which LiteRT
    ignores and `zipfile.ZipFile(path).read("class_names.txt")` reads.

    Args:
        model: a loaded keras-linformer model.
        path: string. The `.tflite` file to write.
        quantize: bool. Whether to apply dynamic-range quantization (int8
            weights, float activations). Defaults to `False`.
        class_names: list of strings or `None`. A classifier's class names,
            packed as `class_names.txt`. Defaults to `None`.
    """
    endpoints = serving_endpoints(model, class_names=class_names)
    signature_keys = [endpoint.name for endpoint in endpoints]
    # Converting from a SavedModel written by `ExportArchive` freezes the
    # variables into constants; converting the live model would leave
    # resource variables that LiteRT never initializes.
    with tempfile.TemporaryDirectory() as saved_model_dir:
        write_saved_model(model, saved_model_dir)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_dir, signature_keys=signature_keys
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # The converter raises several types.
            raise ExportError(
                "TFLite conversion with builtin ops only failed; ops that are "
                f"not TFLite builtins: {_unsupported_ops(error)}"
            ) from None
    with open(path, "wb") as file:
        file.write(flatbuffer)
    if class_names is not None:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(CLASS_NAMES_FILE, class_names_text(class_names))


def _unsupported_ops(error):
    """The TF op names the converter's error message lists, or its text."""
    message = str(error)
    ops = sorted(set(re.findall(r"\btf\.(\w+)", message)))
    if ops:
        return ", ".join(ops)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
