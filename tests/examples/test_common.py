import argparse

import keras
import numpy as np
import pytest

from keras_linformer.layers.sequence_projection import CAUSAL_PROJECTION_KINDS
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from tests.testing import import_example


def test_projection_choices_are_the_package_kinds():
    common = import_example("common")
    assert common.PROJECTION_KINDS == PROJECTION_KINDS
    assert common.CAUSAL_PROJECTION_KINDS == CAUSAL_PROJECTION_KINDS


def test_gradient_accumulation_updates_once_per_that_many_batches():
    common = import_example("common")
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2)
    common.add_optimizer_arguments(parser, learning_rate=0.1)
    args = parser.parse_args(["--gradient-accumulation", "2", "--warmup", "0"])
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=common.make_optimizer(8, args), loss="mse")
    x, y = np.ones((2, 3), "float32"), np.full((2, 1), 5.0, "float32")
    before = model.get_weights()
    model.train_on_batch(x, y)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    model.train_on_batch(x, y)
    assert not np.allclose(before[0], model.get_weights()[0])


def test_gradient_accumulation_must_be_positive():
    common = import_example("common")
    parser = argparse.ArgumentParser()
    common.add_optimizer_arguments(parser, learning_rate=0.1)
    with pytest.raises(SystemExit):
        parser.parse_args(["--gradient-accumulation", "0"])


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], 2e-3),
        (["--backbone", "minilm"], 1e-4),
        (["--learning-rate", "0.5"], 0.5),
    ],
)
def test_learning_rate_default_is_small_for_a_backbone(argv, expected):
    common = import_example("common")
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone")
    common.add_optimizer_arguments(parser)
    args = parser.parse_args(argv)
    common.resolve_learning_rate(args)
    assert args.learning_rate == expected


@pytest.mark.parametrize("script", ["pretraining", "text_classification"])
def test_scripts_with_a_backbone_default_to_the_pretrained_rate(script):
    args = import_example(script).parse_args(["--backbone", "minilm"])
    assert args.learning_rate == 1e-4
