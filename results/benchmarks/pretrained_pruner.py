"""The median pruner's warm-up in the pretrained regime: replay the real fine-tune curves of
`pretrained_insertion.json` (bccd from yolov8n.pt, 5 epochs, the CPU default; 7 arms per seed), or
with --runs those of `gpu_full_finetune.json` (30 epochs on an H200, the GPU default; 4 arms per
seed), under Optuna's MedianPruner with 3 startup trials, as `search.study.make_pruner` builds it,
for each warm-up.

Each seed's arms form one study (a trial per arm), replayed in 200 random orders (`pruner_choice.replay`).
Reported per warm-up: epochs trained (% of no pruning), how often the seed's best arm is trained
to the end, and the mean regret (best completed final score below the seed's best).
Run: python results/benchmarks/pretrained_pruner.py   (writes pretrained_pruner.md)
     python results/benchmarks/pretrained_pruner.py --runs gpu_full_finetune.json --name pretrained_pruner_30_epochs
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

import optuna
from machine import describe_machine, publish
from pruner_choice import ORDERS, replay

from search.provenance import machine_text, versions_text
from search.study import warmup_epochs

HERE = Path(__file__).parent
LONG_WARMUPS = (1, 2, 3, 5, 10, 15, 20, 25)  # the warm-ups tried for proxies of more than 10 epochs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="pretrained_insertion.json", help="runs beside this script (their epochs)")
    parser.add_argument("--name", default="pretrained_pruner", help="the report's name beside this script (NAME.md)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    measured = json.loads((HERE / args.runs).read_text())
    runs = [r for r in measured["runs"] if r["status"] == "complete"]
    env = measured["environment"]  # where the curves were trained; the replay runs here
    by_seed: dict[int, list[tuple[list[float], float]]] = {}
    for r in runs:
        by_seed.setdefault(r["seed"], []).append(([e["fitness"] for e in r["epochs"]], r["final"]["map50_95"]))
    seeds = {s: curves for s, curves in by_seed.items() if len(curves) >= 4}  # 3 startup trials, then one to prune
    epochs = max(len(r["epochs"]) for r in runs)
    arms = len({r["arm"] for r in runs})
    rows = []
    for warmup in range(1, epochs) if epochs <= 10 else LONG_WARMUPS:
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
        f"- command: `python results/benchmarks/pretrained_pruner.py --runs {args.runs} --name {args.name}`",
        f"- curves: {sum(len(c) for c in seeds.values())} runs of `{args.runs}` ({epochs} epochs at 320 px, "
        f"{arms} arms per seed, seeds {sorted(seeds)}); {ORDERS} random orders per seed; MedianPruner(n_startup_trials=3)",
        f"- curves trained: {env['date']} on {machine_text(env)}; {versions_text(env)} (the lines above: the replay)",
        f"- n_warmup_steps the search uses for a {epochs}-epoch pretrained proxy: {warmup_epochs(epochs)}", "",
        "| n_warmup_steps (first epoch that may be pruned) | epochs trained | seed's best arm trained to the end | mean regret (mAP50-95) |",
        "| --- | --- | --- | --- |", *rows, "",
    ])  # fmt: skip
    publish(__file__, text, name=args.name)


if __name__ == "__main__":
    main()
