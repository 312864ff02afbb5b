"""Internal: mask helpers shared by the Linformer layers."""

import keras
from keras import ops

from keras_linformer.backend_utils import check_at_run_time


def large_negative(dtype):
    """A logit offset that zeroes a softmax weight without overflowing."""
    standardized = keras.backend.standardize_dtype(dtype)
    return -3e4 if standardized == "float16" else -1e9


def slot_bias(slot_mask, dtype):
    """Turns a boolean `(batch, k)` or per-head `(batch, heads, k)` slot mask
    into an additive logit bias.

    The bias has shape `(batch, 1, 1, k)` or `(batch, heads, 1, k)` to
    broadcast over heads and queries. A large finite negative, not -inf,
    keeps rows with no valid slot finite (they become a uniform average) on
    every backend.
    """
    bias = ops.where(
        slot_mask,
        ops.zeros((), dtype=dtype),
        ops.full((), large_negative(dtype), dtype=dtype),
    )
    if len(bias.shape) == 2:
        bias = ops.expand_dims(bias, 1)
    return ops.expand_dims(bias, 2)


def combine_masks(*masks):
    """Logical AND of the masks that are not None; None if all are None."""
    combined = None
    for mask in masks:
        if mask is None:
            continue
        mask = ops.cast(mask, "bool")
        combined = mask if combined is None else ops.logical_and(combined, mask)
    return combined


def key_padding_mask(
    value_mask, key_mask, attention_mask, query_mask, causal=False
):
    """The `(batch, S)` keys that every mask of an attention call admits
    (see `key_mask_from_attention_mask`), or None if none is given."""
    if attention_mask is not None:
        attention_mask = key_mask_from_attention_mask(
            attention_mask, query_mask, causal
        )
    return combine_masks(value_mask, key_mask, attention_mask)


def key_mask_from_attention_mask(attention_mask, query_mask=None, causal=False):
    """Folds a `(batch, T, S)` attention mask into a `(batch, S)` key mask.

    A compressed key slot mixes every source position, so a mask that treats
    queries differently cannot be applied after compression. The mask folds
    exactly when every query row that admits any key admits the same keys;
    rows that admit none, or whose query `query_mask` masks, impose nothing.
    Other masks raise a ValueError, in compiled calls too. Under
    TensorFlow's XLA, which cannot raise at run time, a mask whose values
    are not known yet is refused. `causal` says whether the caller is
    `CausalLinformerAttention`, for the error message.
    """
    attention_mask = ops.cast(attention_mask, "bool")
    if query_mask is not None:
        # As in `MultiHeadAttention`, a masked query's row admits no key.
        attention_mask = ops.logical_and(
            attention_mask, ops.expand_dims(ops.cast(query_mask, "bool"), -1)
        )
    key_mask = ops.any(attention_mask, axis=1)
    rows_in_use = ops.any(attention_mask, axis=2, keepdims=True)
    differs = ops.logical_and(
        ops.not_equal(attention_mask, ops.expand_dims(key_mask, 1)),
        rows_in_use,
    )
    if causal:
        advice = (
            "This layer is causal by itself (`use_causal_mask=True`, the "
            "default): pass only the padding, e.g. as `value_mask`."
        )
    else:
        advice = (
            "Pass a padding mask (`value_mask`/`key_mask`, a Keras mask, or "
            "an attention mask whose rows are equal), or use "
            "`CausalLinformerAttention` for causal attention."
        )
    check_at_run_time(
        ops.logical_not(ops.any(differs)),
        "The `attention_mask` has rows that differ between queries. "
        "Linformer compresses the key/value sequence, so it can only apply "
        f"masks that are the same for every query (padding masks). {advice}",
        refused_under_xla=(
            "An `attention_mask` cannot be checked under TensorFlow's XLA "
            "compilation (`jit_compile=True`, `model.compile`'s default on "
            "TensorFlow with a GPU), and a mask that is not the same for "
            "every query would be applied wrongly. Pass the padding as "
            "`value_mask`/`key_mask` or a Keras mask, or compile with "
            "`jit_compile=False`."
        ),
    )
    return key_mask
