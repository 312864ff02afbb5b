"""Presets of models built in a mixed dtype policy, loadable by keras-hub.

keras-hub loads a preset saved in a float policy in the loader's global
policy, but `Task.from_preset` cannot read a mixed policy's name: with
keras-hub 0.32 a task saved in `mixed_bfloat16` fails to load with
"Invalid dtype: mixed_bfloat16", keras-hub's own models too. A preset stores
the weights in the policy's variable dtype, so that is the dtype its
`config.json` records; the loader's policy then decides the compute dtype,
as for any float preset.
"""

import json
import os

import keras
from keras_hub.src.utils.preset_utils import CONFIG_FILE


def record_variable_dtype(preset_dir):
    """Rewrites a mixed policy in `preset_dir`'s `config.json` as the dtype
    of its variables; other dtypes (float, quantized maps) stay as saved."""
    path = os.path.join(preset_dir, CONFIG_FILE)
    with open(path) as file:
        config = json.load(file)
    dtype = config["config"].get("dtype")
    if not isinstance(dtype, dict) or dtype.get("class_name") != "DTypePolicy":
        return
    policy = keras.dtype_policies.get(dtype)
    if policy.variable_dtype == policy.compute_dtype:
        return
    dtype["config"]["name"] = policy.variable_dtype
    with open(path, "w") as file:
        json.dump(config, file, indent=4)


class VariableDtypePresetMixin:
    """A backbone's `save_to_preset` that records a mixed policy as its
    variable dtype, so that `from_preset` loads the preset (see the module
    docstring). A task saves its backbone's `config.json` through it."""

    def save_to_preset(self, preset_dir, max_shard_size=10):
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        record_variable_dtype(preset_dir)
