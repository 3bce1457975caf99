"""Measured inference latency of a model, as a ratio to a reference model timed in the same process.

`export_onnx` writes a model YAML's network as ONNX with Ultralytics' own exporter (the deployment
graph: Conv+BN fused, the head in export mode). `compare` times two such files with ONNX Runtime on
the CPU (the execution provider Ultralytics' `ProfileModels` uses, graph optimisation on, a fixed
thread count, batch 1), interleaved: rounds of a few runs each, the two models alternating which goes
first, so that drift and a neighbour's load fall on both. Each round gives one ratio of block medians;
the figure is the median ratio with a bootstrap interval over rounds. Latency depends on the
architecture, not on trained weights, so a candidate is measured before it trains.

ONNX Runtime and onnx are an optional extra (``pip install -e ".[latency]"``): `missing_extra` says so.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

THREADS = 1  # ONNX Runtime intra- and inter-op threads: fixed, so that figures compare across machines' loads
ROUNDS = 10  # interleaved rounds of one comparison
RUNS = 5  # timed runs of each model per round
WARMUP = 3  # untimed runs of each model first
DEVICES = ("cpu",)  # --latency-device values measured so far


def missing_extra() -> str | None:
    """One line naming the extra to install when ONNX Runtime or onnx is not importable, else None."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"measuring latency needs {' and '.join(missing)}: pip install -e \".[latency]\""


def export_onnx(model_yaml: Path, imgsz: int) -> Path:
    """``model_yaml`` (randomly initialised weights: latency does not depend on them) exported to ONNX beside it,
    batch 1 at ``imgsz`` px; the ONNX file's path."""
    import logging

    from ultralytics import YOLO

    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)  # the exporter's banner and hints are not ours to print
    model = YOLO(str(model_yaml))
    model.model.pt_path = str(model_yaml.with_suffix(".pt"))  # else the exporter writes a YAML model's file into the cwd
    try:
        exported = model.export(format="onnx", imgsz=imgsz, batch=1, dynamic=False, simplify=False, device="cpu", verbose=False)
    finally:
        logger.setLevel(level)
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


def compare(candidate: Path, reference: Path, rounds: int = ROUNDS, runs: int = RUNS, threads: int = THREADS) -> Timing:
    """Time ONNX files ``candidate`` and ``reference`` interleaved in this process (module doc)."""
    import numpy as np
    from scipy import stats

    sessions = [_session(candidate, threads), _session(reference, threads)]
    feeds = []
    for session in sessions:
        shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
        feeds.append({session.get_inputs()[0].name: np.random.default_rng(0).random(shape, dtype=np.float32)})
    for session, feed in zip(sessions, feeds):
        for _ in range(WARMUP):
            session.run(None, feed)
    ratios, seconds = [], ([], [])
    for r in range(rounds):
        block = [[], []]
        for i in (0, 1) if r % 2 == 0 else (1, 0):  # which model goes first alternates
            for _ in range(runs):
                start = time.perf_counter()
                sessions[i].run(None, feeds[i])
                block[i].append(time.perf_counter() - start)
            seconds[i].extend(block[i])
        ratios.append(statistics.median(block[0]) / statistics.median(block[1]))
    ratio = statistics.median(ratios)
    interval = stats.bootstrap((np.array(ratios),), np.median, n_resamples=2000, method="percentile",
                               random_state=np.random.default_rng(0)).confidence_interval  # fmt: skip
    return Timing(ratio, float(interval.low), float(interval.high), statistics.median(seconds[0]) * 1000,
                  statistics.median(seconds[1]) * 1000, rounds, threads)  # fmt: skip
