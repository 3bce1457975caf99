"""Measured inference latency of a model, as a ratio to a reference model timed in the same process.

Two devices. ``cpu``: `export_onnx` writes a model YAML's network as ONNX with Ultralytics' own exporter
(the deployment graph: Conv+BN fused, the head in export mode), and `compare` times two such files with
ONNX Runtime on the CPU (the execution provider Ultralytics' `ProfileModels` uses, graph optimisation
on, a fixed thread count). ``cuda``: `compare_torch` times the two models in PyTorch on the GPU (Conv+BN
fused, FP16, as a GPU deploys them) with CUDA events, each run synchronised. Both take batch 1 and
interleave: rounds of a few runs each, the two models alternating which goes first, so that drift and
a neighbour's load fall on both. Each round gives one ratio of block medians; the figure is the median
ratio with a bootstrap interval over rounds. Latency depends on the architecture, not on trained
weights, so a candidate is measured before it trains. `interleave` is the logic, fed by runners that each
return one run's seconds; `compare` and `compare_torch` take the wall clock as ``clock`` (its default,
``time.perf_counter``), so tests time real sessions with a stand-in clock and assert exact figures, while
the real timings live in ``results/benchmarks/latency_table.py``.

ONNX Runtime and onnx are dependencies; `missing_extra` names them for an environment that lost one.
ONNX Runtime (it may be missing) and Ultralytics are imported inside functions: option checks import this before `prepare_ultralytics`.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from trainers.offline import ultralytics_logs_above

THREADS = 1  # ONNX Runtime intra- and inter-op threads: fixed, so that figures compare across machines' loads
ROUNDS = 10  # interleaved rounds of one comparison
RUNS = 5  # timed runs of each model per round
WARMUP = 3  # untimed runs of each model first
DEVICES = ("cpu", "cuda")  # --latency-device values


def missing_extra() -> str | None:
    """One line naming the extra to install when ONNX Runtime or onnx is not importable, else None."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"measuring latency needs {' and '.join(missing)}: pip install {' '.join(missing)}"


def export_onnx(model_yaml: Path, imgsz: int) -> Path:
    """``model_yaml`` (randomly initialised weights: latency does not depend on them) exported to ONNX beside it,
    batch 1 at ``imgsz`` px; the ONNX file's path."""
    from ultralytics import YOLO

    with ultralytics_logs_above(logging.WARNING):  # the exporter's banner and hints are not ours to print
        model = YOLO(str(model_yaml))
        model.model.pt_path = str(model_yaml.with_suffix(".pt"))  # else the exporter writes a YAML model's file into the cwd
        exported = model.export(format="onnx", imgsz=imgsz, batch=1, dynamic=False, simplify=False, device="cpu", verbose=False)
    return Path(exported)


@dataclass(frozen=True)
class Timing:
    """One interleaved comparison: the candidate's latency as a ratio to the reference's (median over
    rounds, with a 95% bootstrap interval), and both medians in milliseconds."""

    ratio: float
    low: float
    high: float
    ms: float
    reference_ms: float
    rounds: int
    threads: int = THREADS

    def to_dict(self) -> dict:
        return asdict(self)


def _session(onnx: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])


def interleave(runners: list, rounds: int = ROUNDS, runs: int = RUNS, threads: int = THREADS) -> Timing:
    """Time two runners (each runs its model once and returns the seconds it took; the first is the candidate)
    interleaved (module doc): ``WARMUP`` untimed calls of each, then ``rounds`` rounds of ``runs`` calls of each."""
    for runner in runners:
        for _ in range(WARMUP):
            runner()
    ratios, seconds = [], ([], [])
    for r in range(rounds):
        block = [[], []]
        for i in (0, 1) if r % 2 == 0 else (1, 0):  # which model goes first alternates
            block[i] = [runners[i]() for _ in range(runs)]
            seconds[i].extend(block[i])
        ratios.append(statistics.median(block[0]) / statistics.median(block[1]))
    ratio = statistics.median(ratios)
    interval = stats.bootstrap((np.array(ratios),), np.median, n_resamples=2000, method="percentile",
                               random_state=np.random.default_rng(0)).confidence_interval
    return Timing(ratio, float(interval.low), float(interval.high), statistics.median(seconds[0]) * 1000,
                  statistics.median(seconds[1]) * 1000, rounds, threads)


def compare(candidate: Path, reference: Path, rounds: int = ROUNDS, runs: int = RUNS, threads: int = THREADS,
            clock=time.perf_counter) -> Timing:
    """Time ONNX files ``candidate`` and ``reference`` with ONNX Runtime on the CPU, interleaved in this process,
    each run by ``clock`` (seconds)."""
    def runner(onnx: Path):
        session = _session(onnx, threads)
        shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
        feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(shape, dtype=np.float32)}

        def run() -> float:
            start = clock()
            session.run(None, feed)
            return clock() - start

        return run

    return interleave([runner(candidate), runner(reference)], rounds, runs, threads)


def compare_torch(candidate: Path, reference: Path, imgsz: int, device: str = "cuda", rounds: int = ROUNDS,
                  runs: int = RUNS, clock=time.perf_counter) -> Timing:
    """Time model YAMLs ``candidate`` and ``reference`` in PyTorch on ``device``, interleaved in this process: on
    CUDA in FP16 with CUDA events (each run synchronised), elsewhere in FP32 with ``clock`` (tests)."""
    from ultralytics import YOLO

    cuda = device.startswith("cuda")

    def runner(model_yaml: Path):
        model = YOLO(str(model_yaml)).model.fuse(verbose=False).eval().to(device)
        image = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)).to(device)
        if cuda:
            model, image = model.half(), image.half()
        events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) if cuda else None

        @torch.inference_mode()
        def run() -> float:
            if events:
                events[0].record()
                model(image)
                events[1].record()
                torch.cuda.synchronize()
                return events[0].elapsed_time(events[1]) / 1000  # ms -> s
            start = clock()
            model(image)
            return clock() - start

        return run

    return interleave([runner(candidate), runner(reference)], rounds, runs, torch.get_num_threads())


DEVICE_NAMES = {"cpu": "CPU", "cuda": "GPU"}  # --latency-device -> what the report calls it


def describe(device: str, threads: int) -> str:
    """How ``device``'s figures were measured, in a few words for the report."""
    if device == "cuda":
        return f"on this machine's {DEVICE_NAMES[device]}: PyTorch, FP16, CUDA events"
    return f"on this machine's {DEVICE_NAMES[device]}: ONNX Runtime, {threads} thread{'s' if threads > 1 else ''}"
