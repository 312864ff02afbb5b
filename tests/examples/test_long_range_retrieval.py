import numpy as np
import pytest

from tests.testing import import_example

retrieval = import_example("long_range_retrieval")


def test_retrieval_data_marks_one_position_holding_the_label():
    tokens, labels = retrieval.make_retrieval_data(64, 50, 3, seed=0)
    assert tokens.shape == (64, 50) and labels.shape == (64,)
    assert np.all(tokens[:, 0] == 6)
    marked = (tokens[:, 1:] >= 3) & (tokens[:, 1:] < 6)
    assert np.all(marked.sum(1) == 1)
    np.testing.assert_array_equal(tokens[:, 1:][marked] - 3, labels)


def test_flags_are_parsed():
    args = retrieval.parse_args(
        ["--sequence-length", "512", "--projected-length", "64", "--epochs", "3"]
    )
    assert (args.sequence_length, args.projected_length, args.epochs) == (
        512, 64, 3,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sequence-length", "1"], "--sequence-length must be at least 2"),
        (["--projected-length", "0"], "--projected-length must be between"),
        (
            ["--sequence-length", "64", "--projected-length", "65"],
            "--projected-length must be between",
        ),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--epochs", "two"], "invalid int value"),
    ],
)
def test_bad_flags_exit_with_a_one_line_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        retrieval.parse_args(argv)
    assert exit_info.value.code == 2
    # argparse prints the usage, then the error on one line.
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: " in last_line and message in last_line
