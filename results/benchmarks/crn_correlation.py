"""Same-seed correlation of each placement with the baseline, with its uncertainty: what separates the arms?

The GPU runs of gpu_concurrency.py (bccd fine-tuned from yolov8n.pt, gated insertion, 5 epochs with 12 seeds
an arm, 30 epochs with 4) gave the arms different same-seed correlations with the baseline (30 epochs: SE
+0.98, CBAM +0.33, ECA +0.17). Per arm this prints the correlation r over the seeds both completed, its
95% interval (Fisher's z, sd 1 / sqrt(n - 3): meaningless below 4 seeds), the mean absolute gate the arm's
modules learned (gated insertion: 0 is the base model's function), and Cochran's Q test of whether the
arms' correlations differ at all (z's compared with their inverse-variance mean; the arms share the
baseline's runs, so Q is approximate). No training: it reads the committed JSON files.

Run: python results/benchmarks/crn_correlation.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from machine import describe_machine, publish, r_interval

HERE = Path(__file__).parent
SOURCES = (("gpu_concurrency.json", "5 epochs, H200"), ("gpu_full_finetune.json", "30 epochs, H200"))


def run_score(run: dict) -> float | None:
    """mAP50-95 of a complete run of gpu_concurrency.py (best.pt's re-validation, else its best epoch)."""
    final = run.get("final") or (max(run.get("epochs") or [{}], key=lambda e: e.get("fitness", -1)))
    return final.get("map50_95") if run.get("status") == "complete" else None


def _gate(run: dict) -> float | None:
    gates = run.get("gates_best")
    if gates is None and run.get("epochs"):
        best = max(run["epochs"], key=lambda e: e.get("fitness", -1))
        gates = {k: v for k, v in best.items() if k.startswith("gate/")}
    return float(np.mean(np.abs(list(gates.values())))) if gates else None


def rows_of(path: Path, label: str) -> tuple[list[str], str]:
    """Table rows of one file, and its heterogeneity line."""
    runs = json.loads(path.read_text())["runs"]
    by_arm: dict[str, dict[int, dict]] = {}
    for run in runs:
        by_arm.setdefault(run["arm"], {})[run["seed"]] = run
    base = by_arm.pop("baseline")
    rows, zs, weights = [], [], []
    for arm, seeds in by_arm.items():
        shared = sorted(s for s in seeds if s in base and run_score(seeds[s]) is not None and run_score(base[s]) is not None)
        n = len(shared)
        r = float(np.corrcoef([run_score(seeds[s]) for s in shared], [run_score(base[s]) for s in shared])[0, 1])
        gates = [g for g in (_gate(seeds[s]) for s in shared) if g is not None]
        low, high = r_interval(r, n)
        if n > 3:
            zs.append(math.atanh(min(r, 0.999999)))
            weights.append(n - 3)
        rows.append(f"| {label} | {arm} | {n} | {r:+.2f} | [{low:+.2f}, {high:+.2f}] | "
                    f"{np.mean(gates):.3f} |" if gates else f"| {label} | {arm} | {n} | {r:+.2f} | [{low:+.2f}, {high:+.2f}] | - |")
    if len(zs) < 2:
        return rows, f"- {label}: too few seeds for a test"
    zs_, w = np.array(zs), np.array(weights, dtype=float)
    q = float(np.sum(w * (zs_ - np.sum(w * zs_) / w.sum()) ** 2))
    p = float(stats.chi2.sf(q, len(zs) - 1))
    return rows, f"- {label}: Cochran's Q {q:.2f} on {len(zs) - 1} degrees of freedom, p = {p:.2f}"


def main() -> None:
    rows, tests, measured = [], [], []
    for name, label in SOURCES:
        mine, test = rows_of(HERE / name, label)
        rows += mine
        tests.append(test)
        where = describe_machine(json.loads((HERE / name).read_text())["environment"])
        measured += [f"Runs of {name} ({label}), where they trained:", "", where, ""]
    publish(__file__, "\n".join([
        "# Same-seed correlation with the baseline, per arm, with its uncertainty", "", "This analysis:", "",
        describe_machine(), "", *measured,
        "Command: `python results/benchmarks/crn_correlation.py` (reads " + ", ".join(n for n, _ in SOURCES) + "; the runs "
        "themselves are described in gpu_concurrency.md). r: Pearson correlation of the arm's and the baseline's "
        "mAP50-95 on the same seeds; interval: Fisher's z, 95%; gate: mean |gate| of the arm's modules at its best "
        "epoch (0 = the base model's function).", "",
        "| proxy | arm | seeds | r | 95% interval | mean abs gate |", "| --- | --- | --- | --- | --- | --- |", *rows, "",
        "Do the arms' correlations differ beyond what their seeds allow?", "", *tests, "",
    ]) + "\n")


if __name__ == "__main__":
    main()
