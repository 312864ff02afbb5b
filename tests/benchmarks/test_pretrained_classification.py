import os
import sys

import numpy as np
import pytest

from tests.testing import REPO_ROOT

# Benchmarks are scripts, not a package: they import their neighbours.
sys.path.insert(0, os.path.join(REPO_ROOT, "benchmarks"))

import pretrained_classification  # noqa: E402


def test_training_on_validation_or_choosing_an_epoch_on_it(capsys):
    with pytest.raises(SystemExit):
        pretrained_classification.parse_args(
            ["--train-on-validation", "--restore-best-epoch", "val_loss"]
        )
    assert "use one of them" in capsys.readouterr().err


def test_training_on_validation_joins_it_to_the_training_texts():
    (train, validation, test), _ = pretrained_classification.example_split()
    (joined, none, same_test), _ = pretrained_classification.labelled_split(
        1.0, None, train_on_validation=True
    )
    assert none is None
    assert sorted(zip(joined[0], joined[1].tolist())) == sorted(
        zip(
            train[0] + validation[0],
            np.concatenate([train[1], validation[1]]).tolist(),
        )
    )
    assert same_test[0] == test[0]


def test_a_label_fraction_of_train_and_validation_is_stratified():
    (train, validation, _), _ = pretrained_classification.example_split()
    (part, _, _), _ = pretrained_classification.labelled_split(
        0.1, None, train_on_validation=True
    )
    pool = np.concatenate([train[1], validation[1]])
    assert len(part[1]) == round(0.1 * len(pool))
    assert set(part[0]) <= set(train[0] + validation[0])
    expected = 0.1 * np.bincount(pool)
    assert np.all(np.abs(np.bincount(part[1]) - expected) <= 1)
