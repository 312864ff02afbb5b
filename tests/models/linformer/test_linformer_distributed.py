"""The classifier trains under Keras's and TensorFlow's own data parallelism.

Each run is a fresh process: the two simulated CPU devices must be configured
before JAX or TensorFlow initialize.
"""

import json

import pytest

from tests.testing import BACKEND
from tests.testing import run_in_backend

# Trains for two epochs on two devices and prints what the test checks.
TRAIN_AND_REPORT = """
import numpy as np
from tests.testing import CLASSIFICATION_LABELS, CLASSIFICATION_TEXTS
from tests.testing import tiny_text_classifier

with scope():
    classifier = tiny_text_classifier()
before = [np.array(w) for w in classifier.get_weights()]
history = classifier.fit(
    x=CLASSIFICATION_TEXTS, y=CLASSIFICATION_LABELS, batch_size=4, epochs=2,
    verbose=0,
)
changed = any(
    not np.allclose(b, a) for b, a in zip(before, classifier.get_weights())
)
predictions = classifier.predict(CLASSIFICATION_TEXTS, batch_size=4, verbose=0)
print(json.dumps({
    "replicas": replicas,
    "losses": history.history["loss"],
    "changed": changed,
    "predictions_shape": list(predictions.shape),
    "variable_type": type(classifier.backbone.weights[0].value).__name__,
}))
"""

JAX_DATA_PARALLEL = """
import json, os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import contextlib
import keras
devices = keras.distribution.list_devices("cpu")
replicas = len(devices)
keras.distribution.set_distribution(
    keras.distribution.DataParallel(devices=devices)
)
scope = contextlib.nullcontext
""" + TRAIN_AND_REPORT

TF_MIRRORED_STRATEGY = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
replicas = strategy.num_replicas_in_sync
scope = strategy.scope
""" + TRAIN_AND_REPORT


def check_report(stdout):
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert all(loss == loss for loss in report["losses"])  # no NaN
    assert report["changed"]
    assert report["predictions_shape"] == [8, 2]
    return report


def test_data_parallel_on_two_jax_devices():
    if BACKEND != "jax":
        pytest.skip(
            "keras.distribution.DataParallel is tested on the JAX backend; "
            f"this run uses {BACKEND}"
        )
    check_report(run_in_backend("jax", JAX_DATA_PARALLEL))


def test_mirrored_strategy_on_two_tensorflow_devices():
    if BACKEND != "tensorflow":
        pytest.skip(
            "tf.distribute.MirroredStrategy needs the TensorFlow backend; "
            f"this run uses {BACKEND}"
        )
    report = check_report(run_in_backend("tensorflow", TF_MIRRORED_STRATEGY))
    assert report["variable_type"] == "MirroredVariable"
