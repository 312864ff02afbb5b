"""Shared test helpers: the standard layer checks and cross-backend runs.

`run_layer_test` is modelled on keras-hub's `TestCase.run_layer_test` but
written for plain pytest functions, so tests can be parametrized freely.
Mixed precision is checked separately by `run_mixed_precision_test`,
parametrized over `MIXED_PRECISION_POLICIES`, so that a policy a backend
cannot run shows up as a skip with its reason.
"""

import argparse
import importlib.util
import inspect
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

BACKEND = keras.config.backend()
BACKENDS = ("tensorflow", "jax", "torch")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MIXED_PRECISION_POLICIES = [
    pytest.param("mixed_bfloat16", id="mixed_bfloat16"),
    pytest.param(
        "mixed_float16",
        id="mixed_float16",
        marks=pytest.mark.skipif(
            BACKEND == "jax",
            reason="JAX on CPU has no float16 dot for attention",
        ),
    ),
]


def compiled(function, *examples, dynamic_length=True):
    """`function` of NumPy arrays like `examples`, compiled as the backend
    compiles a Keras step: a `tf.function` (with `dynamic_length`, axis 1 of
    arrays of rank 2 or more unknown while tracing), `jax.jit`, or on
    PyTorch, which runs Keras eagerly, the function itself."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def spec(example):
            shape = list(np.shape(example))
            if dynamic_length and len(shape) >= 2:
                shape[1] = None
            return tf.TensorSpec(shape, np.asarray(example).dtype)

        signature = [spec(x) for x in examples]
        return tf.function(function, input_signature=signature)
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    return function


def compiled_call_errors():
    """What a failed check raises in a compiled call: a ValueError, or the
    backend's run-time error carrying its message (see
    `keras_linformer.backend_utils.check_at_run_time`)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return (ValueError, tf.errors.InvalidArgumentError)
    if BACKEND == "jax":
        import jax

        return (ValueError, jax.errors.JaxRuntimeError)
    return (ValueError,)


def to_numpy(x):
    """A tensor (or a nested structure of them) as NumPy arrays."""
    return keras.tree.map_structure(ops.convert_to_numpy, x)


def input_gradients(function, *inputs):
    """Gradients of `sum(function(*inputs))` with respect to each NumPy
    input, as NumPy arrays, with the backend's own autodiff."""
    if BACKEND == "jax":
        import jax

        loss = lambda *xs: ops.sum(function(*xs))  # noqa: E731
        argnums = tuple(range(len(inputs)))
        return to_numpy(jax.grad(loss, argnums=argnums)(*inputs))
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(x) for x in inputs]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            loss = tf.reduce_sum(function(*tensors))
        return to_numpy(tape.gradient(loss, tensors))
    import torch

    tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
    return to_numpy(torch.autograd.grad(function(*tensors).sum(), tensors))


def serialized_json(obj):
    """The canonical JSON of a Keras object, for comparing configs.

    Going through `serialize_keras_object` turns nested Keras objects (e.g. a
    shared `SequenceProjection` in a layer's config) into dicts too.
    """
    return json.dumps(
        keras.saving.serialize_keras_object(obj), sort_keys=True, indent=1
    )


def run_serialization_test(layer):
    """Checks that `get_config`/`from_config` and serialization round-trip.

    The revived layers must have the same config as `layer`.
    """
    expected = json.loads(serialized_json(layer))["config"]
    revived = layer.__class__.from_config(layer.get_config())
    assert json.loads(serialized_json(revived))["config"] == expected
    deserialized = keras.saving.deserialize_keras_object(
        json.loads(serialized_json(layer))
    )
    assert type(deserialized) is type(layer)
    assert json.loads(serialized_json(deserialized))["config"] == expected


def call_layer(layer, input_data, **kwargs):
    """Calls `layer` with the dict `input_data` as keyword arguments."""
    return layer(**input_data, **kwargs)


def symbolic_inputs(input_data):
    """One `keras.Input` per entry of the dict `input_data` (NumPy arrays),
    with the same batch size, shape, dtype and name."""
    return {
        name: keras.Input(
            batch_shape=np.shape(value),
            dtype=keras.backend.standardize_dtype(value.dtype),
            name=name,
        )
        for name, value in input_data.items()
    }


def float_tensors(output):
    """The floating-point tensors of a (nested) layer output, in order.

    Leaves out `None` entries and boolean/integer tensors such as masks.
    """
    return [
        t
        for t in keras.tree.flatten(output)
        if t is not None and keras.backend.is_float_dtype(t.dtype)
    ]


def functional_model(layer, input_data):
    """A functional model calling `layer` on inputs like `input_data`.

    Its outputs are the floating-point outputs of the layer.
    """
    inputs = symbolic_inputs(input_data)
    return keras.Model(inputs, float_tensors(call_layer(layer, inputs)))


def assert_trainable_weights_change(model, x, y, exclude=()):
    """Runs one `fit` step and asserts that every trainable weight changed.

    This proves gradients reach every weight on any backend. `exclude` lists
    substrings of weight paths that are allowed to stay (with a reason at the
    call site).
    """
    weights = [
        w
        for w in model.trainable_weights
        if not any(part in w.path for part in exclude)
    ]
    assert weights, "the model has no trainable weights to check"
    before = [ops.convert_to_numpy(w) for w in weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, batch_size=len(y), epochs=1, verbose=0)
    unchanged = [
        w.path
        for w, old in zip(weights, before)
        if np.array_equal(ops.convert_to_numpy(w), old)
    ]
    assert not unchanged, f"no gradient reached: {unchanged}"


def _assert_output_shape(output, expected_output_shape):
    """`expected_output_shape` is one shape or a tuple of shapes (or None)."""
    first = expected_output_shape[0]
    if first is not None and not isinstance(first, (tuple, list)):
        expected_output_shape = (expected_output_shape,)
    shapes = [
        None if t is None else tuple(t.shape)
        for t in keras.tree.flatten(output)
    ]
    expected = [
        None if shape is None else tuple(shape)
        for shape in expected_output_shape
    ]
    assert shapes == expected


def run_layer_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    run_training_check=True,
    untrained_weights=(),
):
    """Runs the standard checks of a layer.

    Checks, each on a fresh layer: the config round trip; building from the
    input shapes; a symbolic call inside a functional model; an eager call;
    and (if `run_training_check`) one `fit` step of that functional model,
    which must change every trainable weight.

    Args:
        cls: the layer class.
        init_kwargs: dict. Arguments for `cls`.
        input_data: dict. Call arguments (NumPy arrays) by name, e.g.
            `{"query": q, "value": v, "value_mask": m}`. Entries whose
            `<name>_shape` is an argument of `build` are used to build.
        expected_output_shape: the output shape, or a tuple of shapes when the
            layer returns several tensors.
        run_training_check: bool. Whether to run the `fit` step.
        untrained_weights: substrings of weight paths that receive no
            gradient by design (see `assert_trainable_weights_change`).

    Returns:
        The eager output, as NumPy.
    """
    # Fixed initial weights, whatever ran before.
    keras.utils.set_random_seed(0)
    run_serialization_test(cls(**init_kwargs))

    layer = cls(**init_kwargs)
    build_args = inspect.signature(layer.build).parameters
    layer.build(
        **{
            f"{name}_shape": np.shape(value)
            for name, value in input_data.items()
            if f"{name}_shape" in build_args
        }
    )
    assert layer.built
    built_weights = len(layer.weights)

    layer = cls(**init_kwargs)
    inputs = symbolic_inputs(input_data)
    symbolic_output = call_layer(layer, inputs)
    assert layer.built
    assert len(layer.weights) == built_weights
    _assert_output_shape(symbolic_output, expected_output_shape)
    for tensor in float_tensors(symbolic_output):
        assert tensor.dtype == layer.compute_dtype
    model = keras.Model(inputs, float_tensors(symbolic_output))

    eager_layer = cls(**init_kwargs)
    output = call_layer(eager_layer, input_data)
    _assert_output_shape(output, expected_output_shape)
    for tensor in float_tensors(output):
        assert keras.backend.standardize_dtype(tensor.dtype) == (
            eager_layer.compute_dtype
        )
        assert np.all(np.isfinite(ops.convert_to_numpy(tensor)))

    if run_training_check:
        rng = np.random.default_rng(0)
        targets = [
            rng.normal(size=t.shape).astype("float32")
            for t in float_tensors(output)
        ]
        assert_trainable_weights_change(
            model, input_data, targets, exclude=untrained_weights
        )
    return to_numpy(output)


def run_mixed_precision_test(cls, init_kwargs, input_data, policy):
    """Checks `cls` under a mixed precision `policy` (a policy name).

    Outputs (eager and symbolic) must have the compute dtype and be finite;
    all variables and every sublayer's variables must keep the variable
    dtype (float32). Parametrize tests over `MIXED_PRECISION_POLICIES`.
    """
    policy = keras.dtype_policies.get(policy)
    layer = cls(**init_kwargs, dtype=policy)
    output = call_layer(layer, input_data)
    assert float_tensors(output)
    for tensor in float_tensors(output):
        assert keras.backend.standardize_dtype(tensor.dtype) == (
            policy.compute_dtype
        )
        values = ops.convert_to_numpy(ops.cast(tensor, "float32"))
        assert np.all(np.isfinite(values))
    symbolic = functional_model(cls(**init_kwargs, dtype=policy), input_data)
    for tensor in symbolic.outputs:
        assert tensor.dtype == policy.compute_dtype
    for weight in layer.weights:
        assert weight.dtype == policy.variable_dtype, weight.path
    for sublayer in layer._flatten_layers():
        assert sublayer.compute_dtype == policy.compute_dtype, sublayer.name
        assert sublayer.variable_dtype == policy.variable_dtype, sublayer.name


def start_in_backend(backend, code):
    """Starts the Python `code` in a fresh process with `KERAS_BACKEND`.

    The process starts in the repository root. Start several before waiting
    on any (`finish_in_backend`) to run them in parallel.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=dict(os.environ, KERAS_BACKEND=backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.backend = backend
    return process


def finish_in_backend(process, timeout=300):
    """Waits for a process from `start_in_backend` and returns its stdout;
    fails the test with its stderr if it exits with an error."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"KERAS_BACKEND={process.backend} subprocess timed out")
    if process.returncode != 0:
        pytest.fail(
            f"KERAS_BACKEND={process.backend} subprocess failed "
            f"(exit {process.returncode}):\n{stderr[-4000:]}"
        )
    return stdout


def run_in_backend(backend, code, timeout=300):
    """Runs the Python `code` in a fresh process with `KERAS_BACKEND` and
    returns its stdout (see `start_in_backend`)."""
    return finish_in_backend(start_in_backend(backend, code), timeout)


def import_example(name):
    """Imports `examples/<name>.py` as a module (examples are not a package),
    with the examples folder on `sys.path` as when a script runs."""
    folder = os.path.join(REPO_ROOT, "examples")
    if folder not in sys.path:
        sys.path.append(folder)
    path = os.path.join(folder, f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def optimizer_options(argv):
    """The examples' optimizer options, parsed from `argv` (by default
    learning rate 0.1, one epoch in batches of 2)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2)
    import_example("common").add_optimizer_arguments(parser, learning_rate=0.1)
    return parser.parse_args(argv)


# === Tiny text classification data and model (models, examples) ===

CLASSIFICATION_TEXTS = [
    "shares rose as the market rallied on strong profits",
    "the striker scored twice and the team won the cup",
    "the bank cut interest rates and shares fell",
    "a late goal won the match for the home side",
] * 2
CLASSIFICATION_LABELS = np.array([0, 1, 0, 1] * 2)


def tiny_text_classifier(tokenizer=None, sequence_length=16, **overrides):
    """A compiled two-class `LinformerTextClassifier` small enough for tests.

    The tokenizer defaults to WordPiece learned from `CLASSIFICATION_TEXTS`;
    `overrides` go to the `LinformerBackbone`.
    """
    import keras_linformer

    if tokenizer is None:
        tokenizer = keras_linformer.LinformerTokenizer.from_corpus(
            CLASSIFICATION_TEXTS, vocabulary_size=100
        )
    preprocessor = keras_linformer.LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )
    backbone_kwargs = dict(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=sequence_length,
        projected_length=4,
    )
    backbone_kwargs.update(overrides)
    backbone = keras_linformer.LinformerBackbone(**backbone_kwargs)
    classifier = keras_linformer.LinformerTextClassifier(
        backbone, num_classes=2, preprocessor=preprocessor
    )
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    return classifier


# === Tiny causal language model (models, export) ===

# Two layers of two heads, k = 4 summary slots and chunks of C = 3 positions,
# unless `causal_backbone_kwargs` is told otherwise.
CAUSAL_LAYERS, CAUSAL_HEADS, CAUSAL_K, CAUSAL_C = 2, 2, 4, 3


def causal_backbone_kwargs(
    vocabulary_size, max_sequence_length, hidden_dim, **overrides
):
    """Arguments of a `LinformerCausalBackbone` small enough for tests.

    `CAUSAL_LAYERS` layers of `CAUSAL_HEADS` heads, `CAUSAL_K` summary slots,
    chunks of `CAUSAL_C`, a feedforward twice `hidden_dim` wide and no
    dropout; `overrides` replace any of these.
    """
    kwargs = dict(
        vocabulary_size=vocabulary_size,
        num_layers=CAUSAL_LAYERS,
        num_heads=CAUSAL_HEADS,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=max_sequence_length,
        projected_length=CAUSAL_K,
        chunk_size=CAUSAL_C,
        dropout=0.0,
    )
    kwargs.update(overrides)
    return kwargs


def tflite_runner(path, signature="serving_default"):
    """A LiteRT signature runner for `signature` of the `.tflite` file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    return interpreter, interpreter.get_signature_runner(signature)


def tflite_op_names(interpreter):
    """The names of the ops a LiteRT interpreter's model uses."""
    return {op["op_name"] for op in interpreter._get_ops_details()}


def example_error_message(example, argv):
    """The one-line error an example script's `main(argv)` exits with."""
    with pytest.raises(SystemExit) as raised:
        example.main(argv)
    message = str(raised.value.code)
    assert "\n" not in message
    return message


def example_usage_error(example, argv, capsys):
    """What an example's option parser prints when it rejects `argv`."""
    with pytest.raises(SystemExit) as raised:
        example.parse_args(argv)
    assert raised.value.code == 2
    return capsys.readouterr().err


def example_script_stderr_lines(example, argv):
    """Runs `python examples/<name>.py argv`, which must fail; its stderr."""
    result = subprocess.run(
        [sys.executable, example.__file__, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    return result.stderr.strip().splitlines()


# === keras-hub and keras_nlp tokenizers users already have (preprocessors) ===

TOKENIZER_WORDS = "the quick brown fox jumps over lazy dog".split()
TOKENIZER_KINDS = ("word_piece", "byte", "sentence_piece", "bert")


def library_tokenizer(kind, library="keras_hub"):
    """A tiny tokenizer of `library` (`"keras_hub"` or `"keras_nlp"`).

    `"word_piece"`: `WordPieceTokenizer` with `[PAD] [UNK] [CLS] [SEP]` and
    no `[MASK]`; `"byte"`: `ByteTokenizer`; `"sentence_piece"`: a
    `SentencePieceTokenizer` trained here (with `<pad> <unk> <s> </s>`);
    `"bert"`: `BertTokenizer`.
    """
    import importlib

    import tensorflow as tf

    module = importlib.import_module(library)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    if kind == "word_piece":
        return module.tokenizers.WordPieceTokenizer(
            vocabulary=special + TOKENIZER_WORDS
        )
    if kind == "byte":
        return module.tokenizers.ByteTokenizer()
    if kind == "sentence_piece":
        proto = module.tokenizers.compute_sentence_piece_proto(
            tf.data.Dataset.from_tensor_slices([" ".join(TOKENIZER_WORDS)]),
            vocabulary_size=len(TOKENIZER_WORDS) + 4,
            model_type="word",
        )
        return module.tokenizers.SentencePieceTokenizer(proto=proto)
    if kind == "bert":
        return module.models.BertTokenizer(
            vocabulary=special + ["[MASK]"] + TOKENIZER_WORDS
        )
    raise ValueError(f"Unknown tokenizer kind: {kind!r}")
