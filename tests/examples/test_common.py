import argparse
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_linformer.layers.sequence_projection import CAUSAL_PROJECTION_KINDS
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from tests.testing import import_example
from tests.testing import optimizer_options


def test_projection_choices_are_the_package_kinds():
    common = import_example("common")
    assert common.PROJECTION_KINDS == PROJECTION_KINDS
    assert common.CAUSAL_PROJECTION_KINDS == CAUSAL_PROJECTION_KINDS


def regression_problem():
    """A one-unit Dense model and one batch of data."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    return model, np.ones((2, 3), "float32"), np.full((2, 1), 5.0, "float32")


def test_gradient_accumulation_updates_once_per_that_many_batches():
    common = import_example("common")
    args = optimizer_options(["--gradient-accumulation", "2", "--warmup", "0"])
    model, x, y = regression_problem()
    model.compile(optimizer=common.make_optimizer(8, args), loss="mse")
    before = model.get_weights()
    model.train_on_batch(x, y)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    model.train_on_batch(x, y)
    assert not np.allclose(before[0], model.get_weights()[0])


def test_ema_momentum_ends_training_on_the_moving_average():
    common = import_example("common")
    argv = ["--warmup", "0", "--epochs", "2"]
    model, x, y = regression_problem()
    model.compile(
        optimizer=common.make_optimizer(2, optimizer_options(argv)), loss="mse"
    )
    steps = []
    for _ in range(2):
        model.train_on_batch(x, y)
        steps.append(model.get_weights())
    averaged, x, y = regression_problem()
    averaged.compile(
        optimizer=common.make_optimizer(
            2, optimizer_options(argv + ["--ema-momentum", "0.25"])
        ),
        loss="mse",
    )
    averaged.fit(x, y, epochs=2, batch_size=2, verbose=0)
    # The average starts at the first step's weights, then moves 3/4 of
    # the way to the second's.
    for first, second, final in zip(*steps, averaged.get_weights()):
        np.testing.assert_allclose(final, 0.25 * first + 0.75 * second, 1e-6)
    assert not np.allclose(steps[1][0], averaged.get_weights()[0])


@pytest.mark.parametrize("value", ["0", "1", "1.5"])
def test_ema_momentum_must_be_between_zero_and_one(value, capsys):
    with pytest.raises(SystemExit):
        optimizer_options(["--ema-momentum", value])
    assert "--ema-momentum: must be in (0, 1)" in capsys.readouterr().err


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


@pytest.mark.parametrize(
    "script", ["pretraining", "text_classification", "text_generation"]
)
def test_scripts_keep_the_keras_policy_unless_asked(script, capsys):
    example = import_example(script)
    assert example.parse_args([]).dtype is None
    args = example.parse_args(["--dtype", "mixed_bfloat16"])
    assert args.dtype == "mixed_bfloat16"
    with pytest.raises(SystemExit):
        example.parse_args(["--dtype", "float16"])
    assert "invalid choice: 'float16'" in capsys.readouterr().err


def test_run_script_runs_in_the_dtype_policy_and_restores_it():
    common = import_example("common")
    before = keras.config.dtype_policy().name
    seen = []

    def run(args):
        seen.append(keras.config.dtype_policy().name)
        raise common.DataError("no text")

    args = argparse.Namespace(dtype="mixed_bfloat16")
    with pytest.raises(SystemExit, match="no text"):
        common.run_script(run, args)
    assert keras.config.dtype_policy().name == before == "float32"
    keras.config.set_dtype_policy("float16")
    try:
        with pytest.raises(SystemExit, match="no text"):
            common.run_script(run, argparse.Namespace(dtype=None))
    finally:
        keras.config.set_dtype_policy("float32")
    assert seen == ["mixed_bfloat16", "float16"]


# Allocates, fills and frees a 64 MB buffer 20 times; prints the page faults.
FAULTS_OF_REPEATED_BUFFERS = """
import ctypes, resource, sys
sys.path.insert(0, "examples")
if sys.argv[1] == "keep":
    import common
    common.keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    buffer = libc.malloc(2**26)
    ctypes.memset(buffer, 1, 2**26)
    libc.free(buffer)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's"
)
def test_kept_freed_memory_is_reused_without_page_faults():
    def faults(setting):
        result = subprocess.run(
            [sys.executable, "-c", FAULTS_OF_REPEATED_BUFFERS, setting],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return int(result.stdout)

    # glibc's default maps every buffer afresh, so each fill faults its pages
    # in; kept, only the first does (20x fewer, whatever the page size).
    assert faults("keep") * 10 < faults("default")
