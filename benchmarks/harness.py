"""What every benchmark in this folder shares: points in fresh processes.

A benchmark script is a sweep over points (a layer at a length, a model at a
context, one training run). Each point runs in a fresh process of the same
script (`script --point JSON`, its result the last line of stdout as JSON),
so that its memory, allocator state and compilation caches are its own.

- Timing: `--processes` processes time a point; each reports the median of
  its timed calls after two warm-up calls (`time_calls`), and the process
  with the median of those times sets the point (`median_process`). On a
  shared machine one process can run slow throughout, and a median over
  processes leaves it out where a mean would not.
- Memory: the kernel's peak resident set (VmHWM) of the point's own process,
  reset (`/proc/self/clear_refs`) once imports are done (`PeakMemory`). It
  is exact where sampling misses short peaks, and, unlike
  `getrusage(RUSAGE_CHILDREN)`, it can leave out the imports and the
  compiler's garbage. Linux only.
- Compilation: `--compile auto|on|off` maps to each backend's jit
  (`compiled`, `keras_jit_compile`): TensorFlow `tf.function` with or
  without XLA, `jax.jit` or eager op by op, `torch.compile` or eager. `auto`
  is what Keras's `jit_compile="auto"` picks: XLA on TensorFlow, `jax.jit`,
  and eager PyTorch.
- Allocator: processes that time keep freed memory for reuse (`--malloc`),
  see `REUSING_MALLOC`; where a benchmark has separate memory processes,
  those run with glibc's defaults.
- Output: a markdown table, a JSON with the machine's description (CPU
  model, cores, load average) and a PNG (`write_results`).
"""

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# The benchmarks measure the package of the checkout they sit in, not an
# installed copy (the script's folder stays first on the path).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, REPO_ROOT)

COMPILE_MODES = ("auto", "on", "off")
# The Keras dtype policies a benchmark can run in (JAX has no float16 matmul on
# CPU).
DTYPE_POLICIES = ("float32", "mixed_bfloat16")
# glibc settings under which freed memory stays in the process for reuse:
# one heap (other threads' heaps hold at most 64 MB and map larger buffers
# afresh), no mmap for large buffers, and no trimming of the heap's top.
# glibc's defaults hand every freed buffer above 32 MB back to the system,
# so the next call pays a page fault per 4 KiB to map it again.
REUSING_MALLOC = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(2**40),
}
MALLOC_SETTINGS = ("reuse", "default")
WARMUP_CALLS = 2


def backend_name():
    """The Keras backend the points will run on, without importing Keras."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


# ---------------------------------------------------------------------------
# Command line.


def add_arguments(
    parser, processes=None, repeats=5, point_seconds=20.0, timeout=3600.0
):
    """Adds the options every benchmark shares.

    Args:
        parser: the script's `argparse.ArgumentParser`.
        processes: default timing processes per point, or None for a script
            that times inside one run per point (no timing options then).
        repeats: default timed calls per process.
        point_seconds: default time budget of one process's timed calls.
        timeout: default seconds before a point's process is abandoned.
    """
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="auto",
        help="The backend's compiler: 'on' is TensorFlow XLA, jax.jit or "
        "torch.compile; 'off' is a tf.function without XLA, eager JAX or "
        "eager PyTorch; 'auto' is XLA, jax.jit and eager PyTorch (Keras's "
        "jit_compile='auto'). Defaults to 'auto'.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help="Seconds before a point's process is abandoned. Defaults to "
        f"{timeout:g}.",
    )
    if processes is not None:
        parser.add_argument(
            "--processes",
            type=int,
            default=processes,
            help="Timing processes per point; the one with the median time "
            "sets the point, so that a slow spell of a shared machine "
            f"cannot. Defaults to {processes}.",
        )
        parser.add_argument(
            "--repeats",
            type=int,
            default=repeats,
            help="Timed calls per process (the median is its time), after "
            f"{WARMUP_CALLS} warm-up calls; fewer when --point-seconds runs "
            "out (at least 3, or 1 when one call takes longer than the whole "
            f"budget). Defaults to {repeats}.",
        )
        parser.add_argument(
            "--point-seconds",
            type=float,
            default=point_seconds,
            help="Time budget of one process's timed calls. Defaults to "
            f"{point_seconds:g}.",
        )
    parser.add_argument(
        "--malloc",
        choices=MALLOC_SETTINGS,
        default="reuse",
        help="glibc malloc settings of the processes that time: 'reuse' "
        "keeps freed memory in the process, as caching allocators do; "
        "'default' returns large buffers to the system, so each call "
        "pays page faults to map them again. "
        + (
            "Memory is always measured with the defaults. "
            if processes is not None
            else "Peak memory is measured in the same process, under the "
            "same settings. "
        )
        + "Defaults to 'reuse'.",
    )
    parser.add_argument(
        "--point",
        help=argparse.SUPPRESS,  # Internal: one point, as JSON, here.
    )


def check_positive(parser, args, names):
    """`parser.error` unless every option in `names` is positive (lists:
    every element)."""
    for name in names:
        value = getattr(args, name, None)
        values = value if isinstance(value, list) else [value]
        if value is not None and min(values) <= 0:
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be positive. Received: {value}")


# ---------------------------------------------------------------------------
# Parent process: running points.


def run_point(script, point, timeout, malloc="default", name=None):
    """Runs `point` (a JSON-able dict) in a fresh process of `script`.

    Returns the point's result (a dict), or `{"error": reason}` when the
    process failed or ran out of `timeout` seconds. With a `name`, a line
    on stderr says how long it took.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if malloc == "reuse":
        env.update(REUSING_MALLOC)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, os.path.abspath(script)]
    command += ["--point", json.dumps(point)]
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {timeout:.0f} s"}
    else:
        if completed.returncode == 0:
            result = json.loads(completed.stdout.strip().splitlines()[-1])
        else:
            reason = completed.stderr.strip().splitlines()[-1:] or [""]
            result = {
                "error": f"exit {completed.returncode}: {reason[0][:300]}"
            }
    if name:
        print(
            f"  {name}: {time.perf_counter() - started:.0f} s "
            f"{result.get('error', '')}",
            file=sys.stderr,
            flush=True,
        )
    return result


def process_point(point, args, measure):
    """`point` with what its process needs: `measure` ("time" or
    "memory"), `compile`, `repeats` and `point_seconds`."""
    return dict(
        point,
        measure=measure,
        compile=args.compile,
        repeats=args.repeats,
        point_seconds=args.point_seconds,
    )


def time_in_processes(script, point, args, name=""):
    """Times `point` in `args.processes` fresh processes (`args.malloc`).

    Returns their results, each with the machine's `load_average` after it
    and `malloc`, or `{"error": ...}` as soon as one process fails.
    """
    timings = []
    for _ in range(args.processes):
        timing = run_point(
            script,
            process_point(point, args, "time"),
            args.timeout,
            args.malloc,
            f"{name} time",
        )
        if "error" in timing:
            return timing
        timing.update(load_average=load_average(), malloc=args.malloc)
        timings.append(timing)
    return timings


def measure_memory(script, point, args, name=""):
    """Peak memory of `point` in one fresh process (glibc's default
    malloc), or `{"error": ...}`."""
    return run_point(
        script,
        process_point(point, args, "memory"),
        args.timeout,
        "default",
        f"{name} memory",
    )


def time_point(script, point, args, name=""):
    """The result of the timing process with the median time of `point`
    (`time_in_processes`, `median_process`), or `{"error": ...}`."""
    timings = time_in_processes(script, point, args, name)
    if "error" in timings:  # An error dict, not the list of timings.
        return timings
    return median_process(timings)


def median_process(timings):
    """The timing (dicts with `seconds`) of median time, with
    `process_seconds`: every timing's seconds, sorted."""
    timings = sorted(timings, key=lambda timing: timing["seconds"])
    result = dict(timings[len(timings) // 2])
    result["process_seconds"] = [timing["seconds"] for timing in timings]
    return result


def load_average():
    return [round(load, 2) for load in os.getloadavg()]


def machine_description():
    """CPU model, cores and load average now, for every results file."""
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
    return {
        "cpu": model_name,
        "cores": os.cpu_count(),
        "load_average": load_average(),
    }


# ---------------------------------------------------------------------------
# Child process: one point.


def serve_point(measure, point_json):
    """Runs `measure(point)` on the decoded point and prints its result as
    the last line of stdout, for `run_point`."""
    print(json.dumps(measure(json.loads(point_json))), flush=True)


def time_calls(run, repeats, budget_seconds):
    """Median seconds of `run()` after two warm-up calls.

    The first warm-up call compiles; the second runs with the buffers the
    allocator kept from the first, as every later call does. The timed
    calls stop early once `budget_seconds` is spent and at least three ran
    (or one, when it alone took longer than the budget).
    """
    for _ in range(WARMUP_CALLS):
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


def _resident_mb(field):
    """`VmRSS` or `VmHWM` (peak) of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _release_free_heap():
    """Returns the heap glibc holds free (e.g. compilation's garbage) to the
    system, so that resident memory counts only memory in use."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak resident memory of this process while a block runs.

    On entry glibc's free heap is trimmed and the kernel's peak counter
    (VmHWM) is reset to the resident set; on exit `peak_rss_mb` is the
    peak resident set during the block and `peak_mb` the peak above
    `baseline_mb` (the resident set on entry unless given).
    """

    def __init__(self, baseline_mb=None):
        self.baseline_mb = baseline_mb

    def __enter__(self):
        _release_free_heap()
        if self.baseline_mb is None:
            self.baseline_mb = _resident_mb("VmRSS")
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # Resets VmHWM to the current VmRSS.
        return self

    def __exit__(self, *exc_info):
        self.peak_rss_mb = _resident_mb("VmHWM")
        self.peak_mb = self.peak_rss_mb - self.baseline_mb


def peak_memory(run):
    """Peak MiB of one call of `run()`, and its seconds.

    The baseline is the resident set before the warm-up call (which
    compiles), so the compiled program counts; the peak is that of the call
    after it, so compilation's transient memory does not. The warm-up
    call's own peak is `first_call_peak_mb`.
    """
    with PeakMemory() as first_call:
        run()
    with PeakMemory(first_call.baseline_mb) as call:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    return {
        "peak_mb": call.peak_mb,
        "first_call_peak_mb": first_call.peak_mb,
        "default_malloc_seconds": seconds,
    }


def compiles(mode):
    """Whether `--compile mode` compiles on this backend."""
    if mode == "auto":
        return backend_name() != "torch"
    return mode == "on"


def compiled(function, mode):
    """`function` under this backend's jit as `--compile mode` says."""
    backend = backend_name()
    jit = compiles(mode)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=jit)
    if not jit:
        return function
    if backend == "jax":
        import jax

        return jax.jit(function)
    import torch

    return torch.compile(function)


def compiler_name(mode):
    """What `--compile mode` runs on this backend, for tables."""
    jit = compiles(mode)
    names = {
        "tensorflow": ("no XLA", "XLA"),
        "jax": ("eager", "jax.jit"),
        "torch": ("eager", "torch.compile"),
    }
    return names[backend_name()][jit]


def keras_jit_compile(mode):
    """`Model.compile(jit_compile=...)` for `--compile mode`."""
    return {"auto": "auto", "on": True, "off": False}[mode]


def block_until_ready(function):
    """`function` that returns only once its result is computed (JAX
    dispatches asynchronously; the other backends return when done)."""
    if backend_name() != "jax":
        return function
    import jax

    return lambda *args: jax.block_until_ready(function(*args))


# ---------------------------------------------------------------------------
# Reports.


def markdown_table(headers, rows, align=None):
    """A markdown table; `align` has one "l" or "r" per column (all "l" by
    default)."""
    align = align or "l" * len(headers)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [headers, rule] + [[str(cell) for cell in row] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def write_results(out, name, report, results, plot):
    """Writes `<name>.md` (the `report` text), `<name>.json` (`results`
    with the machine's description) and `<name>.png` (`plot(path)`) into
    `out`; returns the paths written."""
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, name + ext) for ext in (".md", ".json", ".png")]
    with open(paths[0], "w") as file:
        file.write(report)
    with open(paths[1], "w") as file:
        json.dump(dict(results, machine=machine_description()), file, indent=1)
    import matplotlib

    matplotlib.use("Agg")
    plot(paths[2])
    return paths
