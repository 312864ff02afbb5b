"""Internal: the mathematics of `CausalLinformerAttention`, exact attention
within a chunk plus the Linformer projection of the finished prefix.

A plain Linformer projection mixes every position, future ones included, into
each of its k slots, so no mask on the compressed scores makes it causal.
Here the sequence is cut into chunks of C positions. A query in chunk c
attends, with one softmax, to

1. the keys/values of its own chunk up to and including itself (exact causal
   attention), and
2. k summary slots of everything before chunk c:
   `S_K[j] = sum_{t < start(c)} M[t, j] K_t` (likewise `S_V` with the value
   projection), where M is the projection's `(n, k)` position-to-slot
   matrix (`SequenceProjection.slot_weights`), the sums scaled as the
   projection defines (`SequenceProjection.summary_scale`: a mean for
   `"mean_pool"`).

No term depends on a position after the query, so there is no leakage by
construction. In training the summaries are an exclusive prefix sum over
per-chunk contributions: O(n (k + C) d) time per head. Because E and F are
linear along the sequence, they commute with the key/value dense layers, so
the summaries are kept in head space (the keys are needed there anyway for
the exact part). Decoding carries, per layer, the k summaries (scaled, as
attended: means for `"mean_pool"`) and the C raw keys/values of the current
chunk for keys and for values: a state of `(batch, 2, k + C, heads,
head_dim)` whatever the generated length. The whole-sequence pass computes
every chunk's prefix sums and raw keys/values anyway, so it can also hand
out the state after any prefix (prefill): a prompt is read in one parallel
pass, then decoding continues step by step.

Sums are taken in float32 and only the scaled summaries are kept in the
compute dtype: a float16 sum of many positions overflows where their mean
does not, and a bfloat16 running sum rounds at every chunk.
"""

import math

from keras import ops

from keras_linformer.backend_utils import softmax
from keras_linformer.layers._masking import large_negative

# Sums and slot counts: float32 in every dtype policy.
SUM_DTYPE = "float32"


def causal_attention(
    query,
    key,
    value,
    key_projection,
    value_projection,
    chunk_size,
    padding_mask=None,
    dropout_layer=None,
    training=None,
    state_lengths=None,
):
    """Chunked causal attention over a whole sequence (training, scoring,
    prefill).

    Args:
        query, key, value: `(batch, L, heads, d)` tensors in head space, the
            same position in the same row of all three.
        key_projection, value_projection: the `SequenceProjection` layers
            (`"linear"` or `"mean_pool"`) whose matrices summarize the prefix.
        chunk_size: int. C.
        padding_mask: optional boolean `(batch, L)`; padded keys are left out.
        dropout_layer: optional dropout applied to the attention weights.
        training: whether dropout is active.
        state_lengths: optional int `(batch,)`, each row's prompt length
            (`0 <= length <= L`, all of its first positions real).

    Returns:
        `(output, weights, state)`: output `(batch, L, heads, d_v)`; weights
        `(batch, heads, L, k + C)` over the k summary slots then the C
        positions of the query's own chunk; state None, or with
        `state_lengths` the `(batch, 2, k + C, heads, d)` decoding state
        after each row's first `state_lengths` positions, the state that
        `causal_decode_step` over those positions leaves.
    """
    batch_size, length = ops.shape(query)[0], ops.shape(query)[1]
    num_heads, key_dim = ops.shape(query)[2], ops.shape(query)[3]
    value_dim = ops.shape(value)[3]
    dtype = query.dtype
    projected_length = key_projection.projected_length
    padding = (-length) % chunk_size
    padded_length = length + padding

    if padding_mask is None:
        padding_mask = ops.ones((batch_size, length), dtype="bool")
    padding_mask = ops.pad(
        ops.cast(padding_mask, "bool"), [[0, 0], [0, padding]],
        constant_values=False,
    )
    chunk_mask = ops.reshape(padding_mask, (batch_size, -1, chunk_size))

    def chunks(x):
        x = ops.pad(x, [[0, 0], [0, padding], [0, 0], [0, 0]])
        x = ops.where(_expand(padding_mask, (-1, -1)), x, ops.zeros_like(x))
        return ops.reshape(
            x, (batch_size, -1, chunk_size, num_heads, ops.shape(x)[3])
        )

    query_chunks, key_chunks, value_chunks = (
        chunks(query), chunks(key), chunks(value)
    )
    # Real positions before each chunk that each slot covers: zero marks a
    # slot that summarizes nothing yet (always so for the first chunk).
    positions = ops.arange(padded_length)
    counts = _exclusive_chunk_cumsum(
        ops.einsum(
            "bnc,nck->bnk",
            ops.cast(chunk_mask, SUM_DTYPE),
            _chunked(
                key_projection.slot_membership(positions, SUM_DTYPE),
                chunk_size,
            ),
        )
    )
    key_summary = _prefix_summaries(
        key_chunks, key_projection, positions, counts, chunk_size
    )
    value_summary = _prefix_summaries(
        value_chunks, value_projection, positions, counts, chunk_size
    )

    scale = ops.cast(1.0 / math.sqrt(key_dim), dtype)
    summary_logits = ops.einsum(
        "bnqhd,bnkhd->bnhqk", query_chunks, key_summary
    )
    local_logits = ops.einsum("bnqhd,bnshd->bnhqs", query_chunks, key_chunks)
    summary_allowed = _expand(counts > 0, (2, 2))
    causal = ops.greater_equal(
        ops.expand_dims(ops.arange(chunk_size), 1),
        ops.expand_dims(ops.arange(chunk_size), 0),
    )
    local_allowed = ops.logical_and(
        causal, _expand(chunk_mask, (2, 2))
    )
    summary_allowed = ops.broadcast_to(
        summary_allowed,
        (batch_size, ops.shape(counts)[1], 1, chunk_size, projected_length),
    )
    local_allowed = ops.broadcast_to(
        local_allowed,
        (batch_size, ops.shape(counts)[1], 1, chunk_size, chunk_size),
    )
    weights = _masked_softmax(
        ops.concatenate([summary_logits, local_logits], axis=-1) * scale,
        ops.concatenate([summary_allowed, local_allowed], axis=-1),
    )
    dropped = weights
    if dropout_layer is not None:
        dropped = dropout_layer(weights, training=training)
    # `ops.split`, not `[..., :k]`: an ellipsis slice is not a TFLite builtin.
    to_summary, to_chunk = ops.split(dropped, [projected_length], axis=-1)
    output = ops.einsum(
        "bnhqk,bnkhd->bnqhd", to_summary, value_summary
    ) + ops.einsum("bnhqs,bnshd->bnqhd", to_chunk, value_chunks)
    output = ops.reshape(
        output, (batch_size, padded_length, num_heads, value_dim)
    )[:, :length]
    weights = ops.reshape(
        ops.transpose(weights, (0, 2, 1, 3, 4)),
        (batch_size, num_heads, padded_length, projected_length + chunk_size),
    )[:, :, :length]
    state = None
    if state_lengths is not None:
        state = _state_after(
            state_lengths,
            chunk_size,
            (key_chunks, key_summary),
            (value_chunks, value_summary),
        )
    return output, weights, state


def causal_decode_step(
    query,
    key,
    value,
    cache,
    index,
    key_projection,
    value_projection,
    chunk_size,
):
    """Attention of the token at position `index` through a fixed-size state.

    Args:
        query, key, value: `(batch, 1, heads, d)` head-space tensors of the
            token at position `index`.
        cache: `(batch, 2, k + C, heads, d)` state holding every position
            before `index`: `cache[:, 0]` keys, `cache[:, 1]` values; the
            first k slots are the scaled prefix summaries, the last C a ring
            of raw keys/values, position p in slot p mod C.
        index: int tensor, the position of the token: a scalar for every
            row, or `(batch,)`, one position per row.
        key_projection, value_projection, chunk_size: as in
            `causal_attention`.

    Returns:
        `(output, cache)`: output `(batch, 1, heads, d)` and the state
        holding every position up to and including `index`.
    """
    dtype = query.dtype
    projected_length = key_projection.projected_length
    index = ops.broadcast_to(
        ops.cast(index, "int32"), (ops.shape(query)[0],)
    )
    offset = ops.mod(index, chunk_size)
    start = index - offset
    # Entering a new chunk folds the finished one into the summaries.
    fold = _expand(
        ops.logical_and(ops.equal(offset, 0), ops.greater(index, 0)),
        (-1, -1, -1),
    )
    finished_positions = ops.expand_dims(
        ops.maximum(start - chunk_size, 0), 1
    ) + ops.arange(chunk_size)
    token_slot = _expand(
        ops.equal(ops.arange(chunk_size), ops.expand_dims(offset, 1)),
        (-1, -1),
    )

    # The summaries before a fold cover the positions before the finished
    # chunk, after it those before the current one.
    counts = key_projection.prefix_slot_counts(start, SUM_DTYPE)  # (b, k)
    finished_counts = key_projection.prefix_slot_counts(
        ops.maximum(start - chunk_size, 0), SUM_DTYPE
    )

    def update(state, projection, new):
        summary = state[:, :projected_length]
        chunk = state[:, projected_length:]
        contribution = _weigh_row_positions(
            ops.cast(chunk, SUM_DTYPE),
            projection.slot_weights(finished_positions, SUM_DTYPE),
        )
        total = ops.cast(summary, SUM_DTYPE) / _expand(
            projection.summary_scale(finished_counts), (-1, -1)
        ) + contribution
        folded = total * _expand(projection.summary_scale(counts), (-1, -1))
        summary = ops.where(fold, ops.cast(folded, summary.dtype), summary)
        chunk = ops.where(token_slot, ops.cast(new, chunk.dtype), chunk)
        return summary, chunk

    key_summary, key_chunk = update(cache[:, 0], key_projection, key)
    value_summary, value_chunk = update(cache[:, 1], value_projection, value)
    new_cache = ops.stack(
        [
            ops.concatenate([key_summary, key_chunk], axis=1),
            ops.concatenate([value_summary, value_chunk], axis=1),
        ],
        axis=1,
    )

    keys = ops.concatenate([key_summary, key_chunk], axis=1)
    values = ops.concatenate([value_summary, value_chunk], axis=1)
    logits = ops.einsum("bqhd,bshd->bhqs", query, keys) * ops.cast(
        1.0 / math.sqrt(ops.shape(query)[3]), dtype
    )
    allowed = ops.concatenate(
        [
            counts > 0,
            ops.arange(chunk_size) <= ops.expand_dims(offset, 1),
        ],
        axis=1,
    )
    weights = _masked_softmax(logits, _expand(allowed, (1, 1)))
    output = ops.einsum("bhqs,bshd->bqhd", weights, values)
    return output, new_cache


def _state_after(lengths, chunk_size, *sequences):
    """The decoding state after each row's first `lengths` positions, read
    from a whole-sequence pass.

    `sequences` holds `(chunks, summaries)` for keys and for values: the
    `(batch, chunks, C, heads, d)` raw keys/values and the `(batch, chunks,
    k, heads, d)` scaled summaries of the positions before each chunk. The
    state holds the summaries before the chunk of the last position and the
    ring that `causal_decode_step` writes, whose slots after the last
    position's still hold the chunk before (zeros before position 0).
    """
    last = ops.cast(lengths, "int32") - 1
    # An empty row's chunk is -1: it selects nothing, the initial zeros.
    chunk = ops.floor_divide(last, chunk_size)
    offset = last - chunk * chunk_size
    num_chunks = ops.shape(sequences[0][0])[1]
    dtype = sequences[0][0].dtype
    # One-hot sums select exactly, and LiteRT runs them with builtins.
    current = ops.one_hot(chunk, num_chunks, dtype=dtype)
    previous = ops.one_hot(chunk - 1, num_chunks, dtype=dtype)
    in_current = _expand(
        ops.arange(chunk_size) <= ops.expand_dims(offset, 1), (-1, -1)
    )

    def read(chunks, summaries):
        summary = ops.einsum("bn,bnkhd->bkhd", current, summaries)
        ring = ops.where(
            in_current,
            ops.einsum("bn,bnchd->bchd", current, chunks),
            ops.einsum("bn,bnchd->bchd", previous, chunks),
        )
        return ops.concatenate([summary, ring], axis=1)

    return ops.stack([read(*sequence) for sequence in sequences], axis=1)


def _prefix_summaries(chunks, projection, positions, counts, chunk_size):
    """`(batch, chunks, k, heads, d)` scaled summaries of the positions
    before each chunk, summed in float32, in the dtype of `chunks`.

    `counts` is the `(batch, chunks, k)` number of real positions each
    slot holds.
    """
    matrix = projection.slot_weights(positions, SUM_DTYPE)
    contributions = _weigh_positions(
        ops.cast(chunks, SUM_DTYPE), _chunked(matrix, chunk_size)
    )
    sums = _exclusive_chunk_cumsum(contributions)
    scale = _expand(projection.summary_scale(counts), (-1, -1))
    return ops.cast(sums * scale, chunks.dtype)


def _weigh_positions(values, matrix):
    """Sums the C positions of `(batch, [chunks,] C, heads, d)` values into
    k slots with the `([chunks,] C, k)` matrix, or a per-head
    `(heads, [chunks,] C, k)` one."""
    batch = "bn"[: len(values.shape) - 3]
    chunks = batch[1:]
    heads = "h" if len(matrix.shape) == len(chunks) + 3 else ""
    return ops.einsum(
        f"{batch}chd,{heads}{chunks}ck->{batch}khd", values, matrix
    )


def _weigh_row_positions(values, matrix):
    """Sums the C positions of `(batch, C, heads, d)` values into k slots
    with each row's matrix, taken at `(batch, C)` positions: `(batch, C, k)`,
    or `(heads, batch, C, k)` per head."""
    heads = "h" if len(matrix.shape) == 4 else ""
    return ops.einsum(f"bchd,{heads}bck->bkhd", values, matrix)


def _exclusive_chunk_cumsum(contributions):
    """Sum over the chunks strictly before each chunk (axis 1).

    Shifting before summing, not subtracting after, keeps a chunk's own
    contribution out exactly, with no rounding residue.
    """
    shifted = ops.concatenate(
        [ops.zeros_like(contributions[:, :1]), contributions[:, :-1]], axis=1
    )
    return ops.cumsum(shifted, axis=1)


def _chunked(matrix, chunk_size):
    """Splits the position axis (second to last) into chunks."""
    shape = ops.shape(matrix)
    return ops.reshape(
        matrix, tuple(shape[:-2]) + (-1, chunk_size, shape[-1])
    )


def _masked_softmax(logits, allowed):
    """Softmax over the last axis where `allowed` is True (accumulated in
    float32, `backend_utils.softmax`)."""
    dtype = logits.dtype
    logits = ops.where(
        allowed, logits, ops.full((), large_negative(dtype), dtype)
    )
    return softmax(logits)


def _expand(x, axes):
    for axis in axes:
        x = ops.expand_dims(x, axis)
    return x
