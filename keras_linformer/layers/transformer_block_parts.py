"""Arguments, sublayers and config shared by the Linformer blocks."""

import keras
from keras import ops

from keras_linformer.layers.linformer_attention import LinformerAttention
from keras_linformer.layers.validation import check_dropout
from keras_linformer.layers.validation import check_positive_int


def clone_initializer(initializer):
    """A fresh copy, so sublayers do not draw identical initial values."""
    return initializer.__class__.from_config(initializer.get_config())


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

    def _attention_layer(self, name, head_dim, **kwargs):
        """A `LinformerAttention` sublayer with the block's shared settings."""
        return LinformerAttention(
            num_heads=self.num_heads,
            key_dim=head_dim,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
            **kwargs,
        )

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

    def _build_feedforward_dense(self, inputs_shape):
        """Builds the two feedforward dense layers for `inputs_shape`."""
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
            inputs_shape[-1],
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
        )
        self._feedforward_output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )

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
