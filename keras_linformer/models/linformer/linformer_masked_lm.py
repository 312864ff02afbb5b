"""Masked-token pretraining of a Linformer encoder."""

import keras
from keras_hub.layers import MaskedLMHead
from keras_hub.models import MaskedLM

from keras_linformer.models.backbone_utils import check_vocabulary_fits
from keras_linformer.models.backbone_utils import single_text_inputs
from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.models.linformer.linformer_masked_lm_preprocessor import (  # noqa: E501
    LinformerMaskedLMPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerMaskedLM(MaskedLM):
    """A Linformer encoder trained to recover masked tokens (BERT's task).

    A `keras_hub.models.MaskedLM` over a `LinformerBackbone`: the hidden
    states at `mask_positions` go through a dense layer with GELU, a layer
    normalization and the transposed token embedding (tied to the
    backbone's), giving logits `(batch, mask_selection_length,
    vocabulary_size)`: predictions only at the masked positions. With a
    `LinformerMaskedLMPreprocessor`, `fit()` takes raw strings and masks them
    anew every epoch; `compile()` defaults to sparse cross-entropy on the
    logits, weighted so padded mask positions do not count, and reports the
    masked-token accuracy.

    Use it to pretrain a Linformer from scratch on your own text, or to go on
    pretraining a converted checkpoint (`LinformerBackbone.from_transformer`,
    with the checkpoint's tokenizer, e.g. a `keras_hub.models.BertTokenizer`)
    at its new, longer length, so its sequence projections and new position
    embeddings adapt before fine-tuning; then build a task such as
    `LinformerTextClassifier` on `masked_lm.backbone`. Every token is in
    segment 0 for a converted backbone with segment embeddings.
    `keras_hub.models.MaskedLM.from_preset(directory)` loads a preset saved
    with `save_to_preset` once `keras_linformer` is imported.

    Args:
        backbone: a `LinformerBackbone`.
        preprocessor: a `LinformerMaskedLMPreprocessor` or `None`. If `None`,
            inputs must be dictionaries of `"token_ids"`, `"padding_mask"`
            and `"mask_positions"`, and labels the original tokens at those
            positions. Defaults to `None`.
        **kwargs: other keyword arguments passed to
            `keras_hub.models.MaskedLM`.

    Example:

    ```python
    texts = ["The quick brown fox jumped.", "The lazy dog slept."]
    tokenizer = keras_linformer.models.LinformerTokenizer.from_corpus(
        texts, vocabulary_size=200
    )
    preprocessor = keras_linformer.models.LinformerMaskedLMPreprocessor(
        tokenizer, sequence_length=32
    )
    backbone = keras_linformer.models.LinformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=32,
        projected_length=8,
    )
    masked_lm = keras_linformer.models.LinformerMaskedLM(backbone, preprocessor)
    masked_lm.compile(optimizer=keras.optimizers.Adam(1e-3))
    masked_lm.fit(texts, batch_size=2, epochs=1)
    masked_lm.save_to_preset("pretrained")  # a backbone to fine-tune
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
     - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    backbone_cls = LinformerBackbone
    preprocessor_cls = LinformerMaskedLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if preprocessor is not None:
            check_sequence_length_fits(preprocessor, backbone)
            check_vocabulary_fits(preprocessor.tokenizer, backbone)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation="gelu",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )

        # === Functional Model ===
        inputs, backbone_inputs = single_text_inputs(backbone)
        inputs = {
            **inputs,
            "mask_positions": keras.Input(
                shape=(None,), dtype="int32", name="mask_positions"
            ),
        }
        hidden_states = backbone(backbone_inputs)
        outputs = self.masked_lm_head(hidden_states, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)


def check_sequence_length_fits(preprocessor, backbone):
    """Raises a ValueError when `preprocessor` packs sequences longer than
    `backbone` covers."""
    if preprocessor.sequence_length > backbone.max_sequence_length:
        raise ValueError(
            "The preprocessor's `sequence_length` must not exceed the "
            "backbone's `max_sequence_length`. Received: "
            f"sequence_length={preprocessor.sequence_length}, "
            f"max_sequence_length={backbone.max_sequence_length}"
        )
