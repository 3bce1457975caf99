"""What Ray costs on one machine: local cluster start-up and shutdown, and the wall time of one tiny
study with the in-process executor against Ray Tune at 1 and 2 workers.

Each study runs as `python -m search run` in a fresh process, as a user runs it (imports, proxy data
cache, trainings, Ray start and stop all included): 4 trials, toy set (32+8 images), 3 epochs at
64 px, random sampler, no pruner, no final retraining. Waits until the 1-minute load average is
below 1.5 before it starts, so that the figures are not another job's.

Run: python results/benchmarks/ray_startup.py  (writes ray_startup.md beside it; ~4 min on 2 cores)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from machine import describe_machine, publish
from trainers.data import make_toy_dataset

STUDY = ["--trials", "4", "--sampler", "random", "--pruner", "none", "--no-final", "--seed", "0",
         "--proxy-epochs", "3", "--proxy-imgsz", "64", "--proxy-batch", "4", "--device", "cpu",
         "--loader-workers", "0", "--quiet", "--set", "optimizer=AdamW", "--set", "lr0=0.005",
         "--set", "mosaic=0", "--set", "warmup_epochs=0"]
EXECUTORS = {"in-process": [], "Ray, 1 worker": ["--executor", "ray", "--workers", "1"],
             "Ray, 2 workers": ["--executor", "ray", "--workers", "2"]}
STARTUP_REPEATS = 3
MAX_LOAD = 1.5

_STARTUP = """
import os, sys, time, json
os.environ["RAY_AUTH_MODE"] = "disabled"
import ray
t0 = time.perf_counter()
ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, _temp_dir=sys.argv[1], logging_level="ERROR")
t1 = time.perf_counter()
ray.shutdown()
t2 = time.perf_counter()
print(json.dumps({"init": t1 - t0, "shutdown": t2 - t1}))
"""


def wait_for_quiet_machine() -> float:
    while (load := os.getloadavg()[0]) >= MAX_LOAD:
        print(f"load {load:.2f} >= {MAX_LOAD}: waiting", flush=True)
        time.sleep(30)
    return load


def ray_startup(tmp: Path) -> list[dict]:
    import json

    runs = []
    for i in range(STARTUP_REPEATS):
        done = subprocess.run([sys.executable, "-c", _STARTUP, str(tmp / f"r{i}")], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def run_study(data: Path, out: Path, name: str, extra: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "search", "run", "--data", str(data), "--out", str(out), "--study", name,
                           *STUDY, *extra], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / name / 'study.db'}")
    trained = [t for t in study.trials if "duplicate_of" not in t.user_attrs and not t.user_attrs.get("infeasible")]
    return {"wall": wall, "trained": len(trained), "train_s": sum(t.user_attrs["wall_time_s"] for t in trained),
            "states": [t.state.name for t in study.trials]}


def main() -> None:
    load_before = wait_for_quiet_machine()
    with tempfile.TemporaryDirectory(prefix="raybench-", dir="/tmp") as tmp:
        tmp = Path(tmp)
        startup = ray_startup(tmp)
        data = make_toy_dataset(tmp / "data", n_train=32, n_val=8, imgsz=64)
        studies = {label: run_study(data, tmp / "out", f"s{i}", extra) for i, (label, extra) in enumerate(EXECUTORS.items())}
    load_after = os.getloadavg()[0]
    init = statistics.median(r["init"] for r in startup)
    shutdown = statistics.median(r["shutdown"] for r in startup)
    base = studies["in-process"]["wall"]
    each = ", ".join(f"{r['init']:.1f}+{r['shutdown']:.1f}" for r in startup)
    rows = [
        f"| {label} | {r['wall']:.1f} | {r['wall'] / base:.2f} | {r['trained']} | {r['train_s']:.1f} | {r['wall'] - r['train_s']:.1f} |"
        for label, r in studies.items()
    ]
    states = {label: r["states"] for label, r in studies.items()}
    text = "\n".join(
        [
            "# Ray Tune against the in-process executor on one CPU machine",
            "",
            describe_machine(),
            f"- load average (1 min) at start {load_before:.2f}, at end {load_after:.2f}",
            "- command: `python results/benchmarks/ray_startup.py`",
            "",
            f"## Local cluster start-up and shutdown (median of {STARTUP_REPEATS}, fresh process each)",
            "",
            f"`ray.init()` of a local cluster: **{init:.1f} s**; `ray.shutdown()`: **{shutdown:.1f} s** "
            f"(each run, init+shutdown: {each} s).",
            "",
            "## One tiny study, three executors",
            "",
            "4 trials (trial 0 the baseline; with seed 0 one trial repeats the baseline and is not trained again), "
            "toy set of 32+8 images, 3 epochs at 64 px, batch 4, CPU; `python -m search run` in a fresh process "
            "each time, so imports, the proxy cache and Ray's start and stop are in the wall time. "
            "*train s* is the sum of the trainings' own wall times; *other s* = wall − train s (with 2 workers "
            "trainings overlap, so train s may exceed the wall time).",
            "",
            "| executor | wall s | × in-process | trainings | train s | other s |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Trial states, identical across executors: {states['in-process']}"
            + ("" if len({tuple(s) for s in states.values()}) == 1 else f" (differ: {states})"),
            "",
            "## Not measured here",
            "",
            "Ray on a GPU: its wheel could not be taken to the GPU machine. The gain of several trials side by side "
            "on one GPU, measured with this project's trials as processes sharing an H200, is in gpu_concurrency.md "
            "(4.8x the runs per hour at 8 at a time). Rerun this script, with `--device 0` studies added, on a GPU "
            "machine with Ray to measure Ray's own share.",
            "",
        ]
    )
    publish(__file__, text)


if __name__ == "__main__":
    main()
