"""The `tf.data`-side preprocessing helpers: the one place models use TF.

keras-hub tokenizers and preprocessors run inside `tf.data` on every backend
(their string operations come from TensorFlow Text), so there they receive
and return `tf.Tensor`s and `tf.RaggedTensor`s whatever `KERAS_BACKEND` is,
and `keras.ops` of the JAX and PyTorch backends cannot take those. Layers
and models keep to `keras.ops`; the few preprocessing steps that must handle
TensorFlow values directly live here, with the lookup of the special tokens
(start, end, padding) that lets our preprocessors take any keras-hub
tokenizer, and the clean-up of detokenized WordPiece text. Backend-specific
model computations live in `keras_linformer.backend_utils`.
"""

import re

import keras
import tensorflow as tf
from keras_hub.tokenizers import ByteTokenizer
from keras_hub.tokenizers import UnicodeCodepointTokenizer

# Hugging Face's `clean_up_tokenization` as (RE2 pattern, replacement),
# plus colons, semicolons and parentheses, which English also writes without
# those spaces: WordPiece splits punctuation off words, and its detokenizer
# joins every piece with a space, which would leave "it ' s here ." behind.
CLEAN_UP_RULES = (
    (r" \.", "."),
    (r" \?", "?"),
    (r" !", "!"),
    (r" ,", ","),
    (r" :", ":"),
    (r" ;", ";"),
    (r"\( ", "("),
    (r" \)", ")"),
    (r" ' ", "'"),
    (r" n't", "n't"),
    (r" 'm", "'m"),
    (r" 's", "'s"),
    (r" 've", "'ve"),
    (r" 're", "'re"),
)


def is_dataset(value):
    """Whether `value` is a `tf.data.Dataset`."""
    return isinstance(value, tf.data.Dataset)


def is_tf_tensor(value):
    """Whether `value` is a dense or ragged TensorFlow tensor, as tokenizers
    return inside `tf.data` and on the TensorFlow backend."""
    return isinstance(value, (tf.Tensor, tf.RaggedTensor))


def batched_text_dataset(texts, batch_size=256):
    """A `tf.data.Dataset` of batches of strings.

    Args:
        texts: a list of strings, or a `tf.data.Dataset` of strings, batched
            (kept as it is) or not (batched here).
        batch_size: int. The batch size for unbatched strings. Defaults to
            `256`.

    Returns:
        A `tf.data.Dataset` whose elements are 1D string tensors, as
        `keras_hub.tokenizers.compute_word_piece_vocabulary` reads them.
    """
    if is_dataset(texts):
        dataset = texts
    else:
        dataset = tf.data.Dataset.from_tensor_slices(texts)
    if dataset.element_spec.shape.rank == 0:
        dataset = dataset.batch(batch_size)
    return dataset


def zero_ids_from(token_ids, first_id):
    """Replaces every id from `first_id` on by 0 in TensorFlow token ids.

    Args:
        token_ids: a `tf.Tensor` or `tf.RaggedTensor` of integer ids (see
            `is_tf_tensor`).
        first_id: int. The smallest id to replace.

    Returns:
        The ids, of the same type and (ragged) shape, with every id
        `>= first_id` set to 0.
    """
    return tf.ragged.map_flat_values(
        lambda ids: tf.where(ids < first_id, ids, tf.zeros_like(ids)),
        token_ids,
    )


def cast_preprocessed(tensor, dtype):
    """Casts a preprocessing output to `dtype` on any backend.

    A `tf.Tensor` (inside `tf.data`, and in eager calls on the TensorFlow
    backend) is cast with TensorFlow, anything else (eager calls on the
    other backends) with `keras.ops.cast`.
    """
    if isinstance(tensor, tf.Tensor):
        return tf.cast(tensor, dtype)
    return keras.ops.cast(tensor, dtype)


def single_segment_inputs(x, *int_keys):
    """keras-hub's packed output as a Linformer task's inputs.

    `"segment_ids"` is dropped (one text per example, all in segment 0),
    and `"padding_mask"` and `int_keys` become int32, the backbone's input
    dtype: `tf.distribute.MirroredStrategy` cannot distribute booleans.
    """
    inputs = {"token_ids": x["token_ids"]}
    for key in ("padding_mask",) + int_keys:
        inputs[key] = cast_preprocessed(x[key], "int32")
    return inputs


# The names each special token goes by in common vocabularies, in the order
# they are tried: BERT-style first, then SentencePiece/RoBERTa-style.
SPECIAL_TOKEN_NAMES = {
    "start_token": ("[CLS]", "<s>", "[BOS]", "<bos>"),
    "end_token": ("[SEP]", "</s>", "[EOS]", "<eos>"),
    "pad_token": ("[PAD]", "<pad>"),
}


def set_special_token_arguments(
    preprocessor, start_token, end_token, pad_token
):
    """Checks and stores a preprocessor's `start_token`, `end_token` and
    `pad_token` arguments: each a non-empty string or `None`."""
    tokens = {
        "start_token": start_token,
        "end_token": end_token,
        "pad_token": pad_token,
    }
    for name, token in tokens.items():
        if token is not None and not (isinstance(token, str) and token):
            raise ValueError(
                f"`{name}` must be a token of the tokenizer's vocabulary (a "
                f"non-empty string) or `None`. Received: {name}={token!r}"
            )
        setattr(preprocessor, name, token)


def special_token_arguments(preprocessor):
    """A preprocessor's `start_token`, `end_token` and `pad_token`, by name
    (its config entries)."""
    return {name: getattr(preprocessor, name) for name in SPECIAL_TOKEN_NAMES}


def declare_special_tokens(tokenizer, tokens, required, owner):
    """Finds the start, end and pad tokens of any keras-hub tokenizer.

    Each of `"start_token"`, `"end_token"` and `"pad_token"` is, in order of
    precedence: the token given in `tokens`; the one the tokenizer declares
    (`tokenizer.start_token_id`, ..., as keras-hub's model tokenizers do);
    one of `SPECIAL_TOKEN_NAMES` found in its vocabulary; for byte and
    codepoint tokenizers, which pad with 0 themselves, id 0 as padding.
    Tokens found are declared on the tokenizer like keras-hub tokenizers
    declare theirs, so `tokenizer.end_token_id` (which `CausalLM.generate`
    stops on) and `tokenizer.special_token_ids` (which detokenizing strips)
    know them.

    Args:
        tokenizer: a `keras_hub.tokenizers.Tokenizer` (or keras_nlp's) with
            its vocabulary set.
        tokens: dict from the names above to a token string or `None`.
        required: the names that must be found.
        owner: string. The preprocessor class name, for error messages.

    Returns:
        A dict from the names above to token ids, `None` for tokens that
        were not required and not found.

    Raises:
        ValueError: if a given token is not in the vocabulary, or a required
            token is not found.
    """
    vocabulary = tokenizer.get_vocabulary()
    tokenizer_name = type(tokenizer).__name__
    ids = {}
    for name, candidates in SPECIAL_TOKEN_NAMES.items():
        token = tokens.get(name)
        if token is not None and token not in vocabulary:
            raise ValueError(
                f"{owner}: `{name}` is not in the vocabulary of "
                f"{tokenizer_name}. Received: {name}={token!r}"
            )
        if token is None and getattr(tokenizer, f"{name}_id", None) is not None:
            ids[name] = getattr(tokenizer, f"{name}_id")
            continue
        if token is None:
            token = next((t for t in candidates if t in vocabulary), None)
        if token is not None:
            tokenizer._add_special_token(token, name)
            ids[name] = tokenizer.token_to_id(token)
        elif name == "pad_token" and isinstance(
            tokenizer, (ByteTokenizer, UnicodeCodepointTokenizer)
        ):
            tokenizer.pad_token_id = ids[name] = 0
        elif name in required:
            raise ValueError(
                f"{owner} needs a {name.replace('_', ' ')}, and "
                f"{tokenizer_name} has none: it declares no `{name}_id` and "
                f"its vocabulary holds none of {candidates}. Pass "
                f"`{name}=` a token of its vocabulary."
            )
        else:
            ids[name] = None
    return ids


def clean_up_tokenization_spaces(text):
    """`CLEAN_UP_RULES` applied to detokenized text: a string tensor (inside
    `tf.data`), or a string or nested lists of them (outside)."""
    if isinstance(text, (list, tuple)):
        return [clean_up_tokenization_spaces(item) for item in text]
    if isinstance(text, str):
        for pattern, replacement in CLEAN_UP_RULES:
            text = re.sub(pattern, replacement, text)
        return text
    for pattern, replacement in CLEAN_UP_RULES:
        text = tf.strings.regex_replace(text, pattern, replacement)
    return text
