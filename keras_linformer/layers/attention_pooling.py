"""Attention pooling: a sequence to one vector, weighted by content."""

import keras
from keras import ops

from keras_linformer.layers._masking import large_negative


@keras.saving.register_keras_serializable(package="keras_linformer")
class AttentionPooling1D(keras.layers.Layer):
    """Pools a `(batch, length, channels)` sequence into one vector per row.

    Each position gets a learned score `w . h_t`; the pooled vector is the
    average of the positions weighted by the softmax of their scores over the
    real (unmasked) positions. Unlike mean pooling it can single out the few
    positions that decide a label, at O(n) cost.

    This matters for Linformer classifiers: a Linformer layer mixes the
    sequence through the k slots of a fixed, position-indexed projection, so
    content decides only which slots a token reads, not which tokens a slot
    holds. Content-based selection over all n tokens, which full attention
    gets for free, comes back in the pooling.

    Args:
        kernel_initializer: initializer for the score vector `w`. Defaults
            to `"zeros"`, which starts as mean pooling.
        kernel_regularizer: optional regularizer for `w`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` etc.

    Call arguments:
        inputs: a `(batch, length, channels)` tensor.
        mask: optional boolean `(batch, length)` tensor, True at real
            positions. Masked positions get no weight (a row without real
            positions pools all of them evenly).

    Example:

    ```python
    hidden = np.random.normal(size=(2, 100, 64)).astype("float32")
    mask = np.arange(100)[None, :] < np.array([[80], [100]])
    pooled = keras_linformer.layers.AttentionPooling1D()(hidden, mask=mask)
    ```

    References:
     - [Yang et al., 2016](https://aclanthology.org/N16-1174/)
    """

    def __init__(
        self, kernel_initializer="zeros", kernel_regularizer=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.supports_masking = True

    def build(self, inputs_shape):
        if len(inputs_shape) != 3 or inputs_shape[-1] is None:
            raise ValueError(
                "`AttentionPooling1D` expects inputs of shape (batch, length, "
                "channels) with known channels. Received: "
                f"inputs_shape={tuple(inputs_shape)}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(inputs_shape[-1],),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.built = True

    def call(self, inputs, mask=None):
        scores = ops.cast(
            ops.einsum("btc,c->bt", inputs, self.kernel), "float32"
        )
        if mask is not None:
            scores = ops.where(
                ops.cast(mask, "bool"), scores, large_negative("float32")
            )
        weights = ops.cast(ops.softmax(scores, axis=-1), inputs.dtype)
        return ops.einsum("bt,btc->bc", weights, inputs)

    def compute_mask(self, inputs, mask=None):
        # The sequence axis is pooled away.
        return None

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
            }
        )
        return config
