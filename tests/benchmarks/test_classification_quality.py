import os
import sys

import numpy as np

from tests.testing import REPO_ROOT

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
