"""Internal: arguments, sublayers and config shared by the Linformer
blocks."""

import keras
from keras import ops
from keras_hub.src.utils.keras_utils import clone_initializer

from keras_linformer.layers.validation import check_dropout
from keras_linformer.layers.validation import check_positive_int


class LinformerBlockBase(keras.layers.Layer):
    """Base of `LinformerEncoderBlock` and `LinformerDecoderBlock`.

    Validates and stores the arguments both blocks take, builds their
    attention, layer-norm, dropout and feedforward sublayers, and serializes
    the shared arguments. The subclasses document the arguments.
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
        check_positive_int("intermediate_dim", intermediate_dim)
        check_positive_int("num_heads", num_heads)
        check_dropout(dropout)
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

    def _head_dim(self, hidden_dim):
        head_dim = hidden_dim // self.num_heads
        if head_dim == 0:
            raise ValueError(
                "The hidden size must be at least `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={self.num_heads}"
            )
        return head_dim

    def _static_length(self, shape, argument, name):
        """The static length of a `(batch, length, dim)` shape, or an error
        that asks for `argument`."""
        if shape[1] is None:
            raise ValueError(
                f"{type(self).__name__} needs `{argument}` when it is built "
                f"on a variable-length {name} shape. Received: {name}_shape="
                f"{tuple(shape)}"
            )
        return shape[1]

    def _attention_sublayer(
        self, name, query_shape, value_shape, attention_class, **kwargs
    ):
        """A built attention layer with the block's shared settings (`kwargs`
        add to them), and the layer norm and dropout around it."""
        attention = attention_class(
            num_heads=self.num_heads,
            key_dim=self._head_dim(query_shape[-1]),
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
            **kwargs,
        )
        attention.build(query_shape, value_shape)
        prefix = name.removesuffix("_layer")
        layer_norm = self._layer_norm(f"{prefix}_layer_norm", query_shape)
        return attention, layer_norm, self._dropout_layer(f"{prefix}_dropout")

    def _layer_norm(self, name, shape):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(shape)
        return layer

    def _dropout_layer(self, name):
        return keras.layers.Dropout(
            rate=self.dropout, dtype=self.dtype_policy, name=name
        )

    def _build_feedforward(self, inputs_shape):
        """Builds the feedforward dense layers, layer norm and dropout."""
        self._feedforward_layer_norm = self._layer_norm(
            "feedforward_layer_norm", inputs_shape
        )
        self._feedforward_intermediate_dense = self._dense(
            self.intermediate_dim,
            "feedforward_intermediate_dense",
            activation=self.activation,
        )
        self._feedforward_intermediate_dense.build(inputs_shape)
        self._feedforward_output_dense = self._dense(
            inputs_shape[-1], "feedforward_output_dense"
        )
        self._feedforward_output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )
        self._feedforward_dropout = self._dropout_layer("feedforward_dropout")

    def _dense(self, units, name, activation=None):
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _attention_residual(
        self, x, attention, layer_norm, dropout, training, value=None, **kwargs
    ):
        """An attention sublayer (self-attention unless `value` is given)
        with its normalization, dropout and residual connection.

        `kwargs` go to `attention`. Returns the new `x`, and the attention's
        second output (scores or a cache) or None.
        """
        residual = x
        x = self._sublayer_input(x, layer_norm)
        value = x if value is None else value
        outputs = attention(query=x, value=value, training=training, **kwargs)
        extra = None
        if isinstance(outputs, tuple):
            outputs, extra = outputs
        x = self._sublayer_output(
            outputs, residual, layer_norm, dropout, training
        )
        return x, extra

    def _sublayer_input(self, x, layer_norm):
        """The input of a sublayer: normalized first, or as it is."""
        return layer_norm(x) if self.normalize_first else x

    def _sublayer_output(self, x, residual, layer_norm, dropout, training):
        """Dropout, the residual connection and (if last) normalization."""
        x = ops.add(dropout(x, training=training), residual)
        return x if self.normalize_first else layer_norm(x)

    def _feedforward(self, x, training):
        """The feedforward sublayer with its residual and normalization."""
        residual = x
        x = self._sublayer_input(x, self._feedforward_layer_norm)
        x = self._feedforward_intermediate_dense(x)
        x = self._feedforward_output_dense(x)
        return self._sublayer_output(
            x,
            residual,
            self._feedforward_layer_norm,
            self._feedforward_dropout,
            training,
        )

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
