"""Linformer multi-head attention: keys and values projected n -> k."""

import math

import keras
from keras import ops

from keras_linformer.backend_utils import attention_query_block
from keras_linformer.backend_utils import has_fused_attention
from keras_linformer.backend_utils import softmax
from keras_linformer.layers.causal_linformer_attention import causal_attention
from keras_linformer.layers.causal_linformer_attention import (
    causal_decode_step,
)
from keras_linformer.layers.causal_linformer_attention import (
    check_causal_projection,
)
from keras_linformer.layers.causal_linformer_attention import check_chunk_size
from keras_linformer.layers.masking import combine_masks
from keras_linformer.layers.masking import key_mask_from_attention_mask
from keras_linformer.layers.masking import slot_bias
from keras_linformer.layers.sequence_projection import PARAMETER_FREE_KINDS
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from keras_linformer.layers.sequence_projection import SequenceProjection
from keras_linformer.layers.sequence_projection import check_length
from keras_linformer.layers.sequence_projection import validate_lengths
from keras_linformer.layers.validation import check_dropout
from keras_linformer.layers.validation import check_positive_int

PARAMETER_SHARING = ("none", "headwise", "key_value")


def split_queries(query, block_length):
    """`(batch, T, heads, d)` queries in blocks of `block_length` positions
    (the last one shorter), or all in one when `block_length` is None."""
    length = query.shape[1]
    if block_length is None or length <= block_length:
        return [query]
    return ops.split(query, list(range(block_length, length, block_length)), 1)


def concatenate_blocks(blocks, axis):
    return blocks[0] if len(blocks) == 1 else ops.concatenate(blocks, axis)


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerAttention(keras.layers.Layer):
    """Multi-head attention whose cost grows linearly with sequence length.

    A drop-in alternative to `keras.layers.MultiHeadAttention` for sequences
    of up to `sequence_length` (n) positions. Following Linformer, the keys
    and values are projected along the sequence axis to `projected_length`
    (k) slots before attention, so each head computes
    `softmax(Q (E K W_k + b_k)^T / sqrt(d)) (F V W_v + b_v)` in O(n k) time
    and memory instead of O(n^2).

    A projection shared by all heads runs before the key/value dense
    projections, which is exact (`E (X W) = (E X) W`) and cheaper whenever
    k < n; per-head projections (`parameter_sharing="none"`) run after them,
    on each head's features (`E_i (X W_i)`), which costs `heads` times fewer
    operations than compressing the input once per head. The dense bias is
    added after the compression either way. Padded key/value positions are
    zeroed (or left out of pooling) before the projection, so padding never
    influences the output.

    Masks: `query_mask`, `value_mask` and `key_mask` (or the Keras masks of
    the inputs) work as in `MultiHeadAttention`. An `attention_mask` of shape
    `(batch, T, S)` is supported only where it acts as a per-key padding
    mask: every query row that admits any key must admit the same keys (rows
    that admit none are masked queries). Other patterns cannot be expressed
    once the sequence axis is compressed and raise a `ValueError` wherever
    the mask's values are concrete (eager calls); inside a traced graph the
    mask is folded with a logical OR over queries without the check.

    Args:
        num_heads: int. Number of attention heads.
        key_dim: int. Size of each attention head for query and key.
        sequence_length: int. The largest key/value length n the projection
            covers. Shorter sequences use the first n rows of the projection.
            Not needed when `projection` is a `SequenceProjection` layer.
        projected_length: int. The number of slots k that keys and values are
            compressed to, `1 <= k <= n`. Not needed when `projection` is a
            `SequenceProjection` layer.
        value_dim: int. Size of each attention head for value. Defaults to
            `key_dim`.
        dropout: float. Dropout probability on the attention weights.
            Defaults to `0.0`.
        use_bias: bool. Whether the dense layers use bias vectors. Defaults to
            `True`.
        output_shape: int or tuple. The trailing output dimensions. Defaults
            to the query's last dimension.
        projection: string or `SequenceProjection`. How n becomes k:
            `"linear"` (learned E and F, the paper's default), `"mean_pool"`,
            `"max_pool"` or `"conv"` (see `SequenceProjection`). Passing a
            `SequenceProjection` layer shares it for keys and values, and
            passing the same layer to several attention layers gives the
            paper's layerwise sharing (saved once). Defaults to `"linear"`.
        parameter_sharing: string. `"none"` (a separate E and F for each
            head), `"headwise"` (one E and one F for all heads), or
            `"key_value"` (one matrix for keys and values). Pooling
            projections have no parameters, so this only changes the learned
            kinds. Ignored when `projection` is a layer. Defaults to
            `"headwise"`.
        kernel_initializer: initializer for the dense kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer for the dense biases. Defaults to
            `"zeros"`.
        projection_initializer: initializer for the learned sequence
            projections. Defaults to `"glorot_uniform"`.
        kernel_regularizer: regularizer for the dense kernels.
        bias_regularizer: regularizer for the dense biases.
        activity_regularizer: regularizer for the output.
        kernel_constraint: constraint for the dense kernels.
        bias_constraint: constraint for the dense biases.
        seed: optional int seed for the dropout layer.
        causal: bool. If True, self-attention is causal: a query sees the
            exact keys of its own chunk up to itself and k summaries of the
            chunks before it (see `causal_linformer_attention`), never a
            later position. Needs a `"linear"` or `"mean_pool"` projection.
            Defaults to `False`.
        chunk_size: int. The chunk length C of causal attention,
            `1 <= C <= sequence_length`; the decoding state holds k + C slots.
            Defaults to `projected_length`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        query: `(batch, T, dim)` query tensor.
        value: `(batch, S, dim)` value tensor, `S <= sequence_length`.
        key: optional `(batch, S, dim)` key tensor; `value` is used if None.
        query_mask, value_mask, key_mask: optional boolean masks of shape
            `(batch, T)` / `(batch, S)`, True at real positions.
        attention_mask: optional boolean `(batch, T, S)` mask that is the same
            for every query (see above).
        training: Python boolean, whether dropout is active.
        return_attention_scores: bool. If True, also return the attention
            weights over the k slots, shape `(batch, num_heads, T, k)`;
            causal attention gives `(batch, num_heads, T, k + C)` (the k
            summaries, then the C positions of the query's chunk).
        use_causal_mask: bool. If True, run causal attention (as if built
            with `causal=True`) for this call.
        cache: optional `(batch, 2, k + C, num_heads, key_dim)` decoding
            state of causal self-attention (zeros before the first token).
            With a cache, `query` and `value` hold the one token at position
            `cache_update_index`, and the call returns `(output, cache)`.
        cache_update_index: int or int tensor, the position of that token.

    Example:

    ```python
    inputs = keras.Input(shape=(4096, 256))
    attention = keras_linformer.layers.LinformerAttention(
        num_heads=8, key_dim=32, sequence_length=4096, projected_length=256
    )
    outputs = attention(inputs, inputs)  # (None, 4096, 256)
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        sequence_length=None,
        projected_length=None,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        projection="linear",
        parameter_sharing="headwise",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        projection_initializer="glorot_uniform",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        causal=False,
        chunk_size=None,
        **kwargs,
    ):
        check_positive_int("num_heads", num_heads)
        check_positive_int("key_dim", key_dim)
        if value_dim is not None:
            check_positive_int("value_dim", value_dim)
        check_dropout(dropout)
        if isinstance(projection, dict):
            projection = keras.saving.deserialize_keras_object(projection)
        if isinstance(projection, SequenceProjection):
            for name, value in (
                ("sequence_length", sequence_length),
                ("projected_length", projected_length),
            ):
                if value is not None and value != getattr(projection, name):
                    raise ValueError(
                        f"`{name}` ({value}) disagrees with the shared "
                        f"projection's ({getattr(projection, name)}). Leave "
                        "it unset when passing a `SequenceProjection`."
                    )
            if projection.per_head and projection.num_heads != num_heads:
                raise ValueError(
                    "The shared projection has one set of parameters for "
                    f"each of {projection.num_heads} heads, but "
                    f"num_heads={num_heads}."
                )
            sequence_length = projection.sequence_length
            projected_length = projection.projected_length
        elif projection not in PROJECTION_KINDS:
            raise ValueError(
                f"`projection` must be one of {PROJECTION_KINDS} or a "
                f"`SequenceProjection` layer. Received: projection={projection!r}"
            )
        if sequence_length is None or projected_length is None:
            raise ValueError(
                "LinformerAttention needs `sequence_length` (the largest n) "
                "and `projected_length` (k). Received: "
                f"sequence_length={sequence_length}, "
                f"projected_length={projected_length}"
            )
        validate_lengths(sequence_length, projected_length)
        if parameter_sharing not in PARAMETER_SHARING:
            raise ValueError(
                f"`parameter_sharing` must be one of {PARAMETER_SHARING} (for "
                "layerwise sharing, pass one `SequenceProjection` layer as "
                "`projection` to several layers). Received: "
                f"parameter_sharing={parameter_sharing!r}"
            )
        if not isinstance(causal, bool):
            raise ValueError(
                f"`causal` must be a bool. Received: causal={causal!r}"
            )
        if chunk_size is not None:
            check_chunk_size(chunk_size, sequence_length)
        if causal:
            check_causal_projection(
                projection.kind
                if isinstance(projection, SequenceProjection)
                else projection
            )
        if isinstance(output_shape, int):
            output_shape = (output_shape,)
        if output_shape is not None:
            output_shape = tuple(output_shape)
            if not all(isinstance(d, int) and d > 0 for d in output_shape):
                raise ValueError(
                    "`output_shape` must be a positive int or a tuple of "
                    f"them. Received: output_shape={output_shape}"
                )
        super().__init__(**kwargs)
        self.supports_masking = True
        self._num_heads = num_heads
        self._key_dim = key_dim
        self._value_dim = value_dim or key_dim
        self._sequence_length = sequence_length
        self._projected_length = projected_length
        self._dropout = dropout
        self._use_bias = use_bias
        self._output_shape = output_shape
        self._projection = projection
        self._parameter_sharing = parameter_sharing
        self._kernel_initializer = keras.initializers.get(kernel_initializer)
        self._bias_initializer = keras.initializers.get(bias_initializer)
        self._projection_initializer = keras.initializers.get(
            projection_initializer
        )
        self._kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self._bias_regularizer = keras.regularizers.get(bias_regularizer)
        self._activity_regularizer = keras.regularizers.get(
            activity_regularizer
        )
        self._kernel_constraint = keras.constraints.get(kernel_constraint)
        self._bias_constraint = keras.constraints.get(bias_constraint)
        self.seed = seed
        self._causal = causal
        self._chunk_size = chunk_size

    @property
    def num_heads(self):
        return self._num_heads

    @property
    def key_dim(self):
        return self._key_dim

    @property
    def value_dim(self):
        return self._value_dim

    @property
    def sequence_length(self):
        return self._sequence_length

    @property
    def projected_length(self):
        return self._projected_length

    @property
    def dropout(self):
        return self._dropout

    @property
    def causal(self):
        return self._causal

    @property
    def chunk_size(self):
        """The chunk length C of causal attention."""
        return self._chunk_size or self._projected_length

    @property
    def use_bias(self):
        return self._use_bias

    @property
    def query_dense(self):
        return self._query_dense

    @property
    def key_dense(self):
        return self._key_dense

    @property
    def value_dense(self):
        return self._value_dense

    @property
    def output_dense(self):
        return self._output_dense

    @property
    def key_projection(self):
        return self._key_projection

    @property
    def value_projection(self):
        return self._value_projection

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (
            ("query", query_shape),
            ("value", value_shape),
            ("key", key_shape),
        ):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(
                    f"LinformerAttention expects `{name}` of shape (batch, "
                    "length, features) with known features. Received: "
                    f"{name}_shape={tuple(shape)}"
                )
        if value_shape[1] != key_shape[1]:
            raise ValueError(
                "`key` and `value` must have the same length. Received: "
                f"value_shape={tuple(value_shape)}, "
                f"key_shape={tuple(key_shape)}"
            )
        check_length(value_shape[1], self._sequence_length, "value")
        self._build_projections(key_shape, value_shape)

        heads_shape = (None, self._num_heads)
        self._query_dense = self._make_dense(
            "abc,cde->abde", heads_shape + (self._key_dim,), "de", "query"
        )
        self._query_dense.build(query_shape)
        self._key_dense = self._make_dense(
            "abc,cde->abde", heads_shape + (self._key_dim,), "de", "key"
        )
        self._key_dense.build(key_shape)
        self._value_dense = self._make_dense(
            "abc,cde->abde", heads_shape + (self._value_dim,), "de", "value"
        )
        self._value_dense.build(value_shape)

        output_shape = self._output_shape or (query_shape[-1],)
        letters = "fghij"[: len(output_shape)]
        self._output_dense = self._make_dense(
            f"abcd,cd{letters}->ab{letters}",
            (None,) + output_shape,
            letters,
            "attention_output",
        )
        self._output_dense.build(
            (query_shape[0], query_shape[1], self._num_heads, self._value_dim)
        )
        self._dropout_layer = keras.layers.Dropout(
            rate=self._dropout, seed=self.seed, dtype=self.dtype_policy
        )
        self.built = True

    def _projection_input_shape(self, inputs_shape, head_dim, per_head):
        """What a projection compresses: the inputs, or for a per-head one
        each head's features after the dense projection."""
        if per_head:
            return tuple(inputs_shape[:2]) + (self._num_heads, head_dim)
        return tuple(inputs_shape)

    def _build_projections(self, key_shape, value_shape):
        if isinstance(self._projection, SequenceProjection):
            shared = self._projection
            if not shared.built:
                shared.build(
                    self._projection_input_shape(
                        key_shape, self._key_dim, shared.per_head
                    )
                )
            self._key_projection = self._value_projection = shared
            return
        kind = self._projection
        per_head = (
            self._parameter_sharing == "none"
            and kind not in PARAMETER_FREE_KINDS
        )

        def make(name, inputs_shape, head_dim):
            projection = SequenceProjection(
                sequence_length=self._sequence_length,
                projected_length=self._projected_length,
                kind=kind,
                num_heads=self._num_heads if per_head else None,
                kernel_initializer=self._projection_initializer.__class__.from_config(
                    self._projection_initializer.get_config()
                ),
                dtype=self.dtype_policy,
                name=name,
            )
            projection.build(
                self._projection_input_shape(inputs_shape, head_dim, per_head)
            )
            return projection

        self._key_projection = make("key_projection", key_shape, self._key_dim)
        if self._parameter_sharing == "key_value":
            if key_shape[-1] != value_shape[-1]:
                raise ValueError(
                    "parameter_sharing='key_value' needs keys and values of "
                    "the same size. Received: "
                    f"key_shape={tuple(key_shape)}, "
                    f"value_shape={tuple(value_shape)}"
                )
            self._value_projection = self._key_projection
        else:
            self._value_projection = make(
                "value_projection", value_shape, self._value_dim
            )

    def _make_dense(self, equation, output_shape, bias_axes, name):
        def clone(initializer):
            return initializer.__class__.from_config(initializer.get_config())

        dense = keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self._use_bias else None,
            kernel_initializer=clone(self._kernel_initializer),
            bias_initializer=clone(self._bias_initializer),
            kernel_regularizer=self._kernel_regularizer,
            bias_regularizer=self._bias_regularizer,
            activity_regularizer=self._activity_regularizer,
            kernel_constraint=self._kernel_constraint,
            bias_constraint=self._bias_constraint,
            dtype=self.dtype_policy,
            name=name,
        )
        # A masked query (e.g. from `mask_zero=True`) passes its mask through
        # the query projection rather than warning that it is dropped.
        dense.supports_masking = True
        return dense

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
        use_causal_mask=False,
        cache=None,
        cache_update_index=None,
    ):
        if self._causal or use_causal_mask or cache is not None:
            return self._call_causal(
                query,
                value,
                key,
                padding_mask=combine_masks(value_mask, key_mask),
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
                cache=cache,
                cache_update_index=cache_update_index,
            )
        self_attention = key is None or key is value
        key = value if key is None else key
        check_length(ops.shape(value)[1], self._sequence_length, "value")
        padding_mask = combine_masks(
            value_mask,
            None if self_attention else key_mask,
            None
            if attention_mask is None
            else key_mask_from_attention_mask(attention_mask),
        )

        query_heads = self._query_dense(query)
        if self._key_projection.per_head:
            key_heads, slot_mask = self._compress_heads(
                key, self._key_projection, self._key_dense, padding_mask
            )
            value_heads, _ = self._compress_heads(
                value, self._value_projection, self._value_dense, padding_mask
            )
        else:
            key_compressed, slot_mask = self._key_projection(
                key, mask=padding_mask
            )
            if (
                self_attention
                and self._value_projection is self._key_projection
            ):
                value_compressed = key_compressed
            else:
                value_compressed, _ = self._value_projection(
                    value, mask=padding_mask
                )
            # `(E X) W + b`: the k slots projected into heads.
            key_heads = self._key_dense(key_compressed)
            value_heads = self._value_dense(value_compressed)

        if self._key_projection.slots_all_valid(padding_mask):
            slot_mask = None
        output, scores = self._compute_attention(
            query_heads,
            key_heads,
            value_heads,
            slot_mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        output = self._output_dense(output)
        if return_attention_scores:
            return output, scores
        return output

    def _call_causal(
        self,
        query,
        value,
        key,
        padding_mask,
        attention_mask,
        training,
        return_attention_scores,
        cache,
        cache_update_index,
    ):
        """Causal self-attention; see `causal_linformer_attention`."""
        check_causal_projection(self._key_projection.kind)
        key = value if key is None else key
        if attention_mask is not None:
            padding_mask = combine_masks(
                padding_mask, key_mask_from_attention_mask(attention_mask)
            )
        query_heads = self._query_dense(query)
        key_heads = self._key_dense(key)
        value_heads = self._value_dense(value)
        if cache is None:
            if query.shape[1] is not None and value.shape[1] is not None:
                if query.shape[1] != value.shape[1]:
                    raise ValueError(
                        "Causal attention is self-attention: `query` and "
                        "`value` must cover the same positions. Received: "
                        f"query_shape={tuple(query.shape)}, "
                        f"value_shape={tuple(value.shape)}"
                    )
            output, scores = causal_attention(
                query_heads,
                key_heads,
                value_heads,
                self._key_projection,
                self._value_projection,
                self.chunk_size,
                padding_mask=padding_mask,
                dropout_layer=self._dropout_layer,
                training=training,
            )
            output = self._output_dense(output)
            return (output, scores) if return_attention_scores else output
        if cache_update_index is None or query.shape[1] != 1:
            raise ValueError(
                "A cached call decodes one token: pass `query` and `value` "
                "of length 1 and its position as `cache_update_index`. "
                f"Received: query_shape={tuple(query.shape)}, "
                f"cache_update_index={cache_update_index}"
            )
        if self._value_dim != self._key_dim:
            raise ValueError(
                "The decoding cache stacks keys and values, so it needs "
                f"value_dim == key_dim. Received: key_dim={self._key_dim}, "
                f"value_dim={self._value_dim}"
            )
        output, cache = causal_decode_step(
            query_heads,
            key_heads,
            value_heads,
            cache,
            cache_update_index,
            self._key_projection,
            self._value_projection,
            self.chunk_size,
        )
        return self._output_dense(output), cache

    def _compress_heads(self, inputs, projection, dense, padding_mask):
        """`E_i (X W_i) + b_i`: each head's features, compressed by that
        head's projection; the bias is added after, as for shared ones."""
        heads = ops.einsum("bsc,che->bshe", inputs, dense.kernel)
        compressed, slot_mask = projection(heads, mask=padding_mask)
        if dense.bias is not None:
            compressed = compressed + dense.bias
        return compressed, slot_mask

    def _compute_attention(
        self,
        query,
        key,
        value,
        slot_mask,
        training=None,
        return_attention_scores=False,
    ):
        """Attention of `(batch, T, heads, d)` queries over k slots."""
        bias = None if slot_mask is None else slot_bias(slot_mask, query.dtype)
        scale = 1.0 / math.sqrt(self._key_dim)
        use_dropout = training and self._dropout > 0
        # The fused kernel needs value heads as wide as query/key heads.
        fused = has_fused_attention() and self._value_dim == self._key_dim
        if fused and not (return_attention_scores or use_dropout):
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
        # Queries attend independently, so blocks of them give the same
        # result while their logits stay in cache.
        block_length = attention_query_block(
            self._num_heads, self._projected_length, query.shape[1]
        )
        for block in split_queries(query, block_length):
            block = ops.transpose(block, (0, 2, 1, 3)) * scale
            logits = ops.matmul(block, key)
            if bias is not None:
                logits = logits + bias
            block_weights = ops.cast(
                softmax(ops.cast(logits, "float32")), block.dtype
            )
            dropped = self._dropout_layer(block_weights, training=training)
            output = ops.matmul(dropped, value)
            outputs.append(ops.transpose(output, (0, 2, 1, 3)))
            weights.append(block_weights)
        output = concatenate_blocks(outputs, axis=1)
        if not return_attention_scores:
            return output, None
        return output, concatenate_blocks(weights, axis=2)

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        output_shape = self._output_shape or (query_shape[-1],)
        return tuple(query_shape[:-1]) + tuple(output_shape)

    def compute_output_spec(
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
        use_causal_mask=False,
        cache=None,
        cache_update_index=None,
    ):
        output = keras.KerasTensor(
            self.compute_output_shape(query.shape, value.shape),
            dtype=self.compute_dtype,
        )
        if cache is not None:
            return output, keras.KerasTensor(
                cache.shape, dtype=self.compute_dtype
            )
        if not return_attention_scores:
            return output
        slots = self._projected_length
        if self._causal or use_causal_mask:
            slots += self.chunk_size
        scores = keras.KerasTensor(
            (query.shape[0], self._num_heads, query.shape[1], slots),
            dtype=self.compute_dtype,
        )
        return output, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self._num_heads,
                "key_dim": self._key_dim,
                "sequence_length": self._sequence_length,
                "projected_length": self._projected_length,
                "value_dim": self._value_dim,
                "dropout": self._dropout,
                "use_bias": self._use_bias,
                "output_shape": self._output_shape,
                # A shared `SequenceProjection` stays an object: Keras
                # serializes it in its object-sharing scope, so layers
                # sharing it save and load one copy.
                "projection": self._projection,
                "parameter_sharing": self._parameter_sharing,
            }
        )
        serializers = {
            "initializer": keras.initializers.serialize,
            "regularizer": keras.regularizers.serialize,
            "constraint": keras.constraints.serialize,
        }
        for name in (
            "kernel_initializer",
            "bias_initializer",
            "projection_initializer",
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ):
            serialize = serializers[name.rsplit("_", 1)[1]]
            config[name] = serialize(getattr(self, "_" + name))
        config.update(
            {
                "seed": self.seed,
                "causal": self._causal,
                "chunk_size": self._chunk_size,
            }
        )
        return config
