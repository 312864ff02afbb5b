"""Writes a TensorFlow SavedModel for TF Serving."""

import keras

from keras_linformer.export.signatures import serving_endpoints


def write_saved_model(model, path, include_text=False, class_names=None):
    """Writes `model`'s serving signatures as a SavedModel folder at `path`.

    Runs in a TensorFlow-backend process. The SavedModel is standalone:
    loading it needs TensorFlow only, never Keras or keras_linformer, unless
    `include_text` adds `classify_text`, whose tokenizer ops make every
    loader (and TF Serving) need TensorFlow Text.

    Args:
        model: a loaded keras-linformer model.
        path: string. The folder to write.
        include_text: bool. Whether to add the string-input signature of a
            classifier. Defaults to `False`.
        class_names: list of strings or `None`. A classifier's class names,
            served as the `classes` output. Defaults to `None`.
    """
    archive = keras.export.ExportArchive()
    if include_text:
        # Only tracking the model saves its tokenizer's lookup tables; without
        # the text signature, the endpoints' variables are all it needs.
        archive.track(model)
    endpoints = serving_endpoints(
        model, include_text=include_text, class_names=class_names
    )
    for endpoint in endpoints:
        archive.add_endpoint(
            endpoint.name, endpoint.fn, endpoint.input_signature
        )
    archive.write_out(path, verbose=False)
