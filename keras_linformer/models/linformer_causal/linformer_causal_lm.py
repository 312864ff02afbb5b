"""An end-to-end causal Linformer language model with fixed-size decoding."""

import warnings

import keras
from keras import ops
from keras_hub.models import CausalLM
from keras_hub.samplers import ContrastiveSampler
from keras_hub.src.utils.tensor_utils import any_equal

from keras_linformer.backend_utils import without_run_time_checks
from keras_linformer.layers.causal_linformer_attention import (
    check_decoding_position,
)
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
    (`initial_cache(batch_size)`), whatever `max_length` is. `prefill` reads
    a whole prompt in one parallel pass and returns that state after it;
    `generate()` prefills the shortest prompt of the batch, then the sampler
    continues one token at a time. `decode_step(token_ids, cache, index)` is
    the single decoding step to export: one token per row in, next-token
    logits and the new state out. `score()` gives per-token logits or losses
    of whole sequences, as keras-hub's GPT-2 does.

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
            cache_update_index: int or int tensor, the position: a scalar
                for every row, or `(batch,)`, one position per row (rows
                prefilled to different lengths).

        Returns:
            `(logits, hidden_states, cache)`: logits `(batch, 1, vocabulary)`,
            the final hidden states `(batch, 1, hidden_dim)` and the state
            that also holds this position.
        """
        positions = ops.broadcast_to(
            ops.cast(cache_update_index, "int32"), (ops.shape(token_ids)[0],)
        )
        # One check for the position embedding and every layer: each
        # layer's own check would cost a host callback per layer and step on
        # JAX, more than the step itself.
        positions = check_decoding_position(
            cache_update_index,
            self.backbone.max_sequence_length,
            "max_sequence_length",
            tensor=positions,
        )
        x = self._embeddings(token_ids, ops.expand_dims(positions, 1))
        caches = []
        with without_run_time_checks():
            for index, transformer_layer in enumerate(
                self.backbone.transformer_layers
            ):
                x, layer_cache = transformer_layer(
                    x,
                    self_attention_cache=cache[:, index],
                    self_attention_cache_update_index=positions,
                )
                caches.append(layer_cache)
        hidden_states = self.backbone.layer_norm(x)
        logits = self.backbone.token_embedding(hidden_states, reverse=True)
        return logits, hidden_states, ops.stack(caches, axis=1)

    def decode_step(self, token_ids, cache, index):
        """One decoding step with a fixed-size state (the export signature).

        Args:
            token_ids: int32 `(batch, 1)`, the token at position `index`.
            cache: `(batch, num_layers, 2, k + C, num_heads, head_dim)` state
                of every earlier position (`initial_cache` before position 0,
                or from `prefill`).
            index: int32 scalar, the position, `0 <= index <
                max_sequence_length`; or `(batch,)`, one position per row.
                A position past that raises; inside a compiled loop the
                check runs with each step (on JAX a host callback, which
                costs more than the step itself; `generate()` bounds its
                positions and skips it).

        Returns:
            `(logits, cache)`: next-token logits `(batch, vocabulary)` and the
            state with this position added (same shape).
        """
        logits, _, cache = self.call_with_cache(token_ids, cache, index)
        return ops.squeeze(logits, axis=1), cache

    def prefill(self, token_ids, padding_mask=None):
        """Reads whole prompts in one parallel pass.

        Returns what `decode_step` over the prompt tokens one by one gives,
        in O(prompt length) work that runs in parallel: the logits at every
        position and the decoding state after each row's prompt, from which
        `decode_step` continues at each row's prompt length.

        Args:
            token_ids: int `(batch, length)`, each row's prompt first.
            padding_mask: optional bool or int `(batch, length)`, True at
                each row's prompt positions, which come first (right
                padding); rows may differ in length. Defaults to every
                position.

        Returns:
            `(logits, cache)`: logits `(batch, length, vocabulary)` (those
            at padded positions mean nothing) and the `(batch, num_layers, 2,
            k + C, num_heads, head_dim)` state after each row's prompt.

        Example:

        ```python
        logits, cache = causal_lm.prefill(token_ids, padding_mask)
        lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=1)
        next_token = ops.argmax(
            ops.take_along_axis(
                logits, ops.reshape(lengths - 1, (-1, 1, 1)), axis=1
            )[:, 0],
            axis=-1,
        )
        logits, cache = causal_lm.decode_step(
            ops.expand_dims(next_token, 1), cache, lengths
        )
        ```
        """
        hidden_states, cache = self._forward(
            token_ids, padding_mask, return_cache=True
        )
        return self.backbone.token_embedding(hidden_states, reverse=True), cache

    def score(
        self,
        token_ids,
        padding_mask=None,
        scoring_mode="logits",
        layer_intercept_fn=None,
        target_ids=None,
    ):
        """Scores whole sequences, as `keras_hub.models.GPT2CausalLM.score`.

        Args:
            token_ids: int `(batch, length)`, the sequences to score, e.g.
                the output of `generate()` after `generate_preprocess`.
            padding_mask: optional bool or int `(batch, length)`, True at
                real positions. Defaults to every position.
            scoring_mode: string. `"logits"` for the logits of every
                position, `"loss"` for the per-token cross-entropy against
                `target_ids`. Defaults to `"logits"`.
            layer_intercept_fn: optional function `(x, index) -> x` applied
                to the embeddings (index -1, before dropout) and to the
                output of each decoder block (index 0, 1, ...), for
                interpretability; it must return a tensor of the same shape.
            target_ids: int `(batch, length)`, the token each position
                predicts (usually `token_ids` shifted left by one); needed
                for `"loss"`.

        Returns:
            Logits `(batch, length, vocabulary)` in `"logits"` mode, or the
            per-token loss `(batch, length)` in `"loss"` mode.

        Example:

        ```python
        target_ids = keras.ops.roll(token_ids, shift=-1, axis=1)
        losses = causal_lm.score(
            token_ids, padding_mask, scoring_mode="loss", target_ids=target_ids
        )
        ```
        """
        if scoring_mode not in ("logits", "loss"):
            raise ValueError(
                "`scoring_mode` must be 'logits' or 'loss'. Received: "
                f"scoring_mode={scoring_mode!r}"
            )
        if scoring_mode == "loss" and target_ids is None:
            raise ValueError(
                "scoring_mode='loss' needs the predicted tokens: pass "
                "`target_ids` of the shape of `token_ids`. Received: "
                "target_ids=None"
            )
        hidden_states, _ = self._forward(
            token_ids, padding_mask, layer_intercept_fn=layer_intercept_fn
        )
        logits = self.backbone.token_embedding(hidden_states, reverse=True)
        if scoring_mode == "logits":
            return logits
        per_token_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=None
        )
        return per_token_loss(target_ids, logits)

    def _embeddings(self, token_ids, positions=None):
        """Token plus position embeddings, as the backbone sums them; at
        `positions` (int, the shape of `token_ids`) or from position 0."""
        backbone = self.backbone
        tokens = backbone.token_embedding(token_ids)
        return backbone.embeddings_add(
            (tokens, backbone.position_embedding(tokens, positions=positions))
        )

    def _forward(
        self,
        token_ids,
        padding_mask=None,
        layer_intercept_fn=None,
        return_cache=False,
    ):
        """The backbone's pass over whole sequences, step by step: the final
        hidden states, and the decoding state after each row's real
        positions (`return_cache`) or None."""
        if padding_mask is None:
            padding_mask = ops.ones_like(token_ids, dtype="bool")
        if layer_intercept_fn is None:
            layer_intercept_fn = lambda x, unused_index: x  # noqa: E731
        backbone = self.backbone
        x = layer_intercept_fn(self._embeddings(token_ids), -1)
        x = backbone.embeddings_dropout(x)
        caches = []
        for index, transformer_layer in enumerate(backbone.transformer_layers):
            x = transformer_layer(
                x,
                decoder_padding_mask=padding_mask,
                return_self_attention_cache=return_cache,
            )
            if return_cache:
                x, layer_cache = x
                caches.append(layer_cache)
            x = layer_intercept_fn(x, index)
        cache = ops.stack(caches, axis=1) if return_cache else None
        return backbone.layer_norm(x), cache

    def generate(
        self, inputs, max_length=None, stop_token_ids="auto", strip_prompt=False
    ):
        """Generates text as `keras_hub.models.CausalLM.generate` does.

        A `max_length` beyond the backbone's `max_sequence_length` n (which
        the position embedding and the projections cover) is clamped to n,
        with a warning.
        """
        limit = self.backbone.max_sequence_length
        if max_length is not None and max_length > limit:
            warnings.warn(
                f"`max_length` ({max_length}) exceeds the backbone's "
                f"`max_sequence_length` ({limit}); generating up to {limit} "
                "tokens.",
                stacklevel=2,
            )
            max_length = limit
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
        # `generate` clamps `max_length` to n, so no position passes n.
        with without_run_time_checks():
            return self._generate_step(inputs, stop_token_ids)

    def _generate_step(self, inputs, stop_token_ids):
        if isinstance(self.sampler, ContrastiveSampler):
            raise ValueError(
                "LinformerCausalLM cannot use the contrastive sampler: it "
                "compares hidden states of all earlier positions, which the "
                "fixed-size decoding state does not keep. Use 'greedy', "
                "'top_k', 'top_p', 'random' or 'beam'."
            )
        token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
        # The sampler starts at the shortest prompt's length, reading its
        # last token, so prefill the positions before that one (every row
        # has at least the start token).
        index = ops.min(ops.sum(ops.cast(padding_mask, "int32"), axis=-1))
        prefilled = ops.broadcast_to(
            ops.expand_dims(ops.arange(ops.shape(token_ids)[1]) < index - 1, 0),
            ops.shape(token_ids),
        )
        _, cache = self._forward(token_ids, prefilled, return_cache=True)

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

        # The sampler keeps prompt tokens where `padding_mask` is set, so the
        # longer prompts go on through the state one token at a time.
        token_ids = self.sampler(
            next=next,
            prompt=token_ids,
            cache=cache,
            index=index,
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

