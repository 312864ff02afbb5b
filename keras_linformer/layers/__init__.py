"""Linformer layers: the sequence projection, attention and Transformer blocks."""

from keras_linformer.layers.attention_pooling import AttentionPooling1D
from keras_linformer.layers.linformer_attention import LinformerAttention
from keras_linformer.layers.linformer_decoder_block import LinformerDecoderBlock
from keras_linformer.layers.linformer_encoder_block import LinformerEncoderBlock
from keras_linformer.layers.sequence_projection import SequenceProjection
