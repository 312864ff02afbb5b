import keras
import numpy as np
import pytest

from keras_linformer.layers import AttentionPooling1D
from tests.testing import MIXED_PRECISION_POLICIES
from tests.testing import run_layer_test
from tests.testing import run_mixed_precision_test
from tests.testing import to_numpy

BATCH, LENGTH, CHANNELS = 2, 7, 5


def random_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, LENGTH, CHANNELS)).astype("float32")


def padding_mask():
    mask = np.ones((BATCH, LENGTH), dtype=bool)
    mask[0, 4:] = False
    mask[1, [0, 3]] = False
    return mask


def pooling_with_random_scores():
    layer = AttentionPooling1D(kernel_initializer="random_normal")
    layer.build((BATCH, LENGTH, CHANNELS))
    return layer


def test_layer_checks_and_gradients():
    run_layer_test(
        AttentionPooling1D,
        {},
        {"inputs": random_inputs(), "mask": padding_mask()},
        expected_output_shape=(BATCH, CHANNELS),
    )


def test_matches_a_softmax_over_the_real_positions():
    layer = pooling_with_random_scores()
    x, mask = random_inputs(), padding_mask()
    scores = x @ to_numpy(layer.kernel)
    expected = np.zeros((BATCH, CHANNELS))
    for b in range(BATCH):
        weights = np.exp(scores[b, mask[b]] - scores[b, mask[b]].max())
        expected[b] = (weights / weights.sum()) @ x[b, mask[b]]
    np.testing.assert_allclose(
        to_numpy(layer(x, mask=mask)), expected, atol=1e-6
    )


def test_starts_as_mean_pooling():
    x, mask = random_inputs(), padding_mask()
    mean = keras.layers.GlobalAveragePooling1D()(x, mask=mask)
    np.testing.assert_allclose(
        to_numpy(AttentionPooling1D()(x, mask=mask)), to_numpy(mean), atol=1e-6
    )


def test_padding_content_does_not_change_the_result():
    layer = pooling_with_random_scores()
    x, mask = random_inputs(), padding_mask()
    noisy = np.where(mask[..., None], x, 100 * random_inputs(seed=1))
    np.testing.assert_allclose(
        to_numpy(layer(noisy, mask=mask)),
        to_numpy(layer(x, mask=mask)),
        atol=1e-6,
        rtol=0,
    )


def test_fully_masked_rows_are_finite():
    mask = np.zeros((BATCH, LENGTH), dtype=bool)
    output = to_numpy(pooling_with_random_scores()(random_inputs(), mask=mask))
    assert np.all(np.isfinite(output))


@pytest.mark.parametrize("policy", MIXED_PRECISION_POLICIES)
def test_mixed_precision(policy):
    run_mixed_precision_test(
        AttentionPooling1D,
        {"kernel_initializer": "random_normal"},
        {"inputs": random_inputs(), "mask": padding_mask()},
        policy,
    )


def test_inputs_of_wrong_rank_raise():
    with pytest.raises(ValueError, match="expects inputs of shape"):
        AttentionPooling1D().build((BATCH, LENGTH))
