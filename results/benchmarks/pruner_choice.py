"""Which pruner: replay the real learning curves of a study searched without pruning under each
pruner our CLI offers (the very objects `search.study.storage.make_pruner` builds), in 200 random orders.

For each pruner: epochs trained (% of no pruning), how often the truly best candidate (highest
final mAP50-95) is trained to the end, and the mean regret (best score found below the true best).
Run: python results/benchmarks/pruner_choice.py <study dir searched with --pruner none>
(writes pruner_choice.md)
"""

from __future__ import annotations

import argparse
import random
import statistics
from dataclasses import replace
from pathlib import Path

import optuna
from optuna.trial import TrialState

from machine import describe_machine, publish
from search.config import load_study_config, storage_url_of
from search.study.storage import make_pruner

ORDERS = 200


def curves(study_dir: Path) -> list[tuple[list[float], float]]:
    """(per-epoch fitness, final mAP50-95) of every completed, trained trial."""
    config = load_study_config(study_dir)
    study = optuna.load_study(study_name=config.study, storage=storage_url_of(study_dir))
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if "duplicate_of" not in t.user_attrs:
            out.append(([t.intermediate_values[e] for e in sorted(t.intermediate_values)], t.values[0]))
    return out


def replay(pruner: optuna.pruners.BasePruner, order: list[tuple[list[float], float]]) -> tuple[int, list[int]]:
    """(epochs trained, positions in ``order`` of the trials trained to the end) for one order."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    epochs, completed = 0, []
    for position, (curve, score) in enumerate(order):
        trial = study.ask()
        for step, value in enumerate(curve, 1):
            epochs += 1
            trial.report(value, step)
            if step < len(curve) and trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, score)
            completed.append(position)
    return epochs, completed


def outcome(order: list[tuple[list[float], float]], completed: list[int]) -> tuple[float, bool]:
    """(best final score among the completed trials, whether that is the best of the whole order)."""
    best = max(order[i][1] for i in completed)
    return best, best == max(score for _, score in order)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study_dir", type=Path)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_study_config(args.study_dir)
    data = curves(args.study_dir)
    true_best = max(score for _, score in data)
    rows = []
    for name in ("none", "median", "sha"):
        rng = random.Random(0)
        runs = []
        for _ in range(ORDERS):
            order = data[:]
            rng.shuffle(order)
            trained, completed = replay(make_pruner(replace(config, pruner=name)), order)
            runs.append((trained, *outcome(order, completed)))
        full = sum(len(c) for c, _ in data)
        spent = statistics.mean(r[0] for r in runs) / full
        kept = sum(r[2] for r in runs) / ORDERS
        regret = statistics.mean(true_best - r[1] for r in runs)
        rows.append(f"| {name} | {100 * spent:.0f}% | {100 * kept:.0f}% | {regret:.4f} |")
    text = "\n".join([
        "# Pruner choice: replay of real learning curves", "", describe_machine(),
        f"- command: `python results/benchmarks/pruner_choice.py {args.study_dir.name}`",
        f"- curves: {len(data)} trained candidates of study `{config.study}` ({config.proxy_epochs} epochs at "
        f"{config.proxy_imgsz} px, searched with --pruner none); {ORDERS} random trial orders per pruner; "
        f"true best final mAP50-95 {true_best:.4f}", "",
        "| pruner | epochs trained | true best trained to the end | mean regret (mAP50-95) |",
        "| --- | --- | --- | --- |", *rows, "",
    ])
    publish(__file__, text)


if __name__ == "__main__":
    main()
