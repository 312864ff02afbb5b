import os

import keras_hub
import numpy as np
import pytest

import keras_linformer
from tests.testing import example_error_message
from tests.testing import example_script_stderr_lines
from tests.testing import example_usage_error
from tests.testing import import_example
from tests.testing import to_numpy

example = import_example("pretraining")

SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a bird sang in the tree",
    "the fish swam in the pond",
]
TINY_MODEL = [
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--sequence-length",
    "16",
    "--projected-length",
    "4",
    "--hidden-dim",
    "8",
    "--num-layers",
    "1",
    "--num-heads",
    "2",
    "--vocabulary-size",
    "60",
    "--verbose",
    "0",
]


def write_folder(root, count):
    """`count` documents as .txt files, some in a sub-folder."""
    for i in range(count):
        folder = os.path.join(root, "more") if i % 2 else str(root)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i}.txt"), "w") as file:
            file.write(" ".join(SENTENCES[(i + j) % 4] for j in range(3)))
    return str(root)


def test_folder_documents_include_sub_folders(tmp_path):
    folder = write_folder(tmp_path, 6)
    args = example.parse_args(["--data", folder])
    documents = example.read_documents(folder=args.data)
    assert len(documents) == 6


def test_passages_keep_every_word_in_order():
    documents = ["a b c d e", "f g"]
    assert example.passages(documents, 2) == ["a b", "c d", "e", "f g"]


def test_packed_passages_run_across_documents():
    documents = ["a b c", "d", "e f g"]
    packed = example.passages(documents, 2, pack=True)
    assert packed == ["a b", "c d", "e f", "g"]


def test_pack_documents_trains_on_fewer_fuller_passages(tmp_path, capsys):
    # Each document is 18 words, about half of a 32-token passage.
    argv = ["--data", write_folder(tmp_path / "data", 20)]
    argv += ["--out", str(tmp_path / "preset")] + TINY_MODEL
    argv[argv.index("--sequence-length") + 1] = "32"
    counts = []
    for extra in ([], ["--pack-documents"]):
        example.main(argv + extra)
        summary = capsys.readouterr().out.split(" training and ")[0]
        counts.append(int(summary.split()[-1]))
    assert counts[0] == 18  # one passage per training document
    assert counts[1] < counts[0] * 2 / 3


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_tiny_run_writes_a_loadable_preset(tmp_path, dtype):
    out = str(tmp_path / "preset")
    argv = ["--data", write_folder(tmp_path / "data", 20), "--out", out]
    accuracy = example.main(argv + TINY_MODEL + ["--dtype", dtype])
    assert 0 <= accuracy["validation"] <= 1 and 0 <= accuracy["train"] <= 1

    masked_lm = keras_hub.models.MaskedLM.from_preset(out)
    assert isinstance(masked_lm, keras_linformer.models.LinformerMaskedLM)
    assert masked_lm.preprocessor.sequence_length == 16
    backbone = keras_hub.models.Backbone.from_preset(out)
    assert isinstance(backbone, keras_linformer.models.LinformerBackbone)
    np.testing.assert_array_equal(
        to_numpy(backbone.token_embedding.embeddings),
        to_numpy(masked_lm.backbone.token_embedding.embeddings),
    )

    # Going on from the preset keeps its backbone and tokenizer.
    again = str(tmp_path / "again")
    accuracy = example.main(
        ["--data", str(tmp_path / "data"), "--backbone", out, "--out", again]
        + ["--epochs", "1", "--batch-size", "4", "--verbose", "0"]
        + ["--sequence-length", "16", "--projected-length", "4"]
    )
    assert 0 <= accuracy["validation"] <= 1
    assert keras_hub.models.Backbone.from_preset(again).get_config() == (
        backbone.get_config()
    )


def test_a_checkpoint_head_trains_alone_first(tmp_path, monkeypatch):
    preset = str(tmp_path / "preset")
    data = write_folder(tmp_path / "data", 20)
    example.main(["--data", data, "--out", preset] + TINY_MODEL)
    phases = []
    fit = example.fit

    def recording_fit(masked_lm, train, validation, args):
        before = [to_numpy(w) for w in masked_lm.weights]
        fit(masked_lm, train, validation, args)
        moved = {
            id(w)
            for w, old in zip(masked_lm.weights, before)
            if not np.array_equal(to_numpy(w), old)
        }
        backbone = {id(w) for w in masked_lm.backbone.weights}
        phases.append(
            (args.learning_rate, bool(moved & backbone), bool(moved - backbone))
        )

    monkeypatch.setattr(example, "fit", recording_fit)
    example.main(
        ["--data", data, "--backbone", preset, "--out", str(tmp_path / "on")]
        + ["--epochs", "1", "--batch-size", "4", "--verbose", "0"]
        + ["--sequence-length", "16", "--projected-length", "4"]
    )
    # (learning rate, backbone moved, head moved) of each phase.
    assert phases == [(2e-3, False, True), (1e-4, True, True)]


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], 0),
        (["--backbone", "x"], 1),
        (["--backbone", "x", "--head-epochs", "0"], 0),
    ],
)
def test_head_epochs_default_to_one_with_a_backbone(argv, expected):
    assert example.parse_args(argv).head_epochs == expected


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "linear"),
        (["--backbone", "x"], None),
        (["--backbone", "x", "--projection", "conv"], "conv"),
    ],
)
def test_projection_defaults_to_linear_for_a_new_backbone(argv, expected):
    # None: a converted backbone gets from_transformer's default.
    assert example.parse_args(argv).projection == expected


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_folder", "does not exist"),
        ("empty_text", "holds 0 non-empty document(s)"),
        ("missing_backbone", "--backbone '"),
        ("too_long_for_backbone", "covers 16 positions, fewer than"),
    ],
)
def test_bad_input_ends_with_a_one_line_error(tmp_path, case, expected):
    if case == "missing_folder":
        argv = ["--data", str(tmp_path / "nowhere")]
    elif case == "empty_text":
        path = tmp_path / "empty.txt"
        path.write_text("  \n\n \n")
        argv = ["--text", str(path)]
    else:
        data = write_folder(tmp_path / "data", 4)
        preset = str(tmp_path / "preset")
        if case == "missing_backbone":
            os.makedirs(preset)
            preset = str(tmp_path / "nowhere")
        else:
            tokenizer = keras_linformer.models.LinformerByteTokenizer()
            keras_linformer.models.LinformerBackbone(
                vocabulary_size=tokenizer.vocabulary_size(),
                num_layers=1,
                num_heads=2,
                hidden_dim=8,
                intermediate_dim=16,
                max_sequence_length=16,
                projected_length=4,
            ).save_to_preset(preset)
            tokenizer.save_to_preset(preset)
        argv = ["--data", data, "--backbone", preset]
        argv += ["--sequence-length", "32", "--projected-length", "4"]
    assert expected in example_error_message(example, argv)


def test_the_script_reports_bad_input_in_one_line(tmp_path):
    lines = example_script_stderr_lines(
        example, ["--data", str(tmp_path / "nowhere")]
    )
    assert lines[-1].startswith("pretraining.py: error: --data folder")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--hidden-dim", "10", "--num-heads", "4"], "divisible"),
        (["--sequence-length", "8", "--projected-length", "16"], "exceed"),
        (["--mask-rate", "0"], "--mask-rate must be above 0"),
        (["--backbone", "x", "--hidden-dim", "8"], "its own sizes"),
        (["--data", "a", "--text", "b"], "not allowed with"),
        (["--head-epochs", "2"], "--head-epochs 2: a new backbone"),
        (["--backbone", "x", "--head-epochs", "-1"], "at least 0"),
    ],
)
def test_usage_errors(argv, expected, capsys):
    assert expected in example_usage_error(example, argv, capsys)
