"""Linformer vs a standard Transformer vs bag-of-words on BBC News.

On the split of `examples/text_classification.py`, with the same tokenizer,
embeddings, width, depth, pooling, head, optimizer recipe and number of
epochs, trains a `LinformerTextClassifier` (one per `--projections` kind) and
the same network with keras-hub `TransformerEncoder` blocks (full softmax
attention), at each sequence length and for each seed (`--seeds`: weights
and batch order; the split stays fixed); adds a TF-IDF logistic-regression
baseline on the full texts. Prints a markdown table of test accuracy (mean
and spread over the seeds, and each run), time per epoch and peak memory,
and writes `classification_quality.json` and `.png` to `--out`.

Each neural run is a fresh process, so its peak memory is its own. Time per
epoch is the median over the epochs after the first (which compiles).

    KERAS_BACKEND=tensorflow python benchmarks/classification_quality.py
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import text_classification as example  # noqa: E402

MODELS = ("linformer", "transformer")
PROJECTIONS = ("linear", "mean_pool", "max_pool", "conv")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sequence-lengths", type=int, nargs="+", default=[512, 2048]
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--projected-length", type=int, default=64)
    parser.add_argument(
        "--projections",
        nargs="+",
        choices=PROJECTIONS,
        default=["linear", "conv"],
        help="one Linformer run per projection kind",
    )
    parser.add_argument(
        "--pooling", choices=("attention", "mean"), default="attention"
    )
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--num-heads", type=int, default=2)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="one run per seed (weights and batch order; the split is fixed)",
    )
    parser.add_argument(
        "--out", default=os.path.join(HERE, "results"), help="JSON and PNG"
    )
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--projection", choices=PROJECTIONS, help=argparse.SUPPRESS
    )
    parser.add_argument("--sequence-length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def training_args(args, sequence_length):
    """The example's options for this run: its recipe, our sizes."""
    return example.parse_args(
        [
            "--sequence-length", str(sequence_length),
            "--projected-length", str(args.projected_length),
            "--projection", args.projection or "linear",
            "--pooling", args.pooling,
            "--hidden-dim", str(args.hidden_dim),
            "--num-layers", str(args.num_layers),
            "--num-heads", str(args.num_heads),
            "--vocabulary-size", str(args.vocabulary_size),
            "--learning-rate", str(args.learning_rate),
            "--dropout", str(args.dropout),
            "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size),
        ]
    )  # fmt: skip


def load_split(args):
    texts, labels, class_names = example.load_data(example.parse_args([]))
    return example.stratified_split(texts, labels, args.max_examples), len(
        class_names
    )


# === One neural run (in its own process) ===


def transformer_classifier(linformer, num_classes, dropout):
    """The Linformer classifier's network with full-attention blocks: the
    same embedding layers (built fresh), block arguments, pooling and head."""
    import keras
    import keras_hub

    from keras_linformer.models.backbone_utils import (
        embedding_layers,
    )
    from keras_linformer.models.linformer.linformer_text_classifier import (
        POOLINGS,
    )

    backbone = linformer.backbone
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    token_embedding, position_embedding = embedding_layers(
        backbone.vocabulary_size,
        backbone.hidden_dim,
        backbone.max_sequence_length,
        backbone.dtype_policy,
    )
    tokens = token_embedding(token_ids)
    x = keras.layers.Add()((tokens, position_embedding(tokens)))
    x = keras.layers.LayerNormalization(epsilon=1e-5)(x)
    x = keras.layers.Dropout(dropout)(x)
    for _ in range(backbone.num_layers):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=backbone.intermediate_dim,
            num_heads=backbone.num_heads,
            dropout=dropout,
            activation="gelu",
        )(x, padding_mask=padding_mask)
    x = POOLINGS[linformer.pooling]()(x, mask=padding_mask)
    x = keras.layers.Dropout(dropout)(x)
    logits = keras.layers.Dense(num_classes)(x)
    return keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask}, logits
    )


class PeakMemory:
    """Samples this process's resident memory while a block runs."""

    def __init__(self, interval=0.05):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self.baseline = self.peak
        self._running = False

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()


def run_worker(args):
    import keras
    import tensorflow as tf

    (train, validation, test), num_classes = load_split(args)
    options = training_args(args, args.sequence_length)
    keras.utils.set_random_seed(args.seed)
    linformer = example.build_classifier(train[0], num_classes, options)
    preprocessor = linformer.preprocessor

    def tokenized(texts, labels, shuffle=False):
        dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
        dataset = dataset.batch(args.batch_size).map(preprocessor).cache()
        if shuffle:
            dataset = dataset.shuffle(64, seed=args.seed)
        return dataset.prefetch(tf.data.AUTOTUNE)

    # Tokenized once up front, so epochs time the model alone.
    train_data = tokenized(*train, shuffle=True)
    for _ in train_data:
        pass
    if args.worker == "linformer":
        model = keras.Model(linformer.inputs, linformer.outputs)
    else:
        model = transformer_classifier(linformer, num_classes, options.dropout)
    model.compile(
        optimizer=example.make_optimizer(len(train[1]), options),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    epoch_times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.start)

    with PeakMemory() as memory:
        model.fit(
            train_data,
            epochs=args.epochs,
            callbacks=[EpochTimer()],
            verbose=2,
        )
    _, accuracy = model.evaluate(tokenized(*test), verbose=0)
    print(
        json.dumps(
            {
                "model": model_name(args.worker, args.projection),
                "sequence_length": args.sequence_length,
                "seed": args.seed,
                "accuracy": float(accuracy),
                "seconds_per_epoch": float(np.median(epoch_times[1:] or epoch_times)),
                "peak_memory_mib": memory.peak / 2**20,
                "training_memory_mib": (memory.peak - memory.baseline) / 2**20,
                "parameters": int(model.count_params()),
            }
        )
    )


# === Driver ===


def bag_of_words(args):
    """TF-IDF unigrams and bigrams + logistic regression on the full texts."""
    (train, _, test), _ = load_split(args)
    return bag_of_words_on(train, test)


def bag_of_words_on(train, test):
    """The bag-of-words baseline trained on `train`, scored on `test`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(train[0])
    model = LogisticRegression(C=10, max_iter=1000).fit(features, train[1])
    seconds = time.perf_counter() - start
    accuracy = model.score(vectorizer.transform(test[0]), test[1])
    return {
        "model": "bag-of-words",
        "sequence_length": None,
        "accuracy": float(accuracy),
        "seconds_per_epoch": seconds,
        "peak_memory_mib": None,
        "training_memory_mib": None,
        "parameters": int(model.coef_.size + model.intercept_.size),
    }


def model_name(model, projection):
    return f"linformer ({projection})" if model == "linformer" else model


def run_in_process(args, model, projection, sequence_length, seed):
    argv = [sys.executable, os.path.abspath(__file__), "--worker", model]
    argv += ["--sequence-length", str(sequence_length), "--seed", str(seed)]
    if projection:
        argv += ["--projection", projection]
    for name in (
        "epochs", "batch_size", "projected_length", "pooling", "hidden_dim",
        "num_layers", "num_heads", "vocabulary_size", "learning_rate", "dropout",
    ):  # fmt: skip
        argv += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    if args.max_examples:
        argv += ["--max-examples", str(args.max_examples)]
    print(
        f"--- {model_name(model, projection)}, sequence length "
        f"{sequence_length}, seed {seed}",
        flush=True,
    )
    result = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    if result.returncode:
        raise SystemExit(f"the {model} run failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def aggregate(results):
    """One row per (model, n): accuracy as mean and spread over seeds."""
    rows = {}
    for r in results:
        rows.setdefault((r["model"], r["sequence_length"]), []).append(r)

    def mean(runs, key):
        values = [r[key] for r in runs if r[key] is not None]
        return float(np.mean(values)) if values else None

    return [
        {
            "model": model,
            "sequence_length": sequence_length,
            "runs": len(runs),
            "accuracy": mean(runs, "accuracy"),
            "accuracy_std": float(np.std([r["accuracy"] for r in runs])),
            "accuracies": [r["accuracy"] for r in runs],
            "seconds_per_epoch": mean(runs, "seconds_per_epoch"),
            "peak_memory_mib": mean(runs, "peak_memory_mib"),
            "training_memory_mib": mean(runs, "training_memory_mib"),
            "parameters": runs[0]["parameters"],
        }
        for (model, sequence_length), runs in rows.items()
    ]


def markdown_table(summary):
    lines = [
        "| model | n | runs | test accuracy (mean ± std) | each run "
        "| s / epoch | peak memory (MiB) | memory in fit (MiB) | parameters |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]

    def number(value, fmt):
        return "-" if value is None else format(value, fmt)

    for r in summary:
        each = ", ".join(f"{a:.4f}" for a in r["accuracies"])
        lines.append(
            f"| {r['model']} | {r['sequence_length'] or 'all words'} "
            f"| {r['runs']} | {r['accuracy']:.4f} ± {r['accuracy_std']:.4f} "
            f"| {each} | {number(r['seconds_per_epoch'], '.1f')} "
            f"| {number(r['peak_memory_mib'], '.0f')} "
            f"| {number(r['training_memory_mib'], '.0f')} "
            f"| {r['parameters']:,} |"
        )
    return "\n".join(lines)


def plot(summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    models = [r["model"] for r in summary if r["sequence_length"]]
    for model in dict.fromkeys(models):
        rows = [r for r in summary if r["model"] == model]
        lengths = [r["sequence_length"] for r in rows]
        axes[0].errorbar(
            lengths,
            [r["accuracy"] for r in rows],
            yerr=[r["accuracy_std"] for r in rows],
            fmt="o-",
            capsize=3,
            label=model,
        )
        for axis, key in zip(
            axes[1:], ("seconds_per_epoch", "training_memory_mib")
        ):
            axis.plot(lengths, [r[key] for r in rows], "o-", label=model)
        for axis, key in zip(
            axes, ("accuracy", "seconds_per_epoch", "training_memory_mib")
        ):
            axis.set_xlabel("sequence length n")
            axis.set_ylabel(key.replace("_", " "))
            axis.set_xscale("log", base=2)
    for r in summary:
        if r["model"] == "bag-of-words":
            axes[0].axhline(r["accuracy"], ls="--", c="gray", label="bag-of-words")
    axes[0].legend()
    figure.suptitle("BBC News: Linformer vs Transformer")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    import keras

    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "classification_quality.json")
    results = [bag_of_words(args)]
    runs = [("linformer", p) for p in args.projections]
    runs.append(("transformer", None))
    for sequence_length in args.sequence_lengths:
        for seed in args.seeds:
            for model, projection in runs:
                results.append(
                    run_in_process(
                        args, model, projection, sequence_length, seed
                    )
                )
                # Saved after every run, so a long run that is stopped
                # keeps what it measured.
                with open(json_path, "w") as file:
                    json.dump(
                        {
                            "settings": vars(args),
                            "summary": aggregate(results),
                            "results": results,
                        },
                        file,
                    )
    summary = aggregate(results)
    table = markdown_table(summary)
    print(f"\nBackend: {keras.backend.backend()}, {os.cpu_count()} CPUs, "
          f"{args.epochs} epochs, batch {args.batch_size}, "
          f"k={args.projected_length}, hidden {args.hidden_dim}, "
          f"{args.num_layers} layer(s)\n")
    print(table)
    plot(summary, os.path.join(args.out, "classification_quality.png"))
    print(f"\nWrote {args.out}/classification_quality.json and .png")


if __name__ == "__main__":
    main()
