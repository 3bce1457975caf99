"""Seed noise of pretrained proxy runs on bccd, and which score of a run is the least noisy.

Reads the runs of `pretrained_insertion.json` (bccd fine-tuned from yolov8n.pt, 5 epochs at 320 px;
the baseline and each placement on the same seeds, so seed s gives every arm the same data order).
For each way of scoring one run it measures, over the arms and the seeds they share: the seed sd
(pooled within arms), the same-seed correlation between arms, how far the arms' means spread, and
the smallest gain a paired comparison detects at 80% power (`search.select.power`, one-sided 5%), for 3
and 6 seeds, with the seeds that a gain of 0.01 mAP50-95 needs.

Run: python results/benchmarks/seed_noise.py [--arms plain|gated|all]   (writes seed_noise.md)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from machine import describe_machine, publish
from search.select.power import detectable_effect, seed_noise, seeds_needed

RUNS = Path(__file__).with_name("pretrained_insertion.json")
ALPHA = 0.05
SCORES = {
    "best.pt re-validated (the search's score)": lambda r: r["final"]["map50_95"],
    "best epoch": lambda r: max(e["map50_95"] for e in r["epochs"]),
    "last epoch": lambda r: r["epochs"][-1]["map50_95"],
    "mean of the last 2 epochs": lambda r: statistics.fmean(e["map50_95"] for e in r["epochs"][-2:]),
    "mean of the last 3 epochs": lambda r: statistics.fmean(e["map50_95"] for e in r["epochs"][-3:]),
}


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


HEADER = ("| score of one run | sd | rho | spread of arm means | spread / sd | detectable, 3 seeds | detectable, 6 seeds "
          "| seeds for 0.01 |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
LEGEND = ("sd: seed sd pooled within arms; rho: same-seed correlation between arms; spread: sd of the arms' means; "
          f"detectable: smallest gain found with 80% power by a one-sided {ALPHA:.0%} test (paired when rho > 0) with "
          "3 or 6 seeds per side; seeds for 0.01: seeds per side that a gain of 0.01 mAP50-95 needs")


def noise_rows(runs: list[dict], arms: list[str]) -> tuple[list[int], list[str]]:
    """The seeds every arm has, and one table row (`HEADER`) per way of scoring a run (`SCORES`)."""
    seeds = sorted(set.intersection(*({r["seed"] for r in runs if r["arm"] == a} for a in arms)))
    by = {(r["arm"], r["seed"]): r for r in runs}
    rows = []
    for label, score in SCORES.items():
        table = {a: [score(by[(a, s)]) for s in seeds] for a in arms}
        sd, rho = seed_noise(table)
        spread = statistics.stdev(statistics.fmean(v) for v in table.values())
        effects = [detectable_effect(sd, n, ALPHA, rho or 0.0) if sd is not None else None for n in (3, 6)]
        needed = seeds_needed(0.01, sd, ALPHA, rho or 0.0) if sd else None
        rows.append(f"| {label} | {_fmt(sd)} | {_fmt(rho, 2)} | {_fmt(spread)} | {_fmt(spread / sd if sd else None, 2)} | "
                    f"{_fmt(effects[0])} | {_fmt(effects[1])} | {needed or '–'} |")
    return seeds, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arms", default="gated", choices=("gated", "plain", "all"), help="which placement arms beside the baseline")
    args = parser.parse_args()
    runs = [r for r in json.loads(RUNS.read_text())["runs"] if r["status"] == "complete"]
    arms = sorted({r["arm"] for r in runs if r["arm"] == "baseline" or args.arms == "all" or r["arm"].endswith(args.arms)})
    seeds, rows = noise_rows(runs, arms)
    by = {(r["arm"], r["seed"]): r for r in runs}
    means = [f"| {a} | {', '.join(f'{SCORES[next(iter(SCORES))](by[(a, s)]):.3f}' for s in seeds)} |" for a in arms]
    text = "\n".join([
        "# Seed noise of pretrained proxy runs on bccd, by how a run is scored", "", describe_machine(),
        f"- command: `python results/benchmarks/seed_noise.py --arms {args.arms}`",
        f"- runs: `pretrained_insertion.json` (bccd from yolov8n.pt, 5 epochs at 320 px, batch 16); arms {', '.join(arms)}; "
        f"seeds {seeds} (every arm on each, same data order per seed)", f"- {LEGEND}", "", HEADER, *rows, "",
        "The search's score per arm and seed:", "", "| arm | mAP50-95 per seed |", "| --- | --- |", *means, "",
    ])
    publish(__file__, text)


if __name__ == "__main__":
    main()
