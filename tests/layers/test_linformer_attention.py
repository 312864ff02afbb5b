import gc
import os
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from keras_linformer import backend_utils
from keras_linformer.backend_utils import keras_mask
from keras_linformer.layers import LinformerAttention
from keras_linformer.layers import SequenceProjection
from keras_linformer.layers._attention_step import split_queries
from keras_linformer.layers._key_value_projection import PARAMETER_SHARING
from keras_linformer.layers.sequence_projection import PARAMETER_FREE_KINDS
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from tests.testing import MIXED_PRECISION_POLICIES
from tests.testing import compiled
from tests.testing import compiled_call_errors
from tests.testing import functional_model
from tests.testing import import_example
from tests.testing import input_gradients
from tests.testing import run_layer_test
from tests.testing import run_mixed_precision_test
from tests.testing import to_numpy

BATCH, LENGTH, QUERY_LENGTH, DIM = 2, 12, 5, 8
HEADS, KEY_DIM, N, K = 2, 4, 16, 4
# The key bias adds the same q . b_k to the logits of every slot, and softmax
# ignores such shifts, so it gets no gradient (as in MultiHeadAttention).
UNTRAINED = ("key/bias",)


def attention_kwargs(**overrides):
    kwargs = dict(
        num_heads=HEADS, key_dim=KEY_DIM, sequence_length=N, projected_length=K
    )
    kwargs.update(overrides)
    return kwargs


def random_inputs(seed=0, length=LENGTH, dim=DIM):
    return (
        np.random.default_rng(seed)
        .normal(size=(BATCH, length, dim))
        .astype("float32")
    )


def padding_mask(length=LENGTH):
    """Row 0: trailing padding. Row 1: padding scattered among real tokens."""
    mask = np.ones((BATCH, length), dtype=bool)
    mask[0, 8:] = False
    mask[1, [1, 4, 5, 10]] = False
    return mask


def with_garbage_at_padding(x, mask, seed=1):
    garbage = np.random.default_rng(seed).normal(size=x.shape) * 100
    return np.where(mask[..., None], x, garbage).astype("float32")


# Standard layer checks (config, build, symbolic, eager, a fit step that
# reaches every trainable weight).


@pytest.mark.parametrize(
    "projection, sharing",
    [
        ("linear", "none"),
        ("linear", "headwise"),
        ("linear", "key_value"),
        ("conv", "none"),
        ("conv", "key_value"),
        ("mean_pool", "headwise"),
        ("max_pool", "headwise"),
    ],
)
def test_self_attention_layer_checks_and_gradients(projection, sharing):
    run_layer_test(
        LinformerAttention,
        attention_kwargs(projection=projection, parameter_sharing=sharing),
        {
            "query": random_inputs(),
            "value": random_inputs(),
            "value_mask": padding_mask(),
        },
        expected_output_shape=(BATCH, LENGTH, DIM),
        untrained_weights=UNTRAINED,
    )


def test_cross_attention_with_separate_key_and_other_sizes():
    query = random_inputs(seed=2, length=QUERY_LENGTH, dim=6)
    run_layer_test(
        LinformerAttention,
        attention_kwargs(value_dim=3, parameter_sharing="none"),
        {
            "query": query,
            "value": random_inputs(seed=3),
            "key": random_inputs(seed=4, dim=5),
            "key_mask": padding_mask(),
            "value_mask": padding_mask(),
        },
        expected_output_shape=(BATCH, QUERY_LENGTH, 6),
        untrained_weights=UNTRAINED,
    )


@pytest.mark.parametrize(
    "output_shape, expected", [(10, (10,)), ((3, 2), (3, 2))]
)
def test_output_shape_sets_the_trailing_dimensions(output_shape, expected):
    layer = LinformerAttention(**attention_kwargs(output_shape=output_shape))
    x = random_inputs()
    assert layer(x, x).shape == (BATCH, LENGTH) + expected
    symbolic = keras.Input(batch_shape=(BATCH, LENGTH, DIM))
    assert layer(symbolic, symbolic).shape == (BATCH, LENGTH) + expected
    assert layer.get_config()["output_shape"] == expected


def test_return_attention_scores_over_the_projected_slots():
    layer = LinformerAttention(**attention_kwargs(projection="mean_pool"))
    query = random_inputs(length=QUERY_LENGTH)
    value = random_inputs(seed=1)
    output, scores = layer(
        query, value, value_mask=padding_mask(), return_attention_scores=True
    )
    assert output.shape == (BATCH, QUERY_LENGTH, DIM)
    assert scores.shape == (BATCH, HEADS, QUERY_LENGTH, K)
    scores = ops.convert_to_numpy(scores)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-6)
    # The output equals the fast path's.
    fast = layer(query, value, value_mask=padding_mask())
    np.testing.assert_allclose(to_numpy(output), to_numpy(fast), atol=1e-6)

    symbolic_query = keras.Input(batch_shape=(BATCH, QUERY_LENGTH, DIM))
    symbolic_value = keras.Input(batch_shape=(BATCH, LENGTH, DIM))
    _, symbolic_scores = layer(
        symbolic_query, symbolic_value, return_attention_scores=True
    )
    assert symbolic_scores.shape == (BATCH, HEADS, QUERY_LENGTH, K)


def test_query_blocks_give_the_same_outputs_scores_and_gradients(
    monkeypatch,
):
    layer = LinformerAttention(**attention_kwargs(projection="mean_pool"))
    query = random_inputs(length=QUERY_LENGTH)
    value = random_inputs(seed=1)
    mask = padding_mask()

    def attend(q, v):
        return layer(q, v, value_mask=mask, return_attention_scores=True)

    def output(q, v):
        return attend(q, v)[0]

    whole = [to_numpy(x) for x in attend(query, value)]
    whole_gradients = input_gradients(output, query, value)
    # Blocks of 2 queries: 2 + 2 + 1 of the 5.
    blocks = split_queries(ops.ones((1, 5, 2, 3)), 2)
    assert [block.shape[1] for block in blocks] == [2, 2, 1]
    requests = []
    monkeypatch.setattr(
        backend_utils,
        "attention_query_block",
        lambda *args: requests.append(args) or 2,
    )
    blocked = [to_numpy(x) for x in attend(query, value)]
    blocked_gradients = input_gradients(output, query, value)
    assert requests
    for expected, actual in zip(
        whole + list(whole_gradients), blocked + list(blocked_gradients)
    ):
        np.testing.assert_allclose(actual, expected, atol=1e-6)


@pytest.mark.parametrize("policy", MIXED_PRECISION_POLICIES)
@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_mixed_precision(projection, policy):
    run_mixed_precision_test(
        LinformerAttention,
        attention_kwargs(projection=projection, parameter_sharing="none"),
        {
            "query": random_inputs(),
            "value": random_inputs(seed=1),
            "value_mask": padding_mask(),
        },
        policy,
    )


@pytest.mark.parametrize("sharing", PARAMETER_SHARING)
@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_int8_quantized_model_matches_float(projection, sharing, monkeypatch):
    # Keras collects garbage after replacing each kernel, seconds in a test
    # process full of objects, and nothing here needs the memory back.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    x = random_inputs()
    inputs = keras.Input(shape=(LENGTH, DIM))
    layer = LinformerAttention(
        **attention_kwargs(projection=projection, parameter_sharing=sharing)
    )
    model = keras.Model(inputs, layer(inputs, inputs))
    expected = to_numpy(model(x))
    with warnings.catch_warnings():
        # Layers without weights to quantize say so.
        warnings.simplefilter("ignore")
        model.quantize("int8")
    assert layer.key_dense.quantization_mode == "int8"
    np.testing.assert_allclose(to_numpy(model(x)), expected, atol=0.1)


# Exactness: with k = n and identity projections, Linformer attention is
# multi-head attention.


def set_identity(projection):
    """Makes a SequenceProjection with k = n the identity map."""
    if projection.kind == "linear":
        identity = np.eye(projection.sequence_length, dtype="float32")
    else:  # conv with window 1: one weight per channel (and head).
        identity = np.ones(projection.kernel.shape, dtype="float32")
    if projection.per_head and projection.kind == "linear":
        identity = np.tile(identity, (projection.num_heads, 1, 1))
    projection.kernel.assign(identity)


def multi_head_attention_like(layer, query, value, key=None):
    mha = keras.layers.MultiHeadAttention(
        num_heads=HEADS, key_dim=KEY_DIM, dtype=layer.dtype_policy
    )
    mha(query, value, key)
    for name in ("_query_dense", "_key_dense", "_value_dense", "_output_dense"):
        getattr(mha, name).set_weights(getattr(layer, name).get_weights())
    return mha


def reference_attention(layer, query, value, mask):
    """Eq. 7 of the paper with NumPy, head by head, for the linear kind:
    `softmax(Q_i (E_i X W_k,i + b_k,i)^T / sqrt(d)) (F_i X W_v,i + b_v,i)`,
    padded positions zeroed before the projection."""
    weights = lambda dense: [to_numpy(w) for w in dense.weights]  # noqa: E731
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = map(
        weights,
        (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense),
    )
    e, f = (to_numpy(p.kernel) for p in (layer.key_projection, layer.value_projection))
    if not layer.key_projection.per_head:
        e, f = np.stack([e] * HEADS), np.stack([f] * HEADS)
    value = np.where(mask[..., None], value, 0.0)
    length = value.shape[1]
    output = np.zeros(query.shape[:2] + (DIM,))
    for h in range(HEADS):
        q = query @ wq[:, h] + bq[h]
        k = np.einsum("sk,bsc->bkc", e[h, :length], value) @ wk[:, h] + bk[h]
        v = np.einsum("sk,bsc->bkc", f[h, :length], value) @ wv[:, h] + bv[h]
        logits = np.einsum("btd,bkd->btk", q, k) / np.sqrt(KEY_DIM)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        output += np.einsum("btk,bkd->btd", probs, v) @ wo[h]
    return output + bo


@pytest.mark.parametrize(
    "sharing", PARAMETER_SHARING + ("layerwise", "layerwise per head")
)
def test_linear_attention_matches_the_papers_equation(sharing):
    query = random_inputs(length=QUERY_LENGTH)
    value = random_inputs(seed=1)
    if sharing.startswith("layerwise"):
        heads = HEADS if sharing.endswith("per head") else None
        overrides = dict(
            projection=SequenceProjection(N, K, num_heads=heads),
            sequence_length=None,
            projected_length=None,
        )
    else:
        overrides = dict(parameter_sharing=sharing)
    layer = LinformerAttention(
        **attention_kwargs(bias_initializer="random_normal", **overrides)
    )
    layer(query, value)
    mask = padding_mask()
    np.testing.assert_allclose(
        to_numpy(layer(query, value, value_mask=mask)),
        reference_attention(layer, query, value, mask),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "projection, sharing, masked",
    [
        ("linear", "headwise", False),
        ("linear", "none", False),
        ("conv", "headwise", True),
        ("conv", "none", True),
        ("mean_pool", "headwise", True),
        ("max_pool", "headwise", True),
    ],
)
def test_identity_projection_equals_multi_head_attention(
    projection, sharing, masked
):
    query = random_inputs(length=QUERY_LENGTH)
    value = random_inputs(seed=1)
    layer = LinformerAttention(
        **attention_kwargs(
            sequence_length=LENGTH,
            projected_length=LENGTH,
            projection=projection,
            parameter_sharing=sharing,
            bias_initializer="random_normal",
        )
    )
    layer(query, value)
    for projection_layer in (layer.key_projection, layer.value_projection):
        if projection_layer.weights:
            set_identity(projection_layer)
    mha = multi_head_attention_like(layer, query, value)
    mask = padding_mask() if masked else None
    np.testing.assert_allclose(
        to_numpy(layer(query, value, value_mask=mask)),
        to_numpy(mha(query, value, value_mask=mask)),
        atol=1e-5,
    )


def test_adaptive_mean_pool_equals_multi_head_attention_up_to_k_real_keys():
    # Row 0 has 8 real keys, row 1 has 8 among padding, with k = 8 < n = 16:
    # one slot per real key, so nothing is compressed.
    query = random_inputs(length=QUERY_LENGTH)
    value, mask = random_inputs(seed=1), padding_mask()
    layer = LinformerAttention(
        **attention_kwargs(
            projected_length=8,
            projection="adaptive_mean_pool",
            bias_initializer="random_normal",
        )
    )
    layer(query, value)
    mha = multi_head_attention_like(layer, query, value)
    np.testing.assert_allclose(
        to_numpy(layer(query, value, value_mask=mask)),
        to_numpy(mha(query, value, value_mask=mask)),
        atol=1e-5,
    )
    # Longer rows are compressed: the outputs now differ.
    assert not np.allclose(
        to_numpy(layer(query, value)), to_numpy(mha(query, value)), atol=1e-3
    )


def test_adaptive_cross_attention_with_a_key_of_other_size():
    # Keys and values of different sizes share the one parameter-free
    # projection; with at most k real keys it still equals MHA.
    query = random_inputs(length=QUERY_LENGTH)
    value, key = random_inputs(seed=1), random_inputs(seed=2, dim=5)
    mask = padding_mask()
    layer = LinformerAttention(
        **attention_kwargs(projected_length=8, projection="adaptive_mean_pool")
    )
    layer(query, value, key)
    mha = multi_head_attention_like(layer, query, value, key)
    np.testing.assert_allclose(
        to_numpy(layer(query, value, key, value_mask=mask)),
        to_numpy(mha(query, value, key, value_mask=mask)),
        atol=1e-5,
    )


@pytest.mark.parametrize("sharing", PARAMETER_SHARING)
@pytest.mark.parametrize("projection", PARAMETER_FREE_KINDS)
def test_parameter_free_self_attention_pools_its_input_once(
    projection, sharing, monkeypatch
):
    layer = LinformerAttention(
        **attention_kwargs(projection=projection, parameter_sharing=sharing)
    )
    assert layer.key_projection is layer.value_projection
    x, mask = random_inputs(), padding_mask()
    expected = to_numpy(layer(x, x, value_mask=mask))
    calls = []
    original_call = SequenceProjection.call

    def counted_call(self, *args, **kwargs):
        calls.append(self.name)
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(SequenceProjection, "call", counted_call)
    np.testing.assert_allclose(
        to_numpy(layer(x, x, value_mask=mask)), expected, atol=1e-6
    )
    assert calls == ["key_projection"]


def test_model_saved_with_a_separate_value_pooling_layer_loads():
    # Saved at 208b37d, when parameter-free kinds still made a second, empty
    # `value_projection` layer: mean_pool, adaptive_mean_pool and causal
    # mean_pool attention.
    folder = os.path.join(
        os.path.dirname(__file__), "saved_with_separate_value_pooling"
    )
    model = keras.saving.load_model(os.path.join(folder, "attention.keras"))
    inputs = [
        np.load(os.path.join(folder, f"{name}.npy"))
        for name in ("inputs", "mask")
    ]
    np.testing.assert_allclose(
        to_numpy(model(inputs)),
        np.load(os.path.join(folder, "expected.npy")),
        atol=1e-5,
    )
    for layer in model.layers[2:]:
        assert layer.key_projection is layer.value_projection


@pytest.mark.parametrize("sharing", PARAMETER_SHARING)
def test_identity_linear_projection_equals_multi_head_attention_with_padding(
    sharing,
):
    # An identity E puts no weight of a padded position's slot on any real
    # position: that slot is empty and masked, as MHA masks the key.
    x, mask = random_inputs(), padding_mask()
    layer = LinformerAttention(
        **attention_kwargs(
            sequence_length=LENGTH,
            projected_length=LENGTH,
            parameter_sharing=sharing,
            bias_initializer="random_normal",
        )
    )
    layer(x, x)
    set_identity(layer.key_projection)
    set_identity(layer.value_projection)
    mha = multi_head_attention_like(layer, x, x)
    np.testing.assert_allclose(
        to_numpy(layer(x, x, value_mask=mask))[mask],
        to_numpy(mha(x, x, value_mask=mask))[mask],
        atol=1e-5,
    )
    mask[0] = False
    output = to_numpy(layer(x, x, value_mask=mask))
    assert np.all(np.isfinite(output))


def test_identity_projection_has_multi_head_attention_gradients():
    query = random_inputs(length=QUERY_LENGTH)
    value = random_inputs(seed=1)
    layer = LinformerAttention(
        **attention_kwargs(
            sequence_length=LENGTH,
            projected_length=LENGTH,
            bias_initializer="random_normal",
        )
    )
    layer(query, value)
    set_identity(layer.key_projection)
    set_identity(layer.value_projection)
    mha = multi_head_attention_like(layer, query, value)
    # Weighting the outputs makes the softmax's gradient matter: the sum of
    # each row of attention weights is 1, whatever the logits.
    weights = random_inputs(seed=2, length=QUERY_LENGTH)
    for linformer_gradient, mha_gradient in zip(
        input_gradients(lambda q, v: ops.multiply(layer(q, v), weights), query, value),
        input_gradients(lambda q, v: ops.multiply(mha(q, v), weights), query, value),
    ):
        np.testing.assert_allclose(linformer_gradient, mha_gradient, atol=1e-5)


def test_keras_mask_is_honoured_like_multi_head_attention():
    tokens = np.array([[3, 5, 2, 7, 0, 0], [4, 0, 1, 1, 6, 0]])
    embedding = keras.layers.Embedding(8, DIM, mask_zero=True)
    layer = LinformerAttention(
        **attention_kwargs(
            sequence_length=6, projected_length=6, projection="mean_pool"
        )
    )
    x = embedding(tokens)
    output = layer(x, x)
    # MultiHeadAttention removes the Keras mask from its inputs: embed anew.
    x = embedding(tokens)
    mha = multi_head_attention_like(layer, x, x)
    x = embedding(tokens)
    expected = mha(x, x)
    real = tokens != 0
    np.testing.assert_allclose(
        to_numpy(output)[real], to_numpy(expected)[real], atol=1e-5
    )
    np.testing.assert_array_equal(to_numpy(keras_mask(output)), real)


def identity_mean_pool_and_multi_head_attention(x):
    """A LinformerAttention with k = n windows of one position, which is
    multi-head attention, and the MultiHeadAttention with its weights."""
    layer = LinformerAttention(
        **attention_kwargs(
            sequence_length=LENGTH,
            projected_length=LENGTH,
            projection="mean_pool",
            bias_initializer="random_normal",
        )
    )
    layer(x, x)
    return layer, multi_head_attention_like(layer, x, x)


def test_explicit_key_mask_in_self_attention_acts_like_multi_head_attention():
    x, mask = random_inputs(), padding_mask()
    layer, mha = identity_mean_pool_and_multi_head_attention(x)
    np.testing.assert_allclose(
        to_numpy(layer(x, x, key_mask=mask)),
        to_numpy(mha(x, x, key_mask=mask)),
        atol=1e-5,
    )


def test_query_mask_frees_masked_queries_rows_of_the_attention_mask():
    x, mask = random_inputs(), padding_mask()
    layer, mha = identity_mean_pool_and_multi_head_attention(x)
    # Per-key rows for real queries; masked queries' rows admit everything.
    attention_mask = mask[:, None, :] | ~mask[:, :, None]
    with pytest.raises(ValueError, match="differ between queries"):
        layer(x, x, attention_mask=attention_mask)
    output = layer(x, x, query_mask=mask, attention_mask=attention_mask)
    # MultiHeadAttention reads the query mask from the Keras mask only, and
    # combines it with the attention mask so.
    expected = mha(x, x, attention_mask=attention_mask & mask[:, :, None])
    np.testing.assert_allclose(
        to_numpy(output)[mask], to_numpy(expected)[mask], atol=1e-5
    )


# Padding never leaks into the outputs at real positions.


@pytest.mark.parametrize("sharing", PARAMETER_SHARING)
@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_padding_content_does_not_change_self_attention(projection, sharing):
    layer = LinformerAttention(
        **attention_kwargs(projection=projection, parameter_sharing=sharing)
    )
    x, mask = random_inputs(), padding_mask()
    noisy = with_garbage_at_padding(x, mask)
    clean_output = to_numpy(layer(x, x, value_mask=mask))
    noisy_output = to_numpy(layer(noisy, noisy, value_mask=mask))
    np.testing.assert_allclose(
        noisy_output[mask], clean_output[mask], atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("sharing", PARAMETER_SHARING)
@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_padding_content_does_not_change_cross_attention(projection, sharing):
    layer = LinformerAttention(
        **attention_kwargs(projection=projection, parameter_sharing=sharing)
    )
    query = random_inputs(seed=5, length=QUERY_LENGTH)
    key, value, mask = random_inputs(seed=6), random_inputs(), padding_mask()
    clean_output = layer(query, value, key, value_mask=mask, key_mask=mask)
    noisy_output = layer(
        query,
        with_garbage_at_padding(value, mask),
        with_garbage_at_padding(key, mask, seed=2),
        value_mask=mask,
        key_mask=mask,
    )
    np.testing.assert_allclose(
        to_numpy(noisy_output), to_numpy(clean_output), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_appending_padding_does_not_change_outputs(projection):
    layer = LinformerAttention(**attention_kwargs(projection=projection))
    x, mask = random_inputs(), padding_mask()
    longer = np.concatenate([x, random_inputs(seed=7, length=N - LENGTH)], 1)
    longer_mask = np.pad(mask, [(0, 0), (0, N - LENGTH)])
    output = to_numpy(layer(x, x, value_mask=mask))
    longer_output = to_numpy(layer(longer, longer, value_mask=longer_mask))
    np.testing.assert_allclose(
        longer_output[:, :LENGTH][mask], output[mask], atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_fully_padded_rows_give_finite_outputs(projection):
    layer = LinformerAttention(**attention_kwargs(projection=projection))
    x, mask = random_inputs(), padding_mask()
    mask[0] = False
    output, scores = layer(x, x, value_mask=mask, return_attention_scores=True)
    assert np.all(np.isfinite(to_numpy(output)))
    assert np.all(np.isfinite(to_numpy(scores)))
    fast_output = layer(x, x, value_mask=mask)
    assert np.all(np.isfinite(to_numpy(fast_output)))


@pytest.mark.parametrize("policy", MIXED_PRECISION_POLICIES)
@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_fully_padded_rows_are_finite_in_mixed_precision(projection, policy):
    layer = LinformerAttention(
        **attention_kwargs(projection=projection), dtype=policy
    )
    x, mask = random_inputs(), padding_mask()
    mask[0] = False
    output = ops.cast(layer(x, x, value_mask=mask), "float32")
    assert np.all(np.isfinite(to_numpy(output)))


# Attention masks survive compression only as per-key masks.


@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_per_key_attention_mask_equals_value_mask(projection):
    layer = LinformerAttention(**attention_kwargs(projection=projection))
    query = random_inputs(seed=3, length=QUERY_LENGTH)
    value, mask = random_inputs(), padding_mask()
    attention_mask = np.repeat(mask[:, None, :], QUERY_LENGTH, axis=1)
    np.testing.assert_allclose(
        to_numpy(layer(query, value, attention_mask=attention_mask)),
        to_numpy(layer(query, value, value_mask=mask)),
        atol=1e-6,
    )


def test_query_by_key_outer_product_mask_equals_value_mask():
    layer = LinformerAttention(**attention_kwargs(projection="mean_pool"))
    x, mask = random_inputs(), padding_mask()
    attention_mask = mask[:, :, None] & mask[:, None, :]
    output = to_numpy(layer(x, x, attention_mask=attention_mask))
    expected = to_numpy(layer(x, x, value_mask=mask))
    np.testing.assert_allclose(output[mask], expected[mask], atol=1e-6)


def test_attention_mask_that_differs_between_queries_raises():
    layer = LinformerAttention(**attention_kwargs())
    x = random_inputs()
    causal = np.tril(np.ones((BATCH, LENGTH, LENGTH), dtype=bool))
    with pytest.raises(ValueError, match="differ between queries"):
        layer(x, x, attention_mask=causal)
    per_key = np.ones((BATCH, LENGTH, LENGTH), dtype=bool)
    call = compiled(lambda x, mask: layer(x, x, attention_mask=mask), x, causal)
    call(x, per_key)
    with pytest.raises(compiled_call_errors(), match="differ between queries"):
        to_numpy(call(x, causal))


def test_predict_with_a_mask_that_differs_between_queries_gives_no_numbers():
    x = random_inputs()
    causal = np.tril(np.ones((BATCH, LENGTH, LENGTH), dtype=bool))
    per_key = np.ones((BATCH, LENGTH, LENGTH), dtype=bool)
    per_key[1, :, 5:] = False

    def model(jit_compile):
        # A model per failing call: Keras's JAX trainer leaves the variables
        # of a model whose `predict` raised unusable.
        x_input = keras.Input((LENGTH, DIM))
        mask_input = keras.Input((LENGTH, LENGTH), dtype="bool")
        attention = LinformerAttention(**attention_kwargs())
        outputs = attention(x_input, x_input, attention_mask=mask_input)
        model = keras.Model([x_input, mask_input], outputs)
        model.compile(jit_compile=jit_compile)
        return model, attention

    plain, attention = model(jit_compile=False)
    np.testing.assert_allclose(
        plain.predict([x, per_key], verbose=0),
        to_numpy(attention(x, x, value_mask=per_key[:, 0])),
        atol=1e-5,
    )
    with pytest.raises(compiled_call_errors(), match="differ between queries"):
        plain.predict([x, causal], verbose=0)
    # TensorFlow's XLA (`compile()`'s choice on a GPU) cannot check the
    # mask's values: there any mask not known while tracing is refused.
    compiled_model, _ = model(jit_compile=keras.config.backend() != "torch")
    xla = keras.config.backend() == "tensorflow"
    with pytest.raises(
        compiled_call_errors(),
        match="jit_compile" if xla else "differ between queries",
    ):
        compiled_model.predict([x, causal], verbose=0)


# Lengths and arguments.


def test_any_length_up_to_sequence_length_works():
    layer = LinformerAttention(**attention_kwargs())
    for length in (1, 7, N):
        x = random_inputs(length=length)
        assert layer(x, x).shape == (BATCH, length, DIM)


def test_value_longer_than_sequence_length_raises_naming_both():
    too_long = random_inputs(length=N + 3)
    message = rf"\({N + 3}\).*\({N}\)"
    with pytest.raises(ValueError, match=message):
        LinformerAttention(**attention_kwargs())(too_long, too_long)
    built = LinformerAttention(**attention_kwargs())
    x = random_inputs()
    built(x, x)
    with pytest.raises(ValueError, match=message):
        built(x, too_long)
    symbolic = keras.Input(shape=(N + 3, DIM))
    with pytest.raises(ValueError, match=message):
        LinformerAttention(**attention_kwargs())(symbolic, symbolic)


@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_longer_value_raises_naming_both_in_compiled_calls(projection):
    layer = LinformerAttention(**attention_kwargs(projection=projection))
    x = random_inputs()
    call = compiled(lambda x: layer(x, x), x)
    with pytest.raises(compiled_call_errors(), match=rf"\({N + 3}\).*\({N}\)"):
        to_numpy(call(random_inputs(length=N + 3)))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_heads": 0}, "`num_heads` must be a positive integer"),
        ({"key_dim": 0}, "`key_dim` must be a positive integer"),
        ({"value_dim": -1}, "`value_dim` must be a positive integer"),
        ({"projected_length": 0}, "`projected_length` must be a positive"),
        ({"projected_length": N + 1}, "must not exceed `sequence_length`"),
        ({"sequence_length": None}, "needs `sequence_length`"),
        ({"projection": "fourier"}, "`projection` must be one of"),
        ({"parameter_sharing": "layerwise"}, "`parameter_sharing` must be"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\)"),
        ({"dropout": -0.1}, r"`dropout` must be in \[0, 1\)"),
        ({"output_shape": 0}, "`output_shape` must be a positive int"),
        ({"output_shape": (4, -2)}, "`output_shape` must be a positive int"),
    ],
)
def test_invalid_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        LinformerAttention(**attention_kwargs(**overrides))


def test_shared_projection_mismatches_raise():
    shared = SequenceProjection(sequence_length=N, projected_length=K)
    with pytest.raises(ValueError, match="disagrees with the shared"):
        LinformerAttention(
            num_heads=HEADS, key_dim=KEY_DIM, sequence_length=2 * N,
            projection=shared,
        )
    per_head = SequenceProjection(N, K, num_heads=HEADS + 1)
    with pytest.raises(ValueError, match=f"each of {HEADS + 1} heads"):
        LinformerAttention(
            num_heads=HEADS, key_dim=KEY_DIM, projection=per_head
        )


def test_key_value_sharing_with_different_key_and_value_sizes_raises():
    layer = LinformerAttention(**attention_kwargs(parameter_sharing="key_value"))
    with pytest.raises(ValueError, match="key_value"):
        layer(random_inputs(), random_inputs(), random_inputs(dim=DIM + 1))


def test_key_and_value_of_different_lengths_raise():
    layer = LinformerAttention(**attention_kwargs())
    with pytest.raises(ValueError, match="same length"):
        layer(random_inputs(), random_inputs(), random_inputs(length=LENGTH - 1))


def test_built_layer_rejects_key_and_value_of_other_sizes():
    layer = LinformerAttention(**attention_kwargs())
    query = random_inputs(length=QUERY_LENGTH)
    layer(query, random_inputs(), random_inputs())
    with pytest.raises(ValueError, match=rf"\({BATCH}, {LENGTH}, {DIM}\).*"
                       rf"\({BATCH}, {LENGTH - 1}, {DIM}\)"):
        layer(query, random_inputs(), random_inputs(length=LENGTH - 1))
    with pytest.raises(ValueError, match=f"`key` with {DIM} features.*"
                       f"key_shape=\\({BATCH}, {LENGTH}, {DIM + 1}\\)"):
        layer(query, random_inputs(), random_inputs(dim=DIM + 1))


def test_per_head_conv_projection_reused_at_another_head_size_raises():
    shared = SequenceProjection(N, K, kind="conv", num_heads=HEADS)
    x = random_inputs()
    first = LinformerAttention(
        num_heads=HEADS, key_dim=KEY_DIM, projection=shared
    )
    first(x, x)
    other = LinformerAttention(
        num_heads=HEADS, key_dim=KEY_DIM + 1, projection=shared
    )
    with pytest.raises(ValueError, match=f"for {KEY_DIM} channels"):
        other(x, x)


# Serialization and layerwise sharing.


def test_keras_file_round_trip_gives_the_same_outputs(tmp_path):
    data = {"query": random_inputs(), "value": random_inputs(seed=1)}
    model = functional_model(
        LinformerAttention(
            **attention_kwargs(projection="conv", parameter_sharing="none")
        ),
        data,
    )
    path = str(tmp_path / "attention.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(restored(data)), to_numpy(model(data)), atol=1e-6
    )


def test_layerwise_shared_projection_is_saved_once(tmp_path):
    shared = SequenceProjection(sequence_length=N, projected_length=K)
    inputs = keras.Input(shape=(LENGTH, DIM))
    first = LinformerAttention(num_heads=HEADS, key_dim=KEY_DIM, projection=shared)
    second = LinformerAttention(num_heads=HEADS, key_dim=KEY_DIM, projection=shared)
    outputs = second(first(inputs, inputs), inputs)
    model = keras.Model(inputs, outputs)
    assert first.key_projection is second.value_projection
    path = str(tmp_path / "shared.keras")
    model.save(path)
    restored = keras.saving.load_model(path)

    first, second = restored.layers[1:3]
    assert first.key_projection is first.value_projection
    assert first.key_projection is second.key_projection
    kernels = {
        id(v) for v in restored.weights if "sequence_projection" in v.path
    }
    assert len(kernels) == 1
    x = random_inputs()
    np.testing.assert_allclose(
        to_numpy(restored(x)), to_numpy(model(x)), atol=1e-6
    )


# Training: the first position learns to read a marked position anywhere in
# a sequence of 1024.


def test_fit_learns_long_range_retrieval():
    retrieval = import_example("long_range_retrieval")
    num_classes = 4
    _, accuracy = retrieval.train(
        sequence_length=1024, num_classes=num_classes, epochs=2, verbose=0
    )
    assert accuracy >= 0.9, f"accuracy {accuracy}, chance {1 / num_classes}"
