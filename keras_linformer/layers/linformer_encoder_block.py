"""A Transformer encoder block with Linformer self-attention."""

import keras
from keras import ops

from keras_linformer.backend_utils import keras_mask

from keras_linformer.layers.linformer_attention import LinformerAttention
from keras_linformer.layers.sequence_projection import SequenceProjection


def clone_initializer(initializer):
    """A fresh copy, so sublayers do not draw identical initial values."""
    return initializer.__class__.from_config(initializer.get_config())


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerEncoderBlock(keras.layers.Layer):
    """Transformer encoder block with linear-complexity self-attention.

    A drop-in alternative to `keras_hub.layers.TransformerEncoder`: the same
    arguments, masks and residual/normalization layout, with
    `LinformerAttention` in place of `MultiHeadAttention`. The padding mask
    comes from `padding_mask`, else from the Keras mask of `inputs`; an
    `attention_mask` must be the same for every query (see
    `LinformerAttention`).

    Args:
        intermediate_dim: int. The hidden size of the feedforward network.
        num_heads: int. The number of attention heads.
        sequence_length: int. The largest sequence length n. Defaults to the
            length of the input shape the block is built with.
        projected_length: int. The number of slots k keys and values are
            compressed to. Not needed when `projection` is a layer.
        dropout: float. Dropout for attention weights, the attention output
            and the feedforward output. Defaults to `0.`.
        activation: string or callable. The feedforward activation. Defaults
            to `"relu"`.
        layer_norm_epsilon: float. Epsilon of the layer normalizations.
            Defaults to `1e-5`.
        kernel_initializer: initializer for the dense kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer for the dense biases. Defaults to
            `"zeros"`.
        normalize_first: bool. If True, normalize the inputs of the attention
            and feedforward sublayers (like GPT-2); otherwise their outputs
            (like BERT). Defaults to `False`.
        projection: string or `SequenceProjection`. See `LinformerAttention`.
            Defaults to `"linear"`.
        parameter_sharing: string. See `LinformerAttention`. Defaults to
            `"headwise"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Example:

    ```python
    inputs = keras.Input(shape=(2048, 128))
    x = keras_linformer.layers.LinformerEncoderBlock(
        intermediate_dim=256, num_heads=4, projected_length=128
    )(inputs)
    model = keras.Model(inputs, x)
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
     - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        sequence_length=None,
        projected_length=None,
        dropout=0,
        activation="relu",
        layer_norm_epsilon=1e-05,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first=False,
        projection="linear",
        parameter_sharing="headwise",
        **kwargs,
    ):
        for name, value in (
            ("intermediate_dim", intermediate_dim),
            ("num_heads", num_heads),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: "
                    f"{name}={value!r}"
                )
        if not 0 <= dropout < 1:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        if isinstance(projection, dict):
            projection = keras.saving.deserialize_keras_object(projection)
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.sequence_length = sequence_length
        self.projected_length = projected_length
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.normalize_first = normalize_first
        self.projection = projection
        self.parameter_sharing = parameter_sharing
        self.supports_masking = True

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        key_dim = hidden_dim // self.num_heads
        if key_dim == 0:
            raise ValueError(
                "The hidden size must be at least `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={self.num_heads}"
            )
        sequence_length = self.sequence_length
        if sequence_length is None and not isinstance(
            self.projection, SequenceProjection
        ):
            sequence_length = inputs_shape[1]
            if sequence_length is None:
                raise ValueError(
                    "LinformerEncoderBlock needs `sequence_length` when it is "
                    f"built on a variable-length shape. Received: "
                    f"inputs_shape={tuple(inputs_shape)}"
                )
        self._self_attention_layer = LinformerAttention(
            num_heads=self.num_heads,
            key_dim=key_dim,
            sequence_length=sequence_length,
            projected_length=self.projected_length,
            dropout=self.dropout,
            projection=self.projection,
            parameter_sharing=self.parameter_sharing,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="self_attention_layer",
        )
        self._self_attention_layer.build(inputs_shape, inputs_shape)
        self._self_attention_layer_norm = self._layer_norm(
            "self_attention_layer_norm", inputs_shape
        )
        self._self_attention_dropout = keras.layers.Dropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name="self_attention_dropout",
        )
        self._feedforward_layer_norm = self._layer_norm(
            "feedforward_layer_norm", inputs_shape
        )
        self._feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dense",
        )
        self._feedforward_intermediate_dense.build(inputs_shape)
        self._feedforward_output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
        )
        self._feedforward_output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )
        self._feedforward_dropout = keras.layers.Dropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name="feedforward_dropout",
        )
        self.built = True

    def _layer_norm(self, name, inputs_shape):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(inputs_shape)
        return layer

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        if padding_mask is None:
            padding_mask = keras_mask(inputs)
        x = inputs
        residual = x
        if self.normalize_first:
            x = self._self_attention_layer_norm(x)
        attention = self._self_attention_layer(
            query=x,
            value=x,
            value_mask=padding_mask,
            attention_mask=attention_mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        if return_attention_scores:
            x, attention_scores = attention
        else:
            x = attention
        x = self._self_attention_dropout(x, training=training)
        x = ops.add(x, residual)
        if not self.normalize_first:
            x = self._self_attention_layer_norm(x)

        residual = x
        if self.normalize_first:
            x = self._feedforward_layer_norm(x)
        x = self._feedforward_intermediate_dense(x)
        x = self._feedforward_output_dense(x)
        x = self._feedforward_dropout(x, training=training)
        x = ops.add(x, residual)
        if not self.normalize_first:
            x = self._feedforward_layer_norm(x)
        if return_attention_scores:
            return x, attention_scores
        return x

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "sequence_length": self.sequence_length,
                "projected_length": self.projected_length,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "normalize_first": self.normalize_first,
                # A shared `SequenceProjection` stays an object: Keras
                # serializes it in its object-sharing scope, so layers
                # sharing it save and load one copy.
                "projection": self.projection,
                "parameter_sharing": self.parameter_sharing,
            }
        )
        return config
