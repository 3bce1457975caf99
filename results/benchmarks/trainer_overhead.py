"""Overhead of `train_candidate` against plain Ultralytics training of the same YAML, data and
settings (toy dataset, CPU), timed side by side in one run, alternating, 3 rounds.

Run: python results/benchmarks/trainer_overhead.py   (writes trainer_overhead.md)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from machine import describe_machine, publish
from trainers.offline import prepare_ultralytics

ROUNDS = 3


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="overhead-"))
    prepare_ultralytics(work / "config")
    from ultralytics import YOLO

    from spaces import Placement, build_yaml, load_base, write_yaml
    from trainers.data import make_toy_dataset
    from trainers.train import Budget, train_candidate

    data = make_toy_dataset(work / "toy", n_train=32, n_val=8, imgsz=96)
    budget = Budget(epochs=5, imgsz=96, batch=8, workers=0, device="cpu", amp=False)
    base = load_base("yolov8n.yaml")
    model_yaml = write_yaml({**build_yaml(base, Placement()), "nc": 2}, work / "plain.yaml")
    plain, ours = [], []
    for n in range(ROUNDS):
        start = time.perf_counter()
        YOLO(str(model_yaml), task="detect").train(data=str(data), project=str(work), name=f"plain{n}", **budget.train_args())
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        record = train_candidate(Placement(), base, data, budget, work / f"ours{n}", report=lambda e, m: False)
        ours.append(time.perf_counter() - start)
        assert record.status == "complete", record.reason
    ratios = [o / p for o, p in zip(ours, plain)]
    rows = [f"| {n + 1} | {p:.1f} | {o:.1f} | {r:.3f} |" for n, (p, o, r) in enumerate(zip(plain, ours, ratios))]
    text = "\n".join([
        "# Overhead of train_candidate against plain Ultralytics", "", describe_machine(),
        "- command: `python results/benchmarks/trainer_overhead.py`",
        f"- setup: yolov8n.yaml from scratch, toy set of 32+8 images, {budget.epochs} epochs, {budget.imgsz} px, "
        f"batch {budget.batch}, CPU, dataloader workers 0; both runs validate every epoch; ours adds the model "
        "YAML, parameter and GFLOPs count, per-epoch callbacks and the trial log", "",
        "| round | plain Ultralytics s | train_candidate s | ratio |", "| --- | --- | --- | --- |", *rows, "",
        f"median ratio: **{statistics.median(ratios):.3f}** (target: at most 1.10)", "",
        "CPU wall times are given only to show the ratio; coco128 on a GPU was not measured (no device lent).", "",
    ])
    publish(__file__, text)


if __name__ == "__main__":
    main()
