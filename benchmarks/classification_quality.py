"""Linformer vs a standard Transformer vs bag-of-words on BBC News.

On the split of `examples/text_classification.py`, with the same tokenizer,
embeddings, width, depth, pooling, head, optimizer recipe and number of
epochs, trains a `LinformerTextClassifier` (one per `--projections` kind) and
the same network with keras-hub `TransformerEncoder` blocks (full softmax
attention), at each sequence length and for each seed (`--seeds`: weights
and the order of the texts, reshuffled every epoch; the split stays fixed);
adds a TF-IDF logistic-regression baseline on the full texts. Prints a
markdown table of test accuracy (mean and spread over the seeds, and each
run), time per epoch and peak memory, and writes `classification_quality.md`,
`.json` and `.png` to `--out`.

Each neural run is a fresh process (`harness.py`), so its peak memory is its
own: the peak resident set during `fit`, in all (`peak_memory_mib`) and above
the process's memory before it (`training_memory_mib`). A run's time per
epoch is the median over the epochs after the first (which compiles); a
row's is the median over its seeds. `--compile` sets `Model.compile(
jit_compile=...)`.

    KERAS_BACKEND=tensorflow python benchmarks/classification_quality.py
    python benchmarks/classification_quality.py --sequence-lengths 64 \
        --epochs 2 --seeds 1 --projections linear --max-examples 60 \
        --vocabulary-size 500      # a smoke test
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

import harness
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import text_classification as example  # noqa: E402

MODELS = ("linformer", "transformer")
# The options a run's process needs, besides its model, projection, length
# and seed.
RUN_OPTIONS = (
    "epochs", "batch_size", "projected_length", "pooling", "hidden_dim",
    "num_layers", "num_heads", "vocabulary_size", "learning_rate", "dropout",
    "max_examples", "compile",
)  # fmt: skip


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
        choices=PROJECTION_KINDS,
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
        "--out",
        default=os.path.join(HERE, "results"),
        help="folder of the markdown table, JSON and PNG",
    )
    harness.add_arguments(parser)
    args = parser.parse_args(argv)
    harness.check_positive(
        parser,
        args,
        ("sequence_lengths", "epochs", "batch_size", "projected_length"),
    )
    return args


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


def train_and_test(point):
    """Trains one classifier on the split and tests it; the run's result."""
    import keras

    args = argparse.Namespace(**point)
    (train, _, test), num_classes = load_split(args)
    options = training_args(args, args.sequence_length)
    keras.utils.set_random_seed(args.seed)
    linformer = example.build_classifier(train[0], num_classes, options)
    if args.model == "linformer":
        model = keras.Model(linformer.inputs, linformer.outputs)
    else:
        model = transformer_classifier(linformer, num_classes, options.dropout)
    result = fit_and_test(
        model, linformer.preprocessor, train, test, options, args
    )
    result.update(
        model=model_name(args.model, args.projection),
        sequence_length=args.sequence_length,
    )
    return result


def tokenized_batches(texts, labels, preprocessor, batch_size, seed=None):
    """(`preprocessor` output, label) batches, tokenized once and cached.

    With a `seed` the texts, not fixed batches of them, are reshuffled every
    epoch (the example's `shuffled_batches`); without one they keep their
    order.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
    dataset = dataset.batch(batch_size).map(preprocessor)
    if seed is None:
        dataset = dataset.cache()
    else:
        dataset = dataset.unbatch().cache()
        dataset = dataset.shuffle(len(labels), seed=seed).batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fit_and_test(
    model, preprocessor, train, test, options, args, validation=None
):
    """Trains `model` on `train` with the example's optimizer recipe and
    tests it: accuracy (and which test texts it got wrong), seconds per
    epoch, memory and parameters.

    The texts are tokenized once up front, so epochs time the model alone.
    A `test` of None skips testing (the accuracy is None). `args` gives
    `batch_size`, `epochs`, `seed` and `compile`. With the example's
    `--restore-best-epoch` in `options`, `validation` chooses the epoch
    (then seconds per epoch include validating) and the result names it,
    with the validation loss and accuracy of every epoch.
    """
    import keras

    num_classes = model.outputs[0].shape[-1]

    def batches(texts, labels, seed=None):
        targets = example.training_targets(labels, num_classes, options)
        data = tokenized_batches(
            texts, targets, preprocessor, args.batch_size, seed=seed
        )
        for _ in data:
            pass
        return data

    train_data = batches(*train, seed=args.seed)
    restore_best = example.best_epoch_callbacks(options)
    validation_data = None
    if restore_best:
        if validation is None:
            raise ValueError("--restore-best-epoch needs validation texts")
        validation_data = batches(*validation)
    loss, accuracy_metric = example.classification_loss(options)
    model.compile(
        optimizer=example.make_optimizer(len(train[1]), options),
        loss=loss,
        metrics=[accuracy_metric],
        jit_compile=harness.keras_jit_compile(args.compile),
    )
    epoch_times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.start)

    with harness.PeakMemory() as memory:
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=args.epochs,
            callbacks=[EpochTimer(), *restore_best],
            verbose=2,
        )
    accuracy = wrong = None
    if test is not None:
        logits = model.predict(
            tokenized_batches(*test, preprocessor, args.batch_size),
            verbose=0,
        )
        accuracy, wrong = scored(np.argmax(logits, axis=-1), test[1])
    chosen = {}
    if restore_best:
        chosen = {
            "best_epoch": restore_best[0].best_epoch + 1,
            "validation_loss": history.history["val_loss"],
            "validation_accuracy": history.history["val_accuracy"],
        }
    return {
        **chosen,
        "seed": args.seed,
        "accuracy": accuracy,
        "wrong_test_indices": wrong,
        "seconds_per_epoch": statistics.median(epoch_times[1:] or epoch_times),
        "peak_memory_mib": memory.peak_rss_mb,
        "training_memory_mib": memory.peak_mb,
        "parameters": int(model.count_params()),
        "train_texts": len(train[1]),
    }


def scored(predictions, labels):
    """Accuracy, and the positions in the test split of the wrong
    predictions (to compare which texts the models miss)."""
    wrong = np.flatnonzero(np.asarray(predictions) != np.asarray(labels))
    return 1.0 - len(wrong) / len(labels), wrong.tolist()


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
    accuracy, wrong = scored(
        model.predict(vectorizer.transform(test[0])), test[1]
    )
    return {
        "model": "bag-of-words",
        "sequence_length": None,
        "accuracy": accuracy,
        "wrong_test_indices": wrong,
        "seconds_per_epoch": seconds,
        "peak_memory_mib": None,
        "training_memory_mib": None,
        "parameters": int(model.coef_.size + model.intercept_.size),
    }


def model_name(model, projection):
    return f"linformer ({projection})" if model == "linformer" else model


def run_in_process(args, model, projection, sequence_length, seed):
    """Trains and tests one classifier in a fresh process; its result."""
    point = {name: getattr(args, name) for name in RUN_OPTIONS}
    point.update(
        model=model,
        projection=projection,
        sequence_length=sequence_length,
        seed=seed,
    )
    print(
        f"--- {model_name(model, projection)}, sequence length "
        f"{sequence_length}, seed {seed}",
        flush=True,
    )
    result = harness.run_point(
        __file__, point, args.timeout, malloc=args.malloc
    )
    if "error" in result:
        raise SystemExit(f"the {model} run failed: {result['error']}")
    result.update(load_average=harness.load_average(), malloc=args.malloc)
    return result


def aggregate(results):
    """One row per (model, n): accuracy as mean and spread over seeds;
    time per epoch and memory, the median over seeds."""
    rows = {}
    for r in results:
        rows.setdefault((r["model"], r["sequence_length"]), []).append(r)

    def median(runs, key):
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else None

    return [
        {
            "model": model,
            "sequence_length": sequence_length,
            "runs": len(runs),
            "accuracy": float(np.mean([r["accuracy"] for r in runs])),
            "accuracy_std": float(np.std([r["accuracy"] for r in runs])),
            "accuracies": [r["accuracy"] for r in runs],
            "seconds_per_epoch": median(runs, "seconds_per_epoch"),
            "peak_memory_mib": median(runs, "peak_memory_mib"),
            "training_memory_mib": median(runs, "training_memory_mib"),
            "parameters": runs[0]["parameters"],
        }
        for (model, sequence_length), runs in rows.items()
    ]


def markdown_table(summary):
    headers = [
        "model", "n", "runs", "test accuracy (mean ± std)", "each run",
        "s / epoch", "peak memory (MiB)", "memory in fit (MiB)", "parameters",
    ]  # fmt: skip

    def number(value, fmt):
        return "-" if value is None else format(value, fmt)

    rows = [
        [
            r["model"],
            r["sequence_length"] or "all words",
            r["runs"],
            f"{r['accuracy']:.4f} ± {r['accuracy_std']:.4f}",
            ", ".join(f"{a:.4f}" for a in r["accuracies"]),
            number(r["seconds_per_epoch"], ".1f"),
            number(r["peak_memory_mib"], ".0f"),
            number(r["training_memory_mib"], ".0f"),
            f"{r['parameters']:,}",
        ]
        for r in summary
    ]
    return harness.markdown_table(headers, rows, "lrrrlrrrr")


def plot(summary, path):
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


def write_results(args, results):
    """Writes the table, JSON and PNG of `results`; returns the table."""
    summary = aggregate(results)
    report = (
        f"{harness.backend_name()} backend, {args.epochs} epochs, batch "
        f"{args.batch_size}, k={args.projected_length}, hidden "
        f"{args.hidden_dim}, {args.num_layers} layer(s), --compile "
        f"{args.compile}\n\n" + markdown_table(summary)
    )
    harness.write_results(
        args.out,
        "classification_quality",
        report,
        {"settings": vars(args), "summary": summary, "results": results},
        lambda path: plot(summary, path),
    )
    return report


def main(argv=None):
    args = parse_args(argv)
    if args.point:
        return harness.serve_point(train_and_test, args.point)
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
                report = write_results(args, results)
    print("\n" + report)
    print(f"Wrote {args.out}/classification_quality.md, .json and .png")


if __name__ == "__main__":
    sys.exit(main())
