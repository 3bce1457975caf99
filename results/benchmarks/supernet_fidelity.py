"""Supernet fidelity: does a one-shot supernet rank placements as training each alone does (issue 33)?

Draws ``--placements`` placements of the space (the baseline first, the usual placements, then
`spaces.supernet.sample_placement` with seed 0, distinct), trains each alone with ``--seeds`` seeds
(`trainers.train.train_candidate`, the search's proxy recipe, gated insertion); a placement's standalone score is its
best epoch's task score, averaged over the seeds), trains the supernet with ``--supernet_seeds`` seeds
(`trainers.supernet.train_supernet`) and scores every placement on each supernet (`score_placement`: BatchNorm
recalibrated on ``--bn_batches`` batches, then one validation) and by its gate gradients at every gate 0
(`trainers.supernet.gate_gradients`, the same batches' count, one per supernet seed). Reports Spearman's rho between
the standalone means and each screen's scores (and their seeds' mean), with a 95% bootstrap interval over the
placements (2000 resamples, seed 0); each screen's seed-to-seed rho; and what a single-run screen reaches: one
standalone seed against the mean of the others (and seed against seed). Compute: each screen's time against the
standalone runs', measured here. Every run's result is kept in the scratch folder, so a rerun after a kill goes on
where it stopped.

Run: python results/benchmarks/supernet_fidelity.py --data DATA.yaml --model yolov8n.yaml [--space space.yaml]
Writes supernet_fidelity_<dataset>.md and .json beside this script (or in ``--out``); ``--report-only`` writes the .md
again from the .json. bccd-cls: --data ../shared/datasets/bccd-cls --model yolov8n-cls.yaml --epochs 5 --imgsz 64
--seeds 3 --supernet_epochs 15 --supernet_seeds 2 --placements 20 --device cpu (then --add-gradients: that run came
before the gate-gradient score). bccd from yolov8n.pt: --data ../shared/datasets/bccd/data.yaml --model yolov8n.yaml
--weights ../shared/weights/yolov8n.pt --epochs 5 --imgsz 160 --seeds 3 --supernet_epochs 15 --supernet_seeds 2
--placements 20 --device cpu --set warmup_epochs=1 --set warmup_bias_lr=0 (the short-warm-up recipe at half the
CPU proxy's epochs and pixels, to fit 60 standalone runs in under an hour on 2 cores).
"""

from __future__ import annotations

import hashlib
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


def gate_sizes(checkpoint: Path) -> dict:
    """The largest and the median absolute gate of a supernet checkpoint: how far its paths moved from the base."""
    from ultralytics import YOLO

    from spaces.supernet import supernet_modules

    gates = [abs(float(m.gate)) for ms in supernet_modules(YOLO(str(checkpoint)).model).values() for m in ms]
    return {"max_abs": max(gates), "median_abs": float(np.median(gates)), "count": len(gates)}


def timed(file: Path, run, *args) -> tuple:
    """``run(*args)``'s (result, seconds), kept in ``file`` (JSON) so that a rerun of the script after a kill skips it."""
    if file.is_file():
        kept = json.loads(file.read_text())
        return kept["result"], kept["seconds"]
    start = time.perf_counter()
    result = run(*args)
    seconds = time.perf_counter() - start
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"result": result, "seconds": seconds}))
    return result, seconds


def gradient_scores(args, space, base: dict, data: Path, placements: list, seed: int) -> dict[str, float]:
    """Each placement's gate-gradient score (`trainers.supernet.gradient_score`) at ``seed``."""
    from trainers.supernet import gate_gradients, gradient_score

    gradients = gate_gradients(space, base, data, args.imgsz, args.batch, args.bn_batches, weights=args.weights, seed=seed,
                               device=args.device or "cpu")
    return {p.key: gradient_score(p, gradients) for p in placements}


def add_gradients(args, raw: dict, work: Path) -> dict:
    """``raw`` (a run from before the gate-gradient score) with the gradient scores of its placements added, timed in
    this later run (the report says so)."""
    from spaces import Placement, load_base, load_space
    from spaces.tasks import task_of
    from trainers.data import build_proxy_data, load_dataset

    settings = raw["settings"]
    for key in ("imgsz", "batch", "bn_batches", "weights", "device"):
        setattr(args, key, settings[key])  # as the run measured them
    base = load_base(settings["model"])
    space = load_space(base, settings["space"])
    data = build_proxy_data(load_dataset(settings["data"], task_of(base)), work / "proxy", imgsz=settings["imgsz"])
    placements = [Placement.from_dict(p) for p in raw["placements"]]
    start, raw["gradient"] = time.perf_counter(), {}
    for seed in range(settings["supernet_seeds"]):
        raw["gradient"][str(seed)] = gradient_scores(args, space, base, data, placements, seed)
    raw["time_s"]["gradient"] = time.perf_counter() - start
    raw["gradient_timed_later"] = True
    return raw


def measure(args, name: str, work: Path) -> dict:
    """Train every placement alone and the supernets, score every placement on each supernet and by its gates'
    gradients; the raw results. Each run's result is kept in a folder of ``work`` named by the settings' digest (a
    rerun after a kill goes on from there; other settings start afresh)."""
    from spaces import load_base, load_space
    from spaces.tasks import task_of
    from trainers.data import build_proxy_data, load_dataset
    from trainers.supernet import score_placement, train_supernet
    from trainers.train import Budget, train_candidate

    settings = {k: v for k, v in vars(args).items() if k not in ("out", "report_only", "add_gradients")}
    work = work / hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    base = load_base(args.model)
    task = task_of(base)
    space = load_space(base, args.space)
    data = build_proxy_data(load_dataset(args.data, task), work / "proxy", imgsz=args.imgsz)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    budget = Budget(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=args.workers, device=args.device,
                    overrides=overrides)
    placements = draw_placements(space, args.placements)
    seconds = {"standalone": 0.0, "supernet": 0.0, "gradient": 0.0}

    def standalone_run(placement, seed):
        record = train_candidate(placement, base, data, Budget(**{**budget.__dict__, "seed": seed}),
                                 work / "standalone" / f"{placement.key}-{seed}", weights=args.weights)
        score = record.best.get(task.score) if record.status == "complete" else None
        return float("nan") if score is None else score

    standalone: dict[str, list[float]] = {}
    for placement in placements:
        for seed in range(args.seeds):
            score, took = timed(work / "kept" / f"standalone-{placement.key}-{seed}.json", standalone_run, placement, seed)
            seconds["standalone"] += took
            standalone.setdefault(placement.key, []).append(score)
            print(f"standalone {placement} seed {seed}: {score}", flush=True)
    supernet, gates, gradient = {}, {}, {}
    for seed in range(args.supernet_seeds):
        def scores(seed):
            start = time.perf_counter()
            checkpoint = train_supernet(space, base, data, Budget(**{**budget.__dict__, "epochs": args.supernet_epochs, "seed": seed}),
                                        work / f"supernet-{seed}", weights=args.weights, seed=seed)
            return {"gates": gate_sizes(checkpoint), "training_s": time.perf_counter() - start,
                    "scores": {p.key: score_placement(checkpoint, p, data, args.imgsz, args.batch, args.bn_batches,
                                                      args.device or "cpu", seed=seed)[task.score] for p in placements}}

        kept, took = timed(work / "kept" / f"supernet-{seed}.json", scores, seed)
        seconds["supernet"] += took
        supernet[str(seed)], gates[str(seed)] = kept["scores"], kept["gates"]
        seconds["supernet_training"] = seconds.get("supernet_training", 0.0) + kept["training_s"]
        print(f"supernet seed {seed}: {supernet[str(seed)]}", flush=True)

        gradient[str(seed)], took = timed(work / "kept" / f"gradient-{seed}.json", gradient_scores, args, space, base, data,
                                          placements, seed)
        seconds["gradient"] += took
    from search.study.provenance import environment

    return {"settings": settings, "score": task.score,
            "placements": [p.to_dict() for p in placements], "labels": [str(p) for p in placements],
            "standalone": standalone, "supernet": supernet, "gradient": gradient, "gates": gates,
            "environment": environment(), "time_s": seconds}


def rho_cell(result: dict) -> str:
    if not np.isfinite(result["rho"]):
        return "undefined: every placement scored the same | –"
    return f"{result['rho']:+.2f} | [{result['interval'][0]:+.2f}, {result['interval'][1]:+.2f}]"


def write_report(raw: dict, name: str, out: Path) -> str:
    """supernet_fidelity_<name>.md from the raw results: Spearman rho of each screen (each supernet, each gate-gradient
    seed, and their means) against the standalone means, with a bootstrap interval; each screen's own seed-to-seed rho;
    what a single-run screen reaches (one standalone seed against the others' mean); and each screen's compute."""
    from itertools import combinations

    from spaces import Placement

    keys = [Placement.from_dict(p).key for p in raw["placements"]]
    standalone, settings, times = raw["standalone"], raw["settings"], raw["time_s"]
    screens = {"supernet": raw["supernet"], "gate gradient": raw.get("gradient", {})}
    truth = [float(np.nanmean(standalone[k])) for k in keys]

    def rho(a, b) -> dict:
        return {"rho": spearman(a, b), "interval": bootstrap(a, b)}

    against, own = {}, {}
    for screen, by_seed in screens.items():
        if not by_seed:
            continue
        rows = {s: [scores[k] for k in keys] for s, scores in by_seed.items()}
        against.update({f"{screen} seed {s}": rho(truth, r) for s, r in rows.items()})
        against[f"{screen}: mean of the seeds"] = rho(truth, list(np.mean(list(rows.values()), axis=0)))
        own.update({f"{screen}: seed {a} against seed {b}": rho(rows[a], rows[b]) for a, b in combinations(rows, 2)})
    seeds = range(settings["seeds"])
    own.update({f"standalone single runs: seed {a} against seed {b}":
                rho([standalone[k][a] for k in keys], [standalone[k][b] for k in keys]) for a, b in combinations(seeds, 2)})
    against.update({f"one standalone run (seed {a}) against the other seeds' mean: what a single-run screen reaches":
                    rho([standalone[k][a] for k in keys], [float(np.nanmean(np.delete(standalone[k], a))) for k in keys])
                    for a in seeds} if settings["seeds"] >= 2 else {})
    runs = len(keys) * settings["seeds"]
    per_run = times["standalone"] / runs
    gates = "; ".join(f"supernet {s}: largest |gate| {g['max_abs']:.4f}, median {g['median_abs']:.4f} of {g['count']}"
                      for s, g in raw.get("gates", {}).items())
    later = " (timed in a later run of this script)" if raw.get("gradient_timed_later") else ""
    cost = [f"{screen} ({len(by_seed)} seeds): {times[key] / times['standalone']:.3f}x the standalone runs' time, "
            f"{times[key] / per_run / len(by_seed):.2f} standalone proxy runs per seed{later if key == 'gradient' else ''}"
            for screen, key, by_seed in (("supernet training and scoring", "supernet", screens["supernet"]),
                                         ("gate gradients", "gradient", screens["gate gradient"])) if by_seed and key in times]
    if "supernet_training" in times:  # the supernet's cost split: one training, then one validation per placement
        seeds_trained = len(screens["supernet"])
        training = times["supernet_training"] / seeds_trained / per_run
        scoring = (times["supernet"] - times["supernet_training"]) / (seeds_trained * len(keys)) / per_run
        cost.insert(1, f"of which training {training:.2f} runs per supernet and scoring {scoring:.4f} runs per placement "
                    f"(a screen of 99 placements: {training + 99 * scoring:.1f} runs)")
    lines = [f"# Supernet fidelity on {name}", "", describe_machine(), f"- settings: `{json.dumps(settings)}`",
             f"- {len(keys)} placements; {raw['score']} of each trained alone ({settings['seeds']} seeds; the truth below is "
             f"their mean) against its supernet score (BatchNorm recalibrated on {settings['bn_batches']} batches) and its "
             f"gate-gradient score (|dL/dgate| at every gate 0 summed over its modules, {settings['bn_batches']} batches)",
             f"- compute, measured by this script on this machine ({runs} standalone proxy runs took {times['standalone']:.0f} s): "
             + "; ".join(cost),
             *([f"- gates after training (0: the path computes the base): {gates}"] if gates else []), "",
             "Against the standalone means (Spearman rho over the placements, 95% bootstrap interval, 2000 resamples; a "
             "single standalone run is compared with the mean of the other seeds, which is noisier than all three's):", "",
             "| screen | Spearman rho | 95% bootstrap interval |", "|---|---|---|"]
    lines += [f"| {label} | {rho_cell(r)} |" for label, r in against.items()]
    lines += ["", "Each screen against itself on another seed, and the standalone runs against each other:", "",
              "| pair | Spearman rho | 95% bootstrap interval |", "|---|---|---|"]
    lines += [f"| {label} | {rho_cell(r)} |" for label, r in own.items()]
    columns = [(f"supernet {s}", screens["supernet"][s]) for s in screens["supernet"]]
    columns += [(f"gradient {s}", screens["gate gradient"][s]) for s in screens["gate gradient"]]
    lines += ["", "| placement | standalone mean | " + " | ".join(c for c, _ in columns) + " |",
              "|---|---|" + "---|" * len(columns)]
    lines += [f"| {label} | {t:.4f} | " + " | ".join(f"{scores[k]:.4g}" for _, scores in columns) + " |"
              for label, k, t in zip(raw["labels"], keys, truth)]
    text = "\n".join(lines) + "\n"
    (out / f"supernet_fidelity_{name}.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, epochs=10, supernet_epochs=30, imgsz=320, batch=16, seeds=3, supernet_seeds=2,
                             placements=12, bn_batches=8, workers=2)
    parser.add_argument("--space", help="a space file (default: the search's default space)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a further Ultralytics training argument")
    parser.add_argument("--out", default=str(HERE), help="folder of the report (default: beside this script)")
    parser.add_argument("--report-only", action="store_true", help="write the .md again from the .json, training nothing")
    parser.add_argument("--add-gradients", action="store_true",
                        help="add the gate-gradient scores to the .json of a run from before them, training nothing")
    args = parser.parse_args(argv)
    name, work = prepared_work("supernet-fidelity", args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw_file = out / f"supernet_fidelity_{name}.json"
    if args.report_only:
        raw = json.loads(raw_file.read_text())
    elif args.add_gradients:
        raw = add_gradients(args, json.loads(raw_file.read_text()), work)
        raw_file.write_text(json.dumps(raw, indent=1))
    else:
        raw = measure(args, name, work)
        raw_file.write_text(json.dumps(raw, indent=1))
    print(write_report(raw, name, out))


if __name__ == "__main__":
    main()
