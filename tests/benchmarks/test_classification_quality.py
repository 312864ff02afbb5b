import argparse
import os
import sys

import numpy as np
import pytest

from tests.testing import REPO_ROOT
from tests.testing import import_example

# Benchmarks are scripts, not a package: they import their neighbours.
sys.path.insert(0, os.path.join(REPO_ROOT, "benchmarks"))

import classification_quality  # noqa: E402

TEXTS = [f"text {i}" for i in range(64)]
LABELS = np.arange(64) % 2


def passed_through(texts, labels):
    return texts, labels


def batches_of_texts(dataset):
    """One epoch of `dataset`: each batch's texts, as a set."""
    return [frozenset(texts.numpy().tolist()) for texts, _ in dataset]


def test_training_batches_regroup_the_texts_every_epoch():
    dataset = classification_quality.tokenized_batches(
        TEXTS, LABELS, passed_through, batch_size=8, seed=1
    )
    first, second = batches_of_texts(dataset), batches_of_texts(dataset)
    every_text = sorted(text.encode() for text in TEXTS)
    assert sorted(text for batch in first for text in batch) == every_text
    assert sorted(text for batch in second for text in batch) == every_text
    # Shuffling only the order of fixed batches would leave these sets equal.
    assert set(first) != set(second)


def test_unseeded_batches_keep_the_order():
    dataset = classification_quality.tokenized_batches(
        TEXTS, LABELS, passed_through, batch_size=8
    )
    texts, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    assert [text.decode() for text in np.concatenate(texts)] == TEXTS
    np.testing.assert_array_equal(np.concatenate(labels), LABELS)


# Texts that are numbers: the positive ones are class 1.
NUMBER_TEXTS = [f"{value:.3f}" for value in np.linspace(-1, 1, 32)]
NUMBER_LABELS = (np.linspace(-1, 1, 32) > 0).astype("int32")


def numbers(texts, labels):
    import tensorflow as tf

    return tf.expand_dims(tf.strings.to_number(texts), -1), labels


def fit_numbers(argv, validation):
    import keras

    options = import_example("text_classification").parse_args(
        ["--epochs", "3", "--batch-size", "8", "--learning-rate", "0.5", *argv]
    )
    args = argparse.Namespace(batch_size=8, epochs=3, seed=1, compile="auto")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    train = (NUMBER_TEXTS, NUMBER_LABELS)
    return classification_quality.fit_and_test(
        model, numbers, train, train, options, args, validation=validation
    )


def test_fit_and_test_names_the_best_validation_epoch():
    # Flipped validation labels: the validation loss rises as it learns.
    flipped = (NUMBER_TEXTS, 1 - NUMBER_LABELS)
    result = fit_numbers(["--restore-best-epoch", "val_loss"], flipped)
    assert result["best_epoch"] == 1
    losses = result["validation_loss"]
    assert len(losses) == 3 and losses[0] < losses[1] < losses[2]
    assert len(result["validation_accuracy"]) == 3
    assert "best_epoch" not in fit_numbers([], None)


def test_restoring_the_best_epoch_needs_validation_texts():
    with pytest.raises(ValueError, match="--restore-best-epoch needs"):
        fit_numbers(["--restore-best-epoch", "val_loss"], None)
