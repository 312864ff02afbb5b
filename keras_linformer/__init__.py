"""keras-linformer: Linformer attention, blocks and models for Keras 3."""

from keras_linformer import layers
from keras_linformer.layers import AttentionPooling1D
from keras_linformer.layers import CausalLinformerAttention
from keras_linformer.layers import LinformerAttention
from keras_linformer.layers import LinformerDecoderBlock
from keras_linformer.layers import LinformerEncoderBlock
from keras_linformer.layers import SequenceProjection
from keras_linformer import models
from keras_linformer import export
from keras_linformer.models import LinformerBackbone
from keras_linformer.models import LinformerByteTokenizer
from keras_linformer.models import LinformerCausalBackbone
from keras_linformer.models import LinformerCausalByteTokenizer
from keras_linformer.models import LinformerCausalLM
from keras_linformer.models import LinformerCausalLMPreprocessor
from keras_linformer.models import LinformerCausalTokenizer
from keras_linformer.models import LinformerMaskedLM
from keras_linformer.models import LinformerMaskedLMPreprocessor
from keras_linformer.models import LinformerTextClassifier
from keras_linformer.models import LinformerTextClassifierPreprocessor
from keras_linformer.models import LinformerTokenizer

__version__ = "0.1.0"
