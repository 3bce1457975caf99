"""The search's final training of the baseline against plain Ultralytics: is the model we hand back at least as good?

For each seed, the un-modified base model is trained twice on the same data with the same epochs, image size and
batch: once as a study's final training does (`search.final.training.train_once`'s budget: `RunConfig.final_budget`, through
`trainers.train.full_train`, from ``--weights`` by the search's index-aware transfer) and once as a user would with
plain Ultralytics (``YOLO(weights).train(...)``, or ``YOLO(model).load(weights)`` when the base YAML's task differs
from the checkpoint's). Both score best.pt's re-validation (Ultralytics' ``final_eval``) on the data's val split.
The report gives each side's mean and sd, their difference with its 95% Welch interval (`search.select.verdict.compare`: a
seed fixes the batches on both sides, but the re-initialised class layer draws differently, so the runs are not
paired), and each run's best epoch and last-epoch score, so a training that fell after its best epoch shows. The
goal is "within noise or better": no difference beyond noise, or ours ahead. Finished runs are kept in the .json and
not trained again; the minutes are as measured on a machine that may have been busy with other work.

The study's data.yaml lists the same images as the user's (trainers.data); here both sides read the user's.

Run: python results/benchmarks/final_vs_ultralytics.py --data ../shared/datasets/bccd/data.yaml --model yolov8n.yaml \\
       --weights ../shared/weights/yolov8n.pt --epochs 10 --imgsz 320 --seeds 3
(writes final_vs_ultralytics_<dataset>.md and .json)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from machine import describe_machine, prepared_work, publish, training_parser

HERE = Path(__file__).parent


def ours(args, base: dict, seed: int, folder: Path, task) -> dict:
    """The study's final training of the baseline (its budget from `RunConfig.final_budget`)."""
    from search.config import RunConfig
    from spaces import Placement
    from trainers.train import full_train

    config = RunConfig(data=args.data, model=args.model, weights=args.weights, final_epochs=args.epochs,
                       final_imgsz=args.imgsz, proxy_batch=args.batch, seed=seed, device="cpu").resolved()
    record = full_train(Placement(), base, config.data, config.final_budget, folder, config.weights, config.insertion)
    return {"status": record.status, "reason": record.reason, "final": record.final, "curve": curve(folder, task),
            "train_args": config.final_budget.train_args(), "wall_time_s": record.wall_time_s}


def plain(args, seed: int, folder: Path, task) -> dict:
    """What a user runs: Ultralytics' own training from the checkpoint, nothing of ours in between."""
    import time

    from ultralytics import YOLO

    model = YOLO(args.weights) if task.name == "detect" else YOLO(args.model).load(args.weights)
    start = time.perf_counter()
    model.train(data=str(Path(args.data).resolve()), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=seed,
                device="cpu", workers=2, project=str(folder.parent), name=folder.name, exist_ok=True, plots=False)
    metrics = model.trainer.metrics  # best.pt's re-validation (final_eval)
    final = {m.name: float(metrics[m.key]) for m in task.metrics}
    return {"status": "complete", "reason": "", "final": final, "curve": curve(folder, task),
            "wall_time_s": time.perf_counter() - start}


def curve(folder: Path, task) -> list[float]:
    """The task's score after each epoch, from the run's results.csv."""
    key = next(m.key for m in task.metrics if m.name == task.score)
    rows = list(csv.DictReader((folder / "results.csv").open()))
    return [float({k.strip(): v for k, v in row.items()}[key]) for row in rows]


def main() -> None:
    args = training_parser(__doc__, epochs=10, imgsz=320, batch=16, seeds=3).parse_args()
    dataset_name, work = prepared_work("final-vs-ultralytics", args.data)
    out = HERE / f"final_vs_ultralytics_{dataset_name}.json"
    from search.study.provenance import environment
    from spaces import load_base
    from spaces.tasks import task_of

    base = load_base(args.model)
    task = task_of(base)
    settings = {"data": str(Path(args.data).resolve()), "model": args.model, "weights": str(Path(args.weights).resolve()),
                "epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch}
    saved = json.loads(out.read_text()) if out.is_file() else {}
    runs = saved.get("runs", []) if saved.get("settings") == settings else []
    done = {(r["side"], r["seed"]) for r in runs}
    for seed, side in ((s, side) for s in range(args.seeds) for side in ("ours", "plain")):
        if (side, seed) in done:
            continue
        folder = work / f"{side}-seed{seed}"
        run = ours(args, base, seed, folder, task) if side == "ours" else plain(args, seed, folder, task)
        runs.append({"side": side, "seed": seed, **run})
        out.write_text(json.dumps({"settings": settings, "environment": environment(), "runs": runs}, indent=1))
    publish(__file__, report(args, dataset_name, runs, task), f"final_vs_ultralytics_{dataset_name}")


def report(args, dataset_name: str, runs: list[dict], task) -> str:
    """The Markdown report: per-seed rows, each side's mean ± sd and the paired difference with its interval."""
    import numpy as np

    score = {(r["side"], r["seed"]): r["final"][task.score] for r in runs if r["status"] == "complete"}
    seeds = sorted({s for side, s in score if (("ours" if side == "plain" else "plain"), s) in score})
    rows = []
    for r in sorted(runs, key=lambda r: (r["seed"], r["side"])):
        c = r["curve"]
        best = int(np.argmax(c)) + 1 if c else None
        rows.append(f"| {r['seed']} | {r['side']} | {r['final'].get(task.score, float('nan')):.4f} | {best} of {len(c)} | "
                    f"{c[best - 1]:.4f} | {c[-1]:.4f} | {r['wall_time_s'] / 60:.1f} |")
    lines = [f"# The final training against plain Ultralytics on {dataset_name} ({task.score_label})", "", describe_machine(), "",
             f"Command: `python results/benchmarks/final_vs_ultralytics.py --data {args.data} --model {args.model} --weights "
             f"{args.weights} --epochs {args.epochs} --imgsz {args.imgsz} --batch {args.batch} --seeds {args.seeds}`. "
             "ours: the study's final training of the baseline (`RunConfig.final_budget`: Ultralytics' recipe); plain: "
             "`YOLO(weights).train(...)` with the same epochs, image size, batch, seed and data. Score: best.pt re-validated "
             "on the val split; the curve columns are the score after each epoch (results.csv).", "",
             "| seed | side | best.pt | best epoch | score there | last epoch | minutes |", "| --- | --- | --- | --- | --- | --- | --- |",
             *rows, ""]
    if len(seeds) >= 2:
        from search.select.verdict import compare, verdict_line

        ours_scores, plain_scores = [score["ours", s] for s in seeds], [score["plain", s] for s in seeds]
        found = compare(ours_scores, plain_scores, 0.95)  # Welch's t: a seed fixes the batches, not the head's init
        lines += [f"- ours {np.mean(ours_scores):.4f} ± {np.std(ours_scores, ddof=1):.4f}, plain {np.mean(plain_scores):.4f} ± "
                  f"{np.std(plain_scores, ddof=1):.4f} ({len(seeds)} seeds each)",
                  f"- ours against plain: {verdict_line(found, task.score_label)}",
                  f"- with {len(seeds)} seeds a side the interval is {found.high - found.low:.4f} wide: a difference smaller "
                  "than about half of that cannot be excluded", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
