from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.models.linformer.linformer_byte_tokenizer import (
    LinformerByteTokenizer,
)
from keras_linformer.models.linformer.linformer_masked_lm import (
    LinformerMaskedLM,
)
from keras_linformer.models.linformer.linformer_masked_lm_preprocessor import (  # noqa: E501
    LinformerMaskedLMPreprocessor,
)
from keras_linformer.models.linformer.linformer_text_classifier import (
    LinformerTextClassifier,
)
from keras_linformer.models.linformer.linformer_text_classifier_preprocessor import (  # noqa: E501
    LinformerTextClassifierPreprocessor,
)
from keras_linformer.models.linformer.linformer_tokenizer import (
    LinformerTokenizer,
)
from keras_linformer.models.linformer_causal.linformer_causal_backbone import (
    LinformerCausalBackbone,
)
from keras_linformer.models.linformer_causal.linformer_causal_lm import (
    LinformerCausalLM,
)
from keras_linformer.models.linformer_causal.linformer_causal_lm_preprocessor import (  # noqa: E501
    LinformerCausalLMPreprocessor,
)
from keras_linformer.models.linformer_causal.linformer_causal_tokenizer import (  # noqa: E501
    LinformerCausalByteTokenizer,
)
from keras_linformer.models.linformer_causal.linformer_causal_tokenizer import (  # noqa: E501
    LinformerCausalTokenizer,
)
