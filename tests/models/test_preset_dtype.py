import json
import os

import keras
import keras_hub
import numpy as np
import pytest

from keras_linformer.models import LinformerBackbone
from keras_linformer.models import LinformerCausalBackbone
from keras_linformer.models import LinformerCausalLM
from keras_linformer.models import LinformerCausalLMPreprocessor
from keras_linformer.models import LinformerMaskedLM
from keras_linformer.models import LinformerMaskedLMPreprocessor
from keras_linformer.models import LinformerTokenizer
from tests.testing import CLASSIFICATION_TEXTS
from tests.testing import causal_backbone_kwargs
from tests.testing import tiny_text_classifier
from tests.testing import to_numpy

SEQUENCE_LENGTH = 16


def tiny_task(kind):
    """A small task of `kind`, and the keras-hub class that loads it."""
    tokenizer = LinformerTokenizer.from_corpus(
        CLASSIFICATION_TEXTS, vocabulary_size=60
    )
    backbone_kwargs = dict(
        vocabulary_size=tokenizer.vocabulary_size(),
        max_sequence_length=SEQUENCE_LENGTH,
        hidden_dim=8,
    )
    if kind == "classifier":
        task = tiny_text_classifier(tokenizer, SEQUENCE_LENGTH)
        return task, keras_hub.models.TextClassifier
    if kind == "masked_lm":
        backbone = LinformerBackbone(
            num_layers=1, num_heads=2, intermediate_dim=16, projected_length=4,
            **backbone_kwargs,
        )  # fmt: skip
        preprocessor = LinformerMaskedLMPreprocessor(
            tokenizer, sequence_length=SEQUENCE_LENGTH
        )
        task = LinformerMaskedLM(backbone, preprocessor)
        return task, keras_hub.models.MaskedLM
    backbone = LinformerCausalBackbone(
        **causal_backbone_kwargs(**backbone_kwargs)
    )
    preprocessor = LinformerCausalLMPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    return LinformerCausalLM(backbone, preprocessor), keras_hub.models.CausalLM


@pytest.fixture
def restore_dtype_policy():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("kind", ["classifier", "masked_lm", "causal_lm"])
def test_a_mixed_precision_preset_loads_in_the_loaders_policy(
    kind, tmp_path, restore_dtype_policy
):
    preset = str(tmp_path / "preset")
    keras.config.set_dtype_policy("mixed_bfloat16")
    task, task_class = tiny_task(kind)
    weights = task.get_weights()
    task.save_to_preset(preset)
    # keras-hub 0.32 cannot read "mixed_bfloat16" as a preset's dtype.
    with open(os.path.join(preset, "config.json")) as file:
        assert json.load(file)["config"]["dtype"]["config"]["name"] == "float32"

    for policy in ("mixed_bfloat16", "float32"):
        keras.config.set_dtype_policy(policy)
        revived = task_class.from_preset(preset)
        assert type(revived) is type(task)
        assert revived.dtype_policy.name == policy
        assert revived.backbone.dtype_policy.name == policy
        for expected, actual in zip(weights, revived.get_weights()):
            np.testing.assert_array_equal(actual, expected)
    x = keras.utils.unpack_x_y_sample_weight(
        revived.preprocessor(CLASSIFICATION_TEXTS[:2])
    )[0]
    output = to_numpy(revived(to_numpy(x)))
    assert output.dtype == "float32" and np.isfinite(output).all()


def test_a_mixed_precision_backbone_preset_records_its_variable_dtype(
    tmp_path, restore_dtype_policy
):
    preset = str(tmp_path / "preset")
    keras.config.set_dtype_policy("mixed_bfloat16")
    tiny_task("causal_lm")[0].backbone.save_to_preset(preset)
    with open(os.path.join(preset, "config.json")) as file:
        assert json.load(file)["config"]["dtype"]["config"]["name"] == "float32"
    keras.config.set_dtype_policy("float32")
    backbone = keras_hub.models.Backbone.from_preset(preset)
    assert type(backbone) is LinformerCausalBackbone
    assert backbone.dtype_policy.name == "float32"


def test_a_keras_file_keeps_the_mixed_policy(tmp_path, restore_dtype_policy):
    path = str(tmp_path / "classifier.keras")
    keras.config.set_dtype_policy("mixed_bfloat16")
    tiny_task("classifier")[0].save(path)
    keras.config.set_dtype_policy("float32")
    revived = keras.saving.load_model(path)
    assert revived.backbone.dtype_policy.name == "mixed_bfloat16"
