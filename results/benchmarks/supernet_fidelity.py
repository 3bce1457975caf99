"""Supernet fidelity: does a one-shot supernet rank placements as training each alone does (issue 33)?

Draws ``--placements`` placements of the space (the baseline first, the usual placements, then
`spaces.supernet.sample_placement` with seed 0, distinct), trains each alone with ``--seeds`` seeds
(`trainers.train.train_candidate`, the search's proxy recipe, gated insertion); a placement's standalone score is its
best epoch's task score, averaged over the seeds), trains the supernet with ``--supernet_seeds`` seeds
(`trainers.supernet.train_supernet`) and scores every placement on each supernet (`score_placement`: BatchNorm
recalibrated on ``--bn_batches`` batches, then one validation). Reports Spearman's rho between the standalone means
and each supernet's scores (and the supernets' mean), with a 95% bootstrap interval over the placements (2000
resamples, seed 0), and as a ceiling the rho of two halves of the standalone seeds.

Run: python results/benchmarks/supernet_fidelity.py --data DATA.yaml --model yolov8n.yaml [--space space.yaml]
Writes supernet_fidelity_<dataset>.md and .json beside this script (or in ``--out``).
"""

from __future__ import annotations

import json
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from machine import describe_machine, prepared_work, training_parser  # noqa: E402

HERE = Path(__file__).parent
RESAMPLES = 2000


def spearman(a, b) -> float:
    """Spearman's rho; nan where either side is constant (e.g. every score 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else float("nan")


def bootstrap(a, b, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of Spearman's rho of paired scores ``a``, ``b``, resampling the placements."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    draws = [spearman(a[i], b[i]) for i in (rng.integers(0, len(a), len(a)) for _ in range(RESAMPLES))]
    draws = [d for d in draws if np.isfinite(d)]
    return (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws else (float("nan"), float("nan"))


def draw_placements(space, count: int) -> list:
    """The baseline, the usual placements (`spaces.prior`), then distinct sampled ones up to ``count``."""
    from spaces import Placement
    from spaces.prior import usual_placements
    from spaces.supernet import sample_placement

    rng, found = random.Random(0), [Placement(), *(p for _, p in usual_placements(space))][:count]
    for _ in range(100 * count):
        if len(found) >= count:
            break
        placement = sample_placement(space, rng)
        if placement not in found:
            found.append(placement)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, epochs=10, supernet_epochs=30, imgsz=320, batch=16, seeds=3, supernet_seeds=2,
                             placements=12, bn_batches=8, workers=2)
    parser.add_argument("--space", help="a space file (default: the search's default space)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a further Ultralytics training argument")
    parser.add_argument("--out", default=str(HERE), help="folder of the report (default: beside this script)")
    args = parser.parse_args(argv)

    name, work = prepared_work("supernet-fidelity", args.data)
    from spaces import load_base, load_space
    from spaces.tasks import task_of
    from trainers.data import build_proxy_data, load_dataset
    from trainers.supernet import score_placement, train_supernet
    from trainers.train import Budget, train_candidate

    base = load_base(args.model)
    task = task_of(base)
    space = load_space(base, args.space)
    data = build_proxy_data(load_dataset(args.data, task), work / "proxy", imgsz=args.imgsz)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    budget = Budget(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=args.workers, device=args.device,
                    overrides=overrides)
    placements = draw_placements(space, args.placements)
    start = time.perf_counter()

    standalone: dict[str, list[float]] = {}
    for placement in placements:
        for seed in range(args.seeds):
            record = train_candidate(placement, base, data, Budget(**{**budget.__dict__, "seed": seed}),
                                     work / "standalone" / f"{placement.key}-{seed}", weights=args.weights)
            score = record.best.get(task.score) if record.status == "complete" else None
            standalone.setdefault(placement.key, []).append(float("nan") if score is None else score)
            print(f"standalone {placement} seed {seed}: {score}", flush=True)
    standalone_time = time.perf_counter() - start

    supernet: dict[int, dict[str, float]] = {}
    for seed in range(args.supernet_seeds):
        checkpoint = train_supernet(space, base, data, Budget(**{**budget.__dict__, "epochs": args.supernet_epochs, "seed": seed}),
                                    work / f"supernet-{seed}", weights=args.weights, seed=seed)
        supernet[seed] = {p.key: score_placement(checkpoint, p, data, args.imgsz, args.batch, args.bn_batches,
                                                 args.device or "cpu", seed=seed)[task.score] for p in placements}
        print(f"supernet seed {seed}: {supernet[seed]}", flush=True)
    supernet_time = time.perf_counter() - start - standalone_time

    keys = [p.key for p in placements]
    truth = [float(np.nanmean(standalone[k])) for k in keys]
    rows = {f"supernet seed {s}": [scores[k] for k in keys] for s, scores in supernet.items()}
    rows["supernets' mean"] = [float(np.mean([supernet[s][k] for s in supernet])) for k in keys]
    if args.seeds >= 2:  # the ceiling: standalone seeds against each other
        half = args.seeds // 2
        ceiling = ([float(np.nanmean(standalone[k][:half])) for k in keys], [float(np.nanmean(standalone[k][half:])) for k in keys])
    results = {name: {"rho": spearman(truth, scores), "interval": bootstrap(truth, scores)} for name, scores in rows.items()}
    if args.seeds >= 2:
        results["standalone halves (ceiling)"] = {"rho": spearman(*ceiling), "interval": bootstrap(*ceiling)}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    (out / f"supernet_fidelity_{name}.json").write_text(json.dumps({
        "settings": settings, "score": task.score, "placements": [p.to_dict() for p in placements],
        "standalone": standalone, "supernet": {str(s): v for s, v in supernet.items()}, "spearman": results,
        "time_s": {"standalone": standalone_time, "supernet": supernet_time}}, indent=1))
    lines = [f"# Supernet fidelity on {name}", "", describe_machine(), f"- settings: `{json.dumps(settings)}`",
             f"- {len(placements)} placements; {task.score} of each trained alone ({args.seeds} seeds, mean) against its "
             f"supernet score ({args.supernet_seeds} supernets, {args.bn_batches} BatchNorm batches)",
             f"- time: standalone {standalone_time / 60:.1f} min, supernets {supernet_time / 60:.1f} min", "",
             "| supernet | Spearman rho | 95% bootstrap interval |", "|---|---|---|"]
    lines += [f"| {k} | {v['rho']:+.2f} | [{v['interval'][0]:+.2f}, {v['interval'][1]:+.2f}] |" for k, v in results.items()]
    lines += ["", "| placement | standalone mean | " + " | ".join(f"supernet {s}" for s in supernet) + " |",
              "|---|---|" + "---|" * len(supernet)]
    lines += [f"| {p} | {t:.4f} | " + " | ".join(f"{supernet[s][p.key]:.4f}" for s in supernet) + " |"
              for p, t in zip(placements, truth)]
    text = "\n".join(lines) + "\n"
    (out / f"supernet_fidelity_{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
