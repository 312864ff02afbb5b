"""An end-to-end causal Linformer language model with fixed-size decoding."""

import keras
from keras import ops
from keras_hub.models import CausalLM
from keras_hub.samplers import ContrastiveSampler
from keras_hub.src.utils.tensor_utils import any_equal

from keras_linformer.models.backbone_utils import check_vocabulary_fits
from keras_linformer.models.linformer_causal.linformer_causal_backbone import (
    LinformerCausalBackbone,
)
from keras_linformer.models.linformer_causal.linformer_causal_lm_preprocessor import (
    LinformerCausalLMPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_linformer")
class LinformerCausalLM(CausalLM):
    """A causal Linformer language model: `fit` on text, `generate` text.

    A `keras_hub.models.CausalLM` over a `LinformerCausalBackbone`, with the
    output projection tied to the token embedding. `fit()` takes raw strings
    when a preprocessor is attached; `generate()` runs keras-hub samplers
    (`compile(sampler="greedy" | "top_k" | "top_p" | ...)`) with stop tokens
    and batched prompts of different lengths, on TensorFlow, JAX and PyTorch.

    Decoding state: unlike a Transformer's key/value cache, which grows with
    the sequence, each layer keeps k prefix summaries and the C raw
    keys/values of the current chunk for keys and for values, one tensor of
    shape `(batch, num_layers, 2, k + C, num_heads, head_dim)`
    (`initial_cache(batch_size)`), whatever `max_length` is. The prompt is
    read through the same state one token at a time, so generation uses one
    code path. `decode_step(token_ids, cache, index)` is the single decoding
    step to export: one token per row in, next-token logits and the new state
    out.

    `keras_hub.models.CausalLM.from_preset(directory)` loads a preset saved
    with `save_to_preset` once `keras_linformer` is imported.

    Args:
        backbone: a `LinformerCausalBackbone`.
        preprocessor: a `LinformerCausalLMPreprocessor` or `None`. If `None`,
            inputs must already be token ids and padding masks.
        **kwargs: other keyword arguments passed to
            `keras_hub.models.CausalLM`.

    Example:

    ```python
    texts = ["The quick brown fox jumped.", "The lazy dog slept."]
    tokenizer = keras_linformer.models.LinformerCausalTokenizer.from_corpus(
        texts, vocabulary_size=200
    )
    preprocessor = keras_linformer.models.LinformerCausalLMPreprocessor(
        tokenizer, sequence_length=32
    )
    backbone = keras_linformer.models.LinformerCausalBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=32,
        projected_length=8,
    )
    causal_lm = keras_linformer.models.LinformerCausalLM(backbone, preprocessor)
    causal_lm.compile(sampler="greedy")
    causal_lm.fit(texts, batch_size=2, epochs=1)
    causal_lm.generate(["The quick", "The"], max_length=16)
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
    """

    backbone_cls = LinformerCausalBackbone
    preprocessor_cls = LinformerCausalLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if preprocessor is not None:
            check_vocabulary_fits(preprocessor.tokenizer, backbone)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor

        # === Functional Model ===
        inputs = backbone.input
        hidden_states = backbone(inputs)
        outputs = backbone.token_embedding(hidden_states, reverse=True)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def initial_cache(self, batch_size):
        """The empty decoding state (zeros) for `batch_size` rows."""
        return ops.zeros(
            self.backbone.cache_shape(batch_size), dtype=self.compute_dtype
        )

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Runs one token per row through the model and its decoding state.

        Args:
            token_ids: int tensor `(batch, 1)`, the tokens at position
                `cache_update_index`.
            cache: float tensor `(batch, num_layers, 2, k + C, num_heads,
                head_dim)` holding every earlier position.
            cache_update_index: int or int scalar tensor, the position.

        Returns:
            `(logits, hidden_states, cache)`: logits `(batch, 1, vocabulary)`,
            the final hidden states `(batch, 1, hidden_dim)` and the state
            that also holds this position.
        """
        backbone = self.backbone
        tokens = backbone.token_embedding(token_ids)
        positions = backbone.position_embedding(
            tokens, start_index=cache_update_index
        )
        x = backbone.embeddings_add((tokens, positions))
        x = backbone.embeddings_dropout(x)
        caches = []
        for index, transformer_layer in enumerate(backbone.transformer_layers):
            x, layer_cache = transformer_layer(
                x,
                self_attention_cache=cache[:, index],
                self_attention_cache_update_index=cache_update_index,
            )
            caches.append(layer_cache)
        hidden_states = backbone.layer_norm(x)
        logits = backbone.token_embedding(hidden_states, reverse=True)
        return logits, hidden_states, ops.stack(caches, axis=1)

    def decode_step(self, token_ids, cache, index):
        """One decoding step with a fixed-size state (the export signature).

        Args:
            token_ids: int32 `(batch, 1)`, the token at position `index`.
            cache: `(batch, num_layers, 2, k + C, num_heads, head_dim)` state
                of every earlier position (`initial_cache` before position 0).
            index: int32 scalar, the position, `0 <= index <
                max_sequence_length`.

        Returns:
            `(logits, cache)`: next-token logits `(batch, vocabulary)` and the
            state with this position added (same shape).
        """
        logits, _, cache = self.call_with_cache(token_ids, cache, index)
        return ops.squeeze(logits, axis=1), cache

    def generate(
        self, inputs, max_length=None, stop_token_ids="auto", strip_prompt=False
    ):
        # keras-hub reads the end token off the tokenizer before it
        # preprocesses; our preprocessor declares it there when built.
        if self.preprocessor is not None and not self.preprocessor.built:
            self.preprocessor.build(None)
        return super().generate(
            inputs,
            max_length=max_length,
            stop_token_ids=stop_token_ids,
            strip_prompt=strip_prompt,
        )

    def generate_step(self, inputs, stop_token_ids=None):
        """A compilable generation function for one batch of inputs.

        Args:
            inputs: a dictionary with `"token_ids"` and `"padding_mask"`,
                `(batch, max_length)`, prompts at the start of each row.
            stop_token_ids: tuple of token ids that end a row's generation,
                or `None` to generate until `max_length`.

        Returns:
            A dictionary with the completed `"token_ids"` and a
            `"padding_mask"` that ends after each row's stop token.
        """
        if isinstance(self.sampler, ContrastiveSampler):
            raise ValueError(
                "LinformerCausalLM cannot use the contrastive sampler: it "
                "compares hidden states of all earlier positions, which the "
                "fixed-size decoding state does not keep. Use 'greedy', "
                "'top_k', 'top_p', 'random' or 'beam'."
            )
        token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]

        def next(prompt, cache, index):
            position = index - 1
            # The beam sampler repeats prompt and cache for each beam, so the
            # rows come from the prompt it passes, not from `inputs`.
            rows = ops.shape(prompt)[0]
            token = ops.slice(prompt, [0, position], [rows, 1])
            logits, hidden_states, cache = self.call_with_cache(
                token, cache, position
            )
            return (
                ops.squeeze(logits, axis=1),
                ops.squeeze(hidden_states, axis=1),
                cache,
            )

        # Every row starts with at least one token (the start token); the
        # sampler keeps prompt tokens where `padding_mask` is set, so reading
        # from position 0 feeds each prompt through the state.
        token_ids = self.sampler(
            next=next,
            prompt=token_ids,
            cache=self.initial_cache(ops.shape(token_ids)[0]),
            index=1,
            mask=padding_mask,
            stop_token_ids=stop_token_ids,
            model=self,
        )
        if stop_token_ids is None:
            padding_mask = ops.ones_like(token_ids, dtype="bool")
        else:
            # Keep each row up to and including its first generated stop.
            end_locations = ops.cast(
                any_equal(
                    token_ids, stop_token_ids, ops.logical_not(padding_mask)
                ),
                "int32",
            )
            after_end = ops.cumsum(end_locations, axis=-1) - end_locations
            padding_mask = ops.logical_not(ops.cast(after_end, "bool"))
        return {"token_ids": token_ids, "padding_mask": padding_mask}

