"""Internal: argument checks shared by the layers and models."""

from keras import ops

from keras_linformer.backend_utils import check_at_run_time


def check_positive_int(name, value):
    """Raises a ValueError unless `value` is a positive int (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )


def check_dropout(dropout):
    """Raises a ValueError unless `0 <= dropout < 1`."""
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={dropout!r}"
        )


def check_output_shape(output_shape):
    """`output_shape` (None, an int or a tuple of them) as a tuple or None;
    raises a ValueError unless its entries are positive ints."""
    if output_shape is None:
        return None
    if isinstance(output_shape, int):
        output_shape = (output_shape,)
    output_shape = tuple(output_shape)
    if not all(isinstance(d, int) and d > 0 for d in output_shape):
        raise ValueError(
            "`output_shape` must be a positive int or a tuple of them. "
            f"Received: output_shape={output_shape}"
        )
    return output_shape


def check_attention_shapes(layer_name, query_shape, value_shape, key_shape):
    """Raises a ValueError unless the shapes are `(batch, length, features)`
    with known features and `key` and `value` have the same length."""
    for name, shape in (
        ("query", query_shape),
        ("value", value_shape),
        ("key", key_shape),
    ):
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(
                f"{layer_name} expects `{name}` of shape (batch, length, "
                "features) with known features. Received: "
                f"{name}_shape={tuple(shape)}"
            )
    _check_same_length(value_shape, key_shape)


def check_key_value_features(key_shape, value_shape, built_features):
    """Raises a ValueError unless `key` and `value` have the same length and
    the feature sizes `(key, value)` that the layer was built for."""
    _check_same_length(value_shape, key_shape)
    for name, shape, features in zip(
        ("key", "value"), (key_shape, value_shape), built_features
    ):
        if shape[-1] != features:
            raise ValueError(
                f"The layer was built for `{name}` with {features} features. "
                f"Received: {name}_shape={tuple(shape)}"
            )


def _check_same_length(value_shape, key_shape):
    lengths = (value_shape[1], key_shape[1])
    if None not in lengths and lengths[0] != lengths[1]:
        raise ValueError(
            "`key` and `value` must have the same length. Received: "
            f"value_shape={tuple(value_shape)}, key_shape={tuple(key_shape)}"
        )


def check_length(
    length, sequence_length, name, tensor=None, limit_name="sequence_length"
):
    """Raises a ValueError when a length (an int, or a scalar tensor while
    tracing) exceeds n, the argument `limit_name` of the layer or model: at
    once where it is known, else when the compiled call runs (see
    `check_at_run_time`, which holds `tensor` back until then). Returns
    `tensor`."""
    message = (
        f"The sequence length of `{name}` ({{}}) exceeds the "
        f"`{limit_name}` ({sequence_length}) it was built with. Build it "
        f"with a larger `{limit_name}`, or truncate the input."
    )
    if isinstance(length, int) or length is None:
        if length is not None and length > sequence_length:
            raise ValueError(message.format(length))
        return tensor
    return check_at_run_time(
        ops.less_equal(length, sequence_length), message, length, tensor=tensor
    )
