"""Seed noise of the baseline's proxy score on a task's real dataset: the un-modified base model trained
with N seeds at one proxy budget, as the search's trials train (`trainers.train.train_candidate` on the
study-style proxy data), scored on the task's own score (re-validated best.pt), with the sd's 95% interval
(chi-square) and the seeds a gain of 0.01 would need (`search.select.power`). This is the noise a search on that
task must beat; bccd's is in seed_noise.md.

Run: python results/benchmarks/task_seed_noise.py --data ../shared/datasets/tiger-pose/data.yaml \\
       --model yolov8n-pose.yaml --weights ../shared/weights/yolov8n.pt --seeds 4 --epochs 5 --imgsz 320
(writes task_seed_noise_<dataset>.md and .json; finished seeds are kept in the .json and not trained again)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from machine import describe_machine, prepared_work, publish, sd_interval, training_parser

HERE = Path(__file__).parent


def main() -> None:
    args = training_parser(__doc__, seeds=4, epochs=5, imgsz=320, batch=16).parse_args()
    dataset_name, work = prepared_work("task-seed-noise", args.data)
    out = HERE / f"task_seed_noise_{dataset_name}.json"
    from search.select.power import seeds_needed
    from search.study.provenance import environment
    from spaces import Placement, load_base
    from spaces.tasks import task_of
    from trainers.data import build_proxy_data, load_dataset
    from trainers.train import Budget, train_candidate

    base = load_base(args.model)
    task = task_of(base)
    proxy = build_proxy_data(load_dataset(args.data, task), work / "proxy", args.imgsz)
    settings = {"data": str(Path(args.data).resolve()), "model": args.model, "weights": args.weights, "epochs": args.epochs,
                "imgsz": args.imgsz, "batch": args.batch}
    saved = json.loads(out.read_text()) if out.is_file() else {}
    runs = saved.get("runs", []) if saved.get("settings") == settings else []
    for seed in range(len(runs), args.seeds):
        budget = Budget(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=2, seed=seed, device="cpu")
        record = train_candidate(Placement(), base, proxy, budget, work / f"seed{seed}", weights=args.weights, insertion="gated")
        runs.append({"seed": seed, "status": record.status, "reason": record.reason, "final": record.final,
                     "wall_time_s": record.wall_time_s, "transfer": record.transfer})
        out.write_text(json.dumps({"settings": settings, "environment": environment(), "runs": runs}, indent=1))
    scores = [r["final"][task.score] for r in runs if r["status"] == "complete"]
    n = len(scores)
    sd = statistics.stdev(scores) if n > 1 else None
    low, high = sd_interval(sd, n) if sd else (None, None)
    needed = seeds_needed(0.01, sd, 0.05) if sd else None  # one-sided 5%, as the report states it
    rows = [f"| {r['seed']} | {r['status']} | " + " | ".join(f"{r['final'].get(m.name, float('nan')):.4f}" for m in task.metrics)
            + " |" for r in runs]
    publish(__file__, "\n".join([
        f"# Seed noise of the baseline on {dataset_name} ({task.name}, {task.score_label})", "", describe_machine(), "",
        f"Command: `python results/benchmarks/task_seed_noise.py --data {args.data} --model {args.model}"
        + (f" --weights {args.weights}" if args.weights else "") + f" --seeds {args.seeds} --epochs {args.epochs} "
        f"--imgsz {args.imgsz}`. The base model without attention, {args.epochs} epochs at {args.imgsz} px, batch "
        f"{args.batch}, on the CPU; {runs[0]['transfer'] or 'from scratch'}.", "",
        "| seed | status | " + " | ".join(m.label for m in task.metrics) + " |",
        "| --- | --- | " + " | ".join("---" for _ in task.metrics) + " |", *rows, "",
        f"{task.score_label} over {n} seeds: mean {statistics.fmean(scores):.4f}, sd "
        + (f"{sd:.4f} (95% interval {low:.4f} to {high:.4f}); a paired test of equal seeds per side needs about "
           f"{needed} seeds per side to detect +0.01 at 80% power (one-sided 5%, correlation 0)." if sd else "undefined (one run)."), "",
    ]), f"task_seed_noise_{dataset_name}")


if __name__ == "__main__":
    main()
