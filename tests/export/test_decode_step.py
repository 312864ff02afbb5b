"""On-device generation: the exported decode step, with or without the
exported prefill, reproduces `generate()`."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_linformer.export import export_model
from keras_linformer.models import LinformerCausalBackbone
from keras_linformer.models import LinformerCausalLM
from tests.testing import causal_backbone_kwargs
from tests.testing import tflite_runner
from tests.testing import to_numpy

PROMPT = [10, 11, 12, 13, 14]
NEW_TOKENS = 50
VOCABULARY_SIZE = 50


@pytest.fixture(scope="module", params=["mean_pool", "linear"])
def trained_lm(request, tmp_path_factory):
    """An LM trained briefly to count (mod 48), and its greedy output."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("causal_lm")
    backbone = LinformerCausalBackbone(
        **causal_backbone_kwargs(
            VOCABULARY_SIZE,
            max_sequence_length=64,
            hidden_dim=16,
            num_layers=1,
            projected_length=8,
            chunk_size=8,  # The 55 positions span seven chunks.
            projection=request.param,
        )
    )
    causal_lm = LinformerCausalLM(backbone)
    starts = np.random.default_rng(0).integers(0, 48, (64, 1))
    sequences = ((starts + np.arange(65)) % 48 + 2).astype("int32")
    causal_lm.compile(
        optimizer=keras.optimizers.Adam(3e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        sampler="greedy",
    )
    causal_lm.fit(
        {
            "token_ids": sequences[:, :-1],
            "padding_mask": np.ones((64, 64), "int32"),
        },
        sequences[:, 1:],
        batch_size=16,
        epochs=3,
        verbose=0,
    )
    keras_path = str(folder / "causal_lm.keras")
    causal_lm.save(keras_path)
    length = len(PROMPT) + NEW_TOKENS
    token_ids = np.zeros((1, length), "int32")
    token_ids[0, : len(PROMPT)] = PROMPT
    padding_mask = token_ids != 0
    generated = causal_lm.generate(
        {"token_ids": token_ids, "padding_mask": padding_mask},
        stop_token_ids=None,
    )
    return types.SimpleNamespace(
        keras_path=keras_path,
        folder=folder,
        cache_shape=causal_lm.backbone.cache_shape(1),
        generated=to_numpy(generated["token_ids"])[0].tolist(),
    )


def greedy_generate(decode_step, cache_shape):
    """Reads the prompt through the state, then picks the argmax each step."""
    tokens = list(PROMPT)
    cache = np.zeros(cache_shape, "float32")
    for index in range(len(PROMPT) + NEW_TOKENS - 1):
        outputs = decode_step(
            token_ids=np.array([[tokens[index]]], "int32"),
            cache=cache,
            index=np.array(index, "int32"),
        )
        cache = np.asarray(outputs["cache"])
        assert cache.shape == tuple(cache_shape)  # Fixed size.
        if index + 1 >= len(PROMPT):
            tokens.append(int(np.argmax(outputs["logits"][0])))
    return tokens


PREFILL_LENGTH = 8  # The prompt, right-padded.


def greedy_generate_with_prefill(prefill, decode_step):
    """Reads the prompt in one prefill call, then decodes step by step."""
    token_ids = np.zeros((1, PREFILL_LENGTH), "int32")
    token_ids[0, : len(PROMPT)] = PROMPT
    outputs = prefill(
        token_ids=token_ids, padding_mask=(token_ids != 0).astype("int32")
    )
    tokens = list(PROMPT) + [int(np.argmax(outputs["logits"][0]))]
    cache = np.asarray(outputs["cache"])
    for index in range(len(PROMPT), len(PROMPT) + NEW_TOKENS - 1):
        outputs = decode_step(
            token_ids=np.array([[tokens[index]]], "int32"),
            cache=cache,
            index=np.array(index, "int32"),
        )
        cache = np.asarray(outputs["cache"])
        tokens.append(int(np.argmax(outputs["logits"][0])))
    return tokens


def test_generation_is_not_trivial(trained_lm):
    # A model that repeats one token would make the comparison weak.
    assert len(set(trained_lm.generated[len(PROMPT) :])) > 10


def test_tflite_prefill_and_decode_step_reproduce_generate(trained_lm):
    path = export_model(
        trained_lm.keras_path, format="tflite", out=trained_lm.folder / "tflite"
    )
    interpreter, decode_step = tflite_runner(path, "decode_step")
    assert greedy_generate(decode_step, trained_lm.cache_shape) == (
        trained_lm.generated
    )
    prefill = interpreter.get_signature_runner("prefill")
    assert greedy_generate_with_prefill(prefill, decode_step) == (
        trained_lm.generated
    )


def test_saved_model_prefill_and_decode_step_reproduce_generate(trained_lm):
    path = export_model(
        trained_lm.keras_path,
        format="saved_model",
        out=trained_lm.folder / "saved_model",
    )

    signatures = tf.saved_model.load(path).signatures

    def runner(name):
        signature = signatures[name]

        def run(**inputs):
            outputs = signature(
                **{k: tf.constant(v) for k, v in inputs.items()}
            )
            return {key: value.numpy() for key, value in outputs.items()}

        return run

    decode_step = runner("decode_step")
    assert greedy_generate(decode_step, trained_lm.cache_shape) == (
        trained_lm.generated
    )
    assert greedy_generate_with_prefill(runner("prefill"), decode_step) == (
        trained_lm.generated
    )
