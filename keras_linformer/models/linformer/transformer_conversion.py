"""Turns a pretrained keras-hub BERT-family backbone into a `LinformerBackbone`.

`LinformerBackbone.from_transformer(source, ...)` calls `convert_backbone`.
The Linformer encoder has the source's layout (embeddings, embedding layer
norm, post-normalized blocks), so every pretrained weight has a place:

| source (keras-hub)                          | target (`LinformerBackbone`)   |
| ------------------------------------------- | ------------------------------ |
| token embedding                             | `token_embedding`              |
| position embedding (n_source rows)          | `position_embedding` (n rows)  |
| segment embedding (BERT)                    | `segment_embedding`            |
| `embeddings_layer_norm`                     | `embeddings_layer_norm`        |
| block i: attention query/key/value/output   | block i: the same four denses  |
| block i: attention and feedforward norms    | block i: the same two norms    |
| block i: feedforward intermediate, output   | block i: the same two denses   |

All but the position table keep their shapes. The position table is cut to
the first n rows, or, when n is longer than the source's, the source's rows
are repeated (the Longformer recipe: every copy is a position the model was
trained on, which fine-tuning then tells apart).

The sequence projections E and F are new. By default they are window means
(`"mean_pool"`, no weights); the learned kinds start as window means:
`E[t, j] = 1 / w` for the `w = ceil(n / k)` positions t of window j (a
`"conv"` kernel of `1 / w`), so each of the k slots is the mean of w
neighbouring keys (values): the pretrained queries meet averages of the keys
they were trained against, a coarser view of the same attention, rather than
the random mixtures a random E gives. With `k == n`, `w == 1` and E = F =
identity: the converted backbone computes exactly what the source computes,
padding included.
"""

import math

import numpy as np
from keras_hub.models import BertBackbone
from keras_hub.models import DistilBertBackbone
from keras_hub.models import RobertaBackbone

SUPPORTED_SOURCES = (BertBackbone, RobertaBackbone, DistilBertBackbone)

# Sublayers of a keras-hub `TransformerEncoder` and of a
# `LinformerEncoderBlock` that hold the same weights in the same shapes.
BLOCK_SUBLAYERS = (
    ("_self_attention_layer", "_query_dense"),
    ("_self_attention_layer", "_key_dense"),
    ("_self_attention_layer", "_value_dense"),
    ("_self_attention_layer", "_output_dense"),
    ("_self_attention_layer_norm",),
    ("_feedforward_intermediate_dense",),
    ("_feedforward_output_dense",),
    ("_feedforward_layer_norm",),
)


def convert_backbone(cls, source, options):
    """A `cls` (`LinformerBackbone`) with the weights of `source`.

    `options` are the keyword arguments of `LinformerBackbone.from_transformer`.
    """
    check_source(source)
    backbone = cls(**convert_config(source, **options))
    convert_weights(source, backbone)
    return backbone


def check_source(source):
    """Raises a ValueError unless `source` is a supported, built backbone."""
    if not isinstance(source, SUPPORTED_SOURCES):
        names = ", ".join(cls.__name__ for cls in SUPPORTED_SOURCES)
        raise ValueError(
            "`LinformerBackbone.from_transformer` converts a keras-hub "
            f"{names} (or a subclass, e.g. XLMRobertaBackbone). Received: "
            f"source of type {type(source).__name__}"
        )
    block = source.transformer_layers[0]
    if block.normalize_first:
        raise ValueError(
            "The source's blocks normalize their inputs first; "
            "`LinformerBackbone` normalizes outputs, like BERT. Received: "
            f"normalize_first={block.normalize_first}"
        )


def convert_config(
    source,
    max_sequence_length,
    projected_length,
    projection,
    parameter_sharing,
    dropout,
):
    """The `LinformerBackbone` arguments of a conversion of `source`."""
    block = source.transformer_layers[0]
    embeddings_epsilon = source.embeddings_layer_norm.epsilon
    if embeddings_epsilon != block.layer_norm_epsilon:
        raise ValueError(
            "`LinformerBackbone` has one layer-norm epsilon; the source's "
            "embedding and block norms differ. Received: "
            f"embeddings epsilon={embeddings_epsilon}, "
            f"block epsilon={block.layer_norm_epsilon}"
        )
    return {
        "vocabulary_size": source.vocabulary_size,
        "num_layers": source.num_layers,
        "num_heads": source.num_heads,
        "hidden_dim": source.hidden_dim,
        "intermediate_dim": source.intermediate_dim,
        "max_sequence_length": (
            source.max_sequence_length
            if max_sequence_length is None
            else max_sequence_length
        ),
        "projected_length": projected_length,
        "projection": projection,
        "parameter_sharing": parameter_sharing,
        "dropout": source.dropout if dropout is None else dropout,
        "num_segments": getattr(source, "num_segments", None),
        "layer_norm_epsilon": block.layer_norm_epsilon,
        "activation": block.activation,
        "dtype": source.dtype_policy,
    }


def convert_weights(source, backbone):
    """Copies every weight of `source` into `backbone` (see the table)."""
    source_embeddings = embedding_layers(source)
    for name, layer in source_embeddings.items():
        if name == "position_embedding":
            (table,) = layer.get_weights()
            backbone.position_embedding.set_weights(
                [position_table(table, backbone.max_sequence_length)]
            )
        else:
            getattr(backbone, name).set_weights(layer.get_weights())
    for source_block, block in zip(
        source.transformer_layers, backbone.transformer_layers
    ):
        for path in BLOCK_SUBLAYERS:
            sublayer(block, path).set_weights(
                sublayer(source_block, path).get_weights()
            )
        attention = block._self_attention_layer
        for projection in (
            attention._key_projection,
            attention._value_projection,
        ):
            projection.set_weights(
                [window_means(w.shape, projection) for w in projection.weights]
            )


def embedding_layers(source):
    """The source's embedding layers by the name of their target layer."""
    if isinstance(source, BertBackbone):
        position_embedding = source.position_embedding
    else:
        # RoBERTa and DistilBERT embed tokens and positions in one layer.
        position_embedding = source.embeddings.position_embedding
    layers = {
        "token_embedding": source.token_embedding,
        "position_embedding": position_embedding,
        "embeddings_layer_norm": source.embeddings_layer_norm,
    }
    if getattr(source, "num_segments", None):
        layers["segment_embedding"] = source.segment_embedding
    return layers


def sublayer(layer, path):
    for name in path:
        layer = getattr(layer, name)
    return layer


def position_table(table, length):
    """The first `length` rows of `table`, repeated when it is shorter."""
    repeats = math.ceil(length / len(table))
    return np.tile(table, (repeats, 1))[:length]


def window_means(shape, projection):
    """The initial weight of `shape` of a `SequenceProjection`: the mean of
    each window of `w = ceil(n / k)` positions.

    A `"linear"` kernel is `(..., n, k)` with `1 / w` where position t lies
    in window j; a `"conv"` kernel is `(w, ..., channels)` of `1 / w`.
    """
    window = projection.window
    if projection.kind == "conv":
        return np.full(shape, 1.0 / window, dtype="float32")
    n, k = shape[-2:]
    kernel = (np.arange(n)[:, None] // window == np.arange(k)[None, :]) / window
    return np.broadcast_to(kernel, shape).astype("float32")
