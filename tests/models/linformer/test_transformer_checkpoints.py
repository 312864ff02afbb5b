import json
import os

import pytest

from keras_linformer.models.linformer.transformer_checkpoints import (
    checkpoint_folder,
)

VOCABULARY = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "the": 4}


def write_checkpoint(folder, model):
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as file:
        json.dump({"model_type": "bert"}, file)
    with open(os.path.join(folder, "tokenizer.json"), "w") as file:
        json.dump({"model": model}, file)
    return str(folder)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LINFORMER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_vocabulary_file_is_written_into_a_mirror(tmp_path, cache):
    # Ids out of file order: the file must list tokens by id.
    vocabulary = dict(reversed(list(VOCABULARY.items())))
    folder = write_checkpoint(
        tmp_path / "hf", {"type": "WordPiece", "vocab": vocabulary}
    )
    mirror = checkpoint_folder(folder)
    assert mirror.startswith(str(cache))
    assert sorted(os.listdir(folder)) == ["config.json", "tokenizer.json"]
    with open(os.path.join(mirror, "vocab.txt")) as file:
        assert file.read().split("\n")[:-1] == list(VOCABULARY)
    assert os.path.realpath(os.path.join(mirror, "config.json")) == (
        os.path.realpath(os.path.join(folder, "config.json"))
    )
    assert checkpoint_folder(folder) == mirror


def test_folders_that_need_no_vocabulary_file_are_used_as_they_are(
    tmp_path, cache
):
    byte_pair = write_checkpoint(
        tmp_path / "bpe", {"type": "BPE", "vocab": VOCABULARY}
    )
    assert checkpoint_folder(byte_pair) == byte_pair
    assert checkpoint_folder("bert_tiny_en_uncased") == "bert_tiny_en_uncased"
    assert not os.path.exists(cache)


def test_a_vocabulary_with_gaps_is_rejected(tmp_path, cache):
    folder = write_checkpoint(
        tmp_path / "gaps",
        {"type": "WordPiece", "vocab": {"[PAD]": 0, "the": 2}},
    )
    with pytest.raises(ValueError, match="does not number"):
        checkpoint_folder(folder)


def test_a_missing_folder_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        checkpoint_folder(str(tmp_path / "nowhere"))
