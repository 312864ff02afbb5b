"""Linformer layers.

Public classes:

- `SequenceProjection`: the Linformer E/F projection, n positions to k slots.
- `LinformerAttention`: multi-head attention over the projected keys and
  values, a drop-in alternative to `keras.layers.MultiHeadAttention`.
- `CausalLinformerAttention`: causal self-attention in chunks, with a
  fixed-size decoding cache.
- `LinformerEncoderBlock`, `LinformerDecoderBlock`: Transformer blocks.
- `AttentionPooling1D`: a sequence to one vector, weighted by content.

Modules whose names start with `_` are internal.
"""

from keras_linformer.layers.attention_pooling import AttentionPooling1D
from keras_linformer.layers.causal_linformer_attention import (
    CausalLinformerAttention,
)
from keras_linformer.layers.linformer_attention import LinformerAttention
from keras_linformer.layers.linformer_decoder_block import LinformerDecoderBlock
from keras_linformer.layers.linformer_encoder_block import LinformerEncoderBlock
from keras_linformer.layers.sequence_projection import SequenceProjection
