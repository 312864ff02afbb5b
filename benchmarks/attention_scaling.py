"""Time and peak memory of LinformerAttention against MultiHeadAttention.

Measures forward and forward+backward time and peak memory of
`keras_linformer.layers.LinformerAttention` (one run per projected length k)
and `keras.layers.MultiHeadAttention`, batch 1, 8 heads of 64 (model dim
512), self-attention over n positions, on the backend chosen with
`KERAS_BACKEND`. On the torch backend the PyPI `linformer` package's
`LinformerSelfAttention` runs as a peer. Each (layer, n, mode) measurement
runs in subprocesses of its own, so that its peak memory is its own: three
time it (`--processes`) and one measures its memory. The timing process with
the median time sets the point's time: on a shared 2-core VM, one process
can run 12-73% slow throughout (6 of 120 in one JAX sweep), which a single
process per point would take for the layer's cost.

Timing uses each backend's compiled path: TensorFlow `tf.function(
jit_compile=True)` of the model call (gradients with `tf.GradientTape`), JAX
`jax.jit` of `stateless_call` (gradients with `jax.grad`), PyTorch eager
(gradients with `torch.autograd.grad`). After two warm-up calls (the first
compiles, the second settles the allocator's reuse), the median of several
repeats is reported. The backward pass takes
the gradient of `sum(outputs)` with respect to the input and every trainable
weight.

Time and memory come from separate processes, because glibc's allocator
serves them differently. By default glibc gives a freed buffer above 32 MB
back to the system, so the next call maps it again and pays a page fault
per 4 KiB (about 1 us each here): for attention over 8,192 positions that
is 20-40% of a JAX or PyTorch call, and it jumps in where buffers cross
32 MB, which bends the growth curve. That is the allocator's cost, not the
layer's, and a caching allocator (jemalloc, tcmalloc) avoids it; the
TensorFlow backend did not show it. Timing processes therefore run with
glibc set to keep freed memory for reuse (`MALLOC_ARENA_MAX=1
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<1 TiB>`; `--malloc default` turns
this off), and the JSON also records one call's time with glibc's defaults
(`default_malloc_seconds`).

Peak memory is measured with glibc's defaults, where freed buffers leave
the resident set: the highest resident set size during one call minus the
resident set size after imports, model build and inputs, before the
warm-up call. After the warm-up, which compiles, glibc's free heap (mostly
the compiler's garbage) goes back to the system (`malloc_trim`) and the
kernel's peak-RSS counter (VmHWM) is reset (the baseline is taken after such
a trim too), so the peak counts memory in use: the activations, the runtime
and the compiled program (about 60-100 MB on TensorFlow, which dominates the
small points). The warm-up call's own peak, compilation included, is
recorded as `first_call_peak_mb`.

For each Linformer point the script also prints the fraction of this
machine's float32 matmul rate that the layer reaches for its FLOP count. The
rate is measured with one large matmul on the same backend in the same
subprocess, right after the timed calls, so both see the same machine load.

Usage:

```
KERAS_BACKEND=tensorflow python benchmarks/attention_scaling.py
KERAS_BACKEND=jax python benchmarks/attention_scaling.py --sizes 1024 4096
KERAS_BACKEND=torch python benchmarks/attention_scaling.py --quick
```

Results go to `benchmarks/results/<backend>/` (or `--out`): a markdown table
(`attention_scaling.md`), `attention_scaling.json` and `attention_scaling.png`.
A run that writes to the default directory also copies the JSON and PNG to
`benchmarks/attention_scaling_<backend>.{json,png}` for the README. On a slow
machine, split the sweep: `--sizes 512 1024 2048 4096`, then
`--sizes 8192 16384 --append`, and so on.
"""

import argparse
import ctypes
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

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
QUICK_MATMUL_SIZE = 512
# Full attention is compared up to here by default; beyond, it is the O(n^2)
# wall that Linformer exists to avoid.
MHA_MAX_SIZE = 16384

LINFORMER = "linformer"
MHA = "mha"
PYPI_LINFORMER = "pypi-linformer"
LABELS = {
    LINFORMER: "LinformerAttention k={k}",
    MHA: "MultiHeadAttention",
    PYPI_LINFORMER: "PyPI linformer k={k}",
}
MODES = ("forward", "forward_backward")
# glibc settings under which freed memory stays in the process for reuse:
# one heap (other threads' heaps hold at most 64 MB and map larger buffers
# afresh), no mmap for large buffers, and no trimming of the heap's top.
REUSING_MALLOC = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(2**40),
}
MALLOC_SETTINGS = ("reuse", "default")
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
        "--repeats",
        type=int,
        default=5,
        help="Timed calls per point (the median is reported); fewer when "
        "--point-seconds runs out (at least 3, or 1 when one call takes "
        "longer than the whole budget). Defaults to 5.",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=3,
        help="Timing processes per point; the one with the median time is "
        "reported, so one slow spell of a shared machine cannot set a "
        "point's time. Defaults to 3.",
    )
    parser.add_argument(
        "--point-seconds",
        type=float,
        default=20.0,
        help="Time budget for the repeats of one mode of one point. "
        "Defaults to 20.",
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
        "--timeout",
        type=float,
        default=600.0,
        help="Seconds before a point's subprocess is abandoned. "
        "Defaults to 600.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A tiny run (n=256, 512; k=64; 3 repeats) for smoke testing.",
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
    parser.add_argument(
        "--malloc",
        choices=MALLOC_SETTINGS,
        default="reuse",
        help="glibc malloc settings for the timing processes: 'reuse' keeps "
        "freed memory in the process, as caching allocators do; 'default' "
        "returns large buffers to the system, so each call pays page faults "
        "to map them again. Memory is always measured with the defaults. "
        "Defaults to 'reuse'.",
    )
    parser.add_argument(
        "--point",
        nargs=6,
        metavar=("LAYER", "N", "K", "MODE", "MEASURE", "MATMUL_SIZE"),
        help=argparse.SUPPRESS,  # Internal: one measurement in this process.
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes = args.sizes or list(QUICK_SIZES)
        args.projected_lengths = args.projected_lengths or list(
            QUICK_PROJECTED_LENGTHS
        )
        args.repeats = min(args.repeats, 3)
        args.processes = 1
    for name in ("sizes", "projected_lengths"):
        values = getattr(args, name)
        if values is not None and min(values) < 1:
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be positive. Received: {values}")
    for flag in ("repeats", "processes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be positive: {getattr(args, flag)}")
    return args


def backend_name():
    return os.environ.get("KERAS_BACKEND", "tensorflow")


# ---------------------------------------------------------------------------
# Child process: one measurement.


def resident_mb(field):
    """`VmRSS` or `VmHWM` (peak) of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def reset_peak_memory():
    """Resets the kernel's peak-RSS counter (VmHWM) to the current RSS."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def release_free_heap():
    """Returns the heap glibc holds free (compilation's garbage) to the
    system, so that resident memory counts only memory in use."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def median_seconds(run, repeats, budget_seconds):
    """Median seconds of `run()` after two warm-up calls.

    The first warm-up call compiles; the second runs with the buffers the
    allocator kept from the first, as every later call does.
    """
    run()
    run()
    times = []
    started = time.perf_counter()
    while len(times) < repeats:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        spent = time.perf_counter() - started
        if spent > budget_seconds and (
            len(times) >= 3 or times[0] > budget_seconds
        ):
            break
    return {"seconds": statistics.median(times), "repeats": len(times)}


def peak_memory(run):
    """Peak MiB of one call of `run()` above the RSS now, and its seconds.

    The baseline is taken before the warm-up call, with free heap trimmed
    as it is after the warm-up, whose compilation garbage goes too; the
    peak counter is reset after it, which leaves out the transient memory
    of compilation.
    """
    release_free_heap()  # The garbage of imports and model building.
    baseline = resident_mb("VmRSS")
    reset_peak_memory()
    run()  # Warm-up: compiles.
    first_call_peak = resident_mb("VmHWM") - baseline
    release_free_heap()
    reset_peak_memory()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    return {
        "peak_mb": resident_mb("VmHWM") - baseline,
        "first_call_peak_mb": first_call_peak,
        "default_malloc_seconds": seconds,
    }


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


def tensorflow_runners(layer_name, inputs, n, k):
    import tensorflow as tf

    model = build_keras_model(layer_name, n, k)
    x = tf.constant(inputs)

    @tf.function(jit_compile=True)
    def forward(x):
        return model(x)

    @tf.function(jit_compile=True)
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(model(x))
        return tape.gradient(loss, [x] + model.trainable_variables)

    return lambda: forward(x), lambda: forward_backward(x)


def jax_runners(layer_name, inputs, n, k):
    import jax
    import jax.numpy as jnp

    model = build_keras_model(layer_name, n, k)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    x = jnp.asarray(inputs)

    def outputs(trainable, x):
        return model.stateless_call(trainable, non_trainable, x)[0]

    forward = jax.jit(outputs)
    forward_backward = jax.jit(
        jax.grad(lambda w, x: jnp.sum(outputs(w, x)), argnums=(0, 1))
    )
    return (
        lambda: jax.block_until_ready(forward(trainable, x)),
        lambda: jax.block_until_ready(forward_backward(trainable, x)),
    )


def torch_runners(layer_name, inputs, n, k):
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

    def forward():
        with torch.no_grad():
            return module(x)

    def forward_backward():
        loss = module(x_grad).sum()
        return torch.autograd.grad(loss, [x_grad] + weights)

    return forward, forward_backward


RUNNERS = {
    "tensorflow": tensorflow_runners,
    "jax": jax_runners,
    "torch": torch_runners,
}


def measure_point(layer_name, n, k, mode, measure, repeats, budget_seconds):
    """Time (`measure="time"`) or memory of one mode of one point, in a
    fresh process."""
    import numpy as np

    inputs = np.random.default_rng(0).normal(size=(BATCH, n, MODEL_DIM))
    runners = RUNNERS[backend_name()](
        layer_name, inputs.astype("float32"), n, k
    )
    run = dict(zip(MODES, runners))[mode]
    if measure == "time":
        return median_seconds(run, repeats, budget_seconds)
    return peak_memory(run)


def compiled_matmul(size):
    """A `size` x `size` float32 matmul on this backend's compiled path,
    as a function of no arguments."""
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    a, b = (
        ops.convert_to_tensor(rng.normal(size=(size, size)).astype("float32"))
        for _ in range(2)
    )
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        matmul = tf.function(ops.matmul, jit_compile=True)
        return lambda: matmul(a, b)
    if backend == "jax":
        import jax

        matmul = jax.jit(ops.matmul)
        return lambda: jax.block_until_ready(matmul(a, b))
    return lambda: ops.matmul(a, b)


def measure_matmul_rate(size):
    """GFLOP/s of one `size` x `size` float32 matmul on this backend."""
    run = compiled_matmul(size)
    seconds = median_seconds(run, MATMUL_REPEATS, budget_seconds=10)[
        "seconds"
    ]
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


def run_child(arguments, timeout, malloc):
    """Runs this script with `arguments` and glibc's `malloc` settings;
    returns its JSON result or error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if malloc == "reuse":
        env.update(REUSING_MALLOC)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, os.path.abspath(__file__)] + arguments
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if completed.returncode != 0:
        reason = completed.stderr.strip().splitlines()[-1:] or [""]
        return {"error": f"exit {completed.returncode}: {reason[0][:200]}"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine_description():
    model_name = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model_name = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": model_name, "cores": os.cpu_count()}


def sweep(args, backend, save):
    """Measures every point; `save(points)` after each, so a killed run
    keeps what it measured."""
    sizes = args.sizes or list(DEFAULT_SIZES)
    projected_lengths = args.projected_lengths or list(
        DEFAULT_PROJECTED_LENGTHS
    )
    layers = [(LINFORMER, k) for k in projected_lengths] + [(MHA, 0)]
    if backend == "torch":
        layers += [(PYPI_LINFORMER, k) for k in projected_lengths]
    limit = args.memory_limit_gb * 2**30
    points = []
    for n in sorted(sizes):
        for layer_name, k in layers:
            point = {"layer": layer_name, "n": n, "k": k or None}
            if k > n:
                continue
            if layer_name == MHA and n > args.mha_max_size:
                point["skipped"] = f"n > {args.mha_max_size}"
            elif predicted_peak_bytes(layer_name, n, k, backend) > limit:
                point["skipped"] = (
                    f"predicted memory above {args.memory_limit_gb:g} GB"
                )
            else:
                for mode in MODES:
                    result = measure_in_children(
                        args, point, mode, label(point)
                    )
                    if "error" in result:
                        point["error"] = f"{mode}: {result['error']}"
                        break
                    point[mode] = result
            points.append(point)
            save(points)
    return points


def measure_in_children(args, point, mode, name):
    """Times one mode of a point in `args.processes` processes (with
    `args.malloc`) and measures its memory in another (glibc's defaults).

    The timing process with the median time gives the point its time and
    matmul rate; `process_seconds` keeps every process's time.
    """
    timings = []
    for _ in range(args.processes):
        measured = run_measure_child(args, point, mode, name, "time")
        if "error" in measured:
            return measured
        measured["load_average"] = load_average()
        measured["malloc"] = args.malloc
        timings.append(measured)
    timings.sort(key=lambda timing: timing["seconds"])
    result = dict(timings[len(timings) // 2])
    result["process_seconds"] = [timing["seconds"] for timing in timings]
    memory = run_measure_child(args, point, mode, name, "memory")
    if "error" in memory:
        return memory
    result.update(memory)
    return result


def run_measure_child(args, point, mode, name, measure):
    started = time.perf_counter()
    measured = run_child(
        ["--point", point["layer"], str(point["n"]), str(point["k"] or 0)]
        + [mode, measure, str(args.matmul_size)]
        + ["--repeats", str(args.repeats)]
        + ["--point-seconds", str(args.point_seconds)],
        args.timeout,
        args.malloc if measure == "time" else "default",
    )
    print(
        f"  {name} n={point['n']} {mode} {measure}: "
        f"{time.perf_counter() - started:.0f} s "
        f"{measured.get('error', '')}",
        file=sys.stderr,
        flush=True,
    )
    return measured


def label(point):
    return LABELS[point["layer"]].format(k=point["k"])


def find_point(points, layer_name, n):
    for point in points:
        if point["layer"] == layer_name and point["n"] == n:
            return point
    return None


def metric(point, mode, key):
    return point[mode][key] if point and mode in point else None


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def format_number(value, digits=1, suffix=""):
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def matmul_fraction(point, mode):
    """Percentage of the matmul rate a Linformer point reaches, or None."""
    seconds = metric(point, mode, "seconds")
    if point["layer"] != LINFORMER or seconds is None:
        return None
    # The backward pass does two matmuls for each forward one.
    flops = linformer_flops(point["n"], point["k"]) * (
        1 if mode == "forward" else 3
    )
    return 100 * flops / seconds / (point[mode]["matmul_gflops"] * 1e9)


def markdown_table(points):
    header = (
        "| n | layer | forward ms | fwd+bwd ms | forward MB | fwd+bwd MB "
        "| fwd speed-up | fwd+bwd speed-up | fwd+bwd memory ratio "
        "| % matmul rate fwd / fwd+bwd |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for point in points:
        mha = None
        if point["layer"] != MHA:
            mha = find_point(points, MHA, point["n"])
        seconds = [metric(point, mode, "seconds") for mode in MODES]
        speedups = [
            ratio(metric(mha, mode, "seconds"), s)
            for mode, s in zip(MODES, seconds)
        ]
        memory_ratio = ratio(
            metric(mha, MODES[1], "peak_mb"), metric(point, MODES[1], "peak_mb")
        )
        rates = [matmul_fraction(point, mode) for mode in MODES]
        note = point.get("skipped") or point.get("error")
        cells = [
            str(point["n"]),
            label(point) + (f" ({note})" if note else ""),
            *(format_number(s and 1e3 * s) for s in seconds),
            *(format_number(metric(point, m, "peak_mb"), 0) for m in MODES),
            *(format_number(s, suffix="x") for s in speedups),
            format_number(memory_ratio, suffix="x"),
            "n/a"
            if rates == [None, None]
            else " / ".join(format_number(r, 0, "%") for r in rates),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(rows) + "\n"


def series(points):
    """`(name, layer, k)` of each measured layer configuration."""
    configurations = sorted({(p["layer"], p["k"] or 0) for p in points})
    return [
        (LABELS[layer_name].format(k=k), layer_name, k)
        for layer_name, k in configurations
    ]


def measured(points, layer_name, k, mode, key, smallest_n=0):
    """`(n, value)` of the points of one configuration where `mode` ran."""
    return [
        (p["n"], p[mode][key])
        for p in points
        if p["layer"] == layer_name
        and (p["k"] or 0) == k
        and p["n"] >= smallest_n
        and key in p.get(mode, {})
    ]


def growth_summary(points):
    """Time factor per doubling of n, for each Linformer series from 4096."""
    lines = []
    for name, layer_name, k in series(points):
        if layer_name == MHA:
            continue
        for mode, (key, setting) in itertools.product(
            MODES, TIME_SETTINGS.items()
        ):
            times = measured(points, layer_name, k, mode, key, 4096)
            if len(times) < 2:
                continue
            factors = [
                f"{b / a:.2f}" for (_, a), (_, b) in zip(times, times[1:])
            ]
            lines.append(
                f"- {name}, {mode.replace('_', '+')}{setting}: time factor "
                f"per doubling of n from {times[0][0]}: " + ", ".join(factors)
            )
    return "\n".join(lines) + ("\n" if lines else "")


def plot(points, backend, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for (name, layer_name, k), color in zip(
        series(points), plt.cm.tab10.colors
    ):
        for mode, style in zip(MODES, ("-", "--")):
            line_label = f"{name}, {mode.replace('_', '+')}"
            for ax, key, scale in zip(
                axes, ("seconds", "peak_mb"), (1e3, 1.0)
            ):
                values = measured(points, layer_name, k, mode, key)
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
    layer_order = [LINFORMER, MHA, PYPI_LINFORMER]
    merged = {(p["layer"], p["n"], p["k"]): p for p in old + new}
    return sorted(
        merged.values(),
        key=lambda p: (p["n"], layer_order.index(p["layer"]), p["k"] or 0),
    )


def load_average():
    return [round(load, 2) for load in os.getloadavg()]


def main():
    args = parse_args()
    backend = backend_name()
    if args.point:
        layer_name, n, k, mode, measure, matmul_size = args.point
        result = measure_point(
            layer_name,
            int(n),
            int(k),
            mode,
            measure,
            args.repeats,
            args.point_seconds,
        )
        if measure == "time":
            result["matmul_gflops"] = measure_matmul_rate(int(matmul_size))
            result["matmul_size"] = int(matmul_size)
        print(json.dumps(result))
        return
    args.matmul_size = QUICK_MATMUL_SIZE if args.quick else MATMUL_SIZE

    out = args.out or os.path.join(BENCHMARKS_DIR, "results", backend)
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, "attention_scaling.json")
    earlier = []
    if args.append and os.path.exists(json_path):
        with open(json_path) as file:
            earlier = json.load(file)["points"]

    def save(points):
        points = merge_points(earlier, points)
        copy = not (args.quick or args.out)
        return write_results(points, backend, out, copy)

    report, written = save(sweep(args, backend, save))
    print(report)
    print("Wrote " + ", ".join(written))


def write_results(points, backend, out, copy):
    """Writes the table, JSON and plot of `points`; returns the table and
    the paths written."""
    machine = machine_description()
    modes = [p[mode] for p in points for mode in MODES if mode in p]
    rates = [m["matmul_gflops"] for m in modes] or [0.0]
    mallocs = sorted({m.get("malloc", "default") for m in modes})
    processes = sorted({len(m.get("process_seconds", [0])) for m in modes})
    loads = [m["load_average"][0] for m in modes] or [0.0]
    report = (
        f"{backend} backend, {machine['cpu']}, {machine['cores']} cores; "
        f"float32 matmul rate {min(rates):.1f}-{max(rates):.1f} GFLOP/s "
        f"(measured beside each point); 1-minute load average "
        f"{min(loads):.1f}-{max(loads):.1f}. Times with glibc malloc "
        f"settings: {', '.join(mallocs)} (see --malloc), the median of "
        f"{'/'.join(map(str, processes))} timing processes per point; "
        f"memory with glibc's defaults.\n\n"
        + markdown_table(points)
        + "\n"
        + growth_summary(points)
    )
    with open(os.path.join(out, "attention_scaling.md"), "w") as file:
        file.write(report)
    json_path = os.path.join(out, "attention_scaling.json")
    with open(json_path, "w") as file:
        results = {
            "backend": backend,
            "machine": machine,
            "batch": BATCH,
            "num_heads": NUM_HEADS,
            "head_dim": HEAD_DIM,
            "points": points,
        }
        json.dump(results, file, indent=1)
    png_path = os.path.join(out, "attention_scaling.png")
    plot(points, backend, png_path)
    written = [json_path, png_path]
    if copy:
        for path in (json_path, png_path):
            extension = os.path.splitext(path)[1]
            copy_path = os.path.join(
                BENCHMARKS_DIR, f"attention_scaling_{backend}{extension}"
            )
            shutil.copyfile(path, copy_path)
            written.append(copy_path)
    return report, written


if __name__ == "__main__":
    main()
