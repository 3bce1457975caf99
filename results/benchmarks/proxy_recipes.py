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

Run: python results/benchmarks/proxy_recipes.py --data ../shared/datasets/bccd/data.yaml \\
       --model yolov8n.yaml --weights ../shared/weights/yolov8n.pt --seeds 8
(writes proxy_recipes_<dataset>.md and .json)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from machine import describe_machine, prepared_work, publish, sd_interval, training_parser

HERE = Path(__file__).parent

# name -> (epochs, image size in px, further Ultralytics arguments, what it changes)
RECIPES = {
    "default": (5, 320, {}, "today's CPU proxy: Ultralytics' defaults (3 of 5 epochs warm-up; optimizer=auto picks AdamW "
                "and already starts the bias warm-up at 0)"),
    "short-warmup": (5, 320, {"warmup_epochs": 1, "warmup_bias_lr": 0.0},
                     "1 warm-up epoch (the learning rate peaks after epoch 1 instead of 3), bias warm-up from 0"),
    "small-long": (10, 224, {"warmup_epochs": 1, "warmup_bias_lr": 0.0},
                   "twice the epochs at 224 px (about the same pixels seen), 1 warm-up epoch, bias warm-up from 0"),
}


def main() -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = parser.parse_args()
    dataset_name, work = prepared_work("proxy-recipes", args.data)
    out = HERE / f"proxy_recipes_{dataset_name}.json"
    from scipy import stats

    from search.provenance import environment
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
    done = {(r["recipe"], r["seed"]) for r in runs}
    for seed in range(args.seeds):
        for name in args.recipes:
            if (name, seed) in done:
                continue
            epochs, imgsz, overrides, _ = RECIPES[name]
            proxy = build_proxy_data(dataset, work / f"proxy{imgsz}", imgsz)
            budget = Budget(epochs=epochs, imgsz=imgsz, batch=16, workers=2, seed=seed, device="cpu", overrides=overrides)
            record = train_candidate(Placement(), base, proxy, budget, work / f"{name}-seed{seed}", weights=args.weights)
            runs.append({"recipe": name, "seed": seed, "status": record.status, "reason": record.reason,
                         "final": record.final, "wall_time_s": record.wall_time_s})  # fmt: skip
            out.write_text(json.dumps({"settings": settings, "recipes": {k: list(v[:3]) for k, v in RECIPES.items()},
                                       "environment": environment(), "runs": runs}, indent=1))  # fmt: skip
    rows, first = [], None
    for name in args.recipes:
        mine = [r for r in runs if r["recipe"] == name and r["status"] == "complete"]
        scores, times = [r["final"][task.score] for r in mine], [r["wall_time_s"] for r in mine]
        if len(scores) < 2:
            continue
        n, sd, time_s = len(scores), statistics.stdev(scores), statistics.fmean(times)
        low, high = sd_interval(sd, n)
        first = first or (sd, time_s, n)
        quieter = stats.f.sf(first[0] ** 2 / sd**2, first[2] - 1, n - 1) if first[:2] != (sd, time_s) else None
        epochs, imgsz, overrides, what = RECIPES[name]
        rows.append(f"| {name} | {epochs} at {imgsz} px | {what} | {n} | {statistics.fmean(scores):.4f} | {sd:.4f} "
                    f"[{low:.4f}, {high:.4f}] | {'-' if quieter is None else f'{quieter:.3f}'} | {time_s / first[1]:.2f} | "
                    f"{sd**2 * time_s / (first[0] ** 2 * first[1]):.2f} |")  # fmt: skip
    failed = [f"{r['recipe']} seed {r['seed']}: {r['reason']}" for r in runs if r["status"] != "complete"]
    publish(__file__, "\n".join([
        f"# Proxy recipes on {dataset_name}: seed noise against cost ({task.score_label})", "", describe_machine(), "",
        f"Command: `python results/benchmarks/proxy_recipes.py --data {args.data} --model {args.model}"
        + (f" --weights {args.weights}" if args.weights else "") + f" --seeds {args.seeds} --recipes {' '.join(args.recipes)}`. "
        "The base model without attention, batch 16, on this machine's CPU, 2 loader workers; the score is best.pt's "
        "re-validation. Time and noise per compute are ratios to the first row (see the script's docstring).", "",
        "| recipe | epochs | what changes | seeds | mean | sd [95% interval] | p, sd below the first's | time x | sd^2 x time, x |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        *(f"- failed: {line}" for line in failed),
    ]) + "\n", f"proxy_recipes_{dataset_name}")  # fmt: skip


if __name__ == "__main__":
    main()
