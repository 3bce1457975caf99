"""The median pruner's warm-up in the pretrained regime: replay the real 5-epoch fine-tune curves of
`pretrained_insertion.json` (bccd from yolov8n.pt; 7 arms per seed) under Optuna's MedianPruner
with 3 startup trials, as `search.study.make_pruner` builds it, for each warm-up.

Each seed's arms form one study (a trial per arm), replayed in 200 random orders (`pruner_choice.replay`).
Reported per warm-up: epochs trained (% of no pruning), how often the seed's best arm is trained
to the end, and the mean regret (best completed final score below the seed's best).
Run: python results/benchmarks/pretrained_pruner.py   (writes pretrained_pruner.md)
"""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import optuna
from machine import describe_machine, publish
from pruner_choice import ORDERS, replay

from search.config import PROXY_EPOCHS
from search.study import warmup_epochs

RUNS = Path(__file__).with_name("pretrained_insertion.json")


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = [r for r in json.loads(RUNS.read_text())["runs"] if r["status"] == "complete"]
    by_seed: dict[int, list[tuple[list[float], float]]] = {}
    for r in runs:
        by_seed.setdefault(r["seed"], []).append(([e["fitness"] for e in r["epochs"]], r["final"]["map50_95"]))
    seeds = {s: curves for s, curves in by_seed.items() if len(curves) >= 5}
    epochs = PROXY_EPOCHS["pretrained"]
    rows = []
    for warmup in range(1, epochs):
        spent, kept, regret = [], [], []
        for curves in seeds.values():
            rng, best = random.Random(0), max(score for _, score in curves)
            for _ in range(ORDERS):
                order = curves[:]
                rng.shuffle(order)
                trained, found, kept_best = replay(optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=warmup), order)
                spent.append(trained / sum(len(c) for c, _ in curves))
                kept.append(kept_best)
                regret.append(best - found)
        rows.append(f"| {warmup} | {100 * statistics.mean(spent):.0f}% | {100 * statistics.mean(kept):.0f}% | "
                    f"{statistics.mean(regret):.4f} |")  # fmt: skip
    text = "\n".join([
        "# Median pruner warm-up for pretrained proxies (replay of real bccd fine-tune curves)", "", describe_machine(),
        "- command: `python results/benchmarks/pretrained_pruner.py`",
        f"- curves: {sum(len(c) for c in seeds.values())} runs of `pretrained_insertion.json` ({epochs} epochs at 320 px, "
        f"7 arms per seed, seeds {sorted(seeds)}); {ORDERS} random orders per seed; MedianPruner(n_startup_trials=3)",
        f"- n_warmup_steps the search uses for a {epochs}-epoch pretrained proxy: {warmup_epochs(epochs)}", "",
        "| n_warmup_steps (first epoch that may be pruned) | epochs trained | seed's best arm trained to the end | mean regret (mAP50-95) |",
        "| --- | --- | --- | --- |", *rows, "",
    ])  # fmt: skip
    publish(__file__, text)


if __name__ == "__main__":
    main()
