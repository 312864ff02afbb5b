"""A Transformer encoder block with Linformer self-attention."""

import keras

from keras_linformer.backend_utils import keras_mask
from keras_linformer.layers._block_parts import LinformerBlockBase
from keras_linformer.layers.linformer_attention import LinformerAttention
from keras_linformer.layers.sequence_projection import SequenceProjection


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
        sequence_length = self.sequence_length
        if sequence_length is None and not isinstance(
            self.projection, SequenceProjection
        ):
            sequence_length = self._static_length(
                inputs_shape, "sequence_length", "inputs"
            )
        (
            self._self_attention_layer,
            self._self_attention_layer_norm,
            self._self_attention_dropout,
        ) = self._attention_sublayer(
            "self_attention_layer",
            inputs_shape,
            inputs_shape,
            LinformerAttention,
            sequence_length=sequence_length,
            projected_length=self.projected_length,
            projection=self.projection,
            parameter_sharing=self.parameter_sharing,
        )
        self._build_feedforward(inputs_shape)
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
        x, attention_scores = self._attention_residual(
            inputs,
            self._self_attention_layer,
            self._self_attention_layer_norm,
            self._self_attention_dropout,
            training,
            value_mask=padding_mask,
            attention_mask=attention_mask,
            return_attention_scores=return_attention_scores,
        )
        x = self._feedforward(x, training)
        return (x, attention_scores) if return_attention_scores else x

    def compute_output_shape(self, inputs_shape):
        return inputs_shape
