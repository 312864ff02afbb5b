"""The Linformer encoder network: embeddings and Linformer encoder blocks."""

import keras
from keras_hub.models import Backbone

from keras_linformer.layers.linformer_encoder_block import LinformerEncoderBlock
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from keras_linformer.layers.validation import check_positive_int
from keras_linformer.models.backbone_utils import block_projection_arguments
from keras_linformer.models.backbone_utils import check_backbone_sizes
from keras_linformer.models.backbone_utils import check_parameter_sharing
from keras_linformer.models.backbone_utils import config_arguments
from keras_linformer.models.backbone_utils import embedded_inputs
from keras_linformer.models.backbone_utils import per_layer_lengths
from keras_linformer.models.backbone_utils import with_max_sequence_length
from keras_linformer.models.linformer.transformer_conversion import (
    convert_backbone,
)
from keras_linformer.models.preset_dtype import VariableDtypePresetMixin


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerBackbone(VariableDtypePresetMixin, Backbone):
    """A Linformer encoder network for long sequences.

    Token and position (and optionally segment) embeddings followed by
    `num_layers`
    `LinformerEncoderBlock`s, whose self-attention compresses the `n` keys and
    values to `k` slots, so the cost grows linearly with the sequence length.
    The output is the sequence of hidden states, `(batch, length,
    hidden_dim)`; tasks such as `LinformerTextClassifier` add a head.

    Inputs are a dictionary with `"token_ids"` and `"padding_mask"` (1 at real
    tokens, 0 at padding), like keras-hub backbones, and with `num_segments`
    also `"segment_ids"`, like `keras_hub.models.BertBackbone`. Sequences may
    be shorter than `max_sequence_length`, never longer.

    `LinformerBackbone.from_transformer(source, ...)` converts a pretrained
    keras-hub BERT, RoBERTa or DistilBERT backbone, every weight copied.

    Args:
        vocabulary_size: int. The size of the token vocabulary.
        num_layers: int. The number of Linformer encoder blocks.
        num_heads: int. The number of attention heads; `hidden_dim` must be
            divisible by it.
        hidden_dim: int. The size of the embeddings and hidden states.
        intermediate_dim: int. The hidden size of each block's feedforward
            network.
        max_sequence_length: int. The largest sequence length n the position
            embedding and the projections cover. Defaults to `512`.
        projected_length: int or list of ints. The number of slots k the
            keys and values are compressed to: one int for every layer, or one
            per layer (the paper's nonuniform k, e.g. larger k in higher
            layers). Defaults to `128`.
        projection: string. How n becomes k: `"linear"`, `"mean_pool"`,
            `"max_pool"`, `"conv"` or `"adaptive_mean_pool"` (see
            `SequenceProjection`). Defaults to `"linear"`.
        parameter_sharing: string. `"none"` (a projection per head),
            `"headwise"` (one for keys and one for values per layer),
            `"key_value"` (one per layer for keys and values) or
            `"layerwise"` (one for every layer, stored once). Defaults to
            `"headwise"`.
        dropout: float. Dropout on the embeddings and inside the blocks.
            Defaults to `0.1`.
        num_segments: int or `None`. The number of segment types (BERT's
            token types) to embed from a `"segment_ids"` input, or `None` for
            no segment embedding and no such input. Defaults to `None`.
        layer_norm_epsilon: float. The epsilon of every layer
            normalization. Defaults to `1e-5`.
        activation: string or callable. The feedforward activation.
            Defaults to `"gelu"`.
        dtype: string or `keras.DTypePolicy`. The dtype of the computations
            and weights. Defaults to the global policy.
        **kwargs: other keyword arguments passed to `keras_hub.models.Backbone`,
            such as `name`.

    Example:

    ```python
    backbone = keras_linformer.models.LinformerBackbone(
        vocabulary_size=8000,
        num_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=256,
        max_sequence_length=2048,
        projected_length=[64, 128],
    )
    hidden = backbone(
        {
            "token_ids": np.ones((1, 2048), "int32"),
            "padding_mask": np.ones((1, 2048), "int32"),
        }
    )  # (1, 2048, 128)
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        projected_length=128,
        projection="linear",
        parameter_sharing="headwise",
        dropout=0.1,
        num_segments=None,
        layer_norm_epsilon=1e-5,
        activation="gelu",
        dtype=None,
        **kwargs,
    ):
        check_backbone_sizes(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            max_sequence_length=max_sequence_length,
        )
        if projection not in PROJECTION_KINDS:
            raise ValueError(
                f"`projection` must be one of {PROJECTION_KINDS}. Received: "
                f"projection={projection!r}"
            )
        check_parameter_sharing(parameter_sharing)
        if num_segments is not None:
            check_positive_int("num_segments", num_segments)

        # === Embeddings ===
        inputs, x = embedded_inputs(
            self,
            vocabulary_size,
            hidden_dim,
            max_sequence_length,
            dropout,
            dtype,
            layer_norm_epsilon=layer_norm_epsilon,
            num_segments=num_segments,
        )

        # === Layers ===
        block_projections = block_projection_arguments(
            self,
            max_sequence_length,
            per_layer_lengths(projected_length, num_layers, parameter_sharing),
            projection,
            parameter_sharing,
            dtype,
        )
        self.transformer_layers = [
            LinformerEncoderBlock(
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                dropout=dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=dtype,
                name=f"transformer_layer_{index}",
                **block_projection,
            )
            for index, block_projection in enumerate(block_projections)
        ]

        # === Functional Model ===
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, padding_mask=inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.projected_length = projected_length
        self.projection = projection
        self.parameter_sharing = parameter_sharing
        self.dropout = dropout
        self.num_segments = num_segments
        self.layer_norm_epsilon = layer_norm_epsilon
        self.activation = keras.activations.get(activation)

    @classmethod
    def from_transformer(
        cls,
        source,
        max_sequence_length=None,
        projected_length=128,
        projection="adaptive_mean_pool",
        parameter_sharing="headwise",
        dropout=None,
    ):
        """A Linformer with the pretrained weights of a keras-hub Transformer.

        Converts a `keras_hub.models.BertBackbone` (all-MiniLM-L6-v2 is
        one), `RobertaBackbone` or `DistilBertBackbone`: the token, segment
        and position embeddings, the embedding layer norm and every block's
        attention, feedforward and layer-norm weights are copied, with the
        source's activation and epsilon. Only the sequence projections are
        new. Each of the k slots starts as the mean of the keys (values) of
        a window of neighbouring positions, a coarser view of what the
        pretrained queries were trained on, and with `projected_length ==
        max_sequence_length` the converted backbone computes the source's
        `sequence_output` exactly.

        The default, `"adaptive_mean_pool"`, adds no weights and sizes the
        windows to each document's real length L (L / k positions, or one
        position per slot when L <= k): a document of at most k tokens is
        not compressed at all, at any n, and a longer one fills all k slots.
        `"mean_pool"`, `"conv"` and `"linear"` use fixed windows of
        `w = ceil(n / k)` positions. `"mean_pool"` adds no weights, and
        `"conv"` learns one window kernel; both know which slots hold only
        padding from the window layout, so a short document attends to its
        own slots however long n is, before and after training. A
        `"linear"` projection starts with `E[t, j] = 1 / w` inside window j
        and 0 elsewhere; its empty slots are masked only while those zeros
        last, and training makes them nonzero: the slots of a short
        document's padding then take part in attention with keys near zero
        and dilute it.

        Any `max_sequence_length` works: a shorter one keeps the first rows
        of the source's position table, a longer one repeats the table
        (the Longformer recipe), to be told apart by fine-tuning. Use the
        source's tokenizer (`keras_hub.tokenizers.Tokenizer.from_preset` of
        the source) with `LinformerTextClassifierPreprocessor`.

        Args:
            source: the pretrained keras-hub backbone.
            max_sequence_length: int. The sequence length n of the Linformer.
                Defaults to the source's `max_sequence_length`.
            projected_length: int or list of ints. k; see the class.
                Defaults to `128`.
            projection: string. See the class. Defaults to
                `"adaptive_mean_pool"`.
            parameter_sharing: string. See the class. Defaults to
                `"headwise"`.
            dropout: float. Defaults to the source's dropout.

        Returns:
            A `LinformerBackbone` with the source's weights and dtype.

        Example:

        ```python
        bert = keras_hub.models.BertBackbone.from_preset(
            "bert_tiny_en_uncased"
        )
        linformer = keras_linformer.models.LinformerBackbone.from_transformer(
            bert, max_sequence_length=2048, projected_length=256
        )
        ```
        """
        options = dict(
            max_sequence_length=max_sequence_length,
            projected_length=projected_length,
            projection=projection,
            parameter_sharing=parameter_sharing,
            dropout=dropout,
        )
        return convert_backbone(cls, source, options)

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_max_sequence_length(config))

    def get_config(self):
        config = super().get_config()
        config.update(config_arguments(self))
        config.update(
            {
                "num_segments": self.num_segments,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
