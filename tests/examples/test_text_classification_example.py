import json
import os

import keras_hub
import numpy as np
import pytest

import keras_linformer
from tests.testing import example_error_message
from tests.testing import example_script_stderr_lines
from tests.testing import example_usage_error
from tests.testing import import_example

example = import_example("text_classification")


def write_folder(root, texts_per_class):
    for name, texts in texts_per_class.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i, text in enumerate(texts):
            with open(os.path.join(root, name, f"{i}.txt"), "w") as file:
                file.write(text)
    return str(root)


def write_csv(path, header, rows):
    with open(path, "w") as file:
        file.write(",".join(header) + "\n")
        for row in rows:
            file.write(",".join(row) + "\n")
    return str(path)


def test_folder_layout_is_read_with_labels_from_folder_names(tmp_path):
    folder = write_folder(
        tmp_path, {"sport": ["a goal"] * 3, "business": ["a bank"] * 4}
    )
    args = example.parse_args(["--data", folder])
    texts, labels, class_names = example.load_data(args)
    assert class_names == ["business", "sport"]
    assert np.bincount(labels).tolist() == [4, 3]
    assert texts[0] == "a bank"


def test_split_is_stratified_and_fixed():
    texts = [f"text {i}" for i in range(40)]
    labels = np.array([0] * 20 + [1] * 20)
    first = example.stratified_split(texts, labels)
    second = example.stratified_split(texts, labels)
    assert [len(part[0]) for part in first] == [28, 6, 6]
    assert first[2][0] == second[2][0]
    for _, part_labels in first:
        assert np.bincount(part_labels)[0] == np.bincount(part_labels)[1]


@pytest.mark.parametrize("class_sizes", [(3, 4, 5), (3, 3), (5, 40)])
def test_small_classes_split_with_each_class_in_each_part(class_sizes):
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    texts = [f"text {i}" for i in range(len(labels))]
    parts = example.stratified_split(texts, labels)
    assert sum(len(part_texts) for part_texts, _ in parts) == len(texts)
    for part_texts, part_labels in parts:
        assert len(part_texts) == len(part_labels)
        assert set(part_labels) == set(range(len(class_sizes)))


@pytest.mark.parametrize("max_examples", [15, 20, 30])
def test_max_examples_takes_a_sample_that_splits(max_examples):
    class_sizes = (3, 5, 40, 60, 100)
    labels = np.repeat(np.arange(5), class_sizes)
    texts = [f"text {i}" for i in range(len(labels))]
    parts = example.stratified_split(texts, labels, max_examples)
    sampled = np.concatenate([part_labels for _, part_labels in parts])
    assert len(sampled) == max_examples
    assert np.bincount(sampled).min() >= 3
    for _, part_labels in parts:
        assert set(part_labels) == set(range(5))


def test_too_few_max_examples_is_a_one_line_error(tmp_path):
    folder = write_folder(
        tmp_path, {name: ["some text"] * 4 for name in "abcde"}
    )
    message = example_error_message(
        example, ["--data", folder, "--max-examples", "10"]
    )
    assert "--max-examples 10 is too few for 5 classes" in message
    assert "at least 15" in message


def test_classes_choose_the_sub_folders(tmp_path):
    folder = write_folder(
        tmp_path,
        {"neg": ["bad"] * 3, "pos": ["good"] * 4, "unsup": ["meh"] * 9},
    )
    args = example.parse_args(["--data", folder, "--classes", "pos,neg"])
    _, labels, class_names = example.load_data(args)
    assert class_names == ["neg", "pos"]
    assert len(labels) == 7


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_folder", "does not exist"),
        ("file_as_folder", "is a file, not a folder"),
        ("missing_class", "--classes neutral not found"),
        ("blank_labels", "2 rows with a blank 'label' (first on line 3)"),
        ("one_class", "at least two classes"),
        ("empty_texts", "empty texts"),
        ("csv_columns", "has no column 'text'"),
        ("missing_csv", "does not exist"),
    ],
)
def test_bad_input_ends_with_a_one_line_error(tmp_path, case, expected):
    if case == "missing_folder":
        argv = ["--data", str(tmp_path / "nowhere")]
    elif case == "file_as_folder":
        argv = ["--data", write_csv(tmp_path / "d.csv", ["text"], [["x"]])]
    elif case == "missing_class":
        folder = write_folder(tmp_path, {"neg": ["x"] * 3, "pos": ["y"] * 3})
        argv = ["--data", folder, "--classes", "neg,neutral"]
    elif case == "blank_labels":
        rows = [["x", "a"], ["y", ""], ["z", "b"], ["w", " "]]
        argv = ["--csv", write_csv(tmp_path / "d.csv", ["text", "label"], rows)]
    elif case == "one_class":
        argv = ["--data", write_folder(tmp_path, {"only": ["x", "y", "z"]})]
    elif case == "empty_texts":
        folder = write_folder(tmp_path, {"a": ["x", " ", "z"], "b": ["u"] * 3})
        argv = ["--data", folder]
    elif case == "csv_columns":
        path = write_csv(tmp_path / "d.csv", ["body", "label"], [["x", "1"]])
        argv = ["--csv", path]
    else:
        argv = ["--csv", str(tmp_path / "none.csv")]
    assert expected in example_error_message(example, argv)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--sequence-length", "64", "--projected-length", "128"], "exceed"),
        (["--epochs", "0"], "must be at least 1"),
        (["--warmup", "1.5"], "must be in [0, 1)"),
        (["--label-smoothing", "1"], "must be in [0, 1)"),
        (["--hidden-dim", "10", "--num-heads", "4"], "divisible"),
        (["--data", "a", "--csv", "b"], "not allowed with"),
        (["--csv", "a", "--classes", "x,y"], "--classes selects sub-folders"),
        (["--classes", "x,,y"], "comma-separated names"),
        (["--restore-best-epoch", "loss"], "choose from 'val_loss', 'val_acc"),
        (
            ["--train-on-validation", "--restore-best-epoch", "val_loss"],
            "which --train-on-validation trains on; use one of them",
        ),
    ],
)
def test_bad_options_are_usage_errors(capsys, argv, expected):
    assert expected in example_usage_error(example, argv, capsys)


def test_script_prints_no_traceback(tmp_path):
    assert example_script_stderr_lines(
        example, ["--data", str(tmp_path / "nowhere")]
    ) == [
        f"text_classification.py: error: --data folder "
        f"'{tmp_path / 'nowhere'}' does not exist"
    ]


def two_topic_rows():
    """24 (text, label) CSV rows of two topics' words."""
    words = {"0": "market shares bank profit rates", "1": "goal match team cup"}
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        label = str(i % 2)
        text = " ".join(rng.choice(words[label].split(), size=12))
        rows.append([text, label])
    return rows


def train_tiny_classifier(path, out, *options):
    """The example's test accuracy after one epoch of a tiny model."""
    return example.main(
        [
            "--csv", path, "--out", out, "--epochs", "1",
            "--sequence-length", "32", "--projected-length", "8",
            "--vocabulary-size", "60", "--hidden-dim", "8",
            "--batch-size", "8", "--verbose", "0", *options,
        ]
    )  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_trains_on_a_csv_and_saves_a_generic_preset(tmp_path, capsys, dtype):
    rows = two_topic_rows()
    path = write_csv(tmp_path / "data.csv", ["text", "label"], rows)
    out = str(tmp_path / "model")
    accuracy = train_tiny_classifier(path, out, "--dtype", dtype)
    printed = capsys.readouterr().out
    assert "Test accuracy" in printed and "Confusion matrix" in printed
    assert 0 <= accuracy <= 1
    assert os.path.getsize(os.path.join(out, "learning_curve.png")) > 0
    with open(os.path.join(out, "class_names.txt")) as file:
        assert file.read().split() == ["0", "1"]
    with open(os.path.join(out, "task.json")) as file:
        backbone = json.load(file)["config"]["backbone"]
    assert backbone["config"]["dtype"]["config"]["name"] == dtype
    classifier = keras_hub.models.TextClassifier.from_preset(out)
    assert isinstance(classifier, keras_linformer.LinformerTextClassifier)
    assert classifier.predict([rows[0][0]], verbose=0).shape == (1, 2)


def test_trains_with_label_smoothing(tmp_path, capsys):
    path = write_csv(tmp_path / "data.csv", ["text", "label"], two_topic_rows())
    out = str(tmp_path / "model")
    accuracy = train_tiny_classifier(path, out, "--label-smoothing", "0.1")
    assert "Test accuracy" in capsys.readouterr().out
    assert 0 <= accuracy <= 1
    assert os.path.getsize(os.path.join(out, "learning_curve.png")) > 0


def test_trains_and_restores_the_best_epoch(tmp_path, capsys):
    path = write_csv(tmp_path / "data.csv", ["text", "label"], two_topic_rows())
    out = str(tmp_path / "model")
    accuracy = train_tiny_classifier(
        path, out, "--restore-best-epoch", "val_accuracy", "--epochs", "2"
    )
    printed = capsys.readouterr().out
    assert "Restoring model weights from the end of the best epoch" in printed
    assert 0 <= accuracy <= 1
    assert keras_hub.models.TextClassifier.from_preset(out) is not None


def test_trains_on_train_and_validation(tmp_path, capsys, monkeypatch):
    seen = []
    fit = keras_hub.models.TextClassifier.fit

    def recording_fit(self, x, validation_data=None, **kwargs):
        seen.append(validation_data)
        seen.extend(text.decode() for texts, _ in x for text in texts.numpy())
        return fit(self, x, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(keras_hub.models.TextClassifier, "fit", recording_fit)
    rows = two_topic_rows()
    path = write_csv(tmp_path / "data.csv", ["text", "label"], rows)
    out = str(tmp_path / "model")
    accuracy = train_tiny_classifier(path, out, "--train-on-validation")
    printed = capsys.readouterr().out
    # 12 texts a class: 8 train, 2 validation and 2 test.
    assert "train/validation/test = 16/4/4" in printed
    assert "Training on train + validation: 20 documents" in printed
    assert seen[0] is None
    train, validation, _ = example.stratified_split(
        [text for text, _ in rows], [label for _, label in rows]
    )
    assert sorted(seen[1:]) == sorted(train[0] + validation[0])
    assert 0 <= accuracy <= 1
    assert os.path.getsize(os.path.join(out, "learning_curve.png")) > 0


def test_joined_parts_keep_every_text_with_its_label_in_order():
    texts, labels = example.joined_parts(
        (["a", "b"], np.array([0, 1])), (["c"], np.array([1]))
    )
    assert texts == ["a", "b", "c"]
    np.testing.assert_array_equal(labels, [0, 1, 1])


@pytest.mark.parametrize("metric", ["val_loss", "val_accuracy"])
def test_restore_best_epoch_ends_on_the_best_epochs_weights(metric):
    import keras

    args = example.parse_args(["--restore-best-epoch", metric, "--epochs", "4"])
    x = np.linspace(-1, 1, 32).astype("float32")[:, None]
    # Validation labels are the training labels flipped, so the more the
    # model learns, the higher its validation loss: the best epoch is not
    # the last.
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.compile(
        keras.optimizers.SGD(0.5),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    epochs = []

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs.append((logs[metric], self.model.get_weights()))

    model.fit(
        x,
        y,
        validation_data=(x, 1 - y),
        epochs=args.epochs,
        callbacks=[Recorder(), *example.best_epoch_callbacks(args)],
        verbose=0,
    )
    values = [value if metric == "val_loss" else -value for value, _ in epochs]
    best = int(np.argmin(values))  # The earliest best, as Keras keeps.
    assert len(epochs) == args.epochs and best != len(epochs) - 1
    for restored, recorded in zip(model.get_weights(), epochs[best][1]):
        np.testing.assert_array_equal(restored, recorded)


def test_without_restore_best_epoch_training_ends_on_the_last_epoch():
    assert example.best_epoch_callbacks(example.parse_args([])) == []


LOGITS = np.array([[1.0, -0.5, 2.0, 0.3], [0.2, 0.1, -1.0, 0.4]], "float32")
LOG_PROBABILITIES = LOGITS - np.log(np.exp(LOGITS).sum(-1, keepdims=True))


def test_label_smoothing_mixes_the_targets_with_the_uniform_distribution():
    args = example.parse_args(["--label-smoothing", "0.2"])
    loss, _ = example.classification_loss(args)
    targets = example.training_targets([2, 0], 4, args)
    smoothed = 0.8 * np.eye(4)[[2, 0]] + 0.2 / 4
    expected = -(smoothed * LOG_PROBABILITIES).sum(-1).mean()
    assert float(loss(targets, LOGITS)) == pytest.approx(expected, rel=1e-5)


def test_without_label_smoothing_the_targets_are_the_labels():
    args = example.parse_args([])
    loss, _ = example.classification_loss(args)
    targets = example.training_targets([2, 0], 4, args)
    np.testing.assert_array_equal(targets, [2, 0])
    expected = -LOG_PROBABILITIES[[0, 1], [2, 0]].mean()
    assert float(loss(targets, LOGITS)) == pytest.approx(expected, rel=1e-5)


def write_bert_preset(folder, words):
    """A tiny random keras-hub BERT preset with its tokenizer."""
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    ).save_to_preset(folder)
    keras_hub.models.BertTokenizer(
        vocabulary=vocabulary, lowercase=True
    ).save_to_preset(folder)
    return folder


def test_fine_tunes_a_converted_bert_backbone(tmp_path, capsys):
    words = {"0": "market shares bank profit rates", "1": "goal match team cup"}
    rng = np.random.default_rng(0)
    rows = [
        [" ".join(rng.choice(words[str(i % 2)].split(), size=12)), str(i % 2)]
        for i in range(24)
    ]
    path = write_csv(tmp_path / "data.csv", ["text", "label"], rows)
    bert = write_bert_preset(
        str(tmp_path / "bert"), " ".join(words.values()).split()
    )
    out = str(tmp_path / "model")
    accuracy = example.main(
        [
            "--csv", path, "--out", out, "--epochs", "1",
            "--backbone", bert, "--sequence-length", "32",
            "--projected-length", "8", "--batch-size", "8", "--verbose", "0",
        ]
    )  # fmt: skip
    assert 0 <= accuracy <= 1
    assert "Test accuracy" in capsys.readouterr().out
    classifier = keras_hub.models.TextClassifier.from_preset(out)
    backbone = classifier.backbone
    assert isinstance(backbone, keras_linformer.LinformerBackbone)
    # 32 positions from BERT's 16, repeated; BERT's segment embedding kept.
    assert backbone.max_sequence_length == 32
    assert backbone.num_segments == 2
    # Converted with from_transformer's projection, not the new models' conv.
    assert backbone.projection == "adaptive_mean_pool"
    assert isinstance(
        classifier.preprocessor.tokenizer, keras_hub.models.BertTokenizer
    )
    assert classifier.predict([rows[0][0]], verbose=0).shape == (1, 2)


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "conv"),
        (["--backbone", "x"], None),
        (["--backbone", "x", "--projection", "linear"], "linear"),
    ],
)
def test_projection_defaults_to_conv_for_a_new_backbone(argv, expected):
    # None: a converted backbone gets from_transformer's default.
    assert example.parse_args(argv).projection == expected


def test_a_missing_backbone_is_a_one_line_error(tmp_path):
    message = example_error_message(
        example, ["--backbone", str(tmp_path / "nowhere"), "--epochs", "1"]
    )
    assert "--backbone" in message and "does not exist" in message


def test_one_epoch_curves_show_points_on_integer_epochs():
    history = {
        "loss": [0.7],
        "val_loss": [0.6],
        "accuracy": [0.5],
        "val_accuracy": [0.6],
    }
    figure = example.learning_curve_figure(history)
    figure.canvas.draw()
    for axis in figure.axes:
        assert [line.get_marker() for line in axis.get_lines()] == ["o", "o"]
        ticks = axis.get_xticks()
        assert np.array_equal(ticks, np.round(ticks))


def test_curves_without_validation_show_training_alone():
    figure = example.learning_curve_figure({"loss": [0.7], "accuracy": [0.5]})
    for axis in figure.axes:
        assert [line.get_label() for line in axis.get_lines()] == ["train"]


def test_preset_is_saved_when_plotting_fails(tmp_path, capsys, monkeypatch):
    def no_matplotlib(history, path):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(example, "plot_learning_curves", no_matplotlib)
    folder = write_folder(
        tmp_path / "data",
        {
            "neg": ["dull slow bad film"] * 4,
            "pos": ["great fun good film"] * 4,
            "unsup": ["a film"] * 4,
        },
    )
    out = str(tmp_path / "model")
    example.main(
        [
            "--data", folder, "--classes", "neg,pos", "--out", out,
            "--epochs", "1", "--sequence-length", "16",
            "--projected-length", "4", "--vocabulary-size", "40",
            "--hidden-dim", "8", "--verbose", "0",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "Learning a WordPiece vocabulary" in printed
    assert "warning: no learning curves: ImportError" in printed
    assert os.path.exists(os.path.join(out, "task.json"))
    with open(os.path.join(out, "class_names.txt")) as file:
        assert file.read().split() == ["neg", "pos"]
