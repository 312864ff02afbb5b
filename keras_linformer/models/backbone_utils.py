"""What the Linformer backbones share: argument checks, config helpers, the
per-layer projected lengths, the projection layout and the embeddings.

`LinformerBackbone` and `LinformerCausalBackbone` differ in their blocks and
layout; everything they build the same way is built here, so neither backbone
imports the other.
"""

import keras
from keras import ops
from keras.layers import ReversibleEmbedding
from keras_hub import layers as hub_layers

from keras_linformer.layers._key_value_projection import LAYERWISE
from keras_linformer.layers._key_value_projection import (
    BACKBONE_PARAMETER_SHARING as PARAMETER_SHARING,
)
from keras_linformer.layers.sequence_projection import SequenceProjection
from keras_linformer.layers.validation import check_length
from keras_linformer.layers.validation import check_positive_int

# The constructor arguments both Linformer backbones keep in their configs.
CONFIG_ARGUMENTS = (
    "vocabulary_size",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "max_sequence_length",
    "projected_length",
    "projection",
    "parameter_sharing",
    "dropout",
)


# === Arguments ===


def check_backbone_sizes(
    vocabulary_size,
    num_layers,
    num_heads,
    hidden_dim,
    intermediate_dim,
    max_sequence_length,
):
    """Raises a ValueError unless the sizes make a valid backbone."""
    for name, value in (
        ("vocabulary_size", vocabulary_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
        ("hidden_dim", hidden_dim),
        ("intermediate_dim", intermediate_dim),
        ("max_sequence_length", max_sequence_length),
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
        if parameter_sharing == LAYERWISE and len(set(lengths)) > 1:
            raise ValueError(
                "`parameter_sharing='layerwise'` shares one projection, so "
                "every layer has the same k; pass a single `projected_length`"
                f". Received: projected_length={projected_length!r}"
            )
        return lengths
    # The projections check each length.
    return [projected_length] * num_layers


def check_vocabulary_fits(tokenizer, backbone):
    """Raises a ValueError when `tokenizer` gives ids that `backbone` has no
    embedding for (a tokenizer of another checkpoint or corpus).

    A tokenizer revived from a config has no vocabulary until its preset
    assets load; it is not checked.
    """
    try:
        vocabulary_size = tokenizer.vocabulary_size()
    except ValueError:
        return
    if vocabulary_size > backbone.vocabulary_size:
        raise ValueError(
            "The tokenizer's vocabulary is larger than the backbone's token "
            "embedding: use the tokenizer the backbone was trained or "
            "converted with. Received: tokenizer.vocabulary_size()="
            f"{vocabulary_size}, backbone.vocabulary_size="
            f"{backbone.vocabulary_size}"
        )


def single_text_inputs(backbone):
    """The inputs of a task on single texts, and the backbone's inputs.

    Tasks take `"token_ids"` and `"padding_mask"`. A backbone converted from
    a BERT also embeds `"segment_ids"`: one text per example puts every token
    in segment 0, as BERT tasks see single texts.

    Returns:
        `(inputs, backbone_inputs)`: the task's dictionary of `keras.Input`s
        and the dictionary to call `backbone` with.
    """
    inputs = {
        name: backbone.input[name] for name in ("token_ids", "padding_mask")
    }
    if "segment_ids" not in backbone.input:
        return inputs, inputs
    segment_ids = keras.ops.zeros_like(inputs["token_ids"])
    return inputs, {**inputs, "segment_ids": segment_ids}


# === Config ===


def config_arguments(backbone, names=CONFIG_ARGUMENTS):
    """The constructor arguments `names` of `backbone`, for `get_config`.

    The backbones keep each argument as an attribute of the same name.
    """
    return {name: getattr(backbone, name) for name in names}


def with_max_sequence_length(config):
    """`config` with a saved `sequence_length` renamed `max_sequence_length`.

    Backbones saved before the keras-hub name was adopted stored the largest
    sequence length as `sequence_length`; this keeps their configs loading.
    """
    config = dict(config)
    if "sequence_length" in config:
        if "max_sequence_length" in config:
            raise ValueError(
                "A backbone config holds both `sequence_length` (the old "
                "name) and `max_sequence_length`. Received: "
                f"sequence_length={config['sequence_length']!r}, "
                f"max_sequence_length={config['max_sequence_length']!r}"
            )
        config["max_sequence_length"] = config.pop("sequence_length")
    return config


# === Projections ===


def block_projection_arguments(
    backbone,
    max_sequence_length,
    projected_lengths,
    projection,
    parameter_sharing,
    dtype,
):
    """The sequence-projection arguments of each block of `backbone`.

    With `parameter_sharing="layerwise"`, creates `backbone.shared_projection`,
    one `SequenceProjection` for keys and values of every layer, and hands it
    to every block, so its weights exist (and are saved) once; otherwise sets
    it to `None` and each block builds its own projections.

    Args:
        backbone: the `keras_hub.models.Backbone` being built.
        max_sequence_length: int. The sequence length n.
        projected_lengths: list of ints. Each layer's k (`per_layer_lengths`).
        projection: string. The projection kind.
        parameter_sharing: string. One of `PARAMETER_SHARING`.
        dtype: string or `keras.DTypePolicy`. The dtype of the projection.

    Returns:
        A list with one dictionary of block keyword arguments per layer.
    """
    backbone.shared_projection = None
    if parameter_sharing == LAYERWISE:
        backbone.shared_projection = SequenceProjection(
            sequence_length=max_sequence_length,
            projected_length=projected_lengths[0],
            kind=projection,
            dtype=dtype,
            name="shared_projection",
        )
        shared = {
            "projection": backbone.shared_projection,
            "parameter_sharing": "key_value",
        }
        return [shared for _ in projected_lengths]
    return [
        {
            "sequence_length": max_sequence_length,
            "projected_length": projected_length,
            "projection": projection,
            "parameter_sharing": parameter_sharing,
        }
        for projected_length in projected_lengths
    ]


# === Embeddings ===


def embedded_inputs(
    backbone,
    vocabulary_size,
    hidden_dim,
    max_sequence_length,
    dropout,
    dtype,
    layer_norm_epsilon=None,
    num_segments=None,
):
    """Gives `backbone` its embedding layers and returns its embedded inputs.

    Sets `backbone.token_embedding`, `backbone.position_embedding`,
    `backbone.segment_embedding` (only with `num_segments`),
    `backbone.embeddings_add`, `backbone.embeddings_layer_norm` (only with
    `layer_norm_epsilon`) and `backbone.embeddings_dropout`: saved presets
    and `.keras` files hold the weights under these names (keras-hub's BERT
    names), and `LinformerCausalLM` reuses the layers when decoding. Then
    creates the functional inputs and embeds them: token plus position (plus
    segment) embeddings, the layer normalization if any, then dropout.

    Call it from the backbone's `__init__`, before `super().__init__`.

    Args:
        backbone: the `keras_hub.models.Backbone` being built.
        vocabulary_size: int. The size of the token vocabulary.
        hidden_dim: int. The size of the embeddings.
        max_sequence_length: int. The largest sequence length the position
            embedding covers.
        dropout: float. The dropout rate on the embeddings.
        dtype: string or `keras.DTypePolicy`. The dtype of the layers.
        layer_norm_epsilon: float or `None`. The epsilon of the layer
            normalization of the summed embeddings, or `None` for none (the
            encoder normalizes; the pre-normalized causal decoder does not).
            Defaults to `None`.
        num_segments: int or `None`. The number of segment types to embed
            from a `"segment_ids"` input, or `None` for no such input.
            Defaults to `None`.

    Returns:
        `(inputs, embedded)`: the dictionary of `keras.Input`s,
        `"token_ids"`, `"padding_mask"` and with `num_segments`
        `"segment_ids"` (int32, `(batch, length)`), and the embedded tokens,
        `(batch, length, hidden_dim)`.
    """
    backbone.token_embedding, backbone.position_embedding = embedding_layers(
        vocabulary_size, hidden_dim, max_sequence_length, dtype
    )
    if num_segments is not None:
        backbone.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=hidden_dim,
            embeddings_initializer=keras.initializers.TruncatedNormal(
                stddev=0.02
            ),
            dtype=dtype,
            name="segment_embedding",
        )
    backbone.embeddings_add = keras.layers.Add(
        dtype=dtype, name="embeddings_add"
    )
    if layer_norm_epsilon is not None:
        backbone.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="embeddings_layer_norm",
        )
    backbone.embeddings_dropout = keras.layers.Dropout(
        dropout, dtype=dtype, name="embeddings_dropout"
    )

    inputs = {
        "token_ids": keras.Input(
            shape=(None,), dtype="int32", name="token_ids"
        ),
        "padding_mask": keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        ),
    }
    tokens = backbone.token_embedding(inputs["token_ids"])
    embeddings = [tokens, backbone.position_embedding(tokens)]
    if num_segments is not None:
        inputs["segment_ids"] = keras.Input(
            shape=(None,), dtype="int32", name="segment_ids"
        )
        embeddings.append(backbone.segment_embedding(inputs["segment_ids"]))
    x = backbone.embeddings_add(embeddings)
    if layer_norm_epsilon is not None:
        x = backbone.embeddings_layer_norm(x)
    x = backbone.embeddings_dropout(x)
    return inputs, x


def embedding_layers(vocabulary_size, hidden_dim, max_sequence_length, dtype):
    """The token and position embeddings of the Linformer backbones.

    The token embedding is reversible, so language-model heads can reuse it
    to map hidden states back to the vocabulary.
    """
    token_embedding = ReversibleEmbedding(
        input_dim=vocabulary_size,
        output_dim=hidden_dim,
        embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype=dtype,
        name="token_embedding",
    )
    position_embedding = PositionEmbedding(
        sequence_length=max_sequence_length,
        initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype=dtype,
        name="position_embedding",
    )
    return token_embedding, position_embedding


@keras.saving.register_keras_serializable(package="keras_linformer")
class PositionEmbedding(hub_layers.PositionEmbedding):
    """keras-hub's `PositionEmbedding`, which raises a ValueError naming
    both lengths for a sequence longer than it covers, in compiled calls
    too, rather than failing inside its slice.

    Its class name is keras-hub's, under which saved weights are stored.
    """

    def call(self, inputs, start_index=0, positions=None):
        inputs = check_length(
            ops.shape(inputs)[-2],
            self.sequence_length,
            "token_ids",
            inputs,
            limit_name="max_sequence_length",
        )
        return super().call(inputs, start_index, positions)
