"""Pretrained vs from-scratch Linformer classifiers on BBC News.

On the split and training recipe of `benchmarks/classification_quality.py`
(the example's fixed-seed stratified split, the texts reshuffled every
epoch, AdamW with warmup and cosine decay, attention pooling or `--pooling
mean`), compares, with all training labels and with a stratified fraction
of them (`--label-fractions`):

- `scratch`: the example's default, a small Linformer from random weights;
- `minilm-linformer`: all-MiniLM-L6-v2 converted with
  `LinformerBackbone.from_transformer` at n (positions repeated beyond 512)
  and `--projected-length` k;
- `minilm-adapted`: the converted MiniLM, first pretrained further by
  masked-token prediction (`examples/pretraining.py`) on the texts of the
  whole training split, labelled or not, for `--adaptation-epochs`, so that
  its new positions (and a learned projection) adapt
  (`--pack-adaptation-texts` joins the texts so that passages fill n); then
  fine-tuned as above;
- `minilm-full`: the unconverted keras-hub MiniLM (full attention) with the
  same pooling and head; beyond its 512 positions, the same network with
  a repeated position table, as the conversion builds it;
- `bag-of-words`: TF-IDF + logistic regression on the full texts.

Each neural run is a fresh process (`harness.py`). Prints a markdown table
of test accuracy, seconds per epoch and peak memory, and writes
`pretrained_classification.md`, `.json` and `.png` to `--out`. `--rows`
picks rows (`MODEL:N`); `--max-train` caps the training texts and
`--timing-only` skips testing, for timing the long rows in less time
(seconds per epoch are on the texts trained); `--dtype mixed_bfloat16`
computes every neural row in bfloat16 (faster where the backend runs
bfloat16 matmuls on matrix units: PyTorch on CPUs with AMX).

    KERAS_BACKEND=jax python benchmarks/pretrained_classification.py \
        --rows scratch:512 minilm-linformer:512 --label-fractions 0.1
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import classification_quality as quality
import common
import harness
from classification_quality import example

NEURAL_MODELS = ("scratch", "minilm-linformer", "minilm-adapted", "minilm-full")
# Held-out texts the adaptation reports masked-token accuracy on: enough
# for a rough figure, few enough not to add minutes at long n.
ADAPTATION_VALIDATION_TEXTS = 64
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
    parser.add_argument(
        "--gradient-accumulation",
        type=int,
        default=1,
        help="batches per weight update (an effective batch of "
        "--batch-size times this, for long rows that need small batches)",
    )
    parser.add_argument(
        "--adaptation-epochs",
        type=int,
        default=1,
        help="masked-LM epochs of the minilm-adapted rows, over the whole "
        "training split",
    )
    parser.add_argument(
        "--pack-adaptation-texts",
        action="store_true",
        help="the minilm-adapted rows join the training texts end to end "
        "before cutting them into passages of n tokens (the example's "
        "--pack-documents): fewer, full passages that train every position",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="peak fine-tuning learning rate of every neural row (default: "
        f"the example's, {common.NEW_WEIGHTS_LEARNING_RATE:g} for scratch "
        f"and {common.PRETRAINED_LEARNING_RATE:g} for a checkpoint)",
    )
    parser.add_argument(
        "--ema-momentum",
        type=common.open_fraction,
        default=None,
        help="every neural row ends training on its weights' moving average "
        "with this momentum (the example's --ema-momentum); off by default",
    )
    parser.add_argument(
        "--layer-decay",
        type=common.decay_factor,
        default=None,
        help="every pretrained row fine-tunes with the learning rate scaled "
        "by this factor per block below the head (the example's "
        "--layer-decay); off by default",
    )
    parser.add_argument(
        "--label-smoothing",
        type=common.fraction,
        default=0.0,
        help="every neural row trains toward targets smoothed by this "
        "fraction (the example's --label-smoothing)",
    )
    parser.add_argument(
        "--restore-best-epoch",
        choices=example.BEST_EPOCH_MODES,
        help="every neural row ends on the weights of its best epoch by "
        "this metric on the whole validation split (the example's "
        "--restore-best-epoch); the last epoch's by default",
    )
    parser.add_argument(
        "--train-on-validation",
        action="store_true",
        help="every row (bag-of-words included) trains on the training and "
        "validation texts together, the labelled fraction taken from both "
        "(the example's --train-on-validation); the test texts as always",
    )
    parser.add_argument("--projected-length", type=int, default=128)
    parser.add_argument(
        "--projection",
        default="adaptive_mean_pool",
        help="the converted MiniLM's n -> k projection (from_transformer's "
        "default; earlier tables in benchmarks/README.md used linear and "
        "mean_pool)",
    )
    parser.add_argument(
        "--pooling",
        choices=("attention", "mean"),
        default="attention",
        help="how every neural row pools its hidden states (all-MiniLM-L6-v2 "
        "was trained with mean pooling)",
    )
    parser.add_argument(
        "--dtype",
        choices=harness.DTYPE_POLICIES,
        default="float32",
        help="every neural row's dtype policy (Keras's global policy in its "
        "process)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--max-train", type=int, default=None, help="cap the training texts"
    )
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="train and time, but do not test (no accuracy)",
    )
    parser.add_argument(
        "--out", default=os.path.join(quality.HERE, "results"), help="outputs"
    )
    # One full-attention row at n = 2048 fine-tunes for over an hour on
    # 2 cores, past the harness's usual hour.
    harness.add_arguments(parser, timeout=4 * 3600.0)
    args = parser.parse_args(argv)
    for row in args.rows:
        model, _, length = row.partition(":")
        if model not in NEURAL_MODELS or not length.isdigit():
            parser.error(
                f"--rows: {row!r} is not MODEL:N with MODEL in "
                f"{', '.join(NEURAL_MODELS)}"
            )
    example.check_validation_use(parser, args)
    harness.check_positive(
        parser,
        args,
        (
            "epochs", "batch_size", "projected_length", "adaptation_epochs",
            "learning_rate",
        ),  # fmt: skip
    )
    return args


def example_split():
    """The example's split: (train, validation, test), number of classes."""
    return quality.load_split(argparse.Namespace(max_examples=None))


def labelled_split(
    label_fraction,
    max_train,
    train_on_validation=False,
    seed=example.SPLIT_SEED,
):
    """The example's split, its training part cut to a stratified
    `label_fraction` (then to `max_train` texts). `train_on_validation`
    first joins the validation part to the training part (the validation
    part is then None)."""
    from sklearn.model_selection import train_test_split

    (train, validation, test), num_classes = example_split()
    if train_on_validation:
        train, validation = example.joined_parts(train, validation), None
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


def options_for(point, model):
    """The example's options: its own model for `scratch`, the converted
    MiniLM with k = `projected_length` otherwise; the same recipe."""
    argv = [
        "--sequence-length", str(point.sequence_length),
        "--epochs", str(point.epochs),
        "--batch-size", str(point.batch_size),
        "--gradient-accumulation", str(point.gradient_accumulation),
        "--pooling", point.pooling,
    ]  # fmt: skip
    if point.learning_rate is not None:
        argv += ["--learning-rate", str(point.learning_rate)]
    if point.ema_momentum is not None:
        argv += ["--ema-momentum", str(point.ema_momentum)]
    if point.label_smoothing:
        argv += ["--label-smoothing", str(point.label_smoothing)]
    if point.restore_best_epoch:
        argv += ["--restore-best-epoch", point.restore_best_epoch]
    if point.train_on_validation:
        argv.append("--train-on-validation")
    if model != "scratch":
        if point.layer_decay is not None:
            argv += ["--layer-decay", str(point.layer_decay)]
        k = min(point.projected_length, point.sequence_length)
        argv += ["--backbone", "minilm", "--projected-length", str(k)]
        argv += ["--projection", point.projection]
    return example.parse_args(argv)


def adapt_minilm(point, out):
    """Pretrains the converted MiniLM further by masked-token prediction on
    the whole training split's texts and saves it as a preset in `out`;
    the masked-token accuracy and the seconds it took."""
    import pretraining

    (train, validation, _), _ = example_split()
    options = options_for(point, "minilm-adapted")
    argv = [
        "--backbone", "minilm",
        "--sequence-length", str(options.sequence_length),
        "--projected-length", str(options.projected_length),
        "--projection", options.projection,
        "--epochs", str(point.adaptation_epochs),
        "--batch-size", str(point.batch_size),
        "--gradient-accumulation", str(point.gradient_accumulation),
        "--out", out,
    ]  # fmt: skip
    if point.pack_adaptation_texts:
        argv.append("--pack-documents")
    start = time.time()
    accuracy = pretraining.pretrain(
        train[0],
        validation[0][:ADAPTATION_VALIDATION_TEXTS],
        pretraining.parse_args(argv),
    )
    return accuracy, time.time() - start


def full_attention_classifier(num_classes, sequence_length, options):
    """The keras-hub MiniLM itself (full attention) with the Linformer
    classifier's pooling and head; beyond its 512 positions, its position
    table repeated, as `from_transformer` does."""
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
        longer = keras_hub.models.BertBackbone.from_config(
            dict(source.get_config(), max_sequence_length=sequence_length)
        )
        for target, weights in zip(longer.weights, source.weights):
            weights = keras.ops.convert_to_numpy(weights)
            if tuple(target.shape) != weights.shape:  # the position table
                repeats = -(-target.shape[0] // weights.shape[0])
                weights = np.tile(weights, (repeats, 1))[: target.shape[0]]
            target.assign(weights)
        source = longer
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


def train_and_test(point):
    """Trains one row's classifier on its labelled split; its result."""
    import keras

    import keras_linformer

    args = argparse.Namespace(**point)
    (train, validation, test), num_classes = labelled_split(
        args.label_fraction, args.max_train, args.train_on_validation
    )
    options = options_for(args, args.model)
    # Global, so that the converted checkpoint, the head and a new backbone
    # all take it (keras-hub loads float presets in the global policy).
    keras.config.set_dtype_policy(args.dtype)
    keras.utils.set_random_seed(args.seed)
    adaptation = {}
    if args.model == "minilm-full":
        model, tokenizer = full_attention_classifier(
            num_classes, args.sequence_length, options
        )
        preprocessor = keras_linformer.LinformerTextClassifierPreprocessor(
            tokenizer, sequence_length=args.sequence_length
        )
    elif args.model == "minilm-adapted":
        with tempfile.TemporaryDirectory(prefix="minilm_adapted_") as preset:
            accuracy, seconds = adapt_minilm(args, preset)
            adaptation = {
                "adaptation_seconds": seconds,
                "adaptation_masked_token_accuracy": accuracy,
            }
            options.backbone = preset
            classifier = example.build_classifier(
                train[0], num_classes, options
            )
    else:
        classifier = example.build_classifier(train[0], num_classes, options)
    if args.model != "minilm-full":
        preprocessor = classifier.preprocessor
        model = keras.Model(classifier.inputs, classifier.outputs)
    result = quality.fit_and_test(
        model,
        preprocessor,
        train,
        None if args.timing_only else test,
        options,
        args,
        validation=validation,
    )
    result.update(
        adaptation,
        model=args.model,
        sequence_length=args.sequence_length,
        label_fraction=args.label_fraction,
    )
    return result


# === Driver ===


def run_in_process(args, row, label_fraction, seed):
    model, _, sequence_length = row.partition(":")
    point = {
        name: getattr(args, name)
        for name in (
            "epochs", "batch_size", "gradient_accumulation",
            "adaptation_epochs", "pack_adaptation_texts",
            "projected_length", "projection", "learning_rate",
            "ema_momentum", "layer_decay", "label_smoothing",
            "restore_best_epoch", "train_on_validation", "pooling",
            "dtype",
            "max_train", "timing_only", "compile",
        )
    }  # fmt: skip
    point.update(
        model=model,
        sequence_length=int(sequence_length),
        label_fraction=label_fraction,
        seed=seed,
    )
    print(f"--- {row}, labels {label_fraction:.0%}, seed {seed}", flush=True)
    result = harness.run_point(
        __file__, point, args.timeout, malloc=args.malloc
    )
    if "error" in result:
        raise SystemExit(f"the {row} run failed: {result['error']}")
    result.update(load_average=harness.load_average(), malloc=args.malloc)
    return result


def markdown_table(results):
    headers = [
        "model", "n", "labels", "train texts", "runs",
        "test accuracy (each run)", "s / epoch", "peak memory (MiB)",
        "adaptation s",
    ]  # fmt: skip
    rows = {}
    for r in results:
        key = (r["model"], r["sequence_length"], r["label_fraction"])
        rows.setdefault(key, []).append(r)
    lines = []
    for (model, length, fraction), runs in rows.items():
        memory = [r["peak_memory_mib"] for r in runs if r["peak_memory_mib"]]
        accuracies = [r["accuracy"] for r in runs if r["accuracy"] is not None]
        adaptation = [
            r["adaptation_seconds"] for r in runs if "adaptation_seconds" in r
        ]
        lines.append(
            [
                model,
                length or "all words",
                f"{fraction:.0%}",
                runs[0]["train_texts"],
                len(runs),
                (
                    f"{np.mean(accuracies):.4f} ("
                    + ", ".join(f"{a:.4f}" for a in accuracies)
                    + ")"
                )
                if accuracies
                else "not tested",
                f"{statistics.median(r['seconds_per_epoch'] for r in runs):.1f}",
                f"{statistics.median(memory):.0f}" if memory else "-",
                f"{statistics.median(adaptation):.0f}" if adaptation else "-",
            ]
        )
    return harness.markdown_table(headers, lines, "lrrrrlrrr")


def plot(results, path):
    """Test accuracy per row; seconds per epoch where no row was tested."""
    import matplotlib.pyplot as plt

    tested = [r for r in results if r["accuracy"] is not None]
    if tested:
        results, values = tested, [100 * r["accuracy"] for r in tested]
        label = "test accuracy (%)"
    else:
        values = [r["seconds_per_epoch"] for r in results]
        label = "seconds per epoch"
    figure, axis = plt.subplots(figsize=(9, 4))
    names = [
        f"{r['model']}\nn={r['sequence_length'] or '-'}, "
        f"{r['label_fraction']:.0%}"
        for r in results
    ]
    axis.bar(range(len(results)), values)
    axis.set_xticks(range(len(results)), names, fontsize=7)
    axis.set_ylabel(label)
    axis.set_title("BBC News: pretrained vs from-scratch classifiers")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    if args.point:
        return harness.serve_point(train_and_test, args.point)
    results = []
    for label_fraction in args.label_fractions:
        if not args.timing_only:
            (train, _, test), _ = labelled_split(
                label_fraction, args.max_train, args.train_on_validation
            )
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
                # Saved after every run, so a long run that is stopped
                # keeps what it measured.
                report = (
                    f"{harness.backend_name()} backend, {args.epochs} "
                    f"epochs, batch {args.batch_size} x "
                    f"{args.gradient_accumulation} accumulated, k = "
                    f"{args.projected_length} ({args.projection}), "
                    f"{args.pooling} pooling, {args.dtype}, learning rate "
                    f"{args.learning_rate or 'the example default'}"
                    + (
                        f", weight EMA {args.ema_momentum:g}"
                        if args.ema_momentum
                        else ""
                    )
                    + (
                        f", layer decay {args.layer_decay:g}"
                        if args.layer_decay
                        else ""
                    )
                    + (
                        f", label smoothing {args.label_smoothing:g}"
                        if args.label_smoothing
                        else ""
                    )
                    + (
                        ", ending on the best epoch by "
                        f"{args.restore_best_epoch}"
                        if args.restore_best_epoch
                        else ""
                    )
                    + (
                        ", trained on train + validation"
                        if args.train_on_validation
                        else ""
                    )
                    + "\n\n"
                    + markdown_table(results)
                )
                harness.write_results(
                    args.out,
                    "pretrained_classification",
                    report,
                    {"settings": vars(args), "results": results},
                    lambda path: plot(results, path),
                )
    print("\n" + report)
    print(f"Wrote {args.out}/pretrained_classification.md, .json and .png")


if __name__ == "__main__":
    main()
