import keras
import numpy as np
from keras import ops

from keras_linformer.backend_utils import attention_query_block
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


def test_attention_query_blocks_only_where_they_keep_logits_in_cache():
    if keras.config.backend() != "jax":
        assert attention_query_block(8, 256, 8192) is None
        return
    # 16 MiB of float32 logits per block, for up to 4 blocks.
    assert attention_query_block(8, 256, 8192) == 2048
    assert attention_query_block(8, 128, 8192) == 4096
    assert attention_query_block(8, 256, 8193) is None
    assert attention_query_block(8, 256, None) is None
    assert attention_query_block(8, 2**22, 4) == 1
