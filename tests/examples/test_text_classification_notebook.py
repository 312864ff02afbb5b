import json
import os

import keras
import nbformat
from nbclient import NotebookClient

from tests.testing import REPO_ROOT
from tests.testing import import_example

NOTEBOOK = os.path.join(REPO_ROOT, "examples", "text_classification.ipynb")


def test_notebook_runs_on_a_tiny_budget(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [
        cell
        for cell in notebook.cells
        if "parameters" in cell.metadata.get("tags", [])
    ]
    assert len(parameters) == 1
    parameters[0].source = (
        "EPOCHS = 1\nMAX_EXAMPLES = 60\nSEQUENCE_LENGTH = 64\n"
        "PROJECTED_LENGTH = 16\nVOCABULARY_SIZE = 300\nHIDDEN_DIM = 16\n"
        f"OUT = {str(tmp_path / 'preset')!r}"
    )
    # The kernel inherits the environment, and with it this run's backend.
    monkeypatch.setenv("KERAS_BACKEND", keras.config.backend())
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    )
    client.execute()
    outputs = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert f"Keras backend: {keras.config.backend()}" in outputs
    assert "Test accuracy" in outputs
    assert os.path.exists(tmp_path / "preset" / "learning_curve.png")
    assert os.path.exists(tmp_path / "preset" / "task.json")
    # The notebook trains the command line's model: its defaults, e.g. the
    # conv projection and attention pooling.
    defaults = import_example("text_classification").parse_args([])
    with open(tmp_path / "preset" / "config.json") as file:
        backbone_config = json.load(file)["config"]
    with open(tmp_path / "preset" / "task.json") as file:
        task_config = json.load(file)["config"]
    assert backbone_config["projection"] == defaults.projection == "conv"
    assert backbone_config["dropout"] == defaults.dropout
    assert backbone_config["num_layers"] == defaults.num_layers
    assert task_config["pooling"] == defaults.pooling == "attention"
