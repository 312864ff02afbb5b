"""Time and peak memory of LinformerAttention against MultiHeadAttention.

Measures forward and forward+backward time and peak memory of
`keras_linformer.layers.LinformerAttention` (one series per projected length
k) and `keras.layers.MultiHeadAttention`, batch 1, 8 heads of 64 (model dim
512), self-attention over n positions, on the backend chosen with
`KERAS_BACKEND`, under each `--dtype` policy. On the torch backend (float32)
the PyPI `linformer` package's `LinformerSelfAttention` runs as a peer.

Each (layer, n) point runs in fresh processes (`harness.py`): three time
both modes (`--processes`; per mode, the process with the median time sets
the point), and one per mode measures its peak memory. The backward pass takes the gradient of `sum(outputs)` with
respect to the input and every trainable weight: `tf.GradientTape`,
`jax.grad` of `stateless_call`, `torch.autograd.grad`, compiled as
`--compile` says.

Each timing process also measures this machine's matmul rate, float32 and
bfloat16: a 2048 x 2048 matmul on the same backend and compiler, right after
the timed calls, so both see the same machine load. For each Linformer point
the table gives the share of the rate of the point's own compute dtype that
the layer reaches for its FLOP count.

Usage:

```
KERAS_BACKEND=tensorflow python benchmarks/attention_scaling.py
KERAS_BACKEND=jax python benchmarks/attention_scaling.py --sizes 1024 4096
KERAS_BACKEND=torch python benchmarks/attention_scaling.py --quick
KERAS_BACKEND=tensorflow python benchmarks/attention_scaling.py --sizes 8192 \
    --projected-lengths 256 --dtype float32 mixed_bfloat16 --compile off
```

Results go to `benchmarks/results/<backend>/` (or `--out`): a markdown table
(`attention_scaling.md`), `attention_scaling.json` and `attention_scaling.png`.
A run that writes to the default directory also copies the JSON and PNG to
`benchmarks/attention_scaling_<backend>.{json,png}` for the README. On a slow
machine, split the sweep: `--sizes 512 1024 2048 4096`, then
`--sizes 8192 16384 --append`, and so on; `--append` also collects runs with
other `--dtype` or `--compile` settings into one table.
"""

import argparse
import itertools
import os
import shutil
import sys

import harness

BATCH = 1
NUM_HEADS = 8
HEAD_DIM = 64
MODEL_DIM = NUM_HEADS * HEAD_DIM
FLOAT32_BYTES = 4

DEFAULT_SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
DEFAULT_PROJECTED_LENGTHS = (128, 256)
QUICK_SIZES = (256, 512)
QUICK_PROJECTED_LENGTHS = (64,)
MATMUL_SIZE = 2048
MATMUL_REPEATS = 15
MATMUL_SECONDS = 10.0
QUICK_MATMUL_SIZE = 512
# Full attention is compared up to here by default; beyond, it is the O(n^2)
# wall that Linformer exists to avoid.
MHA_MAX_SIZE = 16384

# The matmul rate a point's share is taken of, by dtype policy.
MATMUL_RATE_KEYS = {
    "float32": "matmul_gflops",
    "mixed_bfloat16": "bfloat16_matmul_gflops",
}
LINFORMER = "linformer"
MHA = "mha"
PYPI_LINFORMER = "pypi-linformer"
LABELS = {
    LINFORMER: "LinformerAttention k={k}",
    MHA: "MultiHeadAttention",
    PYPI_LINFORMER: "PyPI linformer k={k}",
}
LAYER_ORDER = (LINFORMER, MHA, PYPI_LINFORMER)
MODES = ("forward", "forward_backward")
# The timed series the growth summary covers, and how it names them.
TIME_SETTINGS = {
    "seconds": "",
    "default_malloc_seconds": " (one call, glibc malloc defaults)",
}
BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help=f"Sequence lengths n. Defaults to {DEFAULT_SIZES}.",
    )
    parser.add_argument(
        "--projected-lengths",
        type=int,
        nargs="+",
        help="Linformer projected lengths k. Defaults to "
        f"{DEFAULT_PROJECTED_LENGTHS}.",
    )
    parser.add_argument(
        "--dtype",
        nargs="+",
        choices=harness.DTYPE_POLICIES,
        default=["float32"],
        help="Keras dtype policies, one series each (set with "
        "keras.config.set_dtype_policy in the point's process). Defaults to "
        "float32.",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=12.0,
        help="Skip (report n/a) points whose predicted memory exceeds this. "
        "Defaults to 12.",
    )
    parser.add_argument(
        "--mha-max-size",
        type=int,
        default=MHA_MAX_SIZE,
        help="Largest n at which MultiHeadAttention runs (n/a beyond). "
        f"Defaults to {MHA_MAX_SIZE}.",
    )
    parser.add_argument(
        "--no-mha",
        action="store_true",
        help="Leave out MultiHeadAttention (and the PyPI package).",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="Time the points only; skip the process that measures memory.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A tiny run (n=256, 512; k=64; 3 repeats, 1 process, a 512 x "
        "512 matmul) for smoke testing.",
    )
    parser.add_argument(
        "--out",
        help="Results directory. Defaults to benchmarks/results/<backend>; "
        "runs that write there (other than --quick) also copy the JSON and "
        "PNG to benchmarks/attention_scaling_<backend>.{json,png}.",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="Merge into the results already in the results directory (new "
        "points replace old ones), to split a long sweep with --sizes.",
    )
    harness.add_arguments(
        parser, processes=3, repeats=5, point_seconds=20.0, timeout=600.0
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes = args.sizes or list(QUICK_SIZES)
        args.projected_lengths = args.projected_lengths or list(
            QUICK_PROJECTED_LENGTHS
        )
        args.repeats = min(args.repeats, 3)
        args.processes = 1
    args.sizes = args.sizes or list(DEFAULT_SIZES)
    args.projected_lengths = args.projected_lengths or list(
        DEFAULT_PROJECTED_LENGTHS
    )
    args.matmul_size = QUICK_MATMUL_SIZE if args.quick else MATMUL_SIZE
    harness.check_positive(
        parser, args, ("sizes", "projected_lengths", "repeats", "processes")
    )
    return args


# ---------------------------------------------------------------------------
# Child process: one measurement.


def build_keras_model(layer_name, n, k):
    import keras

    import keras_linformer

    inputs = keras.Input((n, MODEL_DIM), batch_size=BATCH)
    if layer_name == MHA:
        layer = keras.layers.MultiHeadAttention(NUM_HEADS, HEAD_DIM)
    else:
        layer = keras_linformer.layers.LinformerAttention(
            NUM_HEADS, HEAD_DIM, sequence_length=n, projected_length=k
        )
    return keras.Model(inputs, layer(inputs, inputs))


def tensorflow_runners(layer_name, inputs, n, k, compile_mode):
    import tensorflow as tf

    model = build_keras_model(layer_name, n, k)
    x = tf.constant(inputs)

    def forward(x):
        return model(x)

    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(model(x))
        return tape.gradient(loss, [x] + model.trainable_variables)

    forward = harness.compiled(forward, compile_mode)
    forward_backward = harness.compiled(forward_backward, compile_mode)
    return lambda: forward(x), lambda: forward_backward(x)


def jax_runners(layer_name, inputs, n, k, compile_mode):
    import jax
    import jax.numpy as jnp

    model = build_keras_model(layer_name, n, k)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    x = jnp.asarray(inputs)

    def outputs(trainable, x):
        return model.stateless_call(trainable, non_trainable, x)[0]

    def loss(trainable, x):
        return jnp.sum(outputs(trainable, x).astype("float32"))

    forward, forward_backward = (
        harness.block_until_ready(harness.compiled(function, compile_mode))
        for function in (outputs, jax.grad(loss, argnums=(0, 1)))
    )
    return (
        lambda: forward(trainable, x),
        lambda: forward_backward(trainable, x),
    )


def torch_runners(layer_name, inputs, n, k, compile_mode):
    import torch

    if layer_name == PYPI_LINFORMER:
        from linformer import LinformerSelfAttention

        module = LinformerSelfAttention(
            dim=MODEL_DIM, seq_len=n, k=k, heads=NUM_HEADS
        )
        weights = list(module.parameters())
    else:
        module = build_keras_model(layer_name, n, k)
        weights = [v.value for v in module.trainable_variables]
    x = torch.from_numpy(inputs)
    x_grad = x.clone().requires_grad_()

    def forward(x):
        with torch.no_grad():
            return module(x)

    def forward_backward(x):
        loss = module(x).float().sum()
        return torch.autograd.grad(loss, [x] + weights)

    forward = harness.compiled(forward, compile_mode)
    forward_backward = harness.compiled(forward_backward, compile_mode)
    return lambda: forward(x), lambda: forward_backward(x_grad)


RUNNERS = {
    "tensorflow": tensorflow_runners,
    "jax": jax_runners,
    "torch": torch_runners,
}


def measure_point(point):
    """In this process: the time of both modes of one point and this
    machine's matmul rates (`measure="time"`), or the peak memory of one
    mode (`measure="memory"`)."""
    import keras
    import numpy as np

    keras.config.set_dtype_policy(point["dtype"])
    n, k = point["n"], point["k"] or 0
    inputs = np.random.default_rng(0).normal(size=(BATCH, n, MODEL_DIM))
    runners = RUNNERS[harness.backend_name()](
        point["layer"], inputs.astype("float32"), n, k, point["compile"]
    )
    runners = dict(zip(MODES, runners))
    if point["measure"] == "memory":
        return harness.peak_memory(runners[point["mode"]])
    result = {
        mode: harness.time_calls(
            run, point["repeats"], point["point_seconds"]
        )
        for mode, run in runners.items()
    }
    size = point["matmul_size"]
    result["rates"] = {
        key: matmul_rate(size, dtype, point["compile"])
        for dtype, key in (
            ("float32", "matmul_gflops"),
            ("bfloat16", "bfloat16_matmul_gflops"),
        )
    }
    result["rates"]["matmul_size"] = size
    return result


def matmul_rate(size, dtype, compile_mode):
    """GFLOP/s of a `size` x `size` matmul in `dtype` on this backend,
    compiled as `compile_mode` says."""
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    a, b = (
        ops.convert_to_tensor(rng.normal(size=(size, size)), dtype=dtype)
        for _ in range(2)
    )
    matmul = harness.block_until_ready(
        harness.compiled(ops.matmul, compile_mode)
    )
    seconds = harness.time_calls(
        lambda: matmul(a, b), MATMUL_REPEATS, MATMUL_SECONDS
    )["seconds"]
    return 2 * size**3 / seconds / 1e9


# ---------------------------------------------------------------------------
# Parent process: the sweep, the table, the files.


def linformer_flops(n, k):
    """Forward FLOPs of default (headwise, linear) Linformer self-attention.

    The sequence is compressed before the key/value dense layers: queries
    `n C C`, E X and F X `2 k n C`, the key/value dense layers `2 k C C`,
    scores and weighted values `2 n k C`, output `n C C` multiply-adds
    (C = heads x head size = model dim).
    """
    c = MODEL_DIM
    multiply_adds = 2 * n * c * c + 2 * k * n * c + 2 * k * c * c
    return 2 * BATCH * (multiply_adds + 2 * n * k * c)


def predicted_peak_bytes(layer_name, n, k, backend):
    """A generous estimate of a point's forward+backward peak memory, to
    skip hopeless points."""
    activations = 16 * BATCH * n * MODEL_DIM * FLOAT32_BYTES
    if layer_name == MHA:
        # PyTorch's SDPA kernel never holds the n x n weights; XLA keeps the
        # logits and the weights (and their gradients going backward).
        attention = 0 if backend == "torch" else BATCH * NUM_HEADS * n * n
    else:
        attention = BATCH * NUM_HEADS * n * k
    return activations + 4 * attention * FLOAT32_BYTES


def layers_to_run(args, backend, dtype):
    layers = [(LINFORMER, k) for k in args.projected_lengths]
    if args.no_mha:
        return layers
    layers.append((MHA, 0))
    if backend == "torch" and dtype == "float32":
        layers += [(PYPI_LINFORMER, k) for k in args.projected_lengths]
    return layers


def sweep(args, backend, save):
    """Measures every point; `save(points)` after each, so a killed run
    keeps what it measured."""
    limit = args.memory_limit_gb * 2**30
    compiler = harness.compiler_name(args.compile)
    points = []
    for n, dtype in itertools.product(sorted(args.sizes), args.dtype):
        for layer_name, k in layers_to_run(args, backend, dtype):
            point = {"layer": layer_name, "n": n, "k": k or None}
            point.update(dtype=dtype, compiler=compiler)
            if k > n:
                continue
            if layer_name == MHA and n > args.mha_max_size:
                point["skipped"] = f"n > {args.mha_max_size}"
            elif predicted_peak_bytes(layer_name, n, k, backend) > limit:
                point["skipped"] = (
                    f"predicted memory above {args.memory_limit_gb:g} GB"
                )
            else:
                point.update(measure_modes(args, point))
            points.append(point)
            save(points)
    return points


def measure_modes(args, point):
    """`{mode: result}` of a point, or `{"error": ...}`.

    `args.processes` processes time both modes, each also measuring the
    matmul rates; per mode, the process with the median time gives the
    time and the rates. Then, unless `args.no_memory`, one process per
    mode measures its memory.
    """
    name = f"{label(point)} n={point['n']}"
    timings = harness.time_in_processes(
        __file__, dict(point, matmul_size=args.matmul_size), args, name
    )
    if "error" in timings:  # An error dict, not the list of timings.
        return timings
    results = {}
    for mode in MODES:
        results[mode] = harness.median_process(
            [
                dict(t[mode], **t["rates"], load_average=t["load_average"])
                for t in timings
            ]
        )
        results[mode]["malloc"] = args.malloc
        if args.no_memory:
            continue
        memory = harness.measure_memory(
            __file__, dict(point, mode=mode), args, f"{name} {mode}"
        )
        if "error" in memory:
            return {"error": f"{mode}: {memory['error']}"}
        results[mode].update(memory)
    return results


def setting(point):
    """The dtype policy and compiler of a point (results from before these
    existed are float32 under the backend's default compiler)."""
    return (
        point.get("dtype", "float32"),
        point.get("compiler", harness.compiler_name("auto")),
    )


def label(point):
    name = LABELS[point["layer"]].format(k=point["k"])
    dtype, compiler = setting(point)
    extras = [] if dtype == "float32" else [dtype]
    if compiler != harness.compiler_name("auto"):
        extras.append(compiler)
    return name + "".join(f", {extra}" for extra in extras)


def find_point(points, layer_name, n, like):
    for point in points:
        if (point["layer"], point["n"]) == (layer_name, n) and setting(
            point
        ) == setting(like):
            return point
    return None


def metric(point, mode, key):
    value = point.get(mode, {}) if point else {}
    return value.get(key)


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def format_number(value, digits=1, suffix=""):
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def matmul_share(point, mode):
    """Percentage of the matmul rate of its own dtype that a Linformer point
    reaches, or None."""
    seconds = metric(point, mode, "seconds")
    rate = metric(point, mode, MATMUL_RATE_KEYS[setting(point)[0]])
    if point["layer"] != LINFORMER or seconds is None or not rate:
        return None
    # The backward pass does two matmuls for each forward one.
    flops = linformer_flops(point["n"], point["k"]) * (
        1 if mode == "forward" else 3
    )
    return 100 * flops / seconds / (rate * 1e9)


def markdown_table(points):
    headers = [
        "n", "layer", "forward ms", "fwd+bwd ms", "forward MB", "fwd+bwd MB",
        "fwd speed-up", "fwd+bwd speed-up", "fwd+bwd memory ratio",
        "% own-dtype matmul rate fwd / fwd+bwd",
    ]  # fmt: skip
    rows = []
    for point in points:
        mha = None
        if point["layer"] != MHA:
            mha = find_point(points, MHA, point["n"], point)
        seconds = [metric(point, mode, "seconds") for mode in MODES]
        speedups = [
            ratio(metric(mha, mode, "seconds"), s)
            for mode, s in zip(MODES, seconds)
        ]
        memory_ratio = ratio(
            metric(mha, MODES[1], "peak_mb"), metric(point, MODES[1], "peak_mb")
        )
        shares = [matmul_share(point, mode) for mode in MODES]
        note = point.get("skipped") or point.get("error")
        rows.append(
            [
                str(point["n"]),
                label(point) + (f" ({note})" if note else ""),
                *(format_number(s and 1e3 * s) for s in seconds),
                *(format_number(metric(point, m, "peak_mb"), 0) for m in MODES),
                *(format_number(s, suffix="x") for s in speedups),
                format_number(memory_ratio, suffix="x"),
                "n/a"
                if shares == [None, None]
                else " / ".join(format_number(r, 0, "%") for r in shares),
            ]
        )
    return harness.markdown_table(headers, rows, "rl" + "r" * 8)


def series_key(point):
    return (point["layer"], point["k"] or 0, *setting(point))


def series(points):
    """`(name, key)` of each measured configuration, in table order."""
    first = {}
    for point in points:
        first.setdefault(series_key(point), point)
    ordered = sorted(first, key=lambda key: (LAYER_ORDER.index(key[0]), key))
    return [(label(first[key]), key) for key in ordered]


def measured(points, key, mode, value_key, smallest_n=0):
    """`(n, value)` of the points of one configuration where `mode` ran."""
    return [
        (p["n"], p[mode][value_key])
        for p in points
        if series_key(p) == key
        and p["n"] >= smallest_n
        and value_key in p.get(mode, {})
    ]


def growth_summary(points):
    """Time factor per doubling of n, for each Linformer series from 4096."""
    lines = []
    for name, key in series(points):
        if key[0] == MHA:
            continue
        for mode, (value_key, time_setting) in itertools.product(
            MODES, TIME_SETTINGS.items()
        ):
            times = measured(points, key, mode, value_key, 4096)
            if len(times) < 2:
                continue
            factors = [
                f"{b / a:.2f}" for (_, a), (_, b) in zip(times, times[1:])
            ]
            lines.append(
                f"- {name}, {mode.replace('_', '+')}{time_setting}: time "
                f"factor per doubling of n from {times[0][0]}: "
                + ", ".join(factors)
            )
    return "\n".join(lines) + ("\n" if lines else "")


def plot(points, backend, path):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for (name, key), color in zip(
        series(points), itertools.cycle(plt.cm.tab10.colors)
    ):
        for mode, style in zip(MODES, ("-", "--")):
            line_label = f"{name}, {mode.replace('_', '+')}"
            for ax, value_key, scale in zip(
                axes, ("seconds", "peak_mb"), (1e3, 1.0)
            ):
                values = measured(points, key, mode, value_key)
                if not values:
                    continue
                ax.plot(
                    [n for n, _ in values],
                    # A log axis cannot show 0 MB; 1 MB is "too small to see".
                    [max(scale * value, 1.0) for _, value in values],
                    style,
                    marker="o",
                    color=color,
                    label=line_label,
                )
    for ax, ylabel in zip(axes, ("time (ms)", "peak memory (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    if axes[0].lines:  # Points that all failed or were skipped draw none.
        axes[0].legend(fontsize=7)
    figure.suptitle(
        f"Self-attention, batch {BATCH}, {NUM_HEADS} heads of {HEAD_DIM} "
        f"({backend} backend, CPU)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def merge_points(old, new):
    """`old` and `new` points, `new` replacing `old` at the same place."""

    def place(p):
        return (p["n"], LAYER_ORDER.index(p["layer"]), p["k"] or 0, setting(p))

    merged = {place(p): p for p in old + new}
    return [merged[key] for key in sorted(merged)]


def summary(points, backend):
    """The report's first paragraph: machine, rates, load and method."""
    machine = harness.machine_description()
    timings = [p[mode] for p in points for mode in MODES if mode in p]

    def value_range(key, digits=1):
        values = [t[key] for t in timings if t.get(key)]
        if not values:
            return "n/a"
        return f"{min(values):.{digits}f}-{max(values):.{digits}f}"

    loads = [t["load_average"][0] for t in timings if "load_average" in t]
    loads = loads or machine["load_average"][:1]
    mallocs = sorted({t.get("malloc", "default") for t in timings})
    processes = sorted({len(t.get("process_seconds", [0])) for t in timings})
    text = (
        f"{backend} backend, {machine['cpu']}, {machine['cores']} cores; "
        f"matmul rate (measured beside each point) float32 "
        f"{value_range('matmul_gflops')} GFLOP/s, bfloat16 "
        f"{value_range('bfloat16_matmul_gflops')} GFLOP/s; 1-minute load "
        f"average {min(loads):.1f}-{max(loads):.1f}."
    )
    if timings:
        text += (
            f" Times with glibc malloc settings: {', '.join(mallocs)} (see "
            f"--malloc), the median of {'/'.join(map(str, processes))} "
            "timing processes per point; memory with glibc's defaults."
        )
    return text + "\n\n"


def write_results(points, backend, out, copy):
    """Writes the table, JSON and plot of `points`; returns the table and
    the paths written."""
    report = (
        summary(points, backend)
        + markdown_table(points)
        + "\n"
        + growth_summary(points)
    )
    results = {
        "backend": backend,
        "batch": BATCH,
        "num_heads": NUM_HEADS,
        "head_dim": HEAD_DIM,
        "points": points,
    }
    written = harness.write_results(
        out,
        "attention_scaling",
        report,
        results,
        lambda path: plot(points, backend, path),
    )
    if copy:
        for path in written[1:]:
            extension = os.path.splitext(path)[1]
            copy_path = os.path.join(
                BENCHMARKS_DIR, f"attention_scaling_{backend}{extension}"
            )
            shutil.copyfile(path, copy_path)
            written.append(copy_path)
    return report, written


def main():
    args = parse_args()
    if args.point:
        return harness.serve_point(measure_point, args.point)
    backend = harness.backend_name()
    out = args.out or os.path.join(BENCHMARKS_DIR, "results", backend)
    earlier = []
    json_path = os.path.join(out, "attention_scaling.json")
    if args.append and os.path.exists(json_path):
        import json

        with open(json_path) as file:
            earlier = json.load(file)["points"]

    def save(points):
        copy = not (args.quick or args.out)
        return write_results(merge_points(earlier, points), backend, out, copy)

    report, written = save(sweep(args, backend, save))
    print(report)
    print("Wrote " + ", ".join(written))


if __name__ == "__main__":
    sys.exit(main())
