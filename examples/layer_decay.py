"""AdamW with layer-wise learning-rate decay, for fine-tuning a pretrained
backbone.

Imported only when `--layer-decay` is given, since it imports Keras.
"""

import re

import keras

BLOCK_PATH = re.compile(r"(?:^|/)transformer_layer_(\d+)/")


def layer_depth(path, num_blocks):
    """Where a variable sits in a Transformer backbone, counted from the
    input: 0 for the embeddings, `i + 1` for block `i`, `num_blocks + 1` for
    anything above the blocks (pooling, the task's head)."""
    block = BLOCK_PATH.search(path)
    if block:
        return int(block.group(1)) + 1
    if "embedding" in path:
        return 0
    return num_blocks + 1


class LayerDecayAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate shrinks by a factor per Transformer block
    from the top of the model down to the embeddings.

    The task's head and pooling train at the schedule's rate, block `i` of
    `L` (keras-hub's and keras_linformer's `transformer_layer_i`) at
    `layer_decay ** (L - i)` times it and the embeddings at
    `layer_decay ** (L + 1)` times it, so the general features near the
    input move least. Decoupled weight decay keeps the schedule's rate in
    every layer, as Keras applies it before the update step.

    Args:
        layer_decay: float in (0, 1]. The factor per block; 1 is AdamW.
        **kwargs: the arguments of `keras.optimizers.AdamW`.

    Example:

    >>> optimizer = LayerDecayAdamW(layer_decay=0.8, learning_rate=1e-4)

    References:
        - [Clark et al., 2020](https://arxiv.org/abs/2003.10555) (ELECTRA,
          appendix: layer-wise learning-rate decay 0.8 for small models).
    """

    def __init__(self, layer_decay, **kwargs):
        if not 0 < layer_decay <= 1:
            raise ValueError(
                f"`layer_decay` must be in (0, 1]. Received: {layer_decay}"
            )
        super().__init__(**kwargs)
        self.layer_decay = layer_decay
        self._multipliers = {}

    def build(self, variables):
        super().build(variables)
        blocks = [BLOCK_PATH.search(variable.path) for variable in variables]
        if not any(blocks):
            raise ValueError(
                "`layer_decay` needs a Transformer backbone whose blocks are "
                "named `transformer_layer_<i>` (keras-hub's and "
                "keras_linformer's); none of the variables is in one: "
                f"{[variable.path for variable in variables][:5]}"
            )
        num_blocks = max(int(block.group(1)) + 1 for block in blocks if block)
        self._multipliers = {
            variable.path: self.layer_decay
            ** (num_blocks + 1 - layer_depth(variable.path, num_blocks))
            for variable in variables
        }

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Every backend routes its updates through this method, so one
        # update per learning-rate multiplier works on all three.
        groups = {}
        for grad, variable in zip(grads, trainable_variables):
            multiplier = self._multipliers[variable.path]
            group = groups.setdefault(multiplier, ([], []))
            group[0].append(grad)
            group[1].append(variable)
        for multiplier, (group_grads, group_variables) in groups.items():
            super()._backend_update_step(
                group_grads, group_variables, learning_rate * multiplier
            )

    def get_config(self):
        return dict(super().get_config(), layer_decay=self.layer_decay)
