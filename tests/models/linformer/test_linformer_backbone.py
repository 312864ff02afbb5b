import os

import keras
import keras_hub
import numpy as np
import pytest

from keras_linformer.layers import SequenceProjection
from keras_linformer.models import LinformerBackbone
from keras_linformer.models.backbone_utils import PARAMETER_SHARING
from tests.testing import compiled
from tests.testing import compiled_call_errors
from tests.testing import run_serialization_test
from tests.testing import to_numpy

VOCAB, N, K, HIDDEN = 20, 16, 4, 8


def backbone_kwargs(**overrides):
    kwargs = dict(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=HIDDEN,
        intermediate_dim=16,
        max_sequence_length=N,
        projected_length=K,
        dropout=0.0,
    )
    kwargs.update(overrides)
    return kwargs


def inputs(batch=2, length=N, real=(N, 5)):
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, VOCAB, size=(batch, length)).astype("int32")
    padding_mask = (np.arange(length) < np.array(real)[:, None]).astype(
        "int32"
    )
    return {"token_ids": token_ids * padding_mask, "padding_mask": padding_mask}


def projection_kernels(backbone):
    return [w for w in backbone.weights if "projection" in w.path]


def test_output_shape_and_shorter_sequences():
    backbone = LinformerBackbone(**backbone_kwargs())
    assert tuple(backbone(inputs()).shape) == (2, N, HIDDEN)
    assert tuple(backbone(inputs(length=10, real=(10, 3))).shape) == (
        2,
        10,
        HIDDEN,
    )


def test_longer_input_raises_naming_both_lengths():
    backbone = LinformerBackbone(**backbone_kwargs())
    longer = inputs(length=N + 4, real=(N + 4, 5))
    message = rf"\({N + 4}\).*`max_sequence_length` \({N}\)"
    with pytest.raises(ValueError, match=message):
        backbone(longer)
    call = compiled(
        lambda token_ids, padding_mask: backbone(
            {"token_ids": token_ids, "padding_mask": padding_mask}
        ),
        *inputs().values(),
    )
    with pytest.raises(compiled_call_errors(), match=message):
        to_numpy(call(*longer.values()))


def test_padding_does_not_change_real_positions():
    backbone = LinformerBackbone(**backbone_kwargs())
    short = inputs(batch=1, length=6, real=(6,))
    padded = {
        key: np.pad(value, [(0, 0), (0, N - 6)])
        for key, value in short.items()
    }
    np.testing.assert_allclose(
        to_numpy(backbone(short)),
        to_numpy(backbone(padded))[:, :6],
        atol=1e-5,
    )


@pytest.mark.parametrize("sharing", PARAMETER_SHARING)
def test_every_sharing_level_runs_and_round_trips(sharing):
    backbone = LinformerBackbone(**backbone_kwargs(parameter_sharing=sharing))
    output = to_numpy(backbone(inputs()))
    assert np.isfinite(output).all()
    run_serialization_test(backbone)
    revived = LinformerBackbone.from_config(backbone.get_config())
    revived.set_weights(backbone.get_weights())
    np.testing.assert_allclose(
        to_numpy(revived(inputs())), output, atol=1e-6
    )


@pytest.mark.parametrize(
    "sharing, kernels_per_layer",
    [("none", 2), ("headwise", 2), ("key_value", 1)],
)
def test_sharing_levels_hold_fewer_projections(sharing, kernels_per_layer):
    backbone = LinformerBackbone(**backbone_kwargs(parameter_sharing=sharing))
    kernels = projection_kernels(backbone)
    assert len(kernels) == 2 * kernels_per_layer
    if sharing == "none":
        assert all(tuple(k.shape) == (2, N, K) for k in kernels)


def test_layerwise_sharing_stores_one_projection(tmp_path):
    backbone = LinformerBackbone(**backbone_kwargs(parameter_sharing="layerwise"))
    assert isinstance(backbone.shared_projection, SequenceProjection)
    for block in backbone.transformer_layers:
        attention = block._self_attention_layer
        assert attention._key_projection is backbone.shared_projection
        assert attention._value_projection is backbone.shared_projection
    kernels = projection_kernels(backbone)
    assert [tuple(k.shape) for k in kernels] == [(N, K)]
    headwise = LinformerBackbone(**backbone_kwargs())
    assert (
        headwise.count_params() - backbone.count_params() == 3 * N * K
    )
    # Saved once: the weights file round-trips into a fresh backbone.
    path = str(tmp_path / "layerwise.weights.h5")
    backbone.save_weights(path)
    revived = LinformerBackbone(**backbone_kwargs(parameter_sharing="layerwise"))
    revived.load_weights(path)
    np.testing.assert_allclose(
        to_numpy(revived(inputs())), to_numpy(backbone(inputs())), atol=1e-6
    )


def test_nonuniform_projected_length():
    backbone = LinformerBackbone(**backbone_kwargs(projected_length=[2, 8]))
    shapes = [tuple(k.shape) for k in projection_kernels(backbone)]
    assert shapes == [(N, 2), (N, 2), (N, 8), (N, 8)]
    assert tuple(backbone(inputs()).shape) == (2, N, HIDDEN)
    run_serialization_test(backbone)


@pytest.mark.parametrize("projection", ["mean_pool", "max_pool", "conv"])
def test_other_projections(projection):
    backbone = LinformerBackbone(**backbone_kwargs(projection=projection))
    assert np.isfinite(to_numpy(backbone(inputs()))).all()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_layers=0), "num_layers"),
        (dict(hidden_dim=9), "divisible"),
        (dict(projection="random"), "projection"),
        (dict(parameter_sharing="all"), "parameter_sharing"),
        (dict(projected_length=[4]), "one value per layer"),
        (dict(projected_length=[4, 0]), "projected_length"),
        (
            dict(parameter_sharing="layerwise", projected_length=[2, 4]),
            "same k",
        ),
        (dict(projected_length=32), "must not exceed"),
    ],
)
def test_invalid_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        LinformerBackbone(**backbone_kwargs(**overrides))


def test_trains_on_token_ids():
    backbone = LinformerBackbone(**backbone_kwargs())
    model = keras.Sequential([backbone, keras.layers.GlobalAveragePooling1D()])
    model.compile(optimizer="adam", loss="mse")
    before = [to_numpy(w) for w in backbone.trainable_weights]
    model.fit(inputs(), np.zeros((2, HIDDEN)), epochs=1, verbose=0)
    changed = [
        not np.allclose(b, to_numpy(w))
        for b, w in zip(before, backbone.trainable_weights)
    ]
    assert sum(changed) > len(changed) // 2


def test_config_saved_with_sequence_length_loads():
    # A config as version 0.1.0 wrote it, before `max_sequence_length`.
    config = {
        "name": "linformer_backbone",
        "trainable": True,
        "vocabulary_size": VOCAB,
        "num_layers": 1,
        "num_heads": 2,
        "hidden_dim": HIDDEN,
        "intermediate_dim": 16,
        "sequence_length": N,
        "projected_length": K,
        "projection": "linear",
        "parameter_sharing": "headwise",
        "dropout": 0.0,
    }
    backbone = LinformerBackbone.from_config(config)
    assert backbone.max_sequence_length == N
    saved = backbone.get_config()
    assert saved["max_sequence_length"] == N
    assert "sequence_length" not in saved
    with pytest.raises(ValueError, match="both `sequence_length`"):
        LinformerBackbone.from_config({**config, "max_sequence_length": N})


def test_preset_saved_by_version_0_1_0_loads():
    preset = os.path.join(
        os.path.dirname(__file__), "saved_at_0_1_0", "text_classifier_preset"
    )
    classifier = keras_hub.models.TextClassifier.from_preset(preset)
    assert classifier.backbone.max_sequence_length == 8
    np.testing.assert_allclose(
        classifier.predict(["the quick brown fox", "the lazy dog"], verbose=0),
        np.load(os.path.join(preset, "expected_logits.npy")),
        atol=1e-5,
    )
