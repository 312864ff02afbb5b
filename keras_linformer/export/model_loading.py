"""Finds, checks and loads the model to export: a `.keras` file or a preset."""

import json
import os
import warnings
import zipfile

from keras_linformer.export.errors import ExportError

PACKAGE_PREFIX = "keras_linformer>"
PRESET_CONFIG_FILE = "config.json"
PRESET_TASK_FILE = "task.json"
# Written next to a classifier preset by `examples/text_classification.py`.
CLASS_NAMES_FILE = "class_names.txt"


def check_model_path(path):
    """Raises `ExportError` unless `path` holds a keras-linformer model.

    Reads only the saved configuration (no TensorFlow, no weights), so the
    caller's process can check a model before handing it to an export
    process.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ExportError(
            f"Model not found: {path!r} does not exist. Pass a `.keras` file "
            "or a local preset folder."
        )
    if os.path.isdir(path):
        config_path = os.path.join(path, PRESET_CONFIG_FILE)
        if not os.path.isfile(config_path):
            raise ExportError(
                f"{path!r} is a folder without {PRESET_CONFIG_FILE}, so it is "
                "not a Keras preset. Pass a `.keras` file or a preset folder "
                "written by `save_to_preset`."
            )
        configs = [_read_json(config_path, path)]
        task_path = os.path.join(path, PRESET_TASK_FILE)
        if os.path.isfile(task_path):
            configs.append(_read_json(task_path, path))
    elif path.endswith(".keras"):
        configs = [_read_keras_file_config(path)]
    else:
        raise ExportError(
            f"Cannot export {path!r}: a model must be a `.keras` file or a "
            "local preset folder."
        )
    if not any(_names_our_classes(config) for config in configs):
        raise ExportError(
            f"{path!r} is not a keras-linformer model: its configuration uses "
            "no keras_linformer class. Export models built with "
            "keras_linformer layers or models."
        )


def load_model(path):
    """Loads a checked model file or preset in the current (TF) process."""
    import keras
    import keras_hub

    import keras_linformer  # noqa: F401 (registers our classes for loading)

    path = os.fspath(path)
    if not os.path.isdir(path):
        # Serving needs no optimizer: the file's optimizer state is skipped,
        # and Keras's warning about it would only add noise to the command.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Skipping variable loading for optimizer"
            )
            return keras.saving.load_model(path, compile=False)
    task_path = os.path.join(path, PRESET_TASK_FILE)
    if os.path.isfile(task_path):
        config = _read_json(task_path, path)
        task_cls = keras.saving.get_registered_object(
            config.get("registered_name")
        )
        if task_cls is None:
            raise ExportError(
                f"The task class {config.get('registered_name')!r} of preset "
                f"{path!r} is not registered; import the module defining it."
            )
        return task_cls.from_preset(path)
    return keras_hub.models.Backbone.from_preset(path)


def read_class_names(path):
    """The class names of a preset folder (one per line), or `None`."""
    names_path = os.path.join(os.fspath(path), CLASS_NAMES_FILE)
    if not (os.path.isdir(path) and os.path.isfile(names_path)):
        return None
    return read_class_names_file(names_path)


def read_class_names_file(path):
    """The class names in a text file, one per line; blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as file:
            names = [line.strip() for line in file if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise ExportError(f"Cannot read class names from {path!r}: {error}")
    if not names:
        raise ExportError(f"{path!r} holds no class names, one per line.")
    return names


def class_names_text(class_names):
    """Class names one per line, as `read_class_names_file` reads them."""
    return "\n".join(class_names) + "\n"


def write_class_names(path, class_names):
    with open(path, "w", encoding="utf-8") as file:
        file.write(class_names_text(class_names))


def _read_json(file_path, model_path):
    try:
        with open(file_path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise ExportError(
            f"Cannot read the configuration of {model_path!r}: {error}"
        ) from None


def _read_keras_file_config(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ExportError(
            f"{path!r} is not a readable `.keras` file ({error})."
        ) from None


def _names_our_classes(config):
    """Whether a saved configuration mentions any keras_linformer class."""
    if isinstance(config, dict):
        name = config.get("registered_name")
        if isinstance(name, str) and name.startswith(PACKAGE_PREFIX):
            return True
        return any(_names_our_classes(value) for value in config.values())
    if isinstance(config, list):
        return any(_names_our_classes(value) for value in config)
    return False
