"""Fixtures shared by the export tests.

One small classifier is trained briefly with the current backend and saved
as a `.keras` file and a preset (with `class_names.txt`, as the example
writes it); each format is exported from it once per session (through the
TensorFlow-backend subprocess on JAX and PyTorch).
"""

import types

import keras
import numpy as np
import pytest

from keras_linformer.export import export_model
from tests.testing import CLASSIFICATION_LABELS
from tests.testing import CLASSIFICATION_TEXTS
from tests.testing import tiny_text_classifier
from tests.testing import to_numpy

SEQUENCE_LENGTH = 32
# (batch size, length): two batch sizes and two sequence lengths.
TOKEN_SHAPES = ((2, 12), (3, SEQUENCE_LENGTH))
CLASS_NAMES = ["business", "sport"]


def token_batch(batch_size, length, vocabulary_size, seed):
    """Random token ids whose first row is padded after half its length."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(
        1, vocabulary_size, (batch_size, length)
    ).astype("int32")
    padding_mask = np.ones((batch_size, length), "int32")
    padding_mask[0, length // 2 :] = 0
    token_ids[0, length // 2 :] = 0
    return {"token_ids": token_ids, "padding_mask": padding_mask}


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory):
    """A classifier trained for one epoch, its files and its Keras outputs."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("classifier")
    classifier = tiny_text_classifier(
        sequence_length=SEQUENCE_LENGTH,
        num_layers=2,
        hidden_dim=16,
        # Kernels of 1024 weights: the smallest that quantization converts.
        intermediate_dim=64,
        projected_length=8,
        # The main job's projection; the causal LM's decode-step export
        # covers the linear and mean-pool ones.
        projection="conv",
    )
    classifier.fit(
        CLASSIFICATION_TEXTS, CLASSIFICATION_LABELS, batch_size=4, verbose=0
    )
    vocabulary_size = classifier.backbone.vocabulary_size
    keras_path = str(folder / "classifier.keras")
    preset_path = str(folder / "classifier_preset")
    classifier.save(keras_path)
    classifier.save_to_preset(preset_path)
    with open(f"{preset_path}/class_names.txt", "w") as file:
        file.write("\n".join(CLASS_NAMES) + "\n")
    batches = [
        token_batch(batch_size, length, vocabulary_size, seed)
        for seed, (batch_size, length) in enumerate(TOKEN_SHAPES)
    ]
    texts = CLASSIFICATION_TEXTS[:3]
    return types.SimpleNamespace(
        keras_path=keras_path,
        preset_path=preset_path,
        folder=folder,
        class_names=CLASS_NAMES,
        batches=batches,
        logits=[
            to_numpy(classifier(batch, training=False)) for batch in batches
        ],
        texts=texts,
        text_probabilities=to_numpy(
            keras.ops.softmax(classifier.predict(texts, verbose=0))
        ),
    )


@pytest.fixture(scope="session")
def saved_model_dir(trained_classifier):
    """The default SavedModel: class names from the preset, no text."""
    return export_model(
        trained_classifier.preset_path,
        format="saved_model",
        out=trained_classifier.folder / "saved_model",
    )


@pytest.fixture(scope="session")
def text_saved_model_dir(trained_classifier):
    """The SavedModel with `classify_text`, class names given explicitly."""
    return export_model(
        trained_classifier.keras_path,
        format="saved_model",
        out=trained_classifier.folder / "saved_model_text",
        include_text=True,
        class_names=trained_classifier.class_names,
    )

