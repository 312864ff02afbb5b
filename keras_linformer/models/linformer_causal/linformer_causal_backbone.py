"""The causal Linformer network: embeddings and Linformer decoder blocks."""

import keras
from keras_hub.models import Backbone

from keras_linformer.layers.linformer_decoder_block import LinformerDecoderBlock
from keras_linformer.models.backbone_utils import CONFIG_ARGUMENTS
from keras_linformer.models.backbone_utils import block_projection_arguments
from keras_linformer.models.backbone_utils import check_backbone_sizes
from keras_linformer.models.backbone_utils import check_parameter_sharing
from keras_linformer.models.backbone_utils import config_arguments
from keras_linformer.models.backbone_utils import embedded_inputs
from keras_linformer.models.backbone_utils import with_max_sequence_length
from keras_linformer.models.preset_dtype import VariableDtypePresetMixin


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerCausalBackbone(VariableDtypePresetMixin, Backbone):
    """A causal Linformer decoder network for language modelling.

    GPT-2's layout (token and position embeddings, pre-normalized decoder
    blocks, a final layer normalization) with causal Linformer
    self-attention in every `LinformerDecoderBlock`: a query sees the exact
    keys of its own chunk of `chunk_size` positions and `projected_length`
    summaries of everything before that chunk, never a later position.
    Training costs O(n (k + C)) per layer, and decoding carries a state of
    `(batch, num_layers, 2, k + C, num_heads, head_dim)` whatever the
    generated length (see `LinformerCausalLM`).

    This is a separate class from the bidirectional `LinformerBackbone`
    (encoder blocks) because its blocks, layout and decoding state differ;
    its tokenizers are `LinformerCausalTokenizer` and
    `LinformerCausalByteTokenizer`.

    Inputs are a dictionary with `"token_ids"` and `"padding_mask"`, like
    keras-hub backbones; sequences may be shorter than
    `max_sequence_length`.

    Args:
        vocabulary_size: int. The size of the token vocabulary.
        num_layers: int. The number of decoder blocks.
        num_heads: int. The number of attention heads; `hidden_dim` must be
            divisible by it.
        hidden_dim: int. The size of the embeddings and hidden states.
        intermediate_dim: int. The hidden size of each feedforward network.
        max_sequence_length: int. The largest sequence length n (prompt plus
            generated tokens). Defaults to `512`.
        projected_length: int. The number of summary slots k per layer.
            Defaults to `64`.
        chunk_size: int. The chunk length C. Defaults to `projected_length`.
        projection: string. `"mean_pool"` (each summary slot the mean of a
            fixed window of n / k positions) or `"linear"` (learned E and F,
            whose summaries are sums that grow with the prefix). Defaults to
            `"mean_pool"`, which reached a lower perplexity than `"linear"`
            in `benchmarks/generation.py` at 1,024 and 4,096 positions.
        parameter_sharing: string. `"none"`, `"headwise"`, `"key_value"` or
            `"layerwise"` (see `LinformerBackbone`). Defaults to
            `"headwise"`.
        dropout: float. Dropout on the embeddings and inside the blocks.
            Defaults to `0.1`.
        dtype: string or `keras.DTypePolicy`. The dtype of the computations
            and weights. Defaults to the global policy.
        **kwargs: other keyword arguments passed to
            `keras_hub.models.Backbone`, such as `name`.

    Example:

    ```python
    backbone = keras_linformer.models.LinformerCausalBackbone(
        vocabulary_size=8000,
        num_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=256,
        max_sequence_length=2048,
        projected_length=64,
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
     - [Radford et al., 2019](https://openai.com/research/better-language-models)
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        projected_length=64,
        chunk_size=None,
        projection="mean_pool",
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
            max_sequence_length=max_sequence_length,
        )
        check_parameter_sharing(parameter_sharing)
        # The projections check `projected_length`, the attention layers
        # `chunk_size` and `projection`.
        if chunk_size is None:
            chunk_size = projected_length

        # === Embeddings ===
        # Not normalized: the decoder blocks normalize their inputs first.
        inputs, x = embedded_inputs(
            self,
            vocabulary_size,
            hidden_dim,
            max_sequence_length,
            dropout,
            dtype,
        )

        # === Layers ===
        block_projections = block_projection_arguments(
            self,
            max_sequence_length,
            [projected_length] * num_layers,
            projection,
            parameter_sharing,
            dtype,
        )
        self.transformer_layers = [
            LinformerDecoderBlock(
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                chunk_size=chunk_size,
                dropout=dropout,
                activation="gelu",
                layer_norm_epsilon=1e-5,
                kernel_initializer=keras.initializers.RandomNormal(
                    stddev=0.02
                ),
                normalize_first=True,
                dtype=dtype,
                name=f"transformer_layer_{index}",
                **block_projection,
            )
            for index, block_projection in enumerate(block_projections)
        ]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=dtype, name="layer_norm"
        )

        # === Functional Model ===
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(
                x, decoder_padding_mask=inputs["padding_mask"]
            )
        x = self.layer_norm(x)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.projected_length = projected_length
        self.chunk_size = chunk_size
        self.projection = projection
        self.parameter_sharing = parameter_sharing
        self.dropout = dropout

    def cache_shape(self, batch_size):
        """The fixed shape of the decoding state for `batch_size` rows:
        `(batch, num_layers, 2, k + C, num_heads, head_dim)`."""
        return (
            batch_size,
            self.num_layers,
            2,
            self.projected_length + self.chunk_size,
            self.num_heads,
            self.hidden_dim // self.num_heads,
        )

    @classmethod
    def from_config(cls, config):
        return super().from_config(with_max_sequence_length(config))

    def get_config(self):
        config = super().get_config()
        config.update(
            config_arguments(self, CONFIG_ARGUMENTS + ("chunk_size",))
        )
        return config
