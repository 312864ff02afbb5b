import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_linformer.layers import CausalLinformerAttention
from keras_linformer.layers import LinformerAttention
from keras_linformer.layers import SequenceProjection
from tests.testing import MIXED_PRECISION_POLICIES
from tests.testing import compiled
from tests.testing import compiled_call_errors
from tests.testing import run_layer_test
from tests.testing import run_mixed_precision_test
from tests.testing import to_numpy

# 23 positions in chunks of 5: five chunks, the last one partial.
BATCH, LENGTH, DIM = 2, 23, 8
HEADS, KEY_DIM, N, K, C = 2, 4, 24, 6, 5
# The decoding state: keys and values of k summaries and of one chunk.
CACHE_SHAPE = (BATCH, 2, K + C, HEADS, KEY_DIM)

# Every supported projection at every sharing level; "layerwise" passes one
# SequenceProjection layer (as shared between layers).
PROJECTIONS_AND_SHARING = [
    (projection, sharing)
    for projection in ("linear", "mean_pool")
    for sharing in ("none", "headwise", "key_value", "layerwise")
]


def attention_kwargs(**overrides):
    """Arguments of a `LinformerAttention` of the sizes above."""
    kwargs = dict(
        num_heads=HEADS, key_dim=KEY_DIM, sequence_length=N, projected_length=K
    )
    kwargs.update(overrides)
    return kwargs


def causal_kwargs(projection="linear", sharing="headwise", **overrides):
    """Arguments of a `CausalLinformerAttention` in chunks of `C`."""
    kwargs = attention_kwargs(
        chunk_size=C,
        projection=projection,
        parameter_sharing=sharing,
    )
    if sharing == "layerwise":
        kwargs.update(
            projection=SequenceProjection(N, K, kind=projection),
            parameter_sharing="headwise",
            sequence_length=None,
            projected_length=None,
        )
    kwargs.update(overrides)
    return kwargs


def causal_layer(projection="linear", sharing="headwise", **overrides):
    return CausalLinformerAttention(
        **causal_kwargs(projection, sharing, **overrides)
    )


def random_inputs(seed=0, length=LENGTH):
    return (
        np.random.default_rng(seed)
        .normal(size=(BATCH, length, DIM))
        .astype("float32")
    )


def decode(layer, x):
    """Feeds `x` one position at a time through the decoding state."""
    cache = np.zeros(layer.cache_shape(BATCH), "float32")
    outputs = []
    for index in range(x.shape[1]):
        token = x[:, index : index + 1]
        output, cache = layer(
            token, token, cache=cache, cache_update_index=index
        )
        outputs.append(to_numpy(output))
    return np.concatenate(outputs, axis=1), cache


@pytest.mark.parametrize("projection, sharing", PROJECTIONS_AND_SHARING)
def test_no_future_leakage(projection, sharing):
    layer = causal_layer(projection, sharing)
    x = random_inputs()
    output = to_numpy(layer(x, x))
    rng = np.random.default_rng(7)
    # Random cut points, plus the last position of a chunk and the first of
    # the next, so changes start on both sides of a chunk boundary.
    cuts = sorted(set(rng.integers(0, LENGTH - 1, size=3)) | {C - 1, 2 * C})
    for t in cuts:
        changed = x.copy()
        changed[:, t + 1 :] = rng.normal(size=changed[:, t + 1 :].shape)
        changed_output = to_numpy(layer(changed, changed))
        np.testing.assert_allclose(
            changed_output[:, : t + 1], output[:, : t + 1], rtol=0, atol=1e-6
        )
        # The change does reach later positions (the check is not vacuous).
        later = np.abs(changed_output[:, t + 1 :] - output[:, t + 1 :])
        assert later.max() > 1e-3


def test_plain_linformer_leaks_where_causal_does_not():
    x = random_inputs()
    changed = x.copy()
    changed[:, -1] += 1.0
    plain = LinformerAttention(**attention_kwargs())
    first = to_numpy(plain(x, x))[:, 0]
    assert np.abs(first - to_numpy(plain(changed, changed))[:, 0]).max() > 1e-4


@pytest.mark.parametrize("projection, sharing", PROJECTIONS_AND_SHARING)
def test_decoding_matches_parallel_pass(projection, sharing):
    layer = causal_layer(projection, sharing)
    x = random_inputs(seed=3)
    decoded, cache = decode(layer, x)
    np.testing.assert_allclose(decoded, to_numpy(layer(x, x)), atol=1e-4)
    assert tuple(cache.shape) == CACHE_SHAPE


# Prompt lengths around the chunk boundaries and across several chunks.
PROMPT_LENGTHS = np.array([1, C - 1, C, C + 1, 3 * C + 2])


def decode_rows(layer, x, lengths):
    """Each row's decoding state after its first `lengths` positions, fed
    one position at a time."""
    cache = np.zeros(layer.cache_shape(len(x)), "float32")
    states = np.zeros_like(cache)
    for index in range(max(lengths)):
        token = x[:, index : index + 1]
        _, cache = layer(token, token, cache=cache, cache_update_index=index)
        cache = to_numpy(cache)
        done = _expand_rows(lengths == index + 1, cache)
        states = np.where(done, cache, states)
    return states


def _expand_rows(rows, like):
    return rows.reshape((-1,) + (1,) * (like.ndim - 1))


@pytest.mark.parametrize("projection, sharing", PROJECTIONS_AND_SHARING)
def test_prefill_state_equals_step_by_step_decoding(projection, sharing):
    layer = causal_layer(projection, sharing)
    x = np.random.default_rng(4).normal(size=(5, LENGTH, DIM))
    x = x.astype("float32")
    # Right padding: each row's prompt first, garbage after it.
    mask = np.arange(LENGTH) < PROMPT_LENGTHS[:, None]
    garbage = np.where(mask[..., None], x, 50.0).astype("float32")
    outputs, state = layer(
        garbage, garbage, value_mask=mask, return_cache=True
    )
    state = to_numpy(state)
    assert state.shape == layer.cache_shape(5)
    np.testing.assert_allclose(
        state, decode_rows(layer, x, PROMPT_LENGTHS), atol=1e-4
    )
    full = to_numpy(layer(x, x))
    np.testing.assert_allclose(
        np.where(mask[..., None], to_numpy(outputs), 0.0),
        np.where(mask[..., None], full, 0.0),
        atol=1e-5,
    )
    # Decoding goes on from each row's own length (a per-row index).
    rows = np.arange(5)
    for step in range(2):
        index = PROMPT_LENGTHS + step
        token = x[rows, index][:, None]
        output, state = layer(
            token, token, cache=state, cache_update_index=index
        )
        np.testing.assert_allclose(
            to_numpy(output)[:, 0], full[rows, index], atol=1e-4
        )


def test_prefill_without_padding_mask_reads_every_position():
    layer = causal_layer()
    x = random_inputs(seed=6)
    _, state = layer(x, x, return_cache=True)
    np.testing.assert_allclose(
        to_numpy(state),
        decode_rows(layer, x, np.full(BATCH, LENGTH)),
        atol=1e-4,
    )


def test_cache_shape_does_not_grow():
    layer = causal_layer()
    _, short_cache = decode(layer, random_inputs(length=3))
    _, long_cache = decode(layer, random_inputs(length=N))
    assert tuple(short_cache.shape) == tuple(long_cache.shape)
    assert tuple(long_cache.shape) == CACHE_SHAPE


def test_use_causal_mask_false_runs_plain_attention_with_the_same_weights():
    causal = causal_layer()
    x = random_inputs()
    expected = to_numpy(causal(x, x))
    plain = LinformerAttention(**attention_kwargs())
    plain.build(x.shape, x.shape)
    plain.set_weights(causal.get_weights())
    np.testing.assert_allclose(
        to_numpy(causal(x, x, use_causal_mask=False)),
        to_numpy(plain(x, x)),
        atol=1e-6,
    )
    assert np.abs(to_numpy(plain(x, x)) - expected).max() > 1e-4
    with pytest.raises(ValueError, match="CausalLinformerAttention"):
        plain(x, x, use_causal_mask=True)


def test_trailing_padding_is_ignored():
    layer = causal_layer("mean_pool")
    x = random_inputs()
    mask = np.ones((BATCH, LENGTH), bool)
    mask[:, 17:] = False
    garbage = np.where(mask[..., None], x, 100.0).astype("float32")
    padded = to_numpy(layer(garbage, garbage, value_mask=mask))
    short = to_numpy(layer(x[:, :17], x[:, :17]))
    np.testing.assert_allclose(padded[:, :17], short, atol=1e-5)


def test_attention_scores_cover_summaries_and_chunk():
    layer = causal_layer()
    x = random_inputs()
    _, scores = layer(x, x, return_attention_scores=True)
    scores = to_numpy(scores)
    assert scores.shape == (BATCH, HEADS, LENGTH, K + C)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    # The first chunk has nothing to summarize; its first query sees itself.
    np.testing.assert_allclose(scores[:, :, :C, :K], 0.0, atol=1e-6)
    np.testing.assert_allclose(scores[:, :, 0, K], 1.0, atol=1e-6)


@pytest.mark.parametrize("projection", ["linear", "mean_pool"])
def test_standard_layer_checks(projection):
    x = random_inputs()
    run_layer_test(
        CausalLinformerAttention,
        causal_kwargs(projection, dropout=0.1),
        {"query": x, "value": x},
        (BATCH, LENGTH, DIM),
        # A mean adds the key bias to every slot alike: softmax ignores it.
        untrained_weights=("key/bias",) if projection == "mean_pool" else (),
    )


@pytest.mark.parametrize("policy", MIXED_PRECISION_POLICIES)
def test_mixed_precision(policy):
    x = random_inputs()
    run_mixed_precision_test(
        CausalLinformerAttention,
        causal_kwargs(),
        {"query": x, "value": x},
        policy,
    )


@pytest.mark.parametrize("policy", MIXED_PRECISION_POLICIES)
def test_mean_pool_summaries_of_large_values_are_exact_in_every_dtype_policy(
    policy,
):
    # Two windows of 32 positions, chunks of 4; every value is 4000, so a
    # window's sum (128,000) overflows float16 and a running bfloat16 sum
    # rounds. The state keeps the means: 4000 in both slots.
    layer = CausalLinformerAttention(
        num_heads=1, key_dim=1, sequence_length=64, projected_length=2,
        projection="mean_pool", chunk_size=4, dtype=policy,
    )
    x = np.ones((1, 64, 1), "float32")
    layer(x, x)
    layer.query_dense.kernel.assign(np.zeros((1, 1, 1)))
    layer.value_dense.kernel.assign(np.full((1, 1, 1), 4000.0))
    layer.output_dense.kernel.assign(np.ones((1, 1, 1)))
    for dense in (layer.query_dense, layer.key_dense, layer.value_dense):
        dense.bias.assign(np.zeros(dense.bias.shape))
    layer.output_dense.bias.assign(np.zeros((1,)))

    def value_summaries(state):
        return to_numpy(ops.cast(state, "float32"))[0, 1, :2, 0, 0]

    outputs, state = layer(x, x, return_cache=True)
    np.testing.assert_array_equal(value_summaries(state), 4000.0)
    np.testing.assert_allclose(
        to_numpy(ops.cast(outputs, "float32")), 4000.0, rtol=1e-2
    )
    state = np.zeros(layer.cache_shape(1), "float32")
    for index in range(64):
        output, state = layer(
            x[:, :1], x[:, :1], cache=state, cache_update_index=index
        )
        np.testing.assert_allclose(
            to_numpy(ops.cast(output, "float32")), 4000.0, rtol=1e-2
        )
    np.testing.assert_array_equal(value_summaries(state), 4000.0)


@pytest.mark.parametrize(
    "projection", ["max_pool", "conv", "adaptive_mean_pool"]
)
def test_projections_without_causal_form_are_rejected(projection):
    with pytest.raises(ValueError, match="Causal Linformer attention supports"):
        causal_layer(projection)
    shared = SequenceProjection(N, K, kind=projection)
    with pytest.raises(ValueError, match="Causal Linformer attention supports"):
        CausalLinformerAttention(
            num_heads=HEADS, key_dim=KEY_DIM, projection=shared
        )


@pytest.mark.parametrize("chunk_size", [0, N + 1, 2.5, True])
def test_bad_chunk_size_is_rejected(chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        causal_layer(chunk_size=chunk_size)


def test_bad_cached_calls_are_rejected():
    layer = causal_layer()
    x = random_inputs(length=2)
    cache = np.zeros(CACHE_SHAPE, "float32")
    with pytest.raises(ValueError, match="decodes one token"):
        layer(x, x, cache=cache, cache_update_index=0)
    with pytest.raises(ValueError, match="use_causal_mask=False"):
        layer(x[:, :1], x[:, :1], cache=cache, cache_update_index=0,
              use_causal_mask=False)
    with pytest.raises(ValueError, match="causal"):
        LinformerAttention.from_config(
            dict(layer.get_config(), causal="yes")
        )
    with pytest.raises(ValueError, match="same positions"):
        layer(random_inputs(length=4), random_inputs(length=6))
    with pytest.raises(ValueError, match="return_cache=True"):
        layer(x, x, return_cache=True, return_attention_scores=True)
    with pytest.raises(ValueError, match="return_cache=True"):
        layer(x, x, return_cache=True, use_causal_mask=False)


@pytest.mark.parametrize(
    "shape", [CACHE_SHAPE[:2] + (K + C + 1,) + CACHE_SHAPE[3:], (BATCH, K + C)]
)
def test_decoding_cache_of_the_wrong_shape_raises_naming_both(shape):
    layer = causal_layer()
    x = random_inputs(length=1)
    message = rf"{re.escape(str(CACHE_SHAPE))}.*{re.escape(str(shape))}"
    with pytest.raises(ValueError, match=message):
        layer(x, x, cache=np.zeros(shape, "float32"), cache_update_index=0)


def test_longer_sequence_raises_naming_both_lengths():
    layer = causal_layer()
    x, longer = random_inputs(), random_inputs(length=N + 2)
    message = rf"\({N + 2}\).*\({N}\)"
    with pytest.raises(ValueError, match=message):
        layer(longer, longer)
    call = compiled(lambda x: layer(x, x), x)
    with pytest.raises(compiled_call_errors(), match=message):
        to_numpy(call(longer))


def test_decoding_past_the_sequence_length_raises_naming_both():
    layer = causal_layer()
    x, cache = random_inputs(length=1), np.zeros(CACHE_SHAPE, "float32")
    message = rf"\({N}\).*\({N}\)"
    with pytest.raises(ValueError, match=message):
        layer(x, x, cache=cache, cache_update_index=N)
    call = compiled(
        lambda x, cache, index: layer(
            x, x, cache=cache, cache_update_index=index
        ),
        x, cache, np.int32(0),
        dynamic_length=False,
    )
    call(x, cache, np.int32(N - 1))
    with pytest.raises(compiled_call_errors(), match=message):
        to_numpy(call(x, cache, np.int32(N)))


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="TensorFlow's XLA only: jax.jit runs the check at run time "
    "(test_decoding_past_the_sequence_length_raises_naming_both)",
)
def test_decoding_under_xla_needs_a_known_position():
    import tensorflow as tf

    layer = causal_layer()
    x, cache = random_inputs(length=1), np.zeros(CACHE_SHAPE, "float32")
    layer(x, x, cache=cache, cache_update_index=0)
    # XLA compiles asserts to nothing: a position past n would decode.
    decode = tf.function(
        lambda x, cache, index: layer(
            x, x, cache=cache, cache_update_index=index
        ),
        jit_compile=True,
    )
    with pytest.raises(ValueError, match="cache_update_index.*jit_compile"):
        decode(x, cache, tf.constant(N))
    known = tf.function(
        lambda x, cache: layer(x, x, cache=cache, cache_update_index=N - 1),
        jit_compile=True,
    )
    output, _ = known(x, cache)
    np.testing.assert_allclose(
        to_numpy(output),
        to_numpy(layer(x, x, cache=cache, cache_update_index=N - 1)[0]),
        atol=1e-5,
    )


def test_lower_triangular_attention_mask_error_points_to_the_padding():
    layer = causal_layer()
    x = random_inputs()
    lower = np.tril(np.ones((BATCH, LENGTH, LENGTH), dtype=bool))
    with pytest.raises(ValueError, match="differ between queries") as error:
        layer(x, x, attention_mask=lower)
    assert "causal by itself" in str(error.value)
    assert "CausalLinformerAttention` for" not in str(error.value)
    assert "causal=True" not in str(error.value)


def test_config_keeps_causal_arguments():
    layer = causal_layer()
    config = layer.get_config()
    assert "causal" not in config and config["chunk_size"] == C
    assert CausalLinformerAttention.from_config(config).chunk_size == C
    assert causal_layer(chunk_size=None).chunk_size == K
    assert layer.cache_shape(BATCH) == CACHE_SHAPE


def test_configs_saved_with_causal_true_load_as_causal_attention():
    # What `LinformerAttention(..., causal=True).get_config()` saved before
    # causal attention became its own layer.
    saved = dict(causal_layer().get_config(), causal=True)
    layer = LinformerAttention.from_config(saved)
    assert type(layer) is CausalLinformerAttention
    assert layer.chunk_size == C
    revived = keras.saving.deserialize_keras_object(
        {
            "module": "keras_linformer.layers.linformer_attention",
            "class_name": "LinformerAttention",
            "config": saved,
            "registered_name": "keras_linformer>LinformerAttention",
        }
    )
    assert type(revived) is CausalLinformerAttention
    plain = LinformerAttention.from_config(
        dict(LinformerAttention(**attention_kwargs()).get_config(),
             causal=False, chunk_size=None)
    )
    assert type(plain) is LinformerAttention
