"""Causal Linformer self-attention, with a fixed-size decoding cache."""

import numbers

import keras
from keras import ops

from keras_linformer.backend_utils import check_at_run_time
from keras_linformer.layers._causal_attention import causal_attention
from keras_linformer.layers._causal_attention import causal_decode_step
from keras_linformer.layers._masking import key_padding_mask
from keras_linformer.layers.linformer_attention import LinformerAttention
from keras_linformer.layers.sequence_projection import check_causal_projection
from keras_linformer.layers.validation import check_length


def check_chunk_size(chunk_size, sequence_length):
    """Raises a ValueError unless `1 <= chunk_size <= sequence_length`."""
    if (
        not isinstance(chunk_size, int)
        or isinstance(chunk_size, bool)
        or not 1 <= chunk_size <= sequence_length
    ):
        raise ValueError(
            "`chunk_size` must be a positive integer no larger than "
            f"`sequence_length` ({sequence_length}), or None (then it equals "
            f"`projected_length`). Received: chunk_size={chunk_size!r}"
        )


def check_decoding_position(
    cache_update_index,
    sequence_length,
    limit_name="sequence_length",
    tensor=None,
):
    """Raises a ValueError unless every decoding position is below n, the
    argument `limit_name`: at once for a Python int or concrete values, else
    when the compiled step runs (see `check_at_run_time`, which holds
    `tensor` back until then). Returns `tensor`."""
    if isinstance(cache_update_index, numbers.Integral):
        # A Python position is checked here, even while tracing.
        position = int(cache_update_index)
    else:
        position = ops.max(ops.cast(cache_update_index, "int32"))
    return check_at_run_time(
        position < sequence_length,
        "The decoding position `cache_update_index` ({}) must be below "
        f"the `{limit_name}` ({sequence_length}).",
        position,
        tensor=tensor,
        refused_under_xla=(
            "The decoding position `cache_update_index` cannot be "
            f"checked against the `{limit_name}` ({sequence_length}) under "
            "TensorFlow's XLA compilation (`jit_compile=True`), and a "
            "position past it would decode wrongly. Pass it as a Python "
            "int, decode with `generate()` (which bounds it), or compile "
            "with `jit_compile=False`."
        ),
    )


@keras.saving.register_keras_serializable(package="keras_linformer")
class CausalLinformerAttention(LinformerAttention):
    """Causal Linformer self-attention in O(n (k + C)) time.

    A plain Linformer projection mixes every position, future ones included,
    into each of its k slots. Here the sequence is cut into chunks of
    `chunk_size` (C) positions, and a query attends, with one softmax, to
    the exact keys of its own chunk up to itself and to k summaries of the
    chunks before it (the Linformer projection of the finished prefix), so
    it never sees a later position. Decoding carries a fixed-size state of
    k + C slots per layer instead of a key/value cache that grows with the
    sequence. Only projections that are linear along the sequence have this
    form: `"linear"` and `"mean_pool"`. With `"linear"` a summary is a sum
    over the prefix, so its size grows with the position; `"mean_pool"`
    (window means) reached a lower perplexity in `benchmarks/generation.py`
    and is the default of `LinformerCausalBackbone`.

    Args:
        chunk_size: int. The chunk length C, `1 <= C <= sequence_length`; the
            decoding state holds k + C slots. Defaults to `projected_length`.
        **kwargs: the arguments of `LinformerAttention`, with a `projection`
            that has a causal form.

    Call arguments:
        query, value, key, query_mask, value_mask, key_mask, attention_mask,
            training, return_attention_scores: as for `LinformerAttention`;
            `query` and `value` cover the same positions. The attention
            scores have shape `(batch, num_heads, T, k + C)`: the k
            summaries, then the C positions of the query's chunk.
        use_causal_mask: bool. Defaults to `True`; `False` runs the
            non-causal `LinformerAttention` with the same weights.
        cache: optional `(batch, 2, k + C, num_heads, key_dim)` decoding
            state (zeros before the first token, see `cache_shape`). With a
            cache, `query` and `value` hold the one token at position
            `cache_update_index`, and the call returns `(output, cache)`.
        cache_update_index: int or int tensor, the position of that token:
            a scalar for every row, or `(batch,)`, one position per row.
        return_cache: bool. If True (a whole sequence, no `cache`), also
            return the decoding state after each row's real positions, the
            state that decoding them one by one leaves (prefill). The padding
            mask must be right padding: each row's real positions first.
            Returns `(output, cache)`. Defaults to `False`.

    Example:

    ```python
    attention = keras_linformer.layers.CausalLinformerAttention(
        num_heads=4, key_dim=16, sequence_length=1024, projected_length=64
    )
    x = np.random.normal(size=(2, 1024, 64)).astype("float32")
    outputs = attention(x, x)  # (2, 1024, 64)
    cache = np.zeros(attention.cache_shape(2), "float32")
    output, cache = attention(
        x[:, :1], x[:, :1], cache=cache, cache_update_index=0
    )
    # The same state after the first 100 positions, in one parallel pass.
    outputs, cache = attention(x[:, :100], x[:, :100], return_cache=True)
    output, cache = attention(
        x[:, 100:101], x[:, 100:101], cache=cache, cache_update_index=100
    )
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
    """

    def __init__(self, *args, chunk_size=None, **kwargs):
        super().__init__(*args, **kwargs)
        check_causal_projection(self._key_projection)
        if chunk_size is not None:
            check_chunk_size(chunk_size, self.sequence_length)
        self._chunk_size = chunk_size

    @property
    def chunk_size(self):
        """The chunk length C."""
        return self._chunk_size or self.projected_length

    def cache_shape(self, batch_size):
        """The fixed shape of the decoding state of `batch_size` rows."""
        return (
            batch_size,
            2,
            self.projected_length + self.chunk_size,
            self.num_heads,
            self.key_dim,
        )

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=True,
        cache=None,
        cache_update_index=None,
        return_cache=False,
    ):
        if cache is not None:
            return self._decode_step(
                query, value, key, use_causal_mask, cache, cache_update_index
            )
        if return_cache:
            self._check_cache_layout()
            if return_attention_scores or not use_causal_mask:
                raise ValueError(
                    "`return_cache=True` returns the causal decoding state "
                    "with the output only: it needs use_causal_mask=True and "
                    "return_attention_scores=False. Received: "
                    f"use_causal_mask={use_causal_mask}, "
                    f"return_attention_scores={return_attention_scores}"
                )
        if not use_causal_mask:
            return super().call(
                query,
                value,
                key,
                query_mask=query_mask,
                value_mask=value_mask,
                key_mask=key_mask,
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
            )
        if query.shape[1] is not None and value.shape[1] is not None:
            if query.shape[1] != value.shape[1]:
                raise ValueError(
                    "Causal attention is self-attention: `query` and "
                    "`value` must cover the same positions. Received: "
                    f"query_shape={tuple(query.shape)}, "
                    f"value_shape={tuple(value.shape)}"
                )
        value = check_length(
            ops.shape(value)[1], self.sequence_length, "value", value
        )
        key = value if key is None else key
        padding_mask = key_padding_mask(
            value_mask, key_mask, attention_mask, query_mask, causal=True
        )
        state_lengths = None
        if return_cache:
            state_lengths = (
                ops.full((ops.shape(query)[0],), ops.shape(query)[1], "int32")
                if padding_mask is None
                else ops.sum(ops.cast(padding_mask, "int32"), axis=1)
            )
        output, scores, cache = causal_attention(
            self._query_dense(query),
            self._key_dense(key),
            self._value_dense(value),
            self._key_projection,
            self._value_projection,
            self.chunk_size,
            padding_mask=padding_mask,
            dropout_layer=self._dropout_layer,
            training=training,
            state_lengths=state_lengths,
        )
        output = self._output_dense(output)
        if return_cache:
            return output, cache
        return (output, scores) if return_attention_scores else output

    def _decode_step(
        self, query, value, key, use_causal_mask, cache, cache_update_index
    ):
        """The output for the one token at `cache_update_index`, and the
        state that holds it too."""
        if not use_causal_mask:
            raise ValueError(
                "The decoding cache holds causal self-attention state; it "
                "cannot be used with `use_causal_mask=False`."
            )
        if cache_update_index is None or query.shape[1] != 1:
            raise ValueError(
                "A cached call decodes one token: pass `query` and `value` "
                "of length 1 and its position as `cache_update_index`. "
                f"Received: query_shape={tuple(query.shape)}, "
                f"cache_update_index={cache_update_index}"
            )
        self._check_cache_layout()
        expected = self.cache_shape(cache.shape[0])
        # Dimensions unknown while tracing are checked by the computation.
        if len(cache.shape) != len(expected) or any(
            size not in (None, want)
            for size, want in zip(cache.shape, expected)
        ):
            raise ValueError(
                "The decoding cache must have the shape of "
                f"`cache_shape(batch_size)`, {expected}. Received: "
                f"cache_shape={tuple(cache.shape)}"
            )
        check_decoding_position(cache_update_index, self.sequence_length)
        key = value if key is None else key
        output, cache = causal_decode_step(
            self._query_dense(query),
            self._key_dense(key),
            self._value_dense(value),
            cache,
            cache_update_index,
            self._key_projection,
            self._value_projection,
            self.chunk_size,
        )
        return self._output_dense(output), cache

    def _check_cache_layout(self):
        if self.value_dim != self.key_dim:
            raise ValueError(
                "The decoding cache stacks keys and values, so it needs "
                f"value_dim == key_dim. Received: key_dim={self.key_dim}, "
                f"value_dim={self.value_dim}"
            )

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        return_attention_scores=False,
        use_causal_mask=True,
        cache=None,
        return_cache=False,
        **kwargs,
    ):
        output = super().compute_output_spec(query, value, key)
        if cache is not None:
            return output, keras.KerasTensor(
                cache.shape, dtype=self.compute_dtype
            )
        if return_cache:
            return output, keras.KerasTensor(
                self.cache_shape(query.shape[0]), dtype=self.compute_dtype
            )
        if not return_attention_scores:
            return output
        slots = self.projected_length
        if use_causal_mask:
            slots += self.chunk_size
        return output, self._scores_spec(query, slots)

    def get_config(self):
        config = super().get_config()
        config["chunk_size"] = self._chunk_size
        return config
