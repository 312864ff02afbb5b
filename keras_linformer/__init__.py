"""keras-linformer: Linformer attention, blocks and models for Keras 3."""

from keras_linformer import layers
from keras_linformer.layers import LinformerAttention
from keras_linformer.layers import LinformerEncoderBlock
from keras_linformer.layers import SequenceProjection

__version__ = "0.1.0"
