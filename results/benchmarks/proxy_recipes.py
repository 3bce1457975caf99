"""Proxy recipes: seed noise against cost of the baseline's proxy score under several short-training recipes.

Each recipe is a set of Ultralytics training arguments on top of the search's proxy budget (epochs, image
size, batch 16, from a checkpoint with gated insertion, as the search's trials train with
`trainers.train.train_candidate` on study-style proxy data). The un-modified base model is trained with
seeds 0..N-1 under every recipe, seed by seed in turn (so a stopped run leaves every recipe with about the
same seeds and a drifting machine load hits all of them alike). Per recipe: the mean and sd of the task's
score (sd with its 95% chi-square interval), the mean wall time of a run as a ratio to the first recipe's,
and the noise per compute, ``sd^2 x time`` relative to the first recipe: the variance of a mean of runs that
take the same total time (lower is better: a recipe 2x slower must have an sd below 1/sqrt(2) of the other's
to be worth it), and the one-sided F test of a variance below the first recipe's. Finished runs are kept
in the .json and not trained again.

With ``--arms``, placements (gpu_concurrency.py's arms) train under the recipes on the same seeds too; the
report then adds each arm's paired gain over the baseline and same-seed correlation, the seed noise of all
placements as a search's report measures it (`search.select.power.seed_noise`), and whether each recipe's gains
agree with the 30-epoch H200 fine-tune's (gpu_full_finetune.json) within noise.

Run: python results/benchmarks/proxy_recipes.py --data ../shared/datasets/bccd/data.yaml \\
       --model yolov8n.yaml --weights ../shared/weights/yolov8n.pt --seeds 8
     [--recipes small-long --arms baseline 'SE backbone gated' 'CBAM backbone gated' 'ECA neck gated']
(writes proxy_recipes_<dataset>.md and .json; the report covers every run the .json holds for --recipes)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from gpu_concurrency import ARMS

from machine import describe_machine, prepared_work, publish, r_interval, sd_interval, training_parser

HERE = Path(__file__).parent

# name -> (epochs, image size in px, further Ultralytics arguments, what it changes)
RECIPES = {
    "default": (5, 320, {}, "today's CPU proxy: Ultralytics' defaults (3 of 5 epochs warm-up; optimizer=auto picks AdamW "
                "and already starts the bias warm-up at 0)"),
    "short-warmup": (5, 320, {"warmup_epochs": 1, "warmup_bias_lr": 0.0},
                     "1 warm-up epoch (the learning rate peaks after epoch 1 instead of 3), bias warm-up from 0"),
    "small-long": (10, 224, {"warmup_epochs": 1, "warmup_bias_lr": 0.0},
                   "twice the epochs at 224 px (about the same pixels seen), 1 warm-up epoch, bias warm-up from 0"),
    "small-long-nbs64": (10, 224, {"warmup_epochs": 1, "warmup_bias_lr": 0.0, "nbs": 64},
                         "small-long with Ultralytics' nominal batch 64 (one optimizer step every 4 batches of 16, "
                         "weight decay scaled as Ultralytics does) instead of the proxies' nbs = batch"),
}


def main() -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--arms", nargs="+", default=["baseline"], choices=list(ARMS),
                        help="placements trained under every recipe and seed (gpu_concurrency's arms, whose "
                        "30-epoch fine-tunes are in gpu_full_finetune.json)")
    args = parser.parse_args()
    dataset_name, work = prepared_work("proxy-recipes", args.data)
    out = HERE / f"proxy_recipes_{dataset_name}.json"
    from search.study.provenance import environment
    from spaces import Placement, load_base
    from spaces.tasks import task_of
    from trainers.data import build_proxy_data, load_dataset
    from trainers.train import Budget, train_candidate

    base = load_base(args.model)
    task = task_of(base)
    dataset = load_dataset(args.data, task)
    settings = {"data": str(Path(args.data).resolve()), "model": args.model, "weights": args.weights}
    saved = json.loads(out.read_text()) if out.is_file() else {}
    runs = saved.get("runs", []) if saved.get("settings") == settings else []
    done = {(r["recipe"], r.get("arm", "baseline"), r["seed"]) for r in runs}
    for seed, name, arm in ((s, n, a) for s in range(args.seeds) for n in args.recipes for a in args.arms):
        if (name, arm, seed) in done:
            continue
        epochs, imgsz, overrides, _ = RECIPES[name]
        proxy = build_proxy_data(dataset, work / f"proxy{imgsz}", imgsz)
        budget = Budget(epochs=epochs, imgsz=imgsz, batch=16, workers=2, seed=seed, device="cpu", overrides=overrides)
        record = train_candidate(Placement.of(ARMS[arm]), base, proxy, budget, work / f"{name}-{arm}-seed{seed}",
                                 weights=args.weights)
        runs.append({"recipe": name, "arm": arm, "seed": seed, "status": record.status, "reason": record.reason,
                     "final": record.final, "epochs": record.epochs, "wall_time_s": record.wall_time_s})
        out.write_text(json.dumps({"settings": settings, "recipes": {k: list(v[:3]) for k, v in RECIPES.items()},
                                   "environment": environment(), "runs": runs}, indent=1))
    failed = [f"{r['recipe']} {r.get('arm', 'baseline')} seed {r['seed']}: {r['reason']}" for r in runs if r["status"] != "complete"]
    complete = [r for r in runs if r["status"] == "complete"]
    score = {(r["recipe"], r.get("arm", "baseline"), r["seed"]): r["final"][task.score] for r in complete}
    arms = [a for a in ARMS if any(key[1] == a for key in score) and a != "baseline"]
    publish(__file__, "\n".join([
        f"# Proxy recipes on {dataset_name}: seed noise against cost ({task.score_label})", "", describe_machine(), "",
        f"Command: `python results/benchmarks/proxy_recipes.py --data {args.data} --model {args.model}"
        + (f" --weights {args.weights}" if args.weights else "") + f" --seeds {args.seeds} --recipes {' '.join(args.recipes)}"
        + (" --arms " + " ".join(f"'{a}'" for a in args.arms) if args.arms != ["baseline"] else "") + "`. "
        "The base model without attention, batch 16, on this machine's CPU, 2 loader workers; the score is best.pt's "
        "re-validation. Time and noise per compute are ratios to the first row (see the script's docstring).", "",
        "| recipe | epochs | what changes | seeds | mean | sd [95% interval] | p, sd below the first's | time x | sd^2 x time, x |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *recipe_rows(args.recipes, complete, task.score), "",
        *(arm_section(args.recipes, arms, score) if arms else []),
        *(f"- failed: {line}" for line in failed),
    ]) + "\n", f"proxy_recipes_{dataset_name}")


def recipe_rows(recipes: list[str], complete: list[dict], score_key: str) -> list[str]:
    """One row per recipe of the baseline's seed noise and cost, as ratios to the first recipe's."""
    from scipy import stats

    rows, first = [], None
    for name in recipes:
        mine = [r for r in complete if r["recipe"] == name and r.get("arm", "baseline") == "baseline"]
        scores, times = [r["final"][score_key] for r in mine], [r["wall_time_s"] for r in mine]
        if len(scores) < 2:
            continue
        n, sd, time_s = len(scores), statistics.stdev(scores), statistics.fmean(times)
        low, high = sd_interval(sd, n)
        first = first or (sd, time_s, n)
        quieter = stats.f.sf(first[0] ** 2 / sd**2, first[2] - 1, n - 1) if first[:2] != (sd, time_s) else None
        epochs, imgsz, overrides, what = RECIPES[name]
        rows.append(f"| {name} | {epochs} at {imgsz} px | {what} | {n} | {statistics.fmean(scores):.4f} | {sd:.4f} "
                    f"[{low:.4f}, {high:.4f}] | {'-' if quieter is None else f'{quieter:.3f}'} | {time_s / first[1]:.2f} | "
                    f"{sd**2 * time_s / (first[0] ** 2 * first[1]):.2f} |")
    return rows


def paired_gain(arm: dict[int, float], base: dict[int, float]) -> tuple[int, float, float, float, float]:
    """(seeds, mean arm - baseline over the seeds both have, its 95% paired-t interval, same-seed r)."""
    import numpy as np
    from scipy import stats

    seeds = sorted(set(arm) & set(base))
    a, b = np.array([arm[s] for s in seeds]), np.array([base[s] for s in seeds])
    interval = stats.ttest_rel(a, b).confidence_interval(0.95)
    return len(seeds), float(np.mean(a - b)), float(interval.low), float(interval.high), float(np.corrcoef(a, b)[0, 1])


def arm_section(recipes: list[str], arms: list[str], score: dict[tuple, float]) -> list[str]:
    """Placements under each recipe against the baseline on the same seeds, beside the same placements
    fine-tuned for 5 and 30 epochs on an H200 (gpu_concurrency.json, gpu_full_finetune.json): does the
    recipe rank them as the long fine-tune does (Kendall's tau of the four means), and does any arm's gain
    differ from the long fine-tune's beyond noise (Welch's interval of the difference of the two gains)?"""
    from crn_correlation import run_score
    from scipy import stats

    from search.select.power import seed_noise

    references = {}
    for file, label in (("gpu_concurrency.json", "5 epochs, H200"), ("gpu_full_finetune.json", "30 epochs, H200")):
        runs = json.loads((HERE / file).read_text())["runs"]
        references[label] = {a: {r["seed"]: run_score(r) for r in runs if r["arm"] == a and run_score(r) is not None} for a in ARMS}
    sources = {**{f"{name}, this CPU": {a: {k[2]: v for k, v in score.items() if k[:2] == (name, a)} for a in ARMS}
                  for name in recipes}, **references}
    sources = {label: by_arm for label, by_arm in sources.items() if all(len(by_arm[a]) > 1 for a in ["baseline", *arms])}
    long = sources["30 epochs, H200"]
    rows, noise, agreement = [], [], []
    for label, by_arm in sources.items():
        for arm in arms:
            n, gain, low, high, r = paired_gain(by_arm[arm], by_arm["baseline"])
            r_low, r_high = r_interval(r, n)
            rows.append(f"| {label} | {arm} | {n} | {statistics.fmean(by_arm[arm].values()):.4f} ± "
                        f"{statistics.stdev(by_arm[arm].values()):.4f} | {gain:+.4f} [{low:+.4f}, {high:+.4f}] | "
                        f"{r:+.2f} [{r_low:+.2f}, {r_high:+.2f}] |")
        seeds = sorted(set.intersection(*(set(by_arm[a]) for a in ["baseline", *arms])))
        sd, rho = seed_noise({a: [by_arm[a][s] for s in seeds] for a in ["baseline", *arms]})
        noise.append(f"- {label}: seed sd {sd:.4f}, same-seed correlation {rho:+.2f} ({len(seeds)} seeds x {len(arms) + 1} placements)")
        if by_arm is long:
            continue
        means = [statistics.fmean(by_arm[a].values()) for a in ["baseline", *arms]]
        tau = stats.kendalltau(means, [statistics.fmean(long[a].values()) for a in ["baseline", *arms]])
        gaps = []
        for arm in arms:
            (n1, g1, l1, h1, _), (n2, g2, l2, h2, _) = (paired_gain(s[arm], s["baseline"]) for s in (by_arm, long))
            se1, se2 = (h1 - l1) / (2 * stats.t.ppf(0.975, n1 - 1)), (h2 - l2) / (2 * stats.t.ppf(0.975, n2 - 1))
            se, df = (se1**2 + se2**2) ** 0.5, (se1**2 + se2**2) ** 2 / (se1**4 / (n1 - 1) + se2**4 / (n2 - 1))
            half = stats.t.ppf(0.975, df) * se
            gaps.append(f"{arm} {g1 - g2:+.4f} [{g1 - g2 - half:+.4f}, {g1 - g2 + half:+.4f}]")
        agreement.append(f"- {label}: Kendall's tau {tau.statistic:+.2f} (p {tau.pvalue:.2f}, {len(means)} placements); "
                         f"gain here - gain at 30 epochs: {'; '.join(gaps)}")
    return [
        "## Placements: same-seed gains and rank agreement with the long fine-tune", "",
        f"Placements trained under {', '.join(label.split(',')[0] for label in sources if label.endswith('this CPU'))} "
        f"(`--recipes R --arms {' '.join(repr(a) for a in ['baseline', *arms])}`). Gain: arm - baseline over the seeds "
        "both have, paired t 95% interval; r: same-seed correlation with the baseline, Fisher's z 95% interval. The "
        "H200 rows are gpu_concurrency.py's runs (AMP, 8 at a time; gpu_concurrency.md); the placements are its arms "
        "(gated insertion). Three arms, each interval at 95% with no correction for three.", "",
        "| proxy | arm | seeds | mean ± sd | gain [95%] | r [95%] |", "| --- | --- | --- | --- | --- | --- |", *rows, "",
        "Seed noise over all four placements, as a search's report measures it (`search.select.power.seed_noise`: sd pooled "
        "within placements, same-seed correlation pooled over pairs), the figures `selection_power.py` simulates:", "",
        *noise, "",
        "Does each proxy rank the placements as the 30-epoch fine-tune does?", "", *agreement, "",
    ]


if __name__ == "__main__":
    main()
