"""A long-document text classifier on a Linformer backbone."""

import keras
from keras_hub.models import TextClassifier

from keras_linformer.layers.attention_pooling import AttentionPooling1D
from keras_linformer.models.backbone_utils import check_vocabulary_fits
from keras_linformer.models.backbone_utils import single_text_inputs
from keras_linformer.models.linformer.linformer_backbone import LinformerBackbone
from keras_linformer.models.linformer.linformer_text_classifier_preprocessor import (  # noqa: E501
    LinformerTextClassifierPreprocessor,
)


POOLINGS = {
    "attention": AttentionPooling1D,
    "mean": keras.layers.GlobalAveragePooling1D,
}


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerTextClassifier(TextClassifier):
    """An end-to-end Linformer model for classifying (long) texts.

    Pools the backbone's hidden states over the real tokens (padding left
    out) and maps the pooled vector to `num_classes` logits. With a `preprocessor`
    the model takes raw strings in `fit()`, `evaluate()` and `predict()`; a
    saved preset loads with keras-hub's generic
    `keras_hub.models.TextClassifier.from_preset(path)` once
    `keras_linformer` is imported.

    A backbone converted from a pretrained BERT
    (`LinformerBackbone.from_transformer`) is fine-tuned the same way, with
    the source's tokenizer in the preprocessor; the classifier then gives
    every token segment id 0.

    Args:
        backbone: a `LinformerBackbone`.
        num_classes: int. The number of classes to predict.
        preprocessor: a `LinformerTextClassifierPreprocessor` or `None`. If
            `None`, inputs must already be token ids and padding masks.
            Defaults to `None`.
        activation: string or callable. The activation of the output; use
            `"softmax"` to return probabilities. Defaults to `None` (logits).
        dropout: float. Dropout on the pooled features. Defaults to `0.1`.
        pooling: string. How the hidden states become one vector:
            `"attention"` (a learned, content-based weighting of the tokens,
            `AttentionPooling1D`) or `"mean"` (their average). Linformer
            layers select by content only among the k slots of their
            position-indexed projection; attention pooling selects among all
            n tokens. Defaults to `"attention"`.
        **kwargs: other keyword arguments passed to
            `keras_hub.models.TextClassifier`.

    Example:

    ```python
    texts = ["A long report about markets ...", "The match ended 2-1 ..."]
    labels = [0, 1]
    tokenizer = keras_linformer.models.LinformerTokenizer.from_corpus(texts)
    preprocessor = keras_linformer.models.LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=512
    )
    backbone = keras_linformer.models.LinformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=512,
        projected_length=64,
    )
    classifier = keras_linformer.models.LinformerTextClassifier(
        backbone, num_classes=2, preprocessor=preprocessor
    )
    classifier.fit(x=texts, y=labels, batch_size=2)
    classifier.predict(["Shares fell ..."])
    classifier.save_to_preset("my_classifier")
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
    """

    backbone_cls = LinformerBackbone
    preprocessor_cls = LinformerTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.1,
        pooling="attention",
        **kwargs,
    ):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                "`num_classes` must be an integer of at least 2. Received: "
                f"num_classes={num_classes!r}"
            )
        if pooling not in POOLINGS:
            raise ValueError(
                f"`pooling` must be one of {tuple(POOLINGS)}. Received: "
                f"pooling={pooling!r}"
            )
        if preprocessor is not None:
            check_vocabulary_fits(preprocessor.tokenizer, backbone)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.pooler = POOLINGS[pooling](
            dtype=backbone.dtype_policy, name="pooler"
        )
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs, backbone_inputs = single_text_inputs(backbone)
        hidden = backbone(backbone_inputs)
        pooled = self.pooler(hidden, mask=inputs["padding_mask"])
        pooled = self.output_dropout(pooled)
        outputs = self.output_dense(pooled)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.pooling = pooling

    @classmethod
    def from_config(cls, config):
        # Classifiers saved before `pooling` existed averaged the tokens.
        return super().from_config({"pooling": "mean", **config})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config
