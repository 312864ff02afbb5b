"""The inputs and embeddings the Linformer backbones share."""

import keras
from keras.layers import ReversibleEmbedding
from keras_hub.layers import PositionEmbedding


def embedded_inputs(
    backbone,
    vocabulary_size,
    hidden_dim,
    sequence_length,
    dropout,
    dtype,
    layer_norm=False,
):
    """Gives `backbone` its embedding layers and returns its embedded inputs.

    Sets `backbone.token_embedding`, `backbone.position_embedding`,
    `backbone.embeddings_add`, `backbone.embeddings_layer_norm` (only if
    `layer_norm`) and `backbone.embeddings_dropout`: saved presets and
    `.keras` files hold the weights under these names, and
    `LinformerCausalLM` reuses the layers when decoding. Then creates the
    functional inputs and embeds them: token plus position embeddings, the
    layer normalization if any, then dropout.

    Call it from the backbone's `__init__`, before `super().__init__`.

    Args:
        backbone: the `keras_hub.models.Backbone` being built.
        vocabulary_size: int. The size of the token vocabulary.
        hidden_dim: int. The size of the embeddings.
        sequence_length: int. The largest sequence length the position
            embedding covers.
        dropout: float. The dropout rate on the embeddings.
        dtype: string or `keras.DTypePolicy`. The dtype of the layers.
        layer_norm: bool. Whether to normalize the summed embeddings (the
            encoder does; the pre-normalized causal decoder does not).
            Defaults to `False`.

    Returns:
        `(inputs, embedded)`: the dictionary of `keras.Input`s,
        `"token_ids"` and `"padding_mask"` (int32, `(batch, length)`), and
        the embedded tokens, `(batch, length, hidden_dim)`.
    """
    backbone.token_embedding, backbone.position_embedding = embedding_layers(
        vocabulary_size, hidden_dim, sequence_length, dtype
    )
    backbone.embeddings_add = keras.layers.Add(
        dtype=dtype, name="embeddings_add"
    )
    if layer_norm:
        backbone.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=dtype, name="embeddings_layer_norm"
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
    positions = backbone.position_embedding(tokens)
    x = backbone.embeddings_add((tokens, positions))
    if layer_norm:
        x = backbone.embeddings_layer_norm(x)
    x = backbone.embeddings_dropout(x)
    return inputs, x


def embedding_layers(vocabulary_size, hidden_dim, sequence_length, dtype):
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
        sequence_length=sequence_length,
        initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype=dtype,
        name="position_embedding",
    )
    return token_embedding, position_embedding
