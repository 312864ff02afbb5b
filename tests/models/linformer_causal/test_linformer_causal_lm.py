import os

import keras
import keras_hub
import numpy as np
import pytest

from keras_linformer.models import LinformerCausalBackbone
from keras_linformer.models import LinformerCausalLM
from keras_linformer.models import LinformerCausalLMPreprocessor
from keras_linformer.models import LinformerCausalTokenizer
from keras_linformer.models import LinformerTokenizer
from tests.testing import CAUSAL_C as C
from tests.testing import CAUSAL_HEADS as HEADS
from tests.testing import CAUSAL_K as K
from tests.testing import CAUSAL_LAYERS as LAYERS
from tests.testing import causal_backbone_kwargs
from tests.testing import compiled
from tests.testing import compiled_call_errors
from tests.testing import to_numpy

WORDS = "the quick brown fox jumps over lazy dog cat sleeps on a mat".split()
TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "the lazy cat sleeps on a mat",
    "a quick dog jumps over a cat",
    "the fox sleeps",
]
N, HIDDEN = 24, 16
PROMPTS = ["the quick brown fox", "a"]  # Different lengths in one batch.
MAX_LENGTH = 14  # Generation crosses several chunks of C = 3.


@pytest.fixture(scope="module")
def causal_lm():
    tokenizer = LinformerCausalTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    )
    preprocessor = LinformerCausalLMPreprocessor(tokenizer, sequence_length=12)
    backbone = LinformerCausalBackbone(
        **causal_backbone_kwargs(tokenizer.vocabulary_size(), N, HIDDEN)
    )
    model = LinformerCausalLM(backbone, preprocessor)
    model.compile(sampler="greedy")
    return model


def full_forward_logits(causal_lm, token_ids):
    return to_numpy(
        causal_lm.backbone.token_embedding(
            causal_lm.backbone(
                {
                    "token_ids": token_ids,
                    "padding_mask": np.ones_like(token_ids),
                }
            ),
            reverse=True,
        )
    )


def assert_same_logits(revived, causal_lm):
    """Asserts that `revived` computes the logits of `causal_lm` on the
    prompts."""
    token_ids = prompt_ids(causal_lm)["token_ids"]
    np.testing.assert_allclose(
        full_forward_logits(revived, token_ids),
        full_forward_logits(causal_lm, token_ids),
        atol=1e-5,
    )


def prompt_ids(causal_lm):
    prompt = causal_lm.preprocessor.generate_preprocess(
        PROMPTS, sequence_length=MAX_LENGTH
    )
    return {key: to_numpy(value) for key, value in prompt.items()}


def test_fit_on_raw_strings_lowers_the_loss(causal_lm):
    # A fresh backbone: training must not change the shared fixture.
    model = LinformerCausalLM(
        LinformerCausalBackbone.from_config(causal_lm.backbone.get_config()),
        causal_lm.preprocessor,
    )
    model.compile(optimizer=keras.optimizers.AdamW(3e-3), sampler="greedy")
    history = model.fit(TEXTS * 4, batch_size=4, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_decode_steps_match_the_full_forward_pass(causal_lm):
    token_ids = np.random.default_rng(0).integers(
        1, 18, size=(2, 11)
    ).astype("int32")
    expected = full_forward_logits(causal_lm, token_ids)
    cache = causal_lm.initial_cache(2)
    initial_shape = tuple(cache.shape)
    for index in range(token_ids.shape[1]):
        logits, cache = causal_lm.decode_step(
            token_ids[:, index : index + 1], cache, index
        )
        np.testing.assert_allclose(
            to_numpy(logits), expected[:, index], atol=1e-4
        )
        # The state never grows with the decoded length.
        assert tuple(cache.shape) == initial_shape
    assert initial_shape == (2, LAYERS, 2, K + C, HEADS, HIDDEN // HEADS)


def test_decoding_past_the_max_sequence_length_raises_naming_it(causal_lm):
    token = np.ones((2, 1), "int32")
    cache = to_numpy(causal_lm.initial_cache(2))
    message = rf"\({N}\).*`max_sequence_length` \({N}\)"
    with pytest.raises(ValueError, match=message):
        causal_lm.decode_step(token, cache, N)
    step = compiled(
        lambda token, cache, index: causal_lm.decode_step(
            token, cache, index
        )[0],
        token, cache, np.int32(0),
        dynamic_length=False,
    )  # fmt: skip
    to_numpy(step(token, cache, np.int32(N - 1)))
    with pytest.raises(compiled_call_errors(), match=message):
        to_numpy(step(token, cache, np.int32(N)))


# Prompt lengths around the chunk boundaries (C = 3) and across chunks.
PROMPT_LENGTHS = np.array([1, C - 1, C, C + 1, 3 * C + 1])


def test_prefill_then_decode_equals_step_by_step_decoding(causal_lm):
    rows = np.arange(len(PROMPT_LENGTHS))
    token_ids = np.random.default_rng(1).integers(
        1, 18, size=(len(rows), 13)
    ).astype("int32")
    mask = np.arange(13) < PROMPT_LENGTHS[:, None]
    # Step by step: each row's logits, and its state after its prompt.
    stepped_logits = []
    cache = causal_lm.initial_cache(len(rows))
    states = np.zeros(cache.shape, "float32")
    for index in range(13):
        logits, cache = causal_lm.decode_step(
            token_ids[:, index : index + 1], cache, index
        )
        stepped_logits.append(to_numpy(logits))
        done = (PROMPT_LENGTHS == index + 1).reshape((-1,) + (1,) * 5)
        states = np.where(done, to_numpy(cache), states)
    stepped_logits = np.stack(stepped_logits, axis=1)

    logits, state = causal_lm.prefill(
        np.where(mask, token_ids, 0), mask.astype("int32")
    )
    np.testing.assert_allclose(
        np.where(mask[..., None], to_numpy(logits), 0.0),
        np.where(mask[..., None], stepped_logits, 0.0),
        atol=1e-4,
    )
    np.testing.assert_allclose(to_numpy(state), states, atol=1e-4)
    # Every row decodes on from its own prompt length.
    for step in range(2):
        index = PROMPT_LENGTHS + step
        logits, state = causal_lm.decode_step(
            token_ids[rows, index][:, None], state, index
        )
        np.testing.assert_allclose(
            to_numpy(logits), stepped_logits[rows, index], atol=1e-4
        )


def step_by_step_greedy(causal_lm, token_ids, padding_mask):
    """Greedy generation through `decode_step` from position 0, prompt
    tokens kept, without prefill."""
    token_ids = token_ids.copy()
    cache = causal_lm.initial_cache(len(token_ids))
    for index in range(token_ids.shape[1] - 1):
        logits, cache = causal_lm.decode_step(
            token_ids[:, index : index + 1], cache, index
        )
        token_ids[:, index + 1] = np.where(
            padding_mask[:, index + 1],
            token_ids[:, index + 1],
            to_numpy(logits).argmax(axis=-1),
        )
    return token_ids


def test_greedy_generate_with_prefill_equals_step_by_step(causal_lm):
    # The shortest prompt sets how far generate() prefills.
    prompts = [["the quick brown fox jumps over", "the lazy cat"], PROMPTS]
    for batch in prompts:
        prompt = causal_lm.preprocessor.generate_preprocess(
            batch, sequence_length=MAX_LENGTH
        )
        prompt = {key: to_numpy(value) for key, value in prompt.items()}
        model = LinformerCausalLM(causal_lm.backbone, preprocessor=None)
        model.compile(sampler="greedy")
        generated = model.generate(dict(prompt), stop_token_ids=None)
        np.testing.assert_array_equal(
            to_numpy(generated["token_ids"]),
            step_by_step_greedy(
                causal_lm, prompt["token_ids"], prompt["padding_mask"]
            ),
        )


def log_softmax(logits):
    logits = logits.astype("float64")
    logits = logits - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_score_logits_and_loss_match_the_forward_pass(causal_lm):
    prompt = prompt_ids(causal_lm)
    token_ids, padding_mask = prompt["token_ids"], prompt["padding_mask"]
    forward = to_numpy(causal_lm(prompt))
    logits = causal_lm.score(token_ids, padding_mask)
    np.testing.assert_allclose(to_numpy(logits), forward, atol=1e-5)
    target_ids = np.roll(token_ids, -1, axis=1)
    losses = to_numpy(
        causal_lm.score(
            token_ids, padding_mask, scoring_mode="loss", target_ids=target_ids
        )
    )
    expected = -np.take_along_axis(
        log_softmax(forward), target_ids[..., None], axis=-1
    )[..., 0]
    np.testing.assert_allclose(losses, expected, atol=1e-5)


def test_score_loss_is_the_training_loss(causal_lm):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
        causal_lm.preprocessor(TEXTS)
    )
    x = to_numpy(x)
    y, sample_weight = to_numpy(y), to_numpy(sample_weight)
    model = LinformerCausalLM(causal_lm.backbone, preprocessor=None)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    training_loss = model.evaluate(
        x,
        y,
        sample_weight=sample_weight,
        batch_size=len(y),
        verbose=0,
        return_dict=True,
    )["loss"]
    losses = to_numpy(
        model.score(
            x["token_ids"],
            x["padding_mask"],
            scoring_mode="loss",
            target_ids=y,
        )
    )
    # Keras averages the weighted per-token losses over every position.
    np.testing.assert_allclose(
        (losses * sample_weight).sum() / sample_weight.size,
        training_loss,
        rtol=1e-5,
    )


def test_score_layer_intercept_fn_sees_and_changes_every_layer(causal_lm):
    token_ids = prompt_ids(causal_lm)["token_ids"]
    seen = []

    def intercept(x, index):
        seen.append((index, tuple(x.shape)))
        return x * 0.0 if index == LAYERS - 1 else x

    logits = to_numpy(causal_lm.score(token_ids, layer_intercept_fn=intercept))
    shape = token_ids.shape + (HIDDEN,)
    assert seen == [(index, shape) for index in range(-1, LAYERS)]
    # Zeroed hidden states normalize to the final layer norm's bias, zeros
    # at initialization, where the plain logits are not.
    np.testing.assert_allclose(logits, 0.0, atol=1e-6)
    assert np.abs(to_numpy(causal_lm.score(token_ids))).max() > 1e-3


def test_bad_score_calls_are_rejected(causal_lm):
    token_ids = prompt_ids(causal_lm)["token_ids"]
    with pytest.raises(ValueError, match="scoring_mode"):
        causal_lm.score(token_ids, scoring_mode="perplexity")
    with pytest.raises(ValueError, match="target_ids"):
        causal_lm.score(token_ids, scoring_mode="loss")


def test_greedy_generate_is_argmax_of_repeated_full_passes(causal_lm):
    prompt = prompt_ids(causal_lm)
    model = LinformerCausalLM(causal_lm.backbone, preprocessor=None)
    model.compile(sampler="greedy")
    generated = to_numpy(
        model.generate(dict(prompt), stop_token_ids=None)["token_ids"]
    )
    token_ids = prompt["token_ids"].copy()
    is_prompt = prompt["padding_mask"].astype(bool)
    for index in range(is_prompt.sum(axis=1).min(), MAX_LENGTH):
        logits = full_forward_logits(causal_lm, token_ids)
        token_ids[:, index] = np.where(
            is_prompt[:, index],
            token_ids[:, index],
            logits[:, index - 1].argmax(axis=-1),
        )
    np.testing.assert_array_equal(generated, token_ids)


def reference_beam_search(causal_lm, token_ids, padding_mask, num_beams):
    """keras-hub's `BeamSampler` in NumPy, on full forward-pass logits.

    Each row is searched on its own. As in `BeamSampler` started where
    keras-hub's GPT-2 starts it, at the batch's shortest prompt length,
    every position from there on ranks `num_beams` x vocabulary
    continuations by their summed log-probabilities and keeps the best
    `num_beams`; prompt positions then keep their prompt token. The best
    final beam of each row is returned.
    """
    start = padding_mask.sum(axis=1).min()
    results = []
    for row, is_prompt in zip(token_ids, padding_mask.astype(bool)):
        beams = np.repeat(row[None], num_beams, axis=0)
        log_probs = np.array([0.0] + [-1e9] * (num_beams - 1))
        for index in range(start, len(row)):
            logits = full_forward_logits(causal_lm, beams)[:, index - 1]
            logits = logits.astype("float64")
            log_softmax = logits - logits.max(-1, keepdims=True)
            log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
            scores = (log_probs[:, None] + log_softmax).reshape(-1)
            best = np.argsort(-scores)[:num_beams]
            vocabulary_size = logits.shape[-1]
            beams = beams[best // vocabulary_size].copy()
            beams[:, index] = np.where(
                is_prompt[index], row[index], best % vocabulary_size
            )
            log_probs = scores[best]
        results.append(beams[log_probs.argmax()])
    return np.stack(results)


@pytest.mark.parametrize("num_prompts", [1, 3])
def test_beam_search_matches_a_reference_on_full_passes(causal_lm, num_prompts):
    # Prompts of different lengths; one prompt once crashed nothing but fed
    # beam 0's token to every beam, several crashed in the attention.
    prompts = ["the quick brown fox", "a", "the lazy"][:num_prompts]
    prompt = causal_lm.preprocessor.generate_preprocess(
        prompts, sequence_length=10
    )
    prompt = {key: to_numpy(value) for key, value in prompt.items()}
    model = LinformerCausalLM(causal_lm.backbone, preprocessor=None)
    model.compile(sampler=keras_hub.samplers.BeamSampler(num_beams=3))
    generated = model.generate(dict(prompt), stop_token_ids=None)
    expected = reference_beam_search(
        causal_lm, prompt["token_ids"], prompt["padding_mask"], num_beams=3
    )
    np.testing.assert_array_equal(to_numpy(generated["token_ids"]), expected)


def test_stop_tokens_end_each_row(causal_lm):
    model = LinformerCausalLM(causal_lm.backbone, preprocessor=None)
    model.compile(sampler="greedy")
    prompt = prompt_ids(causal_lm)
    free = to_numpy(
        model.generate(dict(prompt), stop_token_ids=None)["token_ids"]
    )
    first_new = prompt["padding_mask"].sum(axis=1)
    stop = int(free[0, first_new[0]])
    output = model.generate(dict(prompt), stop_token_ids=(stop,))
    mask = to_numpy(output["padding_mask"]).astype(bool)
    assert mask[0, first_new[0]] and not mask[0, first_new[0] + 1 :].any()


@pytest.mark.parametrize("sampler", ["top_k", "top_p"])
def test_samplers_generate_strings(causal_lm, sampler):
    causal_lm.compile(sampler=sampler)
    try:
        outputs = causal_lm.generate(PROMPTS, max_length=MAX_LENGTH)
    finally:
        causal_lm.compile(sampler="greedy")
    assert len(outputs) == 2
    assert outputs[0].startswith("the quick brown fox")


def test_generate_clamps_max_length_to_the_sequence_length_with_a_warning(
    causal_lm, monkeypatch
):
    # Generating N tokens takes seconds; keras-hub's loop is not under test.
    requested = []
    monkeypatch.setattr(
        keras_hub.models.CausalLM,
        "generate",
        lambda self, inputs, max_length=None, **kwargs: requested.append(
            max_length
        ),
    )
    with pytest.warns(UserWarning, match=rf"\({N + 6}\).*\({N}\)"):
        causal_lm.generate(PROMPTS, max_length=N + 6)
    assert requested == [N]


def test_contrastive_sampler_is_rejected(causal_lm):
    model = LinformerCausalLM(causal_lm.backbone, causal_lm.preprocessor)
    model.compile(sampler="contrastive")
    with pytest.raises(ValueError, match="contrastive"):
        model.generate(PROMPTS, max_length=MAX_LENGTH)


def test_preset_round_trip_with_generic_loaders(causal_lm, tmp_path):
    preset = str(tmp_path / "preset")
    causal_lm.save_to_preset(preset)
    revived = keras_hub.models.CausalLM.from_preset(preset)
    assert isinstance(revived, LinformerCausalLM)
    preprocessor = keras_hub.models.CausalLMPreprocessor.from_preset(preset)
    assert isinstance(preprocessor, LinformerCausalLMPreprocessor)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    assert isinstance(tokenizer, LinformerCausalTokenizer)
    assert tokenizer.get_vocabulary() == (
        causal_lm.preprocessor.tokenizer.get_vocabulary()
    )
    assert_same_logits(revived, causal_lm)
    revived.compile(sampler="greedy")
    assert revived.generate(PROMPTS, max_length=MAX_LENGTH) == (
        causal_lm.generate(PROMPTS, max_length=MAX_LENGTH)
    )


def test_keras_file_round_trip(causal_lm, tmp_path):
    path = str(tmp_path / "causal_lm.keras")
    causal_lm.save(path)
    revived = keras.saving.load_model(path)
    assert isinstance(revived, LinformerCausalLM)
    assert_same_logits(revived, causal_lm)


def test_preset_saved_by_version_0_1_0_loads():
    # Saved before the causal model had its own tokenizer class: the preset
    # names `LinformerTokenizer`, which the generic loaders still find.
    preset = os.path.join(
        os.path.dirname(__file__), "saved_at_0_1_0", "causal_lm_preset"
    )
    causal_lm = keras_hub.models.CausalLM.from_preset(preset)
    assert isinstance(causal_lm, LinformerCausalLM)
    assert causal_lm.backbone.max_sequence_length == 8
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    assert isinstance(tokenizer, LinformerTokenizer)
    x = causal_lm.preprocessor.generate_preprocess(
        ["the quick brown fox", "the lazy dog"], sequence_length=8
    )
    np.testing.assert_allclose(
        to_numpy(causal_lm(x)),
        np.load(os.path.join(preset, "expected_logits.npy")),
        atol=1e-5,
    )
