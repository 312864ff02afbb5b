"""Export keras-linformer models to TensorFlow SavedModel and TFLite.

`export_model(model_path, format, out)` from Python, or
`python -m keras_linformer.export MODEL --format saved_model|tflite --out DIR`
from a shell.
"""

from keras_linformer.export.errors import ExportError
from keras_linformer.export.exporter import FORMATS
from keras_linformer.export.exporter import TFLITE_FILE_NAME
from keras_linformer.export.exporter import export_model
