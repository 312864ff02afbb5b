import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_linformer.layers import SequenceProjection
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from tests.testing import MIXED_PRECISION_POLICIES
from tests.testing import run_layer_test
from tests.testing import run_mixed_precision_test
from tests.testing import to_numpy

BATCH, LENGTH, CHANNELS, HEADS, N, K = 2, 10, 3, 2, 16, 4
# (kind, num_heads): every kind shared by all heads, the learned ones per head.
VARIANTS = [(kind, None) for kind in PROJECTION_KINDS] + [
    ("linear", HEADS),
    ("conv", HEADS),
]
def random_inputs(seed=0, length=LENGTH, num_heads=None):
    """`(batch, length, channels)`, or with a heads axis for per-head ones."""
    heads = () if num_heads is None else (num_heads,)
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, length) + heads + (CHANNELS,)).astype(
        "float32"
    )


def feature_mask(mask, x):
    """The `(batch, length)` mask broadcastable against `x`."""
    return mask.reshape(mask.shape + (1,) * (x.ndim - 2))


def padding_mask(length=LENGTH):
    mask = np.ones((BATCH, length), dtype=bool)
    mask[0, 6:] = False
    mask[1, [0, 4, 5, 6, 7]] = False
    return mask


def reference_projection(layer, x, mask):
    """The projection written out with NumPy loops."""
    if layer.kind == "adaptive_mean_pool":
        return reference_adaptive_projection(x, mask)
    kernel = None if not layer.weights else to_numpy(layer.kernel)
    x = np.where(feature_mask(mask, x), x, 0.0)
    window = math.ceil(N / K)
    heads = (HEADS,) if layer.per_head else ()
    projected = np.zeros((BATCH, K) + heads + (CHANNELS,), dtype="float64")
    slot_mask = np.zeros((BATCH,) + heads + (K,), dtype=bool)
    for b in range(BATCH):
        for slot in range(K):
            positions = [
                p for p in range(slot * window, (slot + 1) * window)
                if p < LENGTH
            ]
            real = [p for p in positions if mask[b, p]]
            slot_mask[b, ..., slot] = bool(real)
            if layer.kind == "linear":
                # A linear slot holds the real positions its column weighs.
                weights = kernel[..., :LENGTH, slot][..., mask[b, :LENGTH]]
                slot_mask[b, ..., slot] = (weights != 0).any(-1)
                if layer.per_head:
                    projected[b, slot] = np.einsum(
                        "shc,hs->hc", x[b], kernel[:, :LENGTH, slot]
                    )
                else:
                    projected[b, slot] = x[b].T @ kernel[:LENGTH, slot]
            elif layer.kind == "mean_pool" and real:
                projected[b, slot] = x[b, real].mean(0)
            elif layer.kind == "max_pool" and real:
                projected[b, slot] = x[b, real].max(0)
            elif layer.kind == "conv":
                for offset, p in enumerate(positions):
                    projected[b, slot] += kernel[offset] * x[b, p]
    return projected, slot_mask


def reference_adaptive_projection(x, mask, k=K):
    """The i-th of a row's L real positions added to slot `floor(i k / L)`,
    each slot divided by its count: consecutive runs whose sizes differ by
    at most one, or one position per slot when L <= k."""
    projected = np.zeros((x.shape[0], k, x.shape[-1]), dtype="float64")
    slot_mask = np.zeros((x.shape[0], k), dtype=bool)
    for b in range(x.shape[0]):
        real = np.flatnonzero(mask[b])
        slots = np.arange(len(real)) * k // max(len(real), 1)
        for slot, position in zip(slots, real):
            projected[b, slot] += x[b, position]
        counts = np.bincount(slots, minlength=k)
        slot_mask[b] = counts > 0
        projected[b] /= np.maximum(counts, 1)[:, None]
    return projected, slot_mask


@pytest.mark.parametrize(
    "real_length, expected_counts",
    [
        (3, [1, 0, 1, 0, 0, 1, 0, 0]),
        (8, [1] * 8),
        (13, [2, 2, 1, 2, 2, 1, 2, 1]),
    ],
)
def test_adaptive_mean_pool_spreads_real_positions_over_the_slots(
    real_length, expected_counts
):
    layer = SequenceProjection(16, 8, kind="adaptive_mean_pool")
    x = np.ones((1, 16, 1), "float32") * np.arange(16, dtype="float32")[:, None]
    mask = np.arange(16)[None] < real_length
    projected, slot_mask = to_numpy(layer(x, mask=mask))
    expected_counts = np.array(expected_counts)
    np.testing.assert_array_equal(slot_mask[0], expected_counts > 0)
    # Slot means of consecutive positions 0, 1, ...: runs of those sizes.
    ends = np.cumsum(expected_counts)
    starts = ends - expected_counts
    means = np.where(expected_counts > 0, (starts + ends - 1) / 2, 0.0)
    np.testing.assert_allclose(projected[0, :, 0], means, atol=1e-6)


def test_adaptive_mean_pool_without_a_mask_uses_the_input_length():
    layer = SequenceProjection(N, K, kind="adaptive_mean_pool")
    x = random_inputs()
    expected = reference_adaptive_projection(x, np.ones(x.shape[:2], bool))
    projected, slot_mask = to_numpy(layer(x))
    np.testing.assert_allclose(projected, expected[0], atol=1e-5)
    assert slot_mask.all()


@pytest.mark.parametrize("kind, num_heads", VARIANTS)
def test_layer_checks_and_gradients(kind, num_heads):
    heads = () if num_heads is None else (num_heads,)
    run_layer_test(
        SequenceProjection,
        dict(sequence_length=N, projected_length=K, kind=kind, num_heads=num_heads),
        {"inputs": random_inputs(num_heads=num_heads), "mask": padding_mask()},
        expected_output_shape=(
            (BATCH, K) + heads + (CHANNELS,),
            (BATCH,) + heads + (K,),
        ),
        run_training_check=kind in ("linear", "conv"),
    )


@pytest.mark.parametrize("kind, num_heads", VARIANTS)
def test_matches_reference(kind, num_heads):
    layer = SequenceProjection(N, K, kind=kind, num_heads=num_heads)
    x, mask = random_inputs(num_heads=num_heads), padding_mask()
    projected, slot_mask = layer(x, mask=mask)
    expected, expected_slot_mask = reference_projection(layer, x, mask)
    np.testing.assert_allclose(to_numpy(projected), expected, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(slot_mask), expected_slot_mask)


@pytest.mark.parametrize("kind, num_heads", VARIANTS)
def test_padding_is_invisible(kind, num_heads):
    layer = SequenceProjection(N, K, kind=kind, num_heads=num_heads)
    x, mask = random_inputs(num_heads=num_heads), padding_mask()
    noise = 100 * random_inputs(seed=1, num_heads=num_heads)
    noisy = np.where(feature_mask(mask, x), x, noise)
    tail = random_inputs(seed=2, length=N - LENGTH, num_heads=num_heads)
    longer = np.concatenate([noisy, tail], 1)
    longer_mask = np.pad(mask, [(0, 0), (0, N - LENGTH)])
    expected = to_numpy(layer(x, mask=mask))
    for inputs, inputs_mask in ((noisy, mask), (longer, longer_mask)):
        output = to_numpy(layer(inputs, mask=inputs_mask))
        np.testing.assert_allclose(output[0], expected[0], atol=1e-6, rtol=0)
        if expected[1] is not None:
            np.testing.assert_array_equal(output[1], expected[1])


def test_max_pool_keeps_real_values_below_any_fill_value():
    layer = SequenceProjection(N, K, kind="max_pool")
    x = np.full((BATCH, LENGTH, CHANNELS), -1e6, "float32")
    mask = padding_mask()
    projected, slot_mask = to_numpy(layer(x, mask=mask))
    np.testing.assert_array_equal(projected[slot_mask], -1e6)
    np.testing.assert_array_equal(projected[~slot_mask], 0.0)


@pytest.mark.parametrize("policy", [None] + MIXED_PRECISION_POLICIES)
def test_mean_pool_of_large_values_is_exact_in_every_dtype_policy(policy):
    layer = SequenceProjection(64, 1, kind="mean_pool", dtype=policy)
    mask = np.ones((BATCH, 64), dtype=bool)
    mask[1, 40:] = False
    x = np.full((BATCH, 64, CHANNELS), 2000.0, "float32")
    projected = layer(x, mask=mask)[0]
    projected = to_numpy(ops.cast(projected, "float32"))
    np.testing.assert_array_equal(projected, 2000.0)


@pytest.mark.parametrize("policy", MIXED_PRECISION_POLICIES)
@pytest.mark.parametrize(
    "kind, num_heads", [(kind, None) for kind in PROJECTION_KINDS]
)
def test_mixed_precision(kind, num_heads, policy):
    run_mixed_precision_test(
        SequenceProjection,
        dict(
            sequence_length=N, projected_length=K, kind=kind,
            num_heads=num_heads,
        ),
        {"inputs": random_inputs(num_heads=num_heads), "mask": padding_mask()},
        policy,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sequence_length": 0, "projected_length": 1}, "`sequence_length` must"),
        ({"sequence_length": N, "projected_length": 0}, "`projected_length` must"),
        ({"sequence_length": N, "projected_length": 2.5}, "`projected_length` must"),
        ({"sequence_length": 4, "projected_length": 8}, "must not exceed"),
        ({"sequence_length": N, "projected_length": K, "kind": "fft"}, "`kind`"),
        ({"sequence_length": N, "projected_length": K, "num_heads": 0}, "`num_heads`"),
        (
            {"sequence_length": N, "projected_length": K, "kind": "mean_pool",
             "num_heads": 2},
            "no parameters to give each head",
        ),
        (
            {"sequence_length": 2**20, "projected_length": 2**12,
             "kind": "adaptive_mean_pool"},
            r"`sequence_length` \* `projected_length` <= 2147483647",
        ),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequenceProjection(**kwargs)


@pytest.mark.parametrize("num_heads", [None, HEADS])
def test_shared_conv_projection_at_another_channel_size_raises(num_heads):
    layer = SequenceProjection(N, K, kind="conv", num_heads=num_heads)
    layer(random_inputs(num_heads=num_heads))
    other = np.concatenate([random_inputs(num_heads=num_heads)] * 2, axis=-1)
    message = f"for {CHANNELS} channels.*{2 * CHANNELS}"
    with pytest.raises(ValueError, match=message):
        layer(other)


def test_inputs_of_wrong_rank_or_length_raise():
    with pytest.raises(ValueError, match="expects inputs of shape"):
        SequenceProjection(N, K).build((BATCH, LENGTH))
    with pytest.raises(ValueError, match=r"num_heads=2.*num_heads, channels"):
        SequenceProjection(N, K, num_heads=2).build((BATCH, LENGTH, CHANNELS))
    with pytest.raises(ValueError, match="expects inputs of shape"):
        SequenceProjection(N, K, num_heads=2).build((BATCH, LENGTH, 3, 4))
    with pytest.raises(ValueError, match=rf"\({N + 1}\).*\({N}\)"):
        SequenceProjection(N, K)(random_inputs(length=N + 1))


def test_symbolic_call_with_unknown_length():
    inputs = keras.Input(shape=(None, CHANNELS))
    projected, slot_mask = SequenceProjection(N, K, kind="max_pool")(inputs)
    assert projected.shape == (None, K, CHANNELS)
    assert slot_mask.shape == (None, K)


@pytest.mark.parametrize("num_heads", [None, HEADS])
def test_linear_slot_without_weight_on_real_positions_is_empty(num_heads):
    layer = SequenceProjection(LENGTH, LENGTH, num_heads=num_heads)
    x, mask = random_inputs(num_heads=num_heads), padding_mask()
    layer.build(x.shape)
    identity = np.eye(LENGTH, dtype="float32")
    layer.kernel.assign(np.broadcast_to(identity, layer.kernel.shape))
    _, slot_mask = layer(x, mask=mask)
    expected = mask if num_heads is None else np.stack([mask] * HEADS, 1)
    np.testing.assert_array_equal(to_numpy(slot_mask), expected)
    _, unmasked_slot_mask = layer(x)
    assert to_numpy(unmasked_slot_mask).all()
