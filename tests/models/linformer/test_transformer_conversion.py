import keras
import keras_hub
import numpy as np
import pytest

from keras_linformer.models import LinformerBackbone
from keras_linformer.models import LinformerTextClassifier
from keras_linformer.models import LinformerTextClassifierPreprocessor
from tests.testing import BACKEND
from tests.testing import to_numpy

VOCAB, N, HIDDEN = 30, 12, 8
SIZES = dict(
    vocabulary_size=VOCAB,
    num_layers=2,
    num_heads=2,
    hidden_dim=HIDDEN,
    intermediate_dim=16,
    max_sequence_length=N,
    dropout=0.0,
)
REAL = (N, 7)  # Real tokens per row: the second row is padded.
WORDS = "the match bank goal shares fell team won cup rates".split()


def bert(**overrides):
    keras.utils.set_random_seed(0)
    return keras_hub.models.BertBackbone(**{**SIZES, **overrides})


def source_backbones():
    keras.utils.set_random_seed(0)
    return {
        "bert": bert(),
        "roberta": keras_hub.models.RobertaBackbone(**SIZES),
        "distil_bert": keras_hub.models.DistilBertBackbone(**SIZES),
    }


def inputs(source, length=N, real=REAL, seed=0):
    rng = np.random.default_rng(seed)
    padding_mask = (np.arange(length) < np.array(real)[:, None]).astype(
        "int32"
    )
    x = {
        "token_ids": rng.integers(1, VOCAB, (len(real), length)).astype(
            "int32"
        )
        * padding_mask,
        "padding_mask": padding_mask,
    }
    if "segment_ids" in source.input:
        x["segment_ids"] = (np.arange(length) >= length // 2).astype(
            "int32"
        ) * np.ones_like(padding_mask)
    return x


def sequence_output(source, x):
    output = source(x)
    if isinstance(output, dict):
        output = output["sequence_output"]
    return to_numpy(output)


def assert_same_at_real_positions(actual, expected, padding_mask, atol):
    real = padding_mask.astype(bool)
    np.testing.assert_allclose(actual[real], expected[real], atol=atol)


@pytest.mark.parametrize("name", ["bert", "roberta", "distil_bert"])
def test_full_length_conversion_equals_the_source(name):
    source = source_backbones()[name]
    linformer = LinformerBackbone.from_transformer(source, projected_length=N)
    x = inputs(source)
    assert sorted(linformer.input) == sorted(source.input)
    assert_same_at_real_positions(
        to_numpy(linformer(x)),
        sequence_output(source, x),
        x["padding_mask"],
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "projection, sharing",
    [
        ("linear", "none"),
        ("linear", "key_value"),
        ("linear", "layerwise"),
        ("conv", "headwise"),
        ("mean_pool", "headwise"),
        ("adaptive_mean_pool", "headwise"),
    ],
)
def test_every_projection_starts_from_the_source(projection, sharing):
    source = bert()
    linformer = LinformerBackbone.from_transformer(
        source,
        projected_length=N,
        projection=projection,
        parameter_sharing=sharing,
    )
    x = inputs(source)
    assert_same_at_real_positions(
        to_numpy(linformer(x)),
        sequence_output(source, x),
        x["padding_mask"],
        atol=1e-5,
    )


def test_window_mean_projection_for_fewer_slots():
    linformer = LinformerBackbone.from_transformer(
        bert(), projected_length=4, projection="linear"
    )
    kernel = to_numpy(
        linformer.transformer_layers[0]._self_attention_layer
        ._key_projection.kernel
    )
    expected = np.zeros((N, 4))
    for t in range(N):
        expected[t, t // 3] = 1 / 3
    np.testing.assert_allclose(kernel, expected)


def test_longer_positions_repeat_the_table_and_ignore_padding():
    source = bert()
    linformer = LinformerBackbone.from_transformer(
        source, max_sequence_length=3 * N, projected_length=8
    )
    table = to_numpy(linformer.position_embedding.position_embeddings)
    source_table = to_numpy(source.position_embedding.position_embeddings)
    np.testing.assert_array_equal(table, np.tile(source_table, (3, 1)))
    short = inputs(source, length=2 * N, real=(2 * N, N + 5))
    padded = {
        key: np.pad(value, [(0, 0), (0, N)]) for key, value in short.items()
    }
    assert_same_at_real_positions(
        to_numpy(linformer(padded))[:, : 2 * N],
        to_numpy(linformer(short)),
        short["padding_mask"],
        atol=1e-5,
    )


def test_adaptive_mean_pool_is_the_source_up_to_k_real_tokens():
    # At 3n positions with k = n slots, inputs of at most n real tokens keep
    # one slot per token: nothing is compressed.
    source = bert()
    linformer = LinformerBackbone.from_transformer(
        source,
        max_sequence_length=3 * N,
        projected_length=N,
        projection="adaptive_mean_pool",
    )
    x = inputs(source)
    padded = {
        key: np.pad(value, [(0, 0), (0, 2 * N)]) for key, value in x.items()
    }
    assert_same_at_real_positions(
        to_numpy(linformer(padded))[:, :N],
        sequence_output(source, x),
        x["padding_mask"],
        atol=1e-5,
    )


@pytest.mark.parametrize("projection", ["mean_pool", "conv"])
def test_short_inputs_do_not_see_the_longer_positions_after_training(
    projection,
):
    """A backbone converted for 3N positions with fixed windows, its weights
    moved as training moves them, gives an input of at most N tokens what the
    same weights give at N positions with the same window: its padding fills
    no slot."""
    source = bert()
    long = LinformerBackbone.from_transformer(
        source,
        max_sequence_length=3 * N,
        projected_length=N,
        projection=projection,
    )
    rng = np.random.default_rng(1)
    for weight in long.weights:
        value = to_numpy(weight)
        weight.assign(value + rng.normal(0, 0.01, value.shape))
    short = LinformerBackbone.from_config(
        dict(
            long.get_config(),
            max_sequence_length=N,
            projected_length=N // 3,
        )
    )
    for target, weight in zip(short.weights, long.weights):
        # Only the position table has a row per position.
        target.assign(to_numpy(weight)[: target.shape[0]])
    x = inputs(source, real=(N, 7))
    padded = {
        key: np.pad(value, [(0, 0), (0, 2 * N)]) for key, value in x.items()
    }
    assert_same_at_real_positions(
        to_numpy(long(padded))[:, :N],
        to_numpy(short(x)),
        x["padding_mask"],
        atol=1e-5,
    )


def test_shorter_positions_keep_the_first_rows():
    source = bert()
    linformer = LinformerBackbone.from_transformer(
        source, max_sequence_length=N // 2, projected_length=N // 2
    )
    x = inputs(source, length=N // 2, real=(N // 2, 3))
    assert_same_at_real_positions(
        to_numpy(linformer(x)),
        sequence_output(source, x),
        x["padding_mask"],
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "source, overrides, message",
    [
        ("gpt2", {}, "converts a keras-hub BertBackbone"),
        ("linformer", {}, "converts a keras-hub BertBackbone"),
        ("bert", dict(max_sequence_length=0), "max_sequence_length"),
        ("bert", dict(projected_length=N + 1), "must not exceed"),
    ],
)
def test_bad_conversions_are_rejected(source, overrides, message):
    sizes = {**SIZES, "max_sequence_length": N}
    if source == "gpt2":
        source = keras_hub.models.GPT2Backbone(**sizes)
    elif source == "linformer":
        source = LinformerBackbone(**sizes, projected_length=4)
    else:
        source = bert()
    with pytest.raises(ValueError, match=message):
        LinformerBackbone.from_transformer(
            source, **{"projected_length": 4, **overrides}
        )


def bert_tokenizer(size=VOCAB):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    fillers = [f"word{i}" for i in range(size - len(specials) - len(WORDS))]
    return keras_hub.models.BertTokenizer(
        vocabulary=specials + WORDS + fillers, lowercase=True
    )


def test_a_larger_tokenizer_vocabulary_is_rejected():
    backbone = LinformerBackbone.from_transformer(bert(), projected_length=4)
    preprocessor = LinformerTextClassifierPreprocessor(
        bert_tokenizer(VOCAB + 5), sequence_length=N
    )
    with pytest.raises(ValueError, match="vocabulary_size"):
        LinformerTextClassifier(backbone, 2, preprocessor=preprocessor)


def test_converted_classifier_trains_and_round_trips_as_a_preset(tmp_path):
    backbone = LinformerBackbone.from_transformer(
        bert(), max_sequence_length=2 * N, projected_length=4
    )
    classifier = LinformerTextClassifier(
        backbone,
        num_classes=2,
        preprocessor=LinformerTextClassifierPreprocessor(
            bert_tokenizer(), sequence_length=2 * N
        ),
    )
    texts = ["the team won the cup", "shares fell", "a goal", "bank rates"]
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3))
    classifier.fit(texts, np.array([1, 0, 1, 0]), epochs=1, verbose=0)
    expected = classifier.predict(texts, verbose=0)

    preset = str(tmp_path / "classifier")
    classifier.save_to_preset(preset)
    revived = keras_hub.models.TextClassifier.from_preset(preset)
    tokenizer = revived.preprocessor.tokenizer
    assert isinstance(tokenizer, keras_hub.models.BertTokenizer)
    np.testing.assert_allclose(
        revived.predict(texts, verbose=0), expected, atol=1e-5
    )
    revived_backbone = keras_hub.models.Backbone.from_preset(preset)
    assert isinstance(revived_backbone, LinformerBackbone)
    assert revived_backbone.get_config() == backbone.get_config()
    x = inputs(backbone, length=2 * N)
    np.testing.assert_allclose(
        to_numpy(revived_backbone(x)), to_numpy(backbone(x)), atol=1e-6
    )


def test_config_round_trips_the_new_options():
    backbone = LinformerBackbone.from_transformer(bert(), projected_length=4)
    config = backbone.get_config()
    assert config["num_segments"] == 2
    assert config["layer_norm_epsilon"] == 1e-12
    revived = LinformerBackbone.from_config(config)
    revived.set_weights(backbone.get_weights())
    x = inputs(backbone)
    np.testing.assert_allclose(
        to_numpy(revived(x)), to_numpy(backbone(x)), atol=1e-6
    )


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="Loads the 90 MB MiniLM checkpoint: once, on one backend",
)
def test_minilm_conversion_equals_minilm(tmp_path, monkeypatch):
    pytest.importorskip("all_minilm_l6_v2")
    from keras_linformer.models.linformer.transformer_checkpoints import (
        load_transformer,
    )

    monkeypatch.setenv("KERAS_LINFORMER_CACHE", str(tmp_path))
    source, tokenizer = load_transformer("minilm")
    n = source.max_sequence_length
    linformer = LinformerBackbone.from_transformer(source, projected_length=n)
    preprocessor = LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=48
    )
    x = preprocessor(
        ["Linformer compresses keys and values.", "A short one."]
    )
    x = {key: to_numpy(value) for key, value in x.items()}
    x["segment_ids"] = np.zeros_like(x["token_ids"])
    assert_same_at_real_positions(
        to_numpy(linformer(x)),
        sequence_output(source, x),
        x["padding_mask"],
        atol=1e-4,
    )
