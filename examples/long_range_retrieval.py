"""Trains a small Linformer on a synthetic task that needs long-range attention.

Every sequence starts with a query token; every other position holds a random
symbol, and one random position is marked. The label is the symbol at the
marked position, and the model predicts it from the output at the first
position only, so the answer must travel there through attention across the
whole sequence: no pooling or local rule can find it.

The first position queries the sequence through one `LinformerAttention`
layer (an encoder block would compute the same for every position; computing
only the one that is read keeps the demo fast). Its projection is
`"mean_pool"`: the marked position varies, and fixed pooling windows
generalize from a few thousand examples where a learned n x k matrix, which
sees each position marked only a few times, memorizes them.

Run `python examples/long_range_retrieval.py` (defaults: length 1024, k=256).
"""

import argparse
import sys

import keras
import numpy as np

from keras_linformer.layers import LinformerAttention


def make_retrieval_data(num_samples, sequence_length, num_classes, seed=0):
    """Builds the long-range retrieval task.

    Symbols are ids in `[0, num_classes)`; the marked position holds its
    symbol plus `num_classes`, and the first position holds the query id
    `2 * num_classes`, so the vocabulary has `2 * num_classes + 1` ids.

    Args:
        num_samples: int. The number of sequences.
        sequence_length: int. The length of each sequence, at least 2.
        num_classes: int. The number of symbols, i.e. of labels.
        seed: int. The random seed.

    Returns:
        A tuple `(tokens, labels)`: int32 arrays of shapes
        `(num_samples, sequence_length)` and `(num_samples,)`.
    """
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, num_classes, size=(num_samples, sequence_length))
    rows = np.arange(num_samples)
    marked = rng.integers(1, sequence_length, size=num_samples)
    labels = tokens[rows, marked]
    tokens[rows, marked] += num_classes
    tokens[:, 0] = 2 * num_classes
    return tokens.astype("int32"), labels.astype("int32")


def build_model(
    sequence_length, projected_length, num_classes, hidden_dim=16, num_heads=2
):
    """Classifies a sequence from the attention output at its first position."""
    tokens = keras.Input(shape=(sequence_length,), dtype="int32")
    x = keras.layers.Embedding(2 * num_classes + 1, hidden_dim)(tokens)
    x = keras.layers.LayerNormalization()(x)
    first = keras.ops.expand_dims(x[:, 0, :], 1)
    attended = LinformerAttention(
        num_heads=num_heads,
        key_dim=hidden_dim // num_heads,
        sequence_length=sequence_length,
        projected_length=projected_length,
        projection="mean_pool",
    )(first, x)
    x = keras.layers.LayerNormalization()(attended[:, 0, :])
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(tokens, outputs)


def train(
    sequence_length=1024,
    projected_length=256,
    epochs=2,
    num_classes=4,
    num_train=4096,
    num_test=1024,
    batch_size=32,
    learning_rate=1e-2,
    seed=0,
    verbose="auto",
):
    """Trains on fresh data and returns `(model, test_accuracy)`."""
    keras.utils.set_random_seed(seed)
    x_train, y_train = make_retrieval_data(
        num_train, sequence_length, num_classes, seed=seed
    )
    x_test, y_test = make_retrieval_data(
        num_test, sequence_length, num_classes, seed=seed + 1
    )
    model = build_model(sequence_length, projected_length, num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return model, accuracy


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence-length", type=int, default=1024)
    parser.add_argument("--projected-length", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    if args.sequence_length < 2:
        parser.error(
            f"--sequence-length must be at least 2, got {args.sequence_length}"
        )
    if not 1 <= args.projected_length <= args.sequence_length:
        parser.error(
            "--projected-length must be between 1 and --sequence-length "
            f"({args.sequence_length}), got {args.projected_length}"
        )
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    num_classes = 4
    _, accuracy = train(
        sequence_length=args.sequence_length,
        projected_length=args.projected_length,
        epochs=args.epochs,
        num_classes=num_classes,
    )
    print(
        f"test accuracy: {accuracy:.3f} (chance: {1 / num_classes:.2f}, "
        f"backend: {keras.config.backend()})"
    )


if __name__ == "__main__":
    main()
