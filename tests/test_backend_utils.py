import keras
import numpy as np
from keras import ops

import pytest

from keras_linformer.backend_utils import attention_query_block
from keras_linformer.backend_utils import check_at_run_time
from keras_linformer.backend_utils import softmax
from keras_linformer.backend_utils import without_run_time_checks
from tests.testing import BACKEND
from tests.testing import compiled
from tests.testing import compiled_call_errors
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


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_softmax_keeps_low_precision_dtype_and_float32_accuracy(dtype):
    rng = np.random.default_rng(0)
    # Many slots of similar weight: a sum accumulated in 16 bits drifts.
    logits = rng.normal(scale=0.1, size=(2, 4, 2048)).astype("float32")
    logits[:, :, :7] = -3e4  # masked slots, as `large_negative` makes them
    low = ops.cast(logits, dtype)
    weights = softmax(low)
    assert keras.backend.standardize_dtype(weights.dtype) == dtype
    # The float32 softmax of the same (already rounded) logits, rounded once.
    expected = reference_softmax(to_numpy(ops.cast(low, "float32")))
    rtol = {"bfloat16": 2**-8, "float16": 2**-11}[dtype]
    np.testing.assert_allclose(
        to_numpy(ops.cast(weights, "float32")), expected, rtol=rtol, atol=0
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


def positive_or_raise(x):
    total = ops.sum(x)
    return check_at_run_time(
        ops.greater(total, 0), "total {} is not positive", total, tensor=x
    )


def test_run_time_check_raises_in_compiled_calls_unless_turned_off():
    negative = -np.ones((1, 3), "float32")
    with pytest.raises(compiled_call_errors(), match="total -3"):
        to_numpy(compiled(positive_or_raise, negative)(negative))
    # Concrete values are still checked inside the context.
    with without_run_time_checks():
        with pytest.raises(ValueError, match="total -3"):
            positive_or_raise(negative)
    if BACKEND == "torch":
        return  # PyTorch runs Keras eagerly: every value is concrete.
    with without_run_time_checks():
        # A new function, so JAX traces it again rather than reusing the
        # trace above.
        traced = compiled(lambda x: positive_or_raise(x), negative)
        np.testing.assert_array_equal(to_numpy(traced(negative)), negative)
