"""The one place that knows about the difference between backends.

Besides small utilities (`concrete_numpy`, `check_at_run_time`,
`keras_mask`), this module holds the backend performance policy of Linformer
attention behind one small interface: `plan_attention` says how to run the
attention step over the k slots (a fused kernel, or queries in blocks), and
`softmax` is the softmax with the cheap gradient on every backend. Their
measurements are in `benchmarks/README.md`.
"""

import contextlib
import contextvars
import dataclasses

import keras
import numpy as np
from keras import ops

# The float32 logits of one block of queries stay in a CPU's last-level
# cache up to about this size (half a 32 MiB L3, the rest for the operands).
_CACHED_LOGITS_BYTES = 16 * 2**20
# Past this many blocks the loop over blocks costs more than the cache saves.
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


# False inside `without_run_time_checks`.
_RUN_TIME_CHECKS = contextvars.ContextVar("run_time_checks", default=True)


@contextlib.contextmanager
def without_run_time_checks():
    """Within it, `check_at_run_time` adds no check to a traced graph.

    For callers that bound the values themselves: inside a compiled decoding
    loop a check per layer and step (a host callback on JAX) costs more than
    the step. Checks of concrete values still run.
    """
    token = _RUN_TIME_CHECKS.set(False)
    try:
        yield
    finally:
        _RUN_TIME_CHECKS.reset(token)


def check_at_run_time(
    condition, message, *values, tensor=None, refused_under_xla=None
):
    """Raises a ValueError with `message.format(*values)` unless the boolean
    scalar tensor `condition` is True; returns `tensor`.

    With concrete values (eager calls on every backend) the check runs here.
    While a graph is traced the values are not known yet, so the check
    becomes part of the graph: on TensorFlow a `tf.debugging.Assert` (it
    raises `InvalidArgumentError` with the message), which the returned
    `tensor` depends on so that nothing computed from it fails first; on JAX
    a `jax.debug.callback` that raises (as a `JaxRuntimeError` with the
    message). PyTorch runs Keras layers eagerly, with concrete values.

    TensorFlow's XLA compiles asserts to nothing. A condition on lengths
    still stops there: XLA compiles each input shape apart and fails on the
    assert's message op when the condition folds to False. A condition on
    tensor values would be lost, so while tracing for XLA such a check
    raises `refused_under_xla` instead.

    Args:
        condition: boolean scalar tensor.
        message: string with one `{}` for each of `values`.
        *values: scalar tensors (or ints) that the message shows.
        tensor: optional tensor to hold back until the check has run.
        refused_under_xla: for a condition on tensor values, the message of
            the ValueError raised while tracing for TensorFlow's XLA; None
            for a condition on lengths.
    """
    passed = concrete_numpy(condition)
    if passed is not None:
        if not passed:
            raise ValueError(
                message.format(*(concrete_numpy(v) for v in values))
            )
        return tensor
    if not _RUN_TIME_CHECKS.get():
        return tensor
    if refused_under_xla is not None and _tracing_for_xla():
        raise ValueError(refused_under_xla)
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        check = tf.debugging.Assert(
            condition, [tf.strings.format(message, list(values))]
        )
        if tensor is not None:
            with tf.control_dependencies([check]):
                tensor = tf.identity(tensor)
    elif keras.config.backend() == "jax":
        import jax

        def raise_unless(passed, *values):
            if not passed:
                raise ValueError(message.format(*values))

        jax.debug.callback(raise_unless, condition, *values)
    return tensor


def _tracing_for_xla():
    """True while TensorFlow traces for XLA (`jit_compile=True`, which
    `model.compile` picks on TensorFlow when a GPU is present)."""
    if keras.config.backend() != "tensorflow":
        return False
    import tensorflow as tf

    try:
        # TensorFlow's own (private) test for tracing inside an XLA context;
        # a TensorFlow without it gets the check traced as elsewhere.
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    graph = tf.compat.v1.get_default_graph()
    return control_flow_util.GraphOrParentsInXlaContext(graph)


def keras_mask(tensor):
    """The implicit Keras mask of a tensor (e.g. from `mask_zero=True`).

    Keras exposes no public getter; keras-hub reads it the same way.
    """
    from keras.src.backend import get_keras_mask

    return get_keras_mask(tensor)


@dataclasses.dataclass(frozen=True)
class AttentionPlan:
    """How the attention step runs on this backend.

    Attributes:
        fused: bool. Whether to call `ops.dot_product_attention`, which
            PyTorch runs as a fused kernel that never holds the attention
            weights.
        query_block: int or None. How many queries attend at once in the
            unfused step, or None for all of them.
    """

    fused: bool
    query_block: int | None


def plan_attention(
    num_heads,
    key_dim,
    value_dim,
    projected_length,
    query_length,
    weights_needed,
):
    """How to run attention of `query_length` queries over k slots.

    Args:
        num_heads, key_dim, value_dim, projected_length: the attention's
            sizes.
        query_length: int, or None (or a symbolic dimension) while tracing.
        weights_needed: bool. Whether the step needs the attention weights
            (to return them, or for dropout), which a fused kernel never
            materializes.
    """
    # The fused kernel needs value heads as wide as query/key heads.
    fused = (
        keras.config.backend() == "torch"
        and value_dim == key_dim
        and not weights_needed
    )
    return AttentionPlan(
        fused=fused,
        query_block=attention_query_block(
            num_heads, projected_length, query_length
        ),
    )


def attention_query_block(num_heads, projected_length, query_length):
    """How many queries attend at once, or None for all of them.

    XLA on CPU writes each op's whole output to memory, so on JAX the softmax
    runs from memory once the float32 `(heads, T, k)` logits outgrow the
    cache; blocks of queries whose logits fit keep it in cache, up to
    `_MAX_QUERY_BLOCKS` blocks. TensorFlow's XLA gains nothing from blocks
    and PyTorch runs its fused kernel. None too where `query_length` is not
    a number while tracing.
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
    """Softmax over the last axis, accumulated in float32, in `logits`'s
    dtype, with the gradient `y (g - sum(g y))`.

    PyTorch's softmax accumulates float16 and bfloat16 in float32 itself, so
    there the logits stay in their dtype: casting them would add four
    logits-sized copies per call (two forward, two backward). TensorFlow and
    JAX get float32 logits and the weights are cast back. TensorFlow and
    PyTorch register that gradient for their softmax; JAX's
    `jax.nn.softmax` (while its `jax_softmax_custom_jvp` flag is off, the
    default) differentiates through its exp, sum and division instead, which
    keeps more logits-sized buffers, so on JAX the gradient is given here.
    """
    backend = keras.config.backend()
    if backend == "torch":
        return ops.softmax(logits, axis=-1)
    dtype = logits.dtype
    logits = ops.cast(logits, "float32")
    if backend == "jax":
        weights = _softmax_with_output_gradient(logits)
    else:
        weights = ops.softmax(logits, axis=-1)
    return ops.cast(weights, dtype)


@ops.custom_gradient
def _softmax_with_output_gradient(logits):
    weights = ops.softmax(logits, axis=-1)

    def gradient(upstream):
        weighted_sum = ops.sum(upstream * weights, axis=-1, keepdims=True)
        return weights * (upstream - weighted_sum)

    return weights, gradient
