import keras
import numpy as np
import pytest

import keras_linformer
from tests.testing import import_example
from tests.testing import optimizer_options

# `optimizer_options`' peak learning rate.
LEARNING_RATE = 0.1


def first_step_sizes(layer_decay_argv):
    """The largest change of each variable of a two-block classifier after
    one step, by variable path. Adam's first step moves every weight with a
    nonzero gradient by the learning rate, so the largest change is the
    variable's learning rate."""
    keras.utils.set_random_seed(0)
    backbone = keras_linformer.LinformerBackbone(
        vocabulary_size=20,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=6,
        projected_length=3,
    )
    model = keras_linformer.LinformerTextClassifier(
        backbone, num_classes=2, preprocessor=None
    )
    args = optimizer_options(
        ["--warmup", "0", "--weight-decay", "0"] + layer_decay_argv
    )
    model.compile(
        optimizer=import_example("common").make_optimizer(2, args),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = {
        "token_ids": np.array([[2, 5, 7, 9, 3, 0], [2, 4, 8, 3, 0, 0]]),
        "padding_mask": np.array([[1] * 5 + [0], [1] * 4 + [0] * 2], "bool"),
    }
    y = np.array([0, 1])
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    model.train_on_batch(x, y)
    return {
        v.path: np.abs(keras.ops.convert_to_numpy(v) - before[v.path]).max()
        for v in model.trainable_variables
    }


# One variable per number of blocks below the head, each with a nonzero
# gradient wherever it moves (not so the key bias: softmax ignores it).
LEVELS_BELOW_HEAD = {
    "position_embedding/embeddings": 3,
    "transformer_layer_0/self_attention_layer/query/kernel": 2,
    "transformer_layer_1/feedforward_output_dense/kernel": 1,
    "logits/kernel": 0,
}


@pytest.mark.parametrize("decay", [0.5, None])
def test_layer_decay_scales_each_blocks_learning_rate(decay):
    steps = first_step_sizes(
        [] if decay is None else ["--layer-decay", str(decay)]
    )
    for path, levels in LEVELS_BELOW_HEAD.items():
        [step] = [step for name, step in steps.items() if name.endswith(path)]
        np.testing.assert_allclose(
            step,
            LEARNING_RATE * (decay or 1.0) ** levels,
            rtol=1e-3,
            err_msg=path,
        )


def test_layer_depth_counts_blocks_from_the_embeddings():
    layer_decay = import_example("layer_decay")
    assert layer_decay.layer_depth("position_embedding/embeddings", 6) == 0
    assert layer_decay.layer_depth("transformer_layer_0/x/kernel", 6) == 1
    assert layer_decay.layer_depth("transformer_layer_5/x/kernel", 6) == 6
    assert layer_decay.layer_depth("logits/kernel", 6) == 7


@pytest.mark.parametrize("value", ["0", "1.5"])
def test_layer_decay_must_be_in_zero_one(value, capsys):
    with pytest.raises(SystemExit):
        optimizer_options(["--layer-decay", value])
    assert "--layer-decay: must be in (0, 1]" in capsys.readouterr().err


def test_layer_decay_optimizer_rejects_a_factor_above_one():
    layer_decay = import_example("layer_decay")
    with pytest.raises(ValueError, match="`layer_decay` must be in"):
        layer_decay.LayerDecayAdamW(layer_decay=2.0)


def test_layer_decay_names_a_model_without_transformer_blocks():
    layer_decay = import_example("layer_decay")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = layer_decay.LayerDecayAdamW(layer_decay=0.8)
    with pytest.raises(ValueError, match="transformer_layer_<i>"):
        optimizer.build(model.trainable_variables)


def test_layer_decay_optimizer_config_round_trips():
    layer_decay = import_example("layer_decay")
    optimizer = layer_decay.LayerDecayAdamW(layer_decay=0.8, weight_decay=0.1)
    restored = layer_decay.LayerDecayAdamW.from_config(optimizer.get_config())
    assert restored.layer_decay == 0.8
    assert restored.weight_decay == 0.1
