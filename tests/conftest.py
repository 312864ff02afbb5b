import os

import keras


def pytest_report_header(config):
    return f"KERAS_BACKEND={keras.backend.backend()} (env: {os.environ.get('KERAS_BACKEND')})"
