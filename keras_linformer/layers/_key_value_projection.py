"""Internal: the key/value side of `LinformerAttention`, which
`SequenceProjection`s it has at each sharing level and where they run.

A projection shared by all heads runs before the key/value dense
projections, which is exact (`E (X W) = (E X) W`) and cheaper whenever
k < n; per-head projections (`parameter_sharing="none"`) run after them, on
each head's features (`E_i (X W_i)`), which costs `heads` times fewer
operations than compressing the input once per head. The dense bias is added
after the compression either way.
"""

from keras_hub.src.utils.keras_utils import clone_initializer

from keras_linformer.layers.sequence_projection import PARAMETER_FREE_KINDS
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from keras_linformer.layers.sequence_projection import SequenceProjection
from keras_linformer.layers.validation import check_length

# How one attention layer shares its projections (`parameter_sharing`).
PARAMETER_SHARING = ("none", "headwise", "key_value")
# Sharing across layers: one `SequenceProjection` passed to several layers,
# which a backbone sets up; backbones accept all of these.
LAYERWISE = "layerwise"
BACKBONE_PARAMETER_SHARING = PARAMETER_SHARING + (LAYERWISE,)


def key_value_projections(
    projection,
    sequence_length,
    projected_length,
    num_heads,
    parameter_sharing,
    initializer,
    dtype,
    layer_name,
):
    """The unbuilt key and value `SequenceProjection`s (one object when
    shared), for the arguments of `LinformerAttention` of the same names."""
    if parameter_sharing not in PARAMETER_SHARING:
        raise ValueError(
            f"`parameter_sharing` must be one of {PARAMETER_SHARING} (for "
            "layerwise sharing, pass one `SequenceProjection` layer as "
            "`projection` to several layers). Received: "
            f"parameter_sharing={parameter_sharing!r}"
        )
    if isinstance(projection, SequenceProjection):
        for name, value in (
            ("sequence_length", sequence_length),
            ("projected_length", projected_length),
        ):
            if value is not None and value != getattr(projection, name):
                raise ValueError(
                    f"`{name}` ({value}) disagrees with the shared "
                    f"projection's ({getattr(projection, name)}). Leave it "
                    "unset when passing a `SequenceProjection`."
                )
        if projection.per_head and projection.num_heads != num_heads:
            raise ValueError(
                "The shared projection has one set of parameters for each "
                f"of {projection.num_heads} heads, but num_heads={num_heads}."
            )
        return projection, projection
    if projection not in PROJECTION_KINDS:
        raise ValueError(
            f"`projection` must be one of {PROJECTION_KINDS} or a "
            f"`SequenceProjection` layer. Received: projection={projection!r}"
        )
    if sequence_length is None or projected_length is None:
        raise ValueError(
            f"{layer_name} needs `sequence_length` (the largest n) and "
            "`projected_length` (k). Received: "
            f"sequence_length={sequence_length}, "
            f"projected_length={projected_length}"
        )
    per_head = (
        parameter_sharing == "none" and projection not in PARAMETER_FREE_KINDS
    )

    def make(name):
        return SequenceProjection(
            sequence_length=sequence_length,
            projected_length=projected_length,
            kind=projection,
            num_heads=num_heads if per_head else None,
            kernel_initializer=clone_initializer(initializer),
            dtype=dtype,
            name=name,
        )

    key_projection = make("key_projection")
    # A parameter-free projection is the same function for keys and values,
    # so one object lets self-attention compress its input once.
    if parameter_sharing == "key_value" or projection in PARAMETER_FREE_KINDS:
        return key_projection, key_projection
    return key_projection, make("value_projection")


def build_projections(
    key_projection, value_projection, key_shape, value_shape, head_sizes
):
    """Builds the projections for what they compress: the inputs, or for a
    per-head one each head's features after the dense projection.

    `head_sizes` is `(num_heads, key_dim, value_dim)`.
    """
    check_length(value_shape[1], key_projection.sequence_length, "value")
    num_heads, key_dim, value_dim = head_sizes
    key_shape, value_shape = (
        tuple(shape[:2]) + (num_heads, head_dim)
        if projection.per_head
        else tuple(shape)
        for projection, shape, head_dim in (
            (key_projection, key_shape, key_dim),
            (value_projection, value_shape, value_dim),
        )
    )
    if (
        key_projection is value_projection
        and key_projection.kind not in PARAMETER_FREE_KINDS
        and key_shape[2:] != value_shape[2:]
    ):
        raise ValueError(
            "Keys and values share one projection (parameter_sharing="
            "'key_value', or one `SequenceProjection` layer), so they need "
            f"the same size. Received: key_shape={key_shape}, "
            f"value_shape={value_shape}"
        )
    for projection, shape in (
        (key_projection, key_shape),
        (value_projection, value_shape),
    ):
        if not projection.built:
            projection.build(shape)


def compressed_heads(
    key,
    value,
    key_projection,
    value_projection,
    key_dense,
    value_dense,
    padding_mask,
    self_attention,
):
    """Key and value heads over the k slots, and the slot mask (None where
    every slot is valid)."""
    if key_projection.per_head:
        key, slot_mask = _compress_per_head(
            key, key_projection, key_dense, padding_mask
        )
        value, _ = _compress_per_head(
            value, value_projection, value_dense, padding_mask
        )
    else:
        compressed_key, slot_mask = key_projection(key, mask=padding_mask)
        compressed_value = compressed_key
        if not (self_attention and value_projection is key_projection):
            compressed_value, _ = value_projection(value, mask=padding_mask)
        # `(E X) W + b`: the k slots projected into heads.
        key, value = key_dense(compressed_key), value_dense(compressed_value)
    if key_projection.slots_all_valid(padding_mask):
        slot_mask = None
    return key, value, slot_mask


def _compress_per_head(inputs, projection, dense, padding_mask):
    """`E_i (X W_i) + b_i`: each head's features, compressed by that head's
    projection; the bias is added after, as for shared ones."""
    # The dense layer applies its own kernel, so a quantized one (whose
    # `kernel` is raw integers without their scale) stays exact.
    heads = dense(inputs)
    if dense.bias is not None:
        heads = heads - dense.bias
    compressed, slot_mask = projection(heads, mask=padding_mask)
    if dense.bias is not None:
        compressed = compressed + dense.bias
    return compressed, slot_mask
