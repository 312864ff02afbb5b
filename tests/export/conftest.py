"""Fixtures shared by the export tests.

One small classifier is trained briefly with the current backend and saved
as a `.keras` file and a preset; each format is exported from it once per
session (through the TensorFlow-backend subprocess on JAX and PyTorch).
"""

import types

import keras
import numpy as np
import pytest

from keras_linformer.export import export_model
from keras_linformer.models import LinformerBackbone
from keras_linformer.models import LinformerTextClassifier
from keras_linformer.models import LinformerTextClassifierPreprocessor
from keras_linformer.models import LinformerTokenizer
from tests.testing import to_numpy

SEQUENCE_LENGTH = 32
TEXTS = [
    "shares fell as the bank reported weak profits",
    "the striker scored twice and the team won the cup",
    "markets rallied after the central bank cut rates",
    "the coach praised the defence after a tight match",
] * 4
LABELS = [0, 1, 0, 1] * 4
# (batch size, length): two batch sizes and two sequence lengths.
TOKEN_SHAPES = ((2, 12), (3, SEQUENCE_LENGTH))


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
    tokenizer = LinformerTokenizer.from_corpus(TEXTS, vocabulary_size=64)
    backbone = LinformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        # Kernels of 1024 weights: the smallest that quantization converts.
        intermediate_dim=64,
        sequence_length=SEQUENCE_LENGTH,
        projected_length=8,
    )
    classifier = LinformerTextClassifier(
        backbone,
        num_classes=2,
        preprocessor=LinformerTextClassifierPreprocessor(
            tokenizer, sequence_length=SEQUENCE_LENGTH
        ),
    )
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    classifier.fit(TEXTS, LABELS, batch_size=8, epochs=1, verbose=0)
    keras_path = str(folder / "classifier.keras")
    preset_path = str(folder / "classifier_preset")
    classifier.save(keras_path)
    classifier.save_to_preset(preset_path)
    batches = [
        token_batch(batch_size, length, tokenizer.vocabulary_size(), seed)
        for seed, (batch_size, length) in enumerate(TOKEN_SHAPES)
    ]
    texts = TEXTS[:3]
    return types.SimpleNamespace(
        keras_path=keras_path,
        preset_path=preset_path,
        folder=folder,
        batches=batches,
        logits=[to_numpy(classifier(batch, training=False)) for batch in batches],
        texts=texts,
        text_probabilities=to_numpy(
            keras.ops.softmax(classifier.predict(texts, verbose=0))
        ),
    )


@pytest.fixture(scope="session")
def saved_model_dir(trained_classifier):
    return export_model(
        trained_classifier.keras_path,
        format="saved_model",
        out=trained_classifier.folder / "saved_model",
    )


def tflite_runner(path, signature="serving_default"):
    """A LiteRT signature runner for `signature` of the `.tflite` file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    return interpreter, interpreter.get_signature_runner(signature)


def tflite_op_names(interpreter):
    return {op["op_name"] for op in interpreter._get_ops_details()}
