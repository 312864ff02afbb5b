import keras
import numpy as np
import pytest

from keras_linformer.layers import LinformerDecoderBlock
from keras_linformer.layers import SequenceProjection
from tests.testing import run_layer_test
from tests.testing import run_serialization_test
from tests.testing import to_numpy

BATCH, LENGTH, ENCODER_LENGTH, DIM = 2, 14, 10, 8
HEADS, N, K, C = 2, 16, 4, 3


def block_kwargs(**overrides):
    kwargs = dict(
        intermediate_dim=16,
        num_heads=HEADS,
        sequence_length=N,
        projected_length=K,
        chunk_size=C,
        normalize_first=True,
    )
    kwargs.update(overrides)
    return kwargs


def random_inputs(seed=0, length=LENGTH):
    return (
        np.random.default_rng(seed)
        .normal(size=(BATCH, length, DIM))
        .astype("float32")
    )


def test_standard_layer_checks():
    run_layer_test(
        LinformerDecoderBlock,
        block_kwargs(normalize_first=False, dropout=0.1),
        {"decoder_sequence": random_inputs()},
        (BATCH, LENGTH, DIM),
    )


def test_standard_layer_checks_with_cross_attention():
    run_layer_test(
        LinformerDecoderBlock,
        block_kwargs(),
        {
            "decoder_sequence": random_inputs(),
            "encoder_sequence": random_inputs(1, ENCODER_LENGTH),
        },
        (BATCH, LENGTH, DIM),
        # The cross-attention key bias shifts every slot's logit alike.
        untrained_weights=("cross_attention/key/bias",),
    )


@pytest.mark.parametrize("with_encoder", [False, True])
def test_no_future_leakage(with_encoder):
    block = LinformerDecoderBlock(**block_kwargs())
    x = random_inputs()
    encoder = (random_inputs(1, ENCODER_LENGTH),) if with_encoder else ()
    output = to_numpy(block(x, *encoder))
    for t in (C - 1, 7, 10):
        changed = x.copy()
        changed[:, t + 1 :] = random_inputs(seed=t)[:, t + 1 :]
        changed_output = to_numpy(block(changed, *encoder))
        np.testing.assert_allclose(
            changed_output[:, : t + 1], output[:, : t + 1], rtol=0, atol=1e-6
        )
        later = np.abs(changed_output[:, t + 1 :] - output[:, t + 1 :])
        assert later.max() > 1e-3


@pytest.mark.parametrize("with_encoder", [False, True])
def test_decoding_matches_parallel_pass(with_encoder):
    block = LinformerDecoderBlock(**block_kwargs())
    x = random_inputs(seed=2)
    encoder = (random_inputs(1, ENCODER_LENGTH),) if with_encoder else ()
    expected = to_numpy(block(x, *encoder))
    cache = np.zeros(block.cache_shape(BATCH), "float32")
    outputs = []
    for index in range(LENGTH):
        output, cache = block(
            x[:, index : index + 1],
            *encoder,
            self_attention_cache=cache,
            self_attention_cache_update_index=index,
        )
        outputs.append(to_numpy(output))
    np.testing.assert_allclose(
        np.concatenate(outputs, axis=1), expected, atol=1e-4
    )
    assert tuple(cache.shape) == (BATCH, 2, K + C, HEADS, DIM // HEADS)


@pytest.mark.parametrize("projection", ["linear", "mean_pool"])
def test_cross_attention_cache_gives_the_same_decoding(projection):
    block = LinformerDecoderBlock(**block_kwargs(projection=projection))
    x = random_inputs(seed=2)
    encoder = random_inputs(1, ENCODER_LENGTH)
    # Padding leaves some cross-attention slots empty.
    encoder_mask = np.arange(ENCODER_LENGTH) < np.array([[ENCODER_LENGTH], [3]])
    block(x, encoder, encoder_padding_mask=encoder_mask)
    cross_cache = block.compute_cross_attention_cache(encoder, encoder_mask)
    caches = [np.zeros(block.cache_shape(BATCH), "float32")] * 2
    for index in range(6):
        token = x[:, index : index + 1]
        without, caches[0] = block(
            token,
            encoder,
            encoder_padding_mask=encoder_mask,
            self_attention_cache=caches[0],
            self_attention_cache_update_index=index,
        )
        # The cache stands for the encoder and its mask.
        cached, caches[1] = block(
            token,
            encoder * 0.0,
            cross_attention_cache=cross_cache,
            self_attention_cache=caches[1],
            self_attention_cache_update_index=index,
        )
        np.testing.assert_allclose(
            to_numpy(cached), to_numpy(without), atol=1e-6
        )


def test_prefill_passes_the_self_attention_state_through():
    block = LinformerDecoderBlock(**block_kwargs())
    x = random_inputs(seed=3)
    lengths = np.array([C + 1, LENGTH])
    mask = np.arange(LENGTH) < lengths[:, None]
    outputs, state = block(
        x, decoder_padding_mask=mask, return_self_attention_cache=True
    )
    cache = np.zeros(block.cache_shape(BATCH), "float32")
    for index in range(C + 1):
        _, cache = block(
            x[:, index : index + 1],
            self_attention_cache=cache,
            self_attention_cache_update_index=index,
        )
    np.testing.assert_allclose(
        to_numpy(state)[0], to_numpy(cache)[0], atol=1e-4
    )
    np.testing.assert_allclose(
        to_numpy(outputs)[1], to_numpy(block(x))[1], atol=1e-6
    )


def test_padding_mask_hides_trailing_padding():
    block = LinformerDecoderBlock(**block_kwargs())
    x = random_inputs()
    mask = np.ones((BATCH, LENGTH), bool)
    mask[:, 9:] = False
    garbage = np.where(mask[..., None], x, 50.0).astype("float32")
    padded = to_numpy(block(garbage, decoder_padding_mask=mask))
    short = to_numpy(block(x[:, :9]))
    np.testing.assert_allclose(padded[:, :9], short, atol=1e-5)


def test_non_causal_call_sees_the_future():
    block = LinformerDecoderBlock(**block_kwargs())
    x = random_inputs()
    changed = x.copy()
    changed[:, -1] = random_inputs(seed=5)[:, -1]
    first = to_numpy(block(x, use_causal_mask=False))[:, 0]
    changed_first = to_numpy(block(changed, use_causal_mask=False))[:, 0]
    assert np.abs(first - changed_first).max() > 1e-4


def test_layerwise_shared_projection_is_saved_once(tmp_path):
    projection = SequenceProjection(N, K)
    inputs = keras.Input((LENGTH, DIM))
    x = inputs
    for _ in range(2):
        x = LinformerDecoderBlock(
            **block_kwargs(
                projection=projection,
                sequence_length=None,
                projected_length=None,
            )
        )(x)
    model = keras.Model(inputs, x)
    run_serialization_test(model.layers[1])
    path = str(tmp_path / "shared.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    first, second = (
        layer._self_attention_layer.key_projection
        for layer in restored.layers[1:]
    )
    assert first is second
    x = random_inputs()
    np.testing.assert_allclose(
        to_numpy(restored(x)), to_numpy(model(x)), atol=1e-6
    )


def test_saved_model_round_trip(tmp_path):
    inputs = keras.Input((LENGTH, DIM))
    model = keras.Model(inputs, LinformerDecoderBlock(**block_kwargs())(inputs))
    x = random_inputs()
    path = str(tmp_path / "decoder.keras")
    model.save(path)
    revived = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(revived(x)), to_numpy(model(x)), atol=1e-6
    )


def test_bad_arguments_and_calls_are_rejected():
    with pytest.raises(ValueError, match="Causal Linformer attention supports"):
        LinformerDecoderBlock(**block_kwargs(projection="max_pool"))
    with pytest.raises(ValueError, match="intermediate_dim"):
        LinformerDecoderBlock(**block_kwargs(intermediate_dim=0))
    block = LinformerDecoderBlock(**block_kwargs())
    block(random_inputs())
    with pytest.raises(ValueError, match="without cross-attention"):
        block(random_inputs(), random_inputs(1, ENCODER_LENGTH))
    with pytest.raises(ValueError, match="without cross-attention"):
        block.compute_cross_attention_cache(random_inputs(1, ENCODER_LENGTH))
    cache = np.zeros(block.cache_shape(BATCH), "float32")
    with pytest.raises(ValueError, match="use_causal_mask=False"):
        block(
            random_inputs(length=1),
            self_attention_cache=cache,
            self_attention_cache_update_index=0,
            use_causal_mask=False,
        )
    unsized = LinformerDecoderBlock(**block_kwargs(sequence_length=None))
    with pytest.raises(ValueError, match="sequence_length"):
        unsized.build((None, None, DIM))
