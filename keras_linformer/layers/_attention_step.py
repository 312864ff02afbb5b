"""Internal: the attention step of `LinformerAttention`, softmax attention of
the queries over the k key/value slots, run as the backend plan says."""

import math

from keras import ops

from keras_linformer.backend_utils import plan_attention
from keras_linformer.backend_utils import softmax
from keras_linformer.layers._masking import slot_bias


def attend(
    query,
    key,
    value,
    slot_mask,
    dropout_layer,
    training=None,
    return_weights=False,
):
    """Attention of `(batch, T, heads, d)` queries over `(batch, k, heads,
    d)` keys and values, run as `backend_utils.plan_attention` says.

    Args:
        query, key, value: the heads.
        slot_mask: None, or the boolean `(batch, k)` (per head `(batch,
            heads, k)`) mask of the slots to attend to.
        dropout_layer: the dropout applied to the attention weights.
        training: whether dropout is active.
        return_weights: bool. Whether to return the weights too.

    Returns:
        `(output, weights)`: output `(batch, T, heads, d_v)`; weights
        `(batch, heads, T, k)`, or None unless `return_weights`.
    """
    _, query_length, num_heads, key_dim = query.shape
    plan = plan_attention(
        num_heads,
        key_dim,
        value.shape[-1],
        key.shape[1],
        query_length,
        weights_needed=bool(
            return_weights or (training and dropout_layer.rate > 0)
        ),
    )
    scale = 1.0 / math.sqrt(key_dim)
    bias = None if slot_mask is None else slot_bias(slot_mask, query.dtype)
    if plan.fused:
        output = ops.dot_product_attention(
            query, key, value, bias=bias, scale=scale
        )
        return output, None
    # Heads-first batched matmuls, scaling the n x d queries rather than
    # the n x k logits: XLA gives this layout the fewest copies.
    key = ops.transpose(key, (0, 2, 3, 1))
    value = ops.transpose(value, (0, 2, 1, 3))
    scale = ops.cast(scale, query.dtype)
    outputs, weights = [], []
    # Queries attend independently, so blocks of them give the same result
    # while their logits stay in cache.
    for block in split_queries(query, plan.query_block):
        block = ops.transpose(block, (0, 2, 1, 3)) * scale
        logits = ops.matmul(block, key)
        if bias is not None:
            logits = logits + bias
        block_weights = softmax(logits)
        dropped = dropout_layer(block_weights, training=training)
        output = ops.matmul(dropped, value)
        outputs.append(ops.transpose(output, (0, 2, 1, 3)))
        weights.append(block_weights)
    output = _concatenate(outputs, axis=1)
    if not return_weights:
        return output, None
    return output, _concatenate(weights, axis=2)


def split_queries(query, block_length):
    """`(batch, T, heads, d)` queries in blocks of `block_length` positions
    (the last one shorter), or all in one when `block_length` is None."""
    length = query.shape[1]
    if block_length is None or length <= block_length:
        return [query]
    return ops.split(query, list(range(block_length, length, block_length)), 1)


def _concatenate(blocks, axis):
    return blocks[0] if len(blocks) == 1 else ops.concatenate(blocks, axis)
