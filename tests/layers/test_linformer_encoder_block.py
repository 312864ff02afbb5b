import inspect

import keras
import keras_hub
import numpy as np
import pytest

from keras_linformer.backend_utils import keras_mask
from keras_linformer.layers import LinformerEncoderBlock
from keras_linformer.layers import SequenceProjection
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from tests.testing import BACKEND
from tests.testing import BACKENDS
from tests.testing import MIXED_PRECISION_POLICIES
from tests.testing import finish_in_backend
from tests.testing import run_layer_test
from tests.testing import run_mixed_precision_test
from tests.testing import start_in_backend
from tests.testing import to_numpy

BATCH, LENGTH, DIM, HEADS, N, K = 2, 12, 8, 2, 16, 4
# See tests/layers/test_linformer_attention.py: softmax ignores the key bias.
UNTRAINED = ("key/bias",)


def block_kwargs(**overrides):
    kwargs = dict(
        intermediate_dim=16, num_heads=HEADS, sequence_length=N,
        projected_length=K,
    )
    kwargs.update(overrides)
    return kwargs


def random_inputs(seed=0, length=LENGTH):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, length, DIM)).astype("float32")


def padding_mask():
    mask = np.ones((BATCH, LENGTH), dtype=bool)
    mask[0, 8:] = False
    mask[1, [1, 4, 5, 10]] = False
    return mask


@pytest.mark.parametrize("normalize_first", [False, True])
def test_layer_checks_and_gradients(normalize_first):
    run_layer_test(
        LinformerEncoderBlock,
        block_kwargs(normalize_first=normalize_first, dropout=0.1),
        {"inputs": random_inputs(), "padding_mask": padding_mask()},
        expected_output_shape=(BATCH, LENGTH, DIM),
        untrained_weights=UNTRAINED,
    )


@pytest.mark.parametrize("policy", MIXED_PRECISION_POLICIES)
def test_mixed_precision(policy):
    run_mixed_precision_test(
        LinformerEncoderBlock,
        block_kwargs(),
        {"inputs": random_inputs(), "padding_mask": padding_mask()},
        policy,
    )


def test_accepts_every_transformer_encoder_argument():
    encoder_args = set(
        inspect.signature(keras_hub.layers.TransformerEncoder).parameters
    ) - {"kwargs"}
    block_args = set(inspect.signature(LinformerEncoderBlock).parameters)
    issue_args = {
        "intermediate_dim", "num_heads", "dropout", "activation",
        "layer_norm_epsilon", "kernel_initializer", "bias_initializer",
        "normalize_first",
    }
    assert issue_args <= encoder_args
    assert issue_args <= block_args
    block = LinformerEncoderBlock(
        intermediate_dim=16, num_heads=HEADS, dropout=0.1,
        activation="gelu", layer_norm_epsilon=1e-6,
        kernel_initializer="he_normal", bias_initializer="ones",
        normalize_first=True, projected_length=K,
    )
    x = random_inputs()
    assert block(x).shape == x.shape


def test_sequence_length_defaults_to_the_built_length():
    block = LinformerEncoderBlock(**block_kwargs(sequence_length=None))
    x = random_inputs()
    block(x)
    assert block._self_attention_layer.sequence_length == LENGTH


def test_return_attention_scores():
    block = LinformerEncoderBlock(**block_kwargs())
    output, scores = block(
        random_inputs(), padding_mask=padding_mask(),
        return_attention_scores=True,
    )
    assert output.shape == (BATCH, LENGTH, DIM)
    assert scores.shape == (BATCH, HEADS, LENGTH, K)


@pytest.mark.parametrize("projection", PROJECTION_KINDS)
def test_padding_content_does_not_change_outputs(projection):
    block = LinformerEncoderBlock(**block_kwargs(projection=projection))
    x, mask = random_inputs(), padding_mask()
    noisy = np.where(mask[..., None], x, 100 * random_inputs(seed=3))
    clean_output = to_numpy(block(x, padding_mask=mask))
    noisy_output = to_numpy(block(noisy, padding_mask=mask))
    np.testing.assert_allclose(
        noisy_output[mask], clean_output[mask], atol=1e-6, rtol=0
    )


def test_keras_mask_equals_padding_mask():
    tokens = np.array([[3, 5, 2, 7, 0, 0], [4, 0, 1, 1, 6, 0]])
    embedding = keras.layers.Embedding(8, DIM, mask_zero=True)
    block = LinformerEncoderBlock(**block_kwargs(sequence_length=6))
    x = embedding(tokens)
    output = block(x)
    np.testing.assert_array_equal(to_numpy(keras_mask(output)), tokens != 0)
    unmasked = keras.ops.convert_to_tensor(to_numpy(x))
    expected = block(unmasked, padding_mask=tokens != 0)
    real = tokens != 0
    np.testing.assert_allclose(
        to_numpy(output)[real], to_numpy(expected)[real], atol=1e-6
    )


def test_per_key_attention_mask_equals_padding_mask():
    block = LinformerEncoderBlock(**block_kwargs())
    x, mask = random_inputs(), padding_mask()
    attention_mask = mask[:, :, None] & mask[:, None, :]
    output = to_numpy(block(x, attention_mask=attention_mask))
    expected = to_numpy(block(x, padding_mask=mask))
    np.testing.assert_allclose(output[mask], expected[mask], atol=1e-6)
    causal = np.tril(np.ones((BATCH, LENGTH, LENGTH), dtype=bool))
    with pytest.raises(ValueError, match="differ between queries"):
        block(x, attention_mask=causal)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"intermediate_dim": 0}, "`intermediate_dim` must be a positive"),
        ({"num_heads": 0}, "`num_heads` must be a positive"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\)"),
    ],
)
def test_invalid_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        LinformerEncoderBlock(**block_kwargs(**overrides))


@pytest.mark.parametrize(
    "overrides, shape, message",
    [
        ({"num_heads": DIM + 1}, (None, LENGTH, DIM), "at least `num_heads`"),
        ({"sequence_length": None}, (None, None, DIM), "needs `sequence_length`"),
        ({"projected_length": None}, (None, LENGTH, DIM), "`projected_length`"),
        ({"projection": "fourier"}, (None, LENGTH, DIM), "`projection` must"),
        ({"parameter_sharing": "all"}, (None, LENGTH, DIM), "`parameter_sharing`"),
        ({}, (None, N + 1, DIM), rf"\({N + 1}\).*\({N}\)"),
    ],
)
def test_invalid_build_raises(overrides, shape, message):
    block = LinformerEncoderBlock(**block_kwargs(**overrides))
    with pytest.raises(ValueError, match=message):
        block.build(shape)


def test_keras_file_round_trip_gives_the_same_outputs(tmp_path):
    inputs = keras.Input(shape=(LENGTH, DIM))
    outputs = LinformerEncoderBlock(
        **block_kwargs(projection="conv", parameter_sharing="none")
    )(inputs)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "block.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    x = random_inputs()
    np.testing.assert_allclose(
        to_numpy(restored(x)), to_numpy(model(x)), atol=1e-6
    )


def shared_projection_model():
    """Two blocks sharing one projection (layerwise sharing)."""
    shared = SequenceProjection(sequence_length=N, projected_length=K)
    inputs = keras.Input(shape=(LENGTH, DIM))
    x = inputs
    for _ in range(2):
        x = LinformerEncoderBlock(
            intermediate_dim=16, num_heads=HEADS, projection=shared
        )(x)
    return keras.Model(inputs, x)


def projections_of(model):
    return [
        block._self_attention_layer.key_projection
        for block in model.layers
        if isinstance(block, LinformerEncoderBlock)
    ]


def test_layerwise_shared_projection_is_saved_once(tmp_path):
    model = shared_projection_model()
    first, second = projections_of(model)
    assert first is second
    path = str(tmp_path / "shared.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    first, second = projections_of(restored)
    assert first is second
    projection_variables = {
        id(v) for v in restored.weights if "sequence_projection" in v.path
    }
    assert len(projection_variables) == 1
    x = random_inputs()
    np.testing.assert_allclose(
        to_numpy(restored(x)), to_numpy(model(x)), atol=1e-6
    )


LOAD_AND_PREDICT = """
import numpy as np, keras
import keras_linformer
directory = {directory!r}
model = keras.saving.load_model(directory + "/model.keras")
x = np.load(directory + "/inputs.npy")
np.save(directory + "/outputs_{backend}.npy", keras.ops.convert_to_numpy(model(x)))
"""
# Each backend's run loads on the next one, so across the three runs every
# backend saves once and loads once, at a third of the cost of every pair.
OTHER_BACKENDS = [BACKENDS[(BACKENDS.index(BACKEND) + 1) % len(BACKENDS)]]


@pytest.fixture(scope="module")
def loads_on_other_backends(tmp_path_factory):
    """Saves a small model on this backend and starts loading it, and
    predicting, on another backend (in a parallel process)."""
    directory = tmp_path_factory.mktemp(f"saved_on_{BACKEND}")
    keras.utils.set_random_seed(0)
    model = shared_projection_model()
    x = random_inputs()
    model.save(str(directory / "model.keras"))
    np.save(directory / "inputs.npy", x)
    processes = {
        backend: start_in_backend(
            backend,
            LOAD_AND_PREDICT.format(directory=str(directory), backend=backend),
        )
        for backend in OTHER_BACKENDS
    }
    yield directory, to_numpy(model(x)), processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_keras_file_saved_here_loads_on_other_backend(
    loads_on_other_backends, backend
):
    directory, expected, processes = loads_on_other_backends
    finish_in_backend(processes[backend])
    outputs = np.load(directory / f"outputs_{backend}.npy")
    np.testing.assert_allclose(outputs, expected, atol=1e-5, rtol=0)
