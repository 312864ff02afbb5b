"""Pretrained vs from-scratch Linformer classifiers on BBC News.

On the fixed-seed stratified split and training recipe of
`benchmarks/classification_quality.py` (the example's split, AdamW with
warmup and cosine decay, attention pooling), compares, with all training
labels and with a stratified `--label-fraction` of them:

- `scratch`: today's default, a small Linformer trained from random weights;
- `minilm-linformer`: all-MiniLM-L6-v2 converted with
  `LinformerBackbone.from_transformer` at each `--sequence-lengths` n
  (positions repeated beyond 512) and `--projected-length` k;
- `minilm-full`: the unconverted keras-hub MiniLM (full attention) with the
  same pooling and head, at 512 (at longer n only timed: `--timing-batches`);
- `bag-of-words`: TF-IDF + logistic regression on the full texts.

Prints a markdown table of test accuracy, seconds per epoch and peak memory,
and writes `pretrained_classification.json` and `.png` to `--out`. Each
neural run is a fresh process. `--rows` picks rows (e.g.
`minilm-linformer:512`), `--max-train` caps the training texts, and
`--timing-batches N` times N training batches instead of training (the
accuracy is then not measured).

    KERAS_BACKEND=tensorflow python benchmarks/pretrained_classification.py
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import classification_quality as quality  # noqa: E402
from classification_quality import example  # noqa: E402

NEURAL_MODELS = ("scratch", "minilm-linformer", "minilm-full")
DEFAULT_ROWS = (
    "scratch:512",
    "minilm-linformer:512",
    "minilm-linformer:2048",
    "minilm-full:512",
    "minilm-full:2048",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        default=list(DEFAULT_ROWS),
        help="MODEL:N for MODEL in " + ", ".join(NEURAL_MODELS),
    )
    parser.add_argument(
        "--label-fractions", type=float, nargs="+", default=[1.0, 0.1]
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--projected-length", type=int, default=128)
    parser.add_argument("--projection", default="linear")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--max-train", type=int, default=None, help="cap the training texts"
    )
    parser.add_argument(
        "--timing-batches",
        type=int,
        default=None,
        help="time this many training batches instead of training",
    )
    parser.add_argument(
        "--out", default=os.path.join(HERE, "results"), help="JSON and PNG"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--label-fraction", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def labelled_split(label_fraction, max_train, seed=example.SPLIT_SEED):
    """The example's split, its training part cut to a stratified
    `label_fraction` (then to `max_train` texts)."""
    from sklearn.model_selection import train_test_split

    (train, validation, test), num_classes = quality.load_split(
        argparse.Namespace(max_examples=None)
    )
    size = round(label_fraction * len(train[1]))
    if max_train:
        size = min(size, max_train)
    if size < len(train[1]):
        texts, _, labels, _ = train_test_split(
            np.array(train[0], dtype=object),
            train[1],
            train_size=size,
            stratify=train[1],
            random_state=seed,
        )
        train = (list(texts), labels)
    return (train, validation, test), num_classes


# === One neural run (in its own process) ===


def options_for(args, model, sequence_length):
    """The example's options: its recipe, with a backbone for MiniLM."""
    argv = [
        "--sequence-length", str(sequence_length),
        "--projected-length", str(min(args.projected_length, sequence_length)),
        "--projection", args.projection,
        "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    if model != "scratch":
        argv += ["--backbone", "minilm"]
    return example.parse_args(argv)


def full_attention_classifier(num_classes, sequence_length, options):
    """The keras-hub MiniLM itself (full attention) with the Linformer
    classifier's pooling and head; beyond its 512 positions, the same sizes
    with random weights (for timing)."""
    import keras
    import keras_hub

    from keras_linformer.models.linformer.linformer_text_classifier import (
        POOLINGS,
    )
    from keras_linformer.models.linformer.transformer_checkpoints import (
        load_transformer,
    )

    source, tokenizer = load_transformer("minilm")
    if sequence_length > source.max_sequence_length:
        config = source.get_config()
        config["max_sequence_length"] = sequence_length
        source = keras_hub.models.BertBackbone.from_config(config)
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    hidden = source(
        {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "segment_ids": keras.ops.zeros_like(token_ids),
        }
    )["sequence_output"]
    x = POOLINGS[options.pooling]()(hidden, mask=padding_mask)
    x = keras.layers.Dropout(options.dropout)(x)
    logits = keras.layers.Dense(num_classes)(x)
    model = keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask}, logits
    )
    return model, tokenizer


def run_worker(args):
    import keras
    import tensorflow as tf

    import keras_linformer

    model_name, sequence_length = args.worker.split(":")
    sequence_length = int(sequence_length)
    (train, _, test), num_classes = labelled_split(
        args.label_fraction, args.max_train
    )
    options = options_for(args, model_name, sequence_length)
    keras.utils.set_random_seed(args.seed)
    if model_name == "minilm-full":
        model, tokenizer = full_attention_classifier(
            num_classes, sequence_length, options
        )
        preprocessor = keras_linformer.LinformerTextClassifierPreprocessor(
            tokenizer, sequence_length=sequence_length
        )
    else:
        classifier = example.build_classifier(train[0], num_classes, options)
        preprocessor = classifier.preprocessor
        model = keras.Model(classifier.inputs, classifier.outputs)

    def tokenized(texts, labels, shuffle=False):
        dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
        dataset = dataset.batch(args.batch_size).map(preprocessor).cache()
        if shuffle:
            dataset = dataset.shuffle(64, seed=args.seed)
        return dataset.prefetch(tf.data.AUTOTUNE)

    train_data = tokenized(*train, shuffle=True)
    for _ in train_data:
        pass
    model.compile(
        optimizer=example.make_optimizer(len(train[1]), options),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    batches = -(-len(train[1]) // args.batch_size)
    epoch_times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.start)

    accuracy = None
    with quality.PeakMemory() as memory:
        if args.timing_batches:
            # One compiling epoch of one batch, then the timed batches,
            # scaled to a full epoch.
            model.fit(train_data.take(1), epochs=1, verbose=0)
            model.fit(
                train_data.repeat().take(args.timing_batches),
                epochs=1,
                callbacks=[EpochTimer()],
                verbose=0,
            )
            seconds = epoch_times[-1] * batches / args.timing_batches
        else:
            model.fit(
                train_data,
                epochs=args.epochs,
                callbacks=[EpochTimer()],
                verbose=2,
            )
            seconds = float(np.median(epoch_times[1:] or epoch_times))
    if not args.timing_batches:
        _, accuracy = model.evaluate(tokenized(*test), verbose=0)
    print(
        json.dumps(
            {
                "model": model_name,
                "sequence_length": sequence_length,
                "label_fraction": args.label_fraction,
                "train_texts": len(train[1]),
                "seed": args.seed,
                "accuracy": None if accuracy is None else float(accuracy),
                "seconds_per_epoch": seconds,
                "peak_memory_mib": memory.peak / 2**20,
            }
        )
    )


# === Driver ===


def run_in_process(args, row, label_fraction, seed):
    argv = [sys.executable, os.path.abspath(__file__), "--worker", row]
    argv += ["--seed", str(seed), "--label-fraction", str(label_fraction)]
    for name in ("epochs", "batch_size", "projected_length", "projection"):
        argv += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    if args.max_train:
        argv += ["--max-train", str(args.max_train)]
    if args.timing_batches:
        argv += ["--timing-batches", str(args.timing_batches)]
    print(f"--- {row}, labels {label_fraction:.0%}, seed {seed}", flush=True)
    result = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    if result.returncode:
        raise SystemExit(f"the {row} run failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown_table(results):
    lines = [
        "| model | n | labels | train texts | seed | accuracy | s / epoch "
        "| peak memory (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        accuracy = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        memory = r.get("peak_memory_mib")
        lines.append(
            f"| {r['model']} | {r['sequence_length'] or 'all words'} "
            f"| {r['label_fraction']:.0%} | {r['train_texts']} "
            f"| {r.get('seed', '-')} | {accuracy} "
            f"| {r['seconds_per_epoch']:.1f} "
            f"| {'-' if memory is None else f'{memory:.0f}'} |"
        )
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in results if r["accuracy"] is not None]
    figure, axis = plt.subplots(figsize=(9, 4))
    names = [
        f"{r['model']}\nn={r['sequence_length'] or '-'}, "
        f"{r['label_fraction']:.0%}"
        for r in measured
    ]
    axis.bar(range(len(measured)), [100 * r["accuracy"] for r in measured])
    axis.set_xticks(range(len(measured)), names, fontsize=7)
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("BBC News: pretrained vs from-scratch classifiers")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    import keras

    results = []
    for label_fraction in args.label_fractions:
        (train, _, test), _ = labelled_split(label_fraction, args.max_train)
        baseline = quality.bag_of_words_on(train, test)
        baseline.update(
            label_fraction=label_fraction, train_texts=len(train[1])
        )
        results.append(baseline)
        for row in args.rows:
            for seed in args.seeds:
                results.append(
                    run_in_process(args, row, label_fraction, seed)
                )
    table = markdown_table(results)
    print(f"\nBackend: {keras.backend.backend()}\n\n{table}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "pretrained_classification")
    with open(path + ".json", "w") as file:
        json.dump({"options": vars(args), "results": results}, file, indent=1)
    plot(results, path + ".png")
    print(f"Wrote {path}.json and {path}.png")


if __name__ == "__main__":
    main()
