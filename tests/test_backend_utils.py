import numpy as np
from keras import ops

from keras_linformer.backend_utils import softmax
from tests.testing import input_gradients
from tests.testing import to_numpy


def reference_softmax(logits):
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


def test_softmax_values_and_gradient():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    # A logit masked with a large negative value, as attention masks do.
    logits[0, 0, 1] = -1e9
    upstream = rng.normal(size=logits.shape).astype("float32")
    expected = reference_softmax(logits)
    np.testing.assert_allclose(to_numpy(softmax(logits)), expected, atol=1e-6)
    (gradient,) = input_gradients(lambda x: ops.multiply(softmax(x), upstream), logits)
    weighted_sum = (upstream * expected).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        gradient, expected * (upstream - weighted_sum), atol=1e-6
    )
