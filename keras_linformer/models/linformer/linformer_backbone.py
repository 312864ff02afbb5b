"""The Linformer encoder network: embeddings and Linformer encoder blocks."""

import keras
from keras_hub.models import Backbone

from keras_linformer.layers.linformer_attention import (
    BACKBONE_PARAMETER_SHARING as PARAMETER_SHARING,
)
from keras_linformer.layers.linformer_encoder_block import LinformerEncoderBlock
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from keras_linformer.layers.sequence_projection import SequenceProjection
from keras_linformer.layers.validation import check_positive_int
from keras_linformer.models.linformer.linformer_embeddings import (
    embedded_inputs,
)

# The constructor arguments both Linformer backbones keep in their configs.
CONFIG_ARGUMENTS = (
    "vocabulary_size",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "sequence_length",
    "projected_length",
    "projection",
    "parameter_sharing",
    "dropout",
)


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerBackbone(Backbone):
    """A Linformer encoder network for long sequences.

    Token and position embeddings followed by `num_layers`
    `LinformerEncoderBlock`s, whose self-attention compresses the `n` keys and
    values to `k` slots, so the cost grows linearly with the sequence length.
    The output is the sequence of hidden states, `(batch, length,
    hidden_dim)`; tasks such as `LinformerTextClassifier` add a head.

    Inputs are a dictionary with `"token_ids"` and `"padding_mask"` (1 at real
    tokens, 0 at padding), like keras-hub backbones. Sequences may be shorter
    than `sequence_length`, never longer.

    Args:
        vocabulary_size: int. The size of the token vocabulary.
        num_layers: int. The number of Linformer encoder blocks.
        num_heads: int. The number of attention heads; `hidden_dim` must be
            divisible by it.
        hidden_dim: int. The size of the embeddings and hidden states.
        intermediate_dim: int. The hidden size of each block's feedforward
            network.
        sequence_length: int. The largest sequence length n the position
            embedding and the projections cover. Defaults to `512`.
        projected_length: int or list of ints. The number of slots k the
            keys and values are compressed to: one int for every layer, or one
            per layer (the paper's nonuniform k, e.g. larger k in higher
            layers). Defaults to `128`.
        projection: string. How n becomes k: `"linear"`, `"mean_pool"`,
            `"max_pool"` or `"conv"` (see `SequenceProjection`). Defaults to
            `"linear"`.
        parameter_sharing: string. `"none"` (a projection per head),
            `"headwise"` (one for keys and one for values per layer),
            `"key_value"` (one per layer for keys and values) or
            `"layerwise"` (one for every layer, stored once). Defaults to
            `"headwise"`.
        dropout: float. Dropout on the embeddings and inside the blocks.
            Defaults to `0.1`.
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
        sequence_length=2048,
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
        sequence_length=512,
        projected_length=128,
        projection="linear",
        parameter_sharing="headwise",
        dropout=0.1,
        dtype=None,
        **kwargs,
    ):
        check_backbone_sizes(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            sequence_length=sequence_length,
        )
        if projection not in PROJECTION_KINDS:
            raise ValueError(
                f"`projection` must be one of {PROJECTION_KINDS}. Received: "
                f"projection={projection!r}"
            )
        check_parameter_sharing(parameter_sharing)
        layer_projected_lengths = per_layer_lengths(
            projected_length, num_layers, parameter_sharing
        )

        # === Embeddings ===
        inputs, x = embedded_inputs(
            self,
            vocabulary_size,
            hidden_dim,
            sequence_length,
            dropout,
            dtype,
            layer_norm=True,
        )

        # === Layers ===
        self.shared_projection = None
        if parameter_sharing == "layerwise":
            # One E for keys and values of every layer: the blocks receive
            # this layer itself, so its weights exist (and are saved) once.
            self.shared_projection = SequenceProjection(
                sequence_length=sequence_length,
                projected_length=layer_projected_lengths[0],
                kind=projection,
                dtype=dtype,
                name="shared_projection",
            )
        self.transformer_layers = []
        for index, layer_projected_length in enumerate(layer_projected_lengths):
            if self.shared_projection is None:
                block_lengths = {
                    "sequence_length": sequence_length,
                    "projected_length": layer_projected_length,
                }
                block_projection = projection
                block_sharing = parameter_sharing
            else:
                block_lengths = {}
                block_projection = self.shared_projection
                block_sharing = "key_value"
            self.transformer_layers.append(
                LinformerEncoderBlock(
                    intermediate_dim=intermediate_dim,
                    num_heads=num_heads,
                    dropout=dropout,
                    activation="gelu",
                    projection=block_projection,
                    parameter_sharing=block_sharing,
                    dtype=dtype,
                    name=f"transformer_layer_{index}",
                    **block_lengths,
                )
            )

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
        self.sequence_length = sequence_length
        self.projected_length = projected_length
        self.projection = projection
        self.parameter_sharing = parameter_sharing
        self.dropout = dropout

    def get_config(self):
        config = super().get_config()
        config.update(config_arguments(self))
        return config


def config_arguments(backbone, names=CONFIG_ARGUMENTS):
    """The constructor arguments `names` of `backbone`, for `get_config`.

    The backbones keep each argument as an attribute of the same name.
    """
    return {name: getattr(backbone, name) for name in names}


def check_backbone_sizes(
    vocabulary_size,
    num_layers,
    num_heads,
    hidden_dim,
    intermediate_dim,
    sequence_length,
):
    """Raises a ValueError unless the sizes make a valid backbone."""
    for name, value in (
        ("vocabulary_size", vocabulary_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
        ("hidden_dim", hidden_dim),
        ("intermediate_dim", intermediate_dim),
        ("sequence_length", sequence_length),
    ):
        check_positive_int(name, value)
    if hidden_dim % num_heads:
        raise ValueError(
            "`hidden_dim` must be divisible by `num_heads`. Received: "
            f"hidden_dim={hidden_dim}, num_heads={num_heads}"
        )


def check_parameter_sharing(parameter_sharing):
    """Raises a ValueError unless `parameter_sharing` is a known mode."""
    if parameter_sharing not in PARAMETER_SHARING:
        raise ValueError(
            f"`parameter_sharing` must be one of {PARAMETER_SHARING}. "
            f"Received: parameter_sharing={parameter_sharing!r}"
        )


def per_layer_lengths(projected_length, num_layers, parameter_sharing):
    """The projected length k of each layer, from an int or a list."""
    if isinstance(projected_length, (list, tuple)):
        lengths = list(projected_length)
        if len(lengths) != num_layers:
            raise ValueError(
                "`projected_length` must be an int or a list with one value "
                f"per layer ({num_layers}). Received: "
                f"projected_length={projected_length!r}"
            )
        if parameter_sharing == "layerwise" and len(set(lengths)) > 1:
            raise ValueError(
                "`parameter_sharing='layerwise'` shares one projection, so "
                "every layer has the same k; pass a single `projected_length`"
                f". Received: projected_length={projected_length!r}"
            )
    else:
        lengths = [projected_length] * num_layers
    for length in lengths:
        check_positive_int("projected_length", length)
    return lengths
