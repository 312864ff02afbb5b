"""The Linformer sequence projection: compresses the sequence axis n -> k."""

import math

import keras
from keras import ops

from keras_linformer.layers.validation import check_length
from keras_linformer.layers.validation import check_positive_int

PROJECTION_KINDS = (
    "linear", "mean_pool", "max_pool", "conv", "adaptive_mean_pool"
)
PARAMETER_FREE_KINDS = ("mean_pool", "max_pool", "adaptive_mean_pool")
# Linear along the sequence in head space, so causal attention can update
# their prefix summaries chunk by chunk (max pooling is not linear, and a
# convolution weighs input channels).
CAUSAL_PROJECTION_KINDS = ("linear", "mean_pool")


@keras.saving.register_keras_serializable(package="keras_linformer")
class SequenceProjection(keras.layers.Layer):
    """Compresses the sequence axis of a sequence of vectors.

    This is the `E`/`F` projection of Linformer: it maps a sequence of up to
    `sequence_length` (n) positions to `projected_length` (k) slots, so that
    attention over the slots costs O(n k) rather than O(n^2). Padded positions
    (where `mask` is False) have no influence on the result: they are zeroed
    before a linear or convolutional projection and left out of pooling.

    Sequences shorter than `sequence_length` are projected with the first
    rows of the learned matrix (the `"linear"` kind), the same fixed windows
    (`"mean_pool"`, `"max_pool"`, `"conv"`) or windows of their real length
    (`"adaptive_mean_pool"`), so appending padding never changes the result.

    Args:
        sequence_length: int. The largest sequence length n the projection
            covers.
        projected_length: int. The number of slots k, `1 <= k <= n`.
        kind: string. How n becomes k: `"linear"` (a learned n x k matrix,
            the paper's default), `"mean_pool"` or `"max_pool"` (windows of
            `ceil(n / k)` positions, no parameters), `"conv"` (a learned
            depthwise convolution whose kernel size equals its stride,
            `ceil(n / k)`), or `"adaptive_mean_pool"` (means over windows
            sized to each sequence's real length L: the i-th real position
            goes to slot `floor(i * k / L)`, so a sequence of L <= k real
            positions keeps one slot per position, and attention over the
            slots equals attention over the positions, while a longer one
            fills all k slots; no parameters, and no causal form). Defaults
            to `"linear"`.
        num_heads: int or `None`. If set, the projection holds one set of
            parameters per attention head (the paper's separate E_i, F_i) and
            compresses inputs that have a heads axis,
            `(batch, length, num_heads, channels)`: each head's own features,
            after its key or value projection. Only the learned kinds have
            parameters to give each head. Defaults to `None` (one projection
            shared by all heads).
        kernel_initializer: initializer for the learned projection. Defaults
            to `"glorot_uniform"`, which keeps the variance of a sum over n
            positions close to that of one position.
        kernel_regularizer: optional regularizer for the learned projection.
        kernel_constraint: optional constraint for the learned projection.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: a `(batch, length, channels)` tensor, or
            `(batch, length, num_heads, channels)` for a per-head projection,
            with `length <= sequence_length`.
        mask: optional boolean `(batch, length)` tensor, True at real
            positions.

    Returns:
        A tuple `(projected, slot_mask)`. `projected` has the shape of
        `inputs` with k in place of the length: `(batch, k, channels)`, or
        `(batch, k, num_heads, channels)` for a per-head projection.
        `slot_mask` is a boolean `(batch, k)` tensor, `(batch, num_heads, k)`
        for a per-head projection, that is False for empty slots: a window
        that holds no real position, or for the `"linear"` kind a column of
        the projection that puts no weight on any real position.

    Example:

    ```python
    projection = keras_linformer.layers.SequenceProjection(
        sequence_length=1024, projected_length=64
    )
    x = np.random.normal(size=(2, 1000, 32)).astype("float32")
    projected, slot_mask = projection(x)  # projected: (2, 64, 32)
    ```

    References:
     - [Wang et al., 2020](https://arxiv.org/abs/2006.04768)
    """

    def __init__(
        self,
        sequence_length,
        projected_length,
        kind="linear",
        num_heads=None,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        kernel_constraint=None,
        **kwargs,
    ):
        validate_lengths(sequence_length, projected_length)
        if kind not in PROJECTION_KINDS:
            raise ValueError(
                f"`kind` must be one of {PROJECTION_KINDS}. Received: "
                f"kind={kind!r}"
            )
        if num_heads is not None:
            if not isinstance(num_heads, int) or num_heads < 1:
                raise ValueError(
                    "`num_heads` must be a positive integer or `None`. "
                    f"Received: num_heads={num_heads}"
                )
            if kind in PARAMETER_FREE_KINDS:
                raise ValueError(
                    f"A {kind!r} projection has no parameters to give each "
                    "head; use `num_heads=None`. Received: "
                    f"num_heads={num_heads}"
                )
        if kind == "adaptive_mean_pool" and (
            sequence_length * projected_length > _INT32_MAX
        ):
            # Slot numbers are computed as int32 products `i * k`.
            raise ValueError(
                "An 'adaptive_mean_pool' projection needs `sequence_length` "
                f"* `projected_length` <= {_INT32_MAX}. Received: "
                f"sequence_length={sequence_length}, "
                f"projected_length={projected_length}"
            )
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.projected_length = projected_length
        self.kind = kind
        self.num_heads = num_heads
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.supports_masking = True
        # Pooling windows tile ceil(n / k) * k >= n positions; the last
        # windows may lie partly or wholly beyond n and are then masked.
        self.window = math.ceil(sequence_length / projected_length)

    @property
    def per_head(self):
        return self.num_heads is not None

    def build(self, inputs_shape):
        channels = inputs_shape[-1]
        heads = (self.num_heads,) if self.per_head else ()
        expected = "(batch, length" + ", num_heads" * self.per_head
        if (
            len(inputs_shape) != 3 + self.per_head
            or tuple(inputs_shape[2:-1]) != heads
            or channels is None
        ):
            raise ValueError(
                f"This `SequenceProjection` (num_heads={self.num_heads}) "
                f"expects inputs of shape {expected}, channels) with a known "
                f"channel size. Received: inputs_shape={tuple(inputs_shape)}"
            )
        if self.kind == "linear":
            # Stored (heads, n, k) so a slice of the first rows covers any
            # shorter sequence.
            shape = heads + (self.sequence_length, self.projected_length)
        elif self.kind == "conv":
            shape = (self.window,) + heads + (channels,)
        else:
            shape = None
        if shape is not None:
            self.kernel = self.add_weight(
                name="kernel",
                shape=shape,
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )
        self.built = True

    def call(self, inputs, mask=None):
        inputs = check_length(
            ops.shape(inputs)[1], self.sequence_length, "inputs", inputs
        )
        if self.kind == "conv" and inputs.shape[-1] != self.kernel.shape[-1]:
            # A shared layer is built once, by its first caller.
            raise ValueError(
                "This `SequenceProjection` has a convolution kernel for "
                f"{self.kernel.shape[-1]} channels, built by its first call. "
                f"Received: inputs_shape={tuple(inputs.shape)}"
            )
        if mask is not None:
            mask = ops.cast(mask, "bool")
            feature_mask = mask
            for _ in range(len(inputs.shape) - 2):
                feature_mask = ops.expand_dims(feature_mask, -1)
            inputs = ops.where(feature_mask, inputs, ops.zeros_like(inputs))
        if self.kind == "linear":
            return self._project_linear(inputs), self._linear_slot_mask(
                inputs, mask
            )
        if self.kind == "adaptive_mean_pool":
            return self._project_adaptive(inputs, mask)
        return self._project_windows(inputs, mask)

    def slots_all_valid(self, mask):
        """Whether every slot is valid without looking at any values: a
        linear projection called without a padding mask."""
        return mask is None and self.kind == "linear"

    # What causal attention asks of a projection with a causal form; see
    # `CausalLinformerAttention`.

    def slot_weights(self, positions, dtype):
        """The position-to-slot matrix M at `positions`, zero past n.

        `positions` is an int tensor of any shape P; the result is `P + (k,)`,
        or `(num_heads,) + P + (k,)` per head: rows of the learned E for
        `"linear"`, the window indicator for `"mean_pool"`.
        """
        if self.kind == "mean_pool":
            return self.slot_membership(positions, dtype)
        inside = positions < self.sequence_length
        rows = ops.take(
            ops.cast(self.kernel, dtype),
            ops.minimum(positions, self.sequence_length - 1),
            axis=-2,
        )
        return ops.where(
            ops.expand_dims(inside, -1), rows, ops.zeros((), dtype=dtype)
        )

    def slot_membership(self, positions, dtype):
        """`P + (k,)` for positions of shape P: 1 where a position counts
        towards a slot.

        A pooling slot holds the positions of its window; a linear slot
        mixes every position.
        """
        if self.kind != "mean_pool":
            return ops.ones(
                tuple(ops.shape(positions)) + (self.projected_length,),
                dtype=dtype,
            )
        return ops.cast(
            ops.equal(
                ops.expand_dims(positions // self.window, -1),
                ops.arange(self.projected_length),
            ),
            dtype,
        )

    def prefix_slot_counts(self, prefix_length, dtype):
        """`P + (k,)` for prefix lengths of shape P (a scalar or one per
        row): how many of the positions `< prefix_length` each slot
        holds."""
        prefix_length = ops.expand_dims(ops.cast(prefix_length, "int32"), -1)
        if self.kind == "mean_pool":
            first = ops.arange(self.projected_length) * self.window
            counts = ops.clip(prefix_length - first, 0, self.window)
        else:
            counts = prefix_length + ops.zeros(
                (self.projected_length,), "int32"
            )
        return ops.cast(counts, dtype)

    def summary_scale(self, counts):
        """What a sum of slot contributions is multiplied by: 1 / count for
        a mean, else 1. `counts` is `(..., k)`; so is the result, or a
        scalar."""
        if self.kind == "mean_pool":
            return 1.0 / ops.maximum(counts, 1.0)
        return ops.ones((), dtype=counts.dtype)

    def _linear_slot_mask(self, inputs, mask):
        """A linear slot is empty where its column of the projection puts no
        weight on any real position."""
        heads = (self.num_heads,) if self.per_head else ()
        if mask is None:
            shape = (ops.shape(inputs)[0],) + heads + (self.projected_length,)
            return ops.ones(shape, dtype="bool")
        used = ops.cast(
            ops.not_equal(self._kernel_rows(ops.shape(inputs)[1]), 0),
            inputs.dtype,
        )
        real = ops.cast(mask, inputs.dtype)
        if self.per_head:
            weights = ops.einsum("bs,hsk->bhk", real, used)
        else:
            weights = ops.matmul(real, used)
        return weights > 0

    def _kernel_rows(self, length):
        """The linear kernel's rows for the first `length` positions.

        Sliced without an ellipsis, which is not a TFLite builtin."""
        if self.per_head:
            return self.kernel[:, :length, :]
        return self.kernel[:length, :]

    def _project_linear(self, inputs):
        kernel = ops.cast(self._kernel_rows(ops.shape(inputs)[1]), inputs.dtype)
        if self.per_head:
            return ops.einsum("bshc,hsk->bkhc", inputs, kernel)
        # E^T X as a broadcast matmul: the backends run it as one GEMM,
        # faster than the einsum (which some lower with extra transposes).
        return ops.matmul(ops.transpose(kernel), inputs)

    def _project_adaptive(self, inputs, mask):
        """Means over windows sized to each row's real length L: the i-th
        real position (counting only real ones) goes to slot
        `floor(i * k / L)`."""
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        real = ops.cast(mask, "int32")
        rank = ops.cumsum(real, axis=1) - 1
        real_length = ops.maximum(ops.sum(real, axis=1, keepdims=True), 1)
        slot = ops.where(
            mask, (rank * self.projected_length) // real_length, -1
        )
        membership = ops.cast(
            ops.equal(
                ops.expand_dims(slot, -1), ops.arange(self.projected_length)
            ),
            "float32",
        )
        counts = ops.sum(membership, axis=1)
        # Weights are 1 / count rather than 1, so a half-precision product
        # is a mean and cannot overflow.
        weights = membership / ops.expand_dims(ops.maximum(counts, 1.0), 1)
        projected = ops.matmul(
            ops.transpose(ops.cast(weights, inputs.dtype), (0, 2, 1)), inputs
        )
        return projected, counts > 0

    def _project_windows(self, inputs, mask):
        """Pools or convolves fixed windows of `self.window` positions."""
        kernel = None
        if self.kind == "conv":
            kernel = ops.cast(self.kernel, inputs.dtype)
        if not self.per_head:
            return self._project_channel_windows(inputs, mask, kernel)
        # Each (head, channel) pair is one depthwise channel.
        heads, channels = inputs.shape[2:]
        flat_shape = (-1, ops.shape(inputs)[1], heads * channels)
        kernel = ops.reshape(kernel, (self.window, heads * channels))
        projected, slot_mask = self._project_channel_windows(
            ops.reshape(inputs, flat_shape), mask, kernel
        )
        projected = ops.reshape(
            projected, (-1, self.projected_length, heads, channels)
        )
        slot_mask = ops.broadcast_to(
            ops.expand_dims(slot_mask, 1),
            (ops.shape(slot_mask)[0], heads, self.projected_length),
        )
        return projected, slot_mask

    def _project_channel_windows(self, inputs, mask, kernel):
        """Windows of a `(batch, length, channels)` tensor; `kernel` is the
        `(window, channels)` depthwise convolution of the `"conv"` kind."""
        length = ops.shape(inputs)[1]
        channels = ops.shape(inputs)[2]
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        padding = self.window * self.projected_length - length
        inputs = ops.pad(inputs, [[0, 0], [0, padding], [0, 0]])
        mask = ops.pad(mask, [[0, 0], [0, padding]], constant_values=False)
        windows = ops.reshape(
            inputs, (-1, self.projected_length, self.window, channels)
        )
        window_mask = ops.reshape(
            mask, (-1, self.projected_length, self.window)
        )
        # Half-precision sums of a few large values overflow: sum in float32.
        sum_dtype = _accumulation_dtype(inputs.dtype)
        counts = ops.sum(ops.cast(window_mask, sum_dtype), axis=2)
        slot_mask = counts > 0
        if self.kind == "mean_pool":
            total = ops.sum(ops.cast(windows, sum_dtype), axis=2)
            projected = ops.cast(
                total / ops.expand_dims(ops.maximum(counts, 1), -1),
                inputs.dtype,
            )
        elif self.kind == "max_pool":
            # -inf is below every real value in every dtype; empty slots,
            # whose max it is, become zeros below.
            lowest = ops.full_like(windows, float("-inf"))
            windows = ops.where(
                ops.expand_dims(window_mask, -1), windows, lowest
            )
            projected = ops.where(
                ops.expand_dims(slot_mask, -1),
                ops.max(windows, axis=2),
                ops.zeros((), dtype=inputs.dtype),
            )
        else:
            projected = ops.einsum("bkrc,rc->bkc", windows, kernel)
        return projected, slot_mask

    def compute_mask(self, inputs, mask=None):
        # The slot mask is returned explicitly; the sequence axis is gone.
        return None

    def compute_output_spec(self, inputs, mask=None):
        batch, channels = inputs.shape[0], inputs.shape[-1]
        heads = (self.num_heads,) if self.per_head else ()
        projected = keras.KerasTensor(
            (batch, self.projected_length) + heads + (channels,),
            dtype=self.compute_dtype,
        )
        return projected, keras.KerasTensor(
            (batch,) + heads + (self.projected_length,), dtype="bool"
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "projected_length": self.projected_length,
                "kind": self.kind,
                "num_heads": self.num_heads,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint
                ),
            }
        )
        return config


_INT32_MAX = 2**31 - 1


def _accumulation_dtype(dtype):
    """float32 for half-precision `dtype`, else `dtype` itself."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def check_causal_projection(projection):
    """Raises a ValueError unless `projection` (a kind or a
    `SequenceProjection`) has a causal form."""
    kind = getattr(projection, "kind", projection)
    if kind not in CAUSAL_PROJECTION_KINDS:
        raise ValueError(
            f"Causal Linformer attention supports the projections "
            f"{CAUSAL_PROJECTION_KINDS}: their prefix summaries are linear "
            "in the keys and can be updated chunk by chunk. Received: "
            f"projection={kind!r}. Use `LinformerAttention` (not causal) "
            "with it, or one of the supported kinds."
        )


def validate_lengths(sequence_length, projected_length):
    """Raises a ValueError unless `1 <= projected_length <= sequence_length`."""
    check_positive_int("sequence_length", sequence_length)
    check_positive_int("projected_length", projected_length)
    if projected_length > sequence_length:
        raise ValueError(
            "`projected_length` (k) must not exceed `sequence_length` (n): "
            "the projection compresses n positions into k slots. Received: "
            f"projected_length={projected_length}, "
            f"sequence_length={sequence_length}"
        )
