import numpy as np
import pytest

from keras_linformer.models import LinformerCausalBackbone
from keras_linformer.models.backbone_utils import PARAMETER_SHARING
from tests.testing import CAUSAL_C as C
from tests.testing import CAUSAL_HEADS as HEADS
from tests.testing import CAUSAL_K as K
from tests.testing import CAUSAL_LAYERS as LAYERS
from tests.testing import causal_backbone_kwargs
from tests.testing import run_serialization_test
from tests.testing import to_numpy

VOCAB, N, HIDDEN = 20, 16, 8


def backbone_kwargs(**overrides):
    return {**causal_backbone_kwargs(VOCAB, N, HIDDEN), **overrides}


def token_inputs(length=N, seed=0):
    token_ids = (
        np.random.default_rng(seed)
        .integers(1, VOCAB, size=(2, length))
        .astype("int32")
    )
    return {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}


@pytest.mark.parametrize(
    "projection, sharing",
    [("linear", sharing) for sharing in PARAMETER_SHARING]
    + [("mean_pool", "headwise")],
)
def test_no_future_leakage_and_round_trip(projection, sharing):
    backbone = LinformerCausalBackbone(
        **backbone_kwargs(projection=projection, parameter_sharing=sharing)
    )
    x = token_inputs()
    output = to_numpy(backbone(x))
    t = 7
    changed = {key: value.copy() for key, value in x.items()}
    changed["token_ids"][:, t + 1 :] = token_inputs(seed=1)["token_ids"][
        :, t + 1 :
    ]
    np.testing.assert_allclose(
        to_numpy(backbone(changed))[:, : t + 1],
        output[:, : t + 1],
        rtol=0,
        atol=1e-6,
    )
    run_serialization_test(backbone)
    revived = LinformerCausalBackbone.from_config(backbone.get_config())
    revived.set_weights(backbone.get_weights())
    np.testing.assert_allclose(to_numpy(revived(x)), output, atol=1e-6)


def test_layerwise_sharing_stores_one_projection():
    backbone = LinformerCausalBackbone(
        **backbone_kwargs(projection="linear", parameter_sharing="layerwise")
    )
    kernels = [w for w in backbone.weights if "projection" in w.path]
    assert len(kernels) == 1


def test_cache_shape_is_fixed():
    backbone = LinformerCausalBackbone(**backbone_kwargs())
    assert backbone.cache_shape(3) == (3, LAYERS, 2, K + C, HEADS, 4)
    default = LinformerCausalBackbone(**backbone_kwargs(chunk_size=None))
    assert default.cache_shape(1) == (1, LAYERS, 2, 2 * K, HEADS, 4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(projection="conv"), "Causal Linformer attention supports"),
        (dict(parameter_sharing="rowwise"), "parameter_sharing"),
        (dict(chunk_size=N + 1), "chunk_size"),
        (dict(projected_length=N + 1), "projected_length"),
        (dict(projected_length=0), "`projected_length` must be"),
        (dict(projected_length=[4, 8]), "`projected_length` must be"),
        (dict(hidden_dim=9), "divisible"),
        (dict(num_layers=0), "num_layers"),
    ],
)
def test_bad_arguments_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        LinformerCausalBackbone(**backbone_kwargs(**overrides))


def test_config_saved_with_sequence_length_loads():
    # A config as version 0.1.0 wrote it, before `max_sequence_length`.
    config = {
        "name": "linformer_causal_backbone",
        "trainable": True,
        "vocabulary_size": VOCAB,
        "num_layers": 1,
        "num_heads": HEADS,
        "hidden_dim": HIDDEN,
        "intermediate_dim": 16,
        "sequence_length": N,
        "projected_length": K,
        "projection": "linear",
        "parameter_sharing": "headwise",
        "dropout": 0.0,
        "chunk_size": None,
    }
    backbone = LinformerCausalBackbone.from_config(config)
    assert backbone.max_sequence_length == N
    assert backbone.chunk_size == K
    saved = backbone.get_config()
    assert saved["max_sequence_length"] == N
    assert "sequence_length" not in saved
