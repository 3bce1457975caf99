"""The median pruner's warm-up in the pretrained regime: replay the real fine-tune curves of
`pretrained_insertion.json` (bccd from yolov8n.pt, 5 epochs, the CPU default; 7 arms per seed), or
with --runs those of `gpu_full_finetune.json` (30 epochs on an H200, the GPU default; 4 arms per
seed), under Optuna's MedianPruner with 3 startup trials, as `search.study.storage.make_pruner` builds it,
for each warm-up. With --studies, the curves are those of real searches run with `--pruner none`
(one study per seed; every completed trial is one arm), e.g. the CPU default proxy of 10 epochs at 224 px
over the baseline and the 16 usual placements.

Each seed's arms form one study (a trial per arm), replayed in 200 random orders (`pruner_choice.replay`);
for --studies also in the order the search ran them (the baseline, then the usual placements: what the
first trials of every search with the prior do). Reported per warm-up: epochs trained (% of no pruning),
how often the seed's best arm is trained to the end, and the mean regret (best completed final score
below the seed's best); and how well the fitness at the first epoch that may be pruned ranks the arms as
their final scores do (Spearman's rho across one seed's arms, mean over seeds).
Run: python results/benchmarks/pretrained_pruner.py   (writes pretrained_pruner.md)
     python results/benchmarks/pretrained_pruner.py --runs gpu_full_finetune.json --name pretrained_pruner_30_epochs
     python -m search run --data ../shared/datasets/bccd/data.yaml --model ../shared/weights/yolov8n.pt --trials 17 \\
       --pruner none --no-final --seed S --study bccd-nopruning-seedS --out /tmp/prune10 --device cpu   (S = 0, 1)
     python results/benchmarks/pretrained_pruner.py --studies /tmp/prune10/bccd-nopruning-seed* --name pretrained_pruner_10_epochs
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

import optuna
from pruner_choice import ORDERS, curves, outcome, replay
from scipy import stats

from machine import describe_machine, publish
from search.config import load_study_config, storage_url_of
from search.study.provenance import machine_text, versions_text
from search.study.storage import MEDIAN_STARTUP_TRIALS, warmup_epochs

HERE = Path(__file__).parent
LONG_WARMUPS = (1, 2, 3, 5, 10, 15, 20, 25)  # the warm-ups tried for proxies of more than 10 epochs


Curves = list[tuple[list[float], float]]  # (per-epoch fitness, final score) of each arm of one seed


def from_runs(name: str) -> tuple[dict[str, Curves], dict[str, list[int]], int, dict, str]:
    """Curves per seed of a benchmark's runs beside this script, per seed the arms a winner may be
    planted in (the baseline and the gated arms: plain insertion starts below the baseline), their
    image size (px), where they trained, and how the report names them."""
    measured = json.loads((HERE / name).read_text())
    runs = [r for r in measured["runs"] if r["status"] == "complete"]
    by_seed: dict[str, Curves] = {}
    plantable: dict[str, list[int]] = {}
    for r in runs:
        arms = by_seed.setdefault(str(r["seed"]), [])
        if r["insertion"] == "gated":
            plantable.setdefault(str(r["seed"]), []).append(len(arms))
        arms.append(([e["fitness"] for e in r["epochs"]], r["final"]["map50_95"]))
    imgsz = measured["settings"][0]["imgsz"] if "settings" in measured else 320  # pretrained_insertion.py: 320
    arms = len({r["arm"] for r in runs})
    return by_seed, plantable, imgsz, measured["environment"], f"runs of `{name}` ({arms} arms per seed)"


def from_studies(dirs: list[Path]) -> tuple[dict[str, Curves], dict[str, list[int]], int, dict, str]:
    """As `from_runs`, for studies searched with ``--pruner none`` (one per seed), in the order their
    trials ran; a winner may be planted in any of their (gated) placements or the baseline."""
    by_seed, sizes = {}, set()
    for folder in dirs:
        config = load_study_config(folder)
        if config.pruner != "none" or config.insertion != "gated":
            raise SystemExit(f"{folder} was searched with --pruner {config.pruner} --insertion {config.insertion}: "
                             "give studies searched with --pruner none --insertion gated")
        by_seed[f"{config.seed} ({folder.name})"] = curves(folder)
        sizes.add(config.proxy_imgsz)
        study = optuna.load_study(study_name=config.study, storage=storage_url_of(folder))
        env = study.user_attrs["environment"]
    arms = min(len(c) for c in by_seed.values())
    source = f"completed trials of {len(dirs)} real searches with --pruner none ({arms}+ arms each)"
    return by_seed, {seed: list(range(len(c))) for seed, c in by_seed.items()}, sizes.pop(), env, source


GAIN = 0.01  # mAP50-95: the planted true winner's gain, the effect the search is sized for (#20)
EMERGENCE = {"from epoch 1": lambda epoch, epochs: 1.0, "growing linearly": lambda epoch, epochs: epoch / epochs}


def planted(order: Curves, position: int, shape) -> Curves:
    """``order`` with the arm at ``position`` made a true winner: GAIN on its final score and
    GAIN x shape(epoch, epochs) on its fitness at each epoch (a gated module starts as the baseline,
    so a gain that grows with the epochs is the likelier; one there from epoch 1 is the easiest to keep)."""
    curve, final = order[position]
    return [*order[:position], ([f + GAIN * shape(e, len(curve)) for e, f in enumerate(curve, 1)], final + GAIN),
            *order[position + 1:]]


def replays(seed_curves: Curves, warmup: int, orders: list[Curves], positions: list[int]) -> dict[str, list[float]]:
    """Per order: the share of the seed's epochs trained, whether its best arm completed, the regret,
    and per EMERGENCE whether a winner planted at the order's position completed."""
    best, full = max(score for _, score in seed_curves), sum(len(c) for c, _ in seed_curves)
    out: dict[str, list[float]] = {key: [] for key in ("spent", "kept", "regret", *EMERGENCE)}
    # stateless: one pruner serves every replay
    pruner = optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=warmup)
    for order, position in zip(orders, positions):
        trained, completed = replay(pruner, order)
        found, kept_best = outcome(order, completed)
        out["spent"].append(trained / full)
        out["kept"].append(kept_best)
        out["regret"].append(best - found)
        for name, shape in EMERGENCE.items():
            out[name].append(position in replay(pruner, planted(order, position, shape))[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="pretrained_insertion.json", help="runs beside this script (their epochs)")
    parser.add_argument("--studies", nargs="+", type=Path, help="study folders searched with --pruner none, one per seed")
    parser.add_argument("--name", default="pretrained_pruner", help="the report's name beside this script (NAME.md)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    by_seed, plantable, imgsz, env, source = from_studies(args.studies) if args.studies else from_runs(args.runs)
    seeds = {s: c for s, c in by_seed.items() if len(c) > MEDIAN_STARTUP_TRIALS}  # the startup trials, then one to prune
    epochs = max(len(curve) for c in seeds.values() for curve, _ in c)
    rows = []
    for warmup in range(1, epochs) if epochs <= 10 else LONG_WARMUPS:
        shuffled: dict[str, list[float]] = {}
        searched: dict[str, list[float]] = {}
        for seed, seed_curves in seeds.items():
            rng, where, orders, positions = random.Random(0), random.Random(1), [], []
            for _ in range(ORDERS):
                arms = list(range(len(seed_curves)))
                rng.shuffle(arms)
                orders.append([seed_curves[arm] for arm in arms])
                positions.append(where.choice([i for i in range(MEDIAN_STARTUP_TRIALS, len(arms)) if arms[i] in plantable[seed]]))
            for key, values in replays(seed_curves, warmup, orders, positions).items():
                shuffled.setdefault(key, []).extend(values)
            if args.studies:  # the search's own order (trial numbers), the winner planted in each prunable trial in turn
                positions = list(range(MEDIAN_STARTUP_TRIALS, len(seed_curves)))
                for key, values in replays(seed_curves, warmup, [seed_curves] * len(positions), positions).items():
                    searched.setdefault(key, []).extend(values)
        rho = statistics.mean(stats.spearmanr([c[warmup - 1] for c, _ in s], [f for _, f in s])[0] for s in seeds.values())
        share = {key: f"{100 * statistics.mean(v):.0f}%" for key, v in shuffled.items()}
        own = f" {100 * statistics.mean(searched['spent']):.0f}% | " + " | ".join(
            f"{100 * statistics.mean(searched[name]):.0f}%" for name in EMERGENCE) + " |" if args.studies else ""
        rows.append(f"| {warmup} | {rho:+.2f} | {share['spent']} | {share['kept']} | {statistics.mean(shuffled['regret']):.4f} | "
                    + " | ".join(share[name] for name in EMERGENCE) + f" |{own}")
    planted_head = " | ".join(f"a planted +{GAIN} winner trained to the end, its gain {name}" for name in EMERGENCE)
    own_head = (" in the search's order: epochs trained | " + " | ".join(f"planted winner kept, gain {name}" for name in EMERGENCE)
                + " |") if args.studies else ""
    columns = 5 + len(EMERGENCE) + (1 + len(EMERGENCE) if args.studies else 0)
    command = f"--studies {' '.join(str(d) for d in args.studies)}" if args.studies else f"--runs {args.runs}"
    text = "\n".join([
        "# Median pruner warm-up for pretrained proxies (replay of real bccd fine-tune curves)", "", describe_machine(),
        f"- command: `python results/benchmarks/pretrained_pruner.py {command} --name {args.name}`",
        f"- curves: {sum(len(c) for c in seeds.values())} {source}, {epochs} epochs at {imgsz} px, seeds "
        f"{', '.join(seeds)}; {ORDERS} random orders per seed; MedianPruner(n_startup_trials={MEDIAN_STARTUP_TRIALS})",
        f"- curves trained: {env['date']} on {machine_text(env)}; {versions_text(env)} (the lines above: the replay)",
        f"- n_warmup_steps the search uses for a {epochs}-epoch pretrained proxy: {warmup_epochs(epochs)}",
        f"- planted winner: in each order one arm after the {MEDIAN_STARTUP_TRIALS} startup trials (the baseline or a gated one, drawn "
        f"at random; in a search of 100 trials nearly every placement comes after them) gets +{GAIN} on its final mAP50-95 and on its "
        "per-epoch fitness either from epoch 1 or growing linearly to it; the share of orders in which it is trained to "
        "the end is an upper bound on the search's power for a winner of that size under this pruner"
        + ("; in the search's order the winner is planted in each trial after the startup trials in turn" if args.studies else ""),
        "",
        f"| n_warmup_steps (first epoch that may be pruned) | Spearman rho of that epoch's fitness with the final score "
        f"(mean over seeds) | epochs trained | seed's best arm trained to the end | mean regret (mAP50-95) | {planted_head} |"
        f"{own_head}",
        "|" + " --- |" * columns, *rows, "",
    ])
    publish(__file__, text, name=args.name)


if __name__ == "__main__":
    main()
