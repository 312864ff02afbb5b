"""A Transformer decoder block with causal Linformer self-attention."""

import keras

from keras_linformer.backend_utils import keras_mask
from keras_linformer.layers._block_parts import LinformerBlockBase
from keras_linformer.layers.causal_linformer_attention import (
    CausalLinformerAttention,
)
from keras_linformer.layers.linformer_attention import LinformerAttention
from keras_linformer.layers.sequence_projection import SequenceProjection
from keras_linformer.layers.sequence_projection import check_causal_projection


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerDecoderBlock(LinformerBlockBase):
    """Transformer decoder block with linear-complexity causal attention.

    An alternative to `keras_hub.layers.TransformerDecoder` with the same
    arguments and residual/normalization layout. Self-attention is causal
    Linformer attention (`CausalLinformerAttention`): each query sees
    the exact keys of its own chunk of `chunk_size` positions and
    `projected_length` summaries of the chunks before it, so training costs
    O(n (k + C)) and decoding carries a fixed-size state of k + C slots per
    layer instead of a key/value cache that grows with the sequence.

    Called with an `encoder_sequence` when first built, the block also has
    cross-attention to it, through the ordinary (non-causal) Linformer
    projection of the encoder sequence. When decoding, compute its
    compressed keys and values once (`compute_cross_attention_cache`) and pass
    them as `cross_attention_cache` at every step.

    Args:
        chunk_size: int. The chunk length C of causal self-attention.
            Defaults to `projected_length`.
        encoder_sequence_length: int. The largest encoder sequence length for
            cross-attention. Defaults to the length of the encoder shape the
            block is built with.
        **kwargs: the arguments of `LinformerEncoderBlock` (`intermediate_dim`,
            `num_heads`, `sequence_length`, `projected_length`, `dropout`,
            `activation`, `layer_norm_epsilon`, `kernel_initializer`,
            `bias_initializer`, `normalize_first`, `projection`,
            `parameter_sharing`) and of `keras.layers.Layer`. `projection`
            must have a causal form: `"linear"` or `"mean_pool"`, or a shared
            `SequenceProjection` of one of these kinds; cross-attention uses
            the same kind.

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
            position: a scalar, or `(batch,)` for one position per row.
        return_self_attention_cache: bool. If True (a whole sequence, no
            `self_attention_cache`), also return the decoding state after
            each row's real positions (right padding): `(outputs,
            self_attention_cache)`, the prefill of a prompt. Defaults to
            `False`.
        cross_attention_cache: optional tuple from
            `compute_cross_attention_cache`: the compressed encoder keys and
            values to attend to instead of projecting `encoder_sequence`
            (and its masks) again.
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
        self, *args, chunk_size=None, encoder_sequence_length=None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        check_causal_projection(self.projection)
        self.chunk_size = chunk_size
        self.encoder_sequence_length = encoder_sequence_length

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        shared = isinstance(self.projection, SequenceProjection)
        sequence_length = self.sequence_length
        if sequence_length is None and not shared:
            sequence_length = self._static_length(
                decoder_sequence_shape, "sequence_length", "decoder"
            )
        (
            self._self_attention_layer,
            self._self_attention_layer_norm,
            self._self_attention_dropout,
        ) = self._attention_sublayer(
            "self_attention",
            decoder_sequence_shape,
            decoder_sequence_shape,
            CausalLinformerAttention,
            sequence_length=sequence_length,
            projected_length=self.projected_length,
            chunk_size=self.chunk_size,
            projection=self.projection,
            parameter_sharing=self.parameter_sharing,
        )
        self._cross_attention_layer = None
        if encoder_sequence_shape is not None:
            encoder_length = self.encoder_sequence_length
            if encoder_length is None:
                encoder_length = self._static_length(
                    encoder_sequence_shape, "encoder_sequence_length", "encoder"
                )
            (
                self._cross_attention_layer,
                self._cross_attention_layer_norm,
                self._cross_attention_dropout,
            ) = self._attention_sublayer(
                "cross_attention",
                decoder_sequence_shape,
                encoder_sequence_shape,
                LinformerAttention,
                sequence_length=encoder_length,
                projected_length=min(
                    self._self_attention_layer.projected_length, encoder_length
                ),
                projection=self.projection.kind if shared else self.projection,
                parameter_sharing=(
                    "key_value" if shared else self.parameter_sharing
                ),
            )
        self._build_feedforward(decoder_sequence_shape)
        self.built = True

    def cache_shape(self, batch_size):
        """The fixed shape of this block's `self_attention_cache`."""
        return self._self_attention_layer.cache_shape(batch_size)

    def compute_cross_attention_cache(
        self,
        encoder_sequence,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
    ):
        """The compressed encoder keys and values of cross-attention, to
        pass as `cross_attention_cache` at every decoding step.

        Args:
            encoder_sequence, encoder_padding_mask, encoder_attention_mask:
                as in `call`.

        Returns:
            The `(key, value, slot_mask)` tuple of
            `LinformerAttention.compressed_key_value`.
        """
        if self._cross_attention_layer is None:
            raise ValueError(
                "LinformerDecoderBlock was built without cross-attention, so "
                "it has no cross-attention cache. Build it with an "
                "`encoder_sequence`: `block(decoder_sequence, "
                "encoder_sequence)`."
            )
        if encoder_padding_mask is None:
            encoder_padding_mask = keras_mask(encoder_sequence)
        return self._cross_attention_layer.compressed_key_value(
            encoder_sequence,
            value_mask=encoder_padding_mask,
            attention_mask=encoder_attention_mask,
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
        return_self_attention_cache=False,
        cross_attention_cache=None,
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
        if decoder_padding_mask is None:
            decoder_padding_mask = keras_mask(decoder_sequence)
        x, self_attention_cache = self._attention_residual(
            decoder_sequence,
            self._self_attention_layer,
            self._self_attention_layer_norm,
            self._self_attention_dropout,
            training,
            value_mask=decoder_padding_mask,
            attention_mask=decoder_attention_mask,
            use_causal_mask=use_causal_mask,
            cache=self_attention_cache,
            cache_update_index=self_attention_cache_update_index,
            return_cache=return_self_attention_cache,
        )
        if has_cross_attention:
            if encoder_padding_mask is None:
                encoder_padding_mask = keras_mask(encoder_sequence)
            x, _ = self._attention_residual(
                x,
                self._cross_attention_layer,
                self._cross_attention_layer_norm,
                self._cross_attention_dropout,
                training,
                value=encoder_sequence,
                value_mask=encoder_padding_mask,
                attention_mask=encoder_attention_mask,
                key_value_cache=cross_attention_cache,
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

