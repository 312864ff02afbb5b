"""The one place that knows about the difference between backends."""

import keras
import numpy as np
from keras import ops

# The largest float32 logits block that stayed in the cache (see
# `attention_query_block`).
_CACHED_LOGITS_BYTES = 16 * 2**20
_MAX_QUERY_BLOCKS = 4


def concrete_numpy(tensor):
    """Returns the tensor's values as a NumPy array, or None while tracing.

    Eager tensors on every backend convert; symbolic ones (a `tf.function`
    graph, a JAX tracer, torch meta tensors during shape inference) raise,
    and then there are no values to check.
    """
    try:
        return np.asarray(ops.convert_to_numpy(tensor))
    except Exception:  # Each backend raises its own tracing error type.
        return None


def keras_mask(tensor):
    """The implicit Keras mask of a tensor (e.g. from `mask_zero=True`).

    Keras exposes no public getter; keras-hub reads it the same way.
    """
    from keras.src.backend import get_keras_mask

    return get_keras_mask(tensor)


def has_fused_attention():
    """Whether `ops.dot_product_attention` runs a fused attention kernel.

    PyTorch's scaled-dot-product attention has CPU kernels that never hold
    the full attention weights, which saves memory over two matmuls. On
    TensorFlow and JAX (CPU) the op is the same einsum, softmax and einsum
    that a layer can write itself, in a layout XLA compiles less well.
    """
    return keras.config.backend() == "torch"


def attention_query_block(num_heads, projected_length, query_length):
    """How many queries attend at once, or None for all of them.

    XLA on CPU writes each op's full output to memory. On JAX, once the
    float32 `(heads, T, k)` logits outgrow the cache, the softmax runs from
    memory: on a 2-core EPYC with 32 MiB L3 (k = 256), the attention core
    took 20% longer per position at T = 8192 than at 4096, and blocks of
    queries whose logits fill at most 16 MiB kept it flat. Past a few
    blocks they stop paying: from 16384 on the whole core ran about as fast
    per position, while 32 blocks made forward+backward 4% slower (T =
    65536). TensorFlow's XLA measured no gain (-5% to +1%), and PyTorch runs
    its fused kernel. None too where `query_length` is not a number while
    tracing (None, or a symbolic export dimension).
    """
    if keras.config.backend() != "jax" or not isinstance(query_length, int):
        return None
    import jax

    if jax.default_backend() != "cpu":
        return None
    block = max(1, _CACHED_LOGITS_BYTES // (4 * num_heads * projected_length))
    if query_length > _MAX_QUERY_BLOCKS * block:
        return None
    return block


def softmax(logits):
    """Softmax over the last axis, with the gradient `y (g - sum(g y))`.

    TensorFlow and PyTorch register that gradient for their softmax. JAX's
    `jax.nn.softmax` (while the `jax_softmax_custom_jvp` flag is off, its
    default up to at least JAX 0.10) differentiates through its exp, sum
    and division instead, which keeps more logits-sized buffers and passes
    over them: about 4% of a LinformerAttention forward+backward at
    n = 16384 on CPU.
    """
    if keras.config.backend() != "jax":
        return ops.softmax(logits, axis=-1)
    return _softmax_with_output_gradient(logits)


@ops.custom_gradient
def _softmax_with_output_gradient(logits):
    weights = ops.softmax(logits, axis=-1)

    def gradient(upstream):
        weighted_sum = ops.sum(upstream * weights, axis=-1, keepdims=True)
        return weights * (upstream - weighted_sum)

    return weights, gradient
