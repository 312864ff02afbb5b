"""A Transformer decoder block with causal Linformer self-attention."""

import keras

from keras_linformer.backend_utils import keras_mask
from keras_linformer.layers.causal_linformer_attention import (
    check_causal_projection,
)
from keras_linformer.layers.sequence_projection import SequenceProjection
from keras_linformer.layers.transformer_block_parts import LinformerBlockBase


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerDecoderBlock(LinformerBlockBase):
    """Transformer decoder block with linear-complexity causal attention.

    An alternative to `keras_hub.layers.TransformerDecoder` with the same
    arguments and residual/normalization layout. Self-attention is causal
    Linformer attention (`LinformerAttention(causal=True)`): each query sees
    the exact keys of its own chunk of `chunk_size` positions and
    `projected_length` summaries of the chunks before it, so training costs
    O(n (k + C)) and decoding carries a fixed-size state of k + C slots per
    layer instead of a key/value cache that grows with the sequence.

    Called with an `encoder_sequence` when first built, the block also has
    cross-attention to it, through the ordinary (non-causal) Linformer
    projection of the encoder sequence. It is recomputed at every decoding
    step (the encoder is compressed to k slots, so that is cheap).

    Args:
        intermediate_dim: int. The hidden size of the feedforward network.
        num_heads: int. The number of attention heads.
        sequence_length: int. The largest decoder sequence length n.
            Defaults to the length of the shape the block is built with.
        projected_length: int. The number of summary slots k. Not needed when
            `projection` is a layer.
        chunk_size: int. The chunk length C. Defaults to `projected_length`.
        encoder_sequence_length: int. The largest encoder sequence length for
            cross-attention. Defaults to the length of the encoder shape the
            block is built with.
        dropout: float. Dropout for attention weights, the attention outputs
            and the feedforward output. Defaults to `0.`.
        activation: string or callable. The feedforward activation. Defaults
            to `"relu"`.
        layer_norm_epsilon: float. Epsilon of the layer normalizations.
            Defaults to `1e-5`.
        kernel_initializer: initializer for the dense kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer for the dense biases. Defaults to
            `"zeros"`.
        normalize_first: bool. If True, normalize the inputs of each sublayer
            (like GPT-2); otherwise their outputs. Defaults to `False`.
        projection: string or `SequenceProjection`. The self-attention
            projection: `"linear"` or `"mean_pool"`, or a shared
            `SequenceProjection` layer of one of these kinds (layerwise
            sharing). Cross-attention uses the same kind. Defaults to
            `"linear"`.
        parameter_sharing: string. See `LinformerAttention`. Defaults to
            `"headwise"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        decoder_sequence: `(batch, T, hidden_dim)` decoder input.
        encoder_sequence: optional `(batch, S, hidden_dim)` encoder output.
        decoder_padding_mask: optional boolean `(batch, T)` mask.
        decoder_attention_mask: optional boolean `(batch, T, T)` mask that is
            the same for every query (a padding mask).
        encoder_padding_mask: optional boolean `(batch, S)` mask.
        encoder_attention_mask: optional boolean `(batch, T, S)` mask that is
            the same for every query.
        self_attention_cache: optional `(batch, 2, k + C, num_heads,
            head_dim)` decoding state; then `decoder_sequence` holds the one
            token at `self_attention_cache_update_index` and the call returns
            `(outputs, self_attention_cache)`.
        self_attention_cache_update_index: int or int tensor, that token's
            position.
        use_causal_mask: bool. Whether self-attention is causal. Defaults to
            `True`.
        training: Python boolean, whether dropout is active.

    Example:

    ```python
    decoder = keras_linformer.layers.LinformerDecoderBlock(
        intermediate_dim=256, num_heads=4, projected_length=64
    )
    outputs = decoder(np.random.normal(size=(2, 1024, 128)))
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
        chunk_size=None,
        encoder_sequence_length=None,
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
        super().__init__(
            intermediate_dim=intermediate_dim,
            num_heads=num_heads,
            sequence_length=sequence_length,
            projected_length=projected_length,
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            normalize_first=normalize_first,
            projection=projection,
            parameter_sharing=parameter_sharing,
            **kwargs,
        )
        check_causal_projection(
            self.projection.kind
            if isinstance(self.projection, SequenceProjection)
            else self.projection
        )
        self.chunk_size = chunk_size
        self.encoder_sequence_length = encoder_sequence_length

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        head_dim = self._head_dim(decoder_sequence_shape[-1])
        shared = isinstance(self.projection, SequenceProjection)
        sequence_length = self.sequence_length
        if sequence_length is None and not shared:
            sequence_length = _known_length(
                decoder_sequence_shape, "sequence_length", "decoder"
            )
        self._self_attention_layer = self._attention_layer(
            "self_attention",
            head_dim,
            sequence_length=sequence_length,
            projected_length=self.projected_length,
            chunk_size=self.chunk_size,
            projection=self.projection,
            parameter_sharing=self.parameter_sharing,
        )
        self._self_attention_layer.build(
            decoder_sequence_shape, decoder_sequence_shape
        )
        self._self_attention_layer_norm = self._layer_norm(
            "self_attention_layer_norm", decoder_sequence_shape
        )
        self._self_attention_dropout = self._dropout_layer(
            "self_attention_dropout"
        )
        self._cross_attention_layer = None
        if encoder_sequence_shape is not None:
            encoder_length = self.encoder_sequence_length
            if encoder_length is None:
                encoder_length = _known_length(
                    encoder_sequence_shape, "encoder_sequence_length",
                    "encoder",
                )
            kind = (
                self.projection.kind if shared else self.projection
            )
            self._cross_attention_layer = self._attention_layer(
                "cross_attention",
                head_dim,
                sequence_length=encoder_length,
                projected_length=min(
                    self._self_attention_layer.projected_length,
                    encoder_length,
                ),
                projection=kind,
                parameter_sharing=(
                    "key_value" if shared else self.parameter_sharing
                ),
            )
            self._cross_attention_layer.build(
                decoder_sequence_shape, encoder_sequence_shape
            )
            self._cross_attention_layer_norm = self._layer_norm(
                "cross_attention_layer_norm", decoder_sequence_shape
            )
            self._cross_attention_dropout = self._dropout_layer(
                "cross_attention_dropout"
            )
        self._build_feedforward_dense(decoder_sequence_shape)
        self._feedforward_layer_norm = self._layer_norm(
            "feedforward_layer_norm", decoder_sequence_shape
        )
        self._feedforward_dropout = self._dropout_layer("feedforward_dropout")
        self.built = True

    def cache_shape(self, batch_size):
        """The fixed shape of this block's `self_attention_cache`."""
        attention = self._self_attention_layer
        return (
            batch_size,
            2,
            attention.projected_length + attention.chunk_size,
            self.num_heads,
            attention.key_dim,
        )

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        use_causal_mask=True,
        training=None,
    ):
        has_cross_attention = self._cross_attention_layer is not None
        if has_cross_attention != (encoder_sequence is not None):
            raise ValueError(
                "LinformerDecoderBlock was built "
                + ("with" if has_cross_attention else "without")
                + " cross-attention, so `encoder_sequence` must "
                + ("" if has_cross_attention else "not ")
                + "be given. Call the block as it was first called: "
                "`block(decoder_sequence, encoder_sequence)` or "
                "`block(decoder_sequence)`."
            )
        if self_attention_cache is not None and not use_causal_mask:
            raise ValueError(
                "The decoding cache holds causal self-attention state; it "
                "cannot be used with `use_causal_mask=False`."
            )
        if decoder_padding_mask is None:
            decoder_padding_mask = keras_mask(decoder_sequence)
        residual = decoder_sequence
        x = self._sublayer_input(
            decoder_sequence, self._self_attention_layer_norm
        )
        attention = self._self_attention_layer(
            query=x,
            value=x,
            value_mask=decoder_padding_mask,
            attention_mask=decoder_attention_mask,
            use_causal_mask=use_causal_mask,
            cache=self_attention_cache,
            cache_update_index=self_attention_cache_update_index,
            training=training,
        )
        if self_attention_cache is None:
            x = attention
        else:
            x, self_attention_cache = attention
        x = self._sublayer_output(
            x,
            residual,
            self._self_attention_layer_norm,
            self._self_attention_dropout,
            training,
        )

        if has_cross_attention:
            if encoder_padding_mask is None:
                encoder_padding_mask = keras_mask(encoder_sequence)
            residual = x
            x = self._sublayer_input(x, self._cross_attention_layer_norm)
            x = self._cross_attention_layer(
                query=x,
                value=encoder_sequence,
                value_mask=encoder_padding_mask,
                attention_mask=encoder_attention_mask,
                training=training,
            )
            x = self._sublayer_output(
                x,
                residual,
                self._cross_attention_layer_norm,
                self._cross_attention_dropout,
                training,
            )

        x = self._feedforward(x, training)
        if self_attention_cache is not None:
            return x, self_attention_cache
        return x

    def compute_output_shape(
        self, decoder_sequence_shape, encoder_sequence_shape=None
    ):
        return decoder_sequence_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "chunk_size": self.chunk_size,
                "encoder_sequence_length": self.encoder_sequence_length,
            }
        )
        return config


def _known_length(shape, argument, name):
    """The static length of a `(batch, length, dim)` shape, or an error."""
    if shape[1] is None:
        raise ValueError(
            f"LinformerDecoderBlock needs `{argument}` when it is built on a "
            f"variable-length {name} shape. Received: {name}_shape="
            f"{tuple(shape)}"
        )
    return shape[1]
