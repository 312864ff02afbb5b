"""Linformer multi-head attention: keys and values projected n -> k."""

import keras
from keras import ops
from keras_hub.src.utils.keras_utils import clone_initializer

from keras_linformer.layers._attention_step import attend
from keras_linformer.layers._masking import key_padding_mask
from keras_linformer.layers._key_value_projection import build_projections
from keras_linformer.layers._key_value_projection import compressed_heads
from keras_linformer.layers._key_value_projection import (
    key_value_projections,
)
from keras_linformer.layers.validation import check_attention_shapes
from keras_linformer.layers.validation import check_dropout
from keras_linformer.layers.validation import check_length
from keras_linformer.layers.validation import check_key_value_features
from keras_linformer.layers.validation import check_output_shape
from keras_linformer.layers.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerAttention(keras.layers.Layer):
    """Multi-head attention whose cost grows linearly with sequence length.

    A drop-in alternative to `keras.layers.MultiHeadAttention` for sequences
    of up to `sequence_length` (n) positions. Following Linformer, the keys
    and values are projected along the sequence axis to `projected_length`
    (k) slots before attention, so each head computes
    `softmax(Q (E K W_k + b_k)^T / sqrt(d)) (F V W_v + b_v)` in O(n k) time
    and memory instead of O(n^2).

    Padding never influences the output: padded keys and values are left
    out before the projection and empty slots are masked. Every slot mixes
    the whole sequence, so this layer is not causal: see
    `CausalLinformerAttention`.

    Args:
        num_heads: int. Number of attention heads.
        key_dim: int. Size of each attention head for query and key.
        sequence_length: int. The largest key/value length n; shorter
            sequences use the first rows of the projection.
        projected_length: int. The number of slots k, `1 <= k <= n`. Neither
            length is needed when `projection` is a `SequenceProjection`.
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
            `"max_pool"`, `"conv"` or `"adaptive_mean_pool"` (see
            `SequenceProjection`). A `SequenceProjection` layer is shared
            by keys and values, and by every attention layer it is passed to
            (the paper's layerwise sharing). Defaults to `"linear"`.
        parameter_sharing: string. `"none"` (a separate E and F for each
            head), `"headwise"` (one E and one F for all heads), or
            `"key_value"` (one matrix for keys and values), for the learned
            kinds; the parameter-free kinds always use one projection for
            keys and values. Ignored when `projection` is a layer. Defaults
            to `"headwise"`.
        projection_initializer: initializer for the learned sequence
            projections. Defaults to `"glorot_uniform"`.
        kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer, activity_regularizer, kernel_constraint,
            bias_constraint, seed: as in `keras.layers.MultiHeadAttention`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        query: `(batch, T, dim)` query tensor.
        value: `(batch, S, dim)` value tensor, `S <= sequence_length`.
        key: optional `(batch, S, dim)` key tensor; `value` is used if None.
        query_mask, value_mask, key_mask, attention_mask: boolean masks as
            in `MultiHeadAttention`, except that `attention_mask` must hide
            the same keys from every query that admits any (others raise a
            `ValueError`, in compiled calls too).
        training: Python boolean, whether dropout is active.
        return_attention_scores: bool. If True, also return the attention
            weights over the k slots, shape `(batch, num_heads, T, k)`.
        use_causal_mask: bool. Must be False (the default): `True` raises a
            `ValueError` that points to `CausalLinformerAttention`.
        key_value_cache: optional result of `compressed_key_value` to attend
            to instead of `value`, `key` and their masks.

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
        **kwargs,
    ):
        check_positive_int("num_heads", num_heads)
        check_positive_int("key_dim", key_dim)
        if value_dim is not None:
            check_positive_int("value_dim", value_dim)
        check_dropout(dropout)
        output_shape = check_output_shape(output_shape)
        super().__init__(**kwargs)
        self.supports_masking = True
        self._num_heads = num_heads
        self._key_dim = key_dim
        self._value_dim = value_dim or key_dim
        self._dropout = dropout
        self._use_bias = use_bias
        self._output_shape = output_shape
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
        if isinstance(projection, dict):
            projection = keras.saving.deserialize_keras_object(projection)
        self._projection = projection
        # The projections are created here, unbuilt, so that they check
        # `sequence_length` and `projected_length` when the layer is made.
        self._key_projection, self._value_projection = key_value_projections(
            projection,
            sequence_length,
            projected_length,
            num_heads,
            parameter_sharing,
            self._projection_initializer,
            self.dtype_policy,
            type(self).__name__,
        )

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
        return self._key_projection.sequence_length

    @property
    def projected_length(self):
        return self._key_projection.projected_length

    @property
    def dropout(self):
        return self._dropout

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
        check_attention_shapes(
            type(self).__name__, query_shape, value_shape, key_shape
        )
        build_projections(
            self._key_projection,
            self._value_projection,
            key_shape,
            value_shape,
            (self._num_heads, self._key_dim, self._value_dim),
        )

        self._query_dense = self._heads_dense(
            "query", self._key_dim, query_shape
        )
        self._key_dense = self._heads_dense("key", self._key_dim, key_shape)
        self._value_dense = self._heads_dense(
            "value", self._value_dim, value_shape
        )
        self._key_value_features = (key_shape[-1], value_shape[-1])
        output_shape = self._output_shape or (query_shape[-1],)
        letters = "fghij"[: len(output_shape)]
        self._output_dense = self._dense(
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

    def _heads_dense(self, name, head_dim, input_shape):
        """A built projection of `input_shape` to `(..., heads, head_dim)`."""
        dense = self._dense(
            "abc,cde->abde", (None, self._num_heads, head_dim), "de", name
        )
        dense.build(input_shape)
        return dense

    def _dense(self, equation, output_shape, bias_axes, name):
        dense = keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self._use_bias else None,
            kernel_initializer=clone_initializer(self._kernel_initializer),
            bias_initializer=clone_initializer(self._bias_initializer),
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
        key_value_cache=None,
    ):
        if use_causal_mask:
            raise ValueError(
                "LinformerAttention compresses the whole key/value sequence "
                "into every slot, so it cannot be causal. Use "
                "`keras_linformer.layers.CausalLinformerAttention` for causal "
                "self-attention. Received: use_causal_mask=True"
            )
        if key_value_cache is None:
            key_value_cache = self.compressed_key_value(
                value, key, value_mask, key_mask, attention_mask, query_mask
            )
        output, scores = self._compute_attention(
            self._query_dense(query),
            *key_value_cache,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        output = self._output_dense(output)
        return (output, scores) if return_attention_scores else output

    def compressed_key_value(
        self,
        value,
        key=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        query_mask=None,
    ):
        """The compressed key and value heads that queries attend to.

        Passed back as `key_value_cache`, they save the n -> k projection and
        the dense layers at every decoding step of cross-attention to a fixed
        encoder sequence. Arguments as in `call`.

        Returns:
            A tuple `(key, value, slot_mask)`: `(batch, k, num_heads,
            key_dim)` keys, `(batch, k, num_heads, value_dim)` values, and
            the boolean `(batch, k)` (per head `(batch, num_heads, k)`) mask
            of the slots that hold a real position, or None if all do.
        """
        self_attention = key is None or key is value
        key = value if key is None else key
        check_length(ops.shape(value)[1], self.sequence_length, "value")
        check_key_value_features(
            key.shape, value.shape, self._key_value_features
        )
        padding_mask = key_padding_mask(
            value_mask, key_mask, attention_mask, query_mask
        )
        return compressed_heads(
            key,
            value,
            self._key_projection,
            self._value_projection,
            self._key_dense,
            self._value_dense,
            padding_mask,
            self_attention,
        )

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
        return attend(
            query,
            key,
            value,
            slot_mask,
            self._dropout_layer,
            training=training,
            return_weights=return_attention_scores,
        )

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        output_shape = self._output_shape or (query_shape[-1],)
        return tuple(query_shape[:-1]) + tuple(output_shape)

    def compute_output_spec(
        self, query, value, key=None, return_attention_scores=False, **kwargs
    ):
        output = keras.KerasTensor(
            self.compute_output_shape(query.shape, value.shape),
            dtype=self.compute_dtype,
        )
        if not return_attention_scores:
            return output
        return output, self._scores_spec(query, self.projected_length)

    def _scores_spec(self, query, slots):
        """The `(batch, heads, T, slots)` attention weights of `query`."""
        return keras.KerasTensor(
            (query.shape[0], self._num_heads, query.shape[1], slots),
            dtype=self.compute_dtype,
        )

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        config = super().get_config()
        config.update(
            {
                "num_heads": self._num_heads,
                "key_dim": self._key_dim,
                "sequence_length": self.sequence_length,
                "projected_length": self.projected_length,
                "value_dim": self._value_dim,
                "dropout": self._dropout,
                "use_bias": self._use_bias,
                "output_shape": self._output_shape,
                # A shared `SequenceProjection` stays an object: Keras
                # serializes it in its object-sharing scope, so layers
                # sharing it save and load one copy.
                "projection": self._projection,
                "parameter_sharing": self._parameter_sharing,
                "kernel_initializer": serialize(self._kernel_initializer),
                "bias_initializer": serialize(self._bias_initializer),
                "projection_initializer": serialize(
                    self._projection_initializer
                ),
                "kernel_regularizer": serialize(self._kernel_regularizer),
                "bias_regularizer": serialize(self._bias_regularizer),
                "activity_regularizer": serialize(self._activity_regularizer),
                "kernel_constraint": serialize(self._kernel_constraint),
                "bias_constraint": serialize(self._bias_constraint),
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Configs saved before `CausalLinformerAttention` existed hold
        # `causal` (and `chunk_size`); a causal one gives that layer.
        config = dict(config)
        causal = config.pop("causal", False)
        if not isinstance(causal, bool):
            raise ValueError(f"`causal` must be a bool. Received: {causal!r}")
        if causal and cls is LinformerAttention:
            from keras_linformer.layers import causal_linformer_attention

            causal_class = causal_linformer_attention.CausalLinformerAttention
            return causal_class.from_config(config)
        if cls is LinformerAttention:
            config.pop("chunk_size", None)
        return super().from_config(config)
