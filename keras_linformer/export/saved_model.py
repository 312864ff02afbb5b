"""Writes a TensorFlow SavedModel for TF Serving."""

import keras

from keras_linformer.export.signatures import serving_endpoints


def write_saved_model(model, path, include_text=True):
    """Writes `model`'s serving signatures as a SavedModel folder at `path`.

    Runs in a TensorFlow-backend process. The SavedModel is standalone:
    loading it needs TensorFlow (and `import tensorflow_text` for the
    `classify_text` signature), never Keras or keras_linformer.

    Args:
        model: a loaded keras-linformer model.
        path: string. The folder to write.
        include_text: bool. Whether to add the string-input signature of a
            classifier. Defaults to `True`.
    """
    archive = keras.export.ExportArchive()
    # Tracking the model also tracks its tokenizer's lookup tables.
    archive.track(model)
    for endpoint in serving_endpoints(model, include_text=include_text):
        archive.add_endpoint(
            endpoint.name, endpoint.fn, endpoint.input_signature
        )
    archive.write_out(path, verbose=False)
