"""A Transformer encoder block with Linformer self-attention."""

import keras

from keras_linformer.backend_utils import keras_mask
from keras_linformer.layers.sequence_projection import SequenceProjection
from keras_linformer.layers.transformer_block_parts import LinformerBlockBase


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerEncoderBlock(LinformerBlockBase):
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

    def build(self, inputs_shape):
        key_dim = self._head_dim(inputs_shape[-1])
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
        self._self_attention_layer = self._attention_layer(
            "self_attention_layer",
            key_dim,
            sequence_length=sequence_length,
            projected_length=self.projected_length,
            projection=self.projection,
            parameter_sharing=self.parameter_sharing,
        )
        self._self_attention_layer.build(inputs_shape, inputs_shape)
        self._self_attention_layer_norm = self._layer_norm(
            "self_attention_layer_norm", inputs_shape
        )
        self._self_attention_dropout = self._dropout_layer(
            "self_attention_dropout"
        )
        self._feedforward_layer_norm = self._layer_norm(
            "feedforward_layer_norm", inputs_shape
        )
        self._build_feedforward_dense(inputs_shape)
        self._feedforward_dropout = self._dropout_layer("feedforward_dropout")
        self.built = True

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
        residual = inputs
        x = self._sublayer_input(inputs, self._self_attention_layer_norm)
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
        x = self._sublayer_output(
            x,
            residual,
            self._self_attention_layer_norm,
            self._self_attention_dropout,
            training,
        )
        x = self._feedforward(x, training)
        if return_attention_scores:
            return x, attention_scores
        return x

    def compute_output_shape(self, inputs_shape):
        return inputs_shape
