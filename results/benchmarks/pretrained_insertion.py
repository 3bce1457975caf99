"""Fine-tuning bccd from the COCO-pretrained yolov8n.pt (or, with --scratch, training it from scratch)
with attention inserted plainly or behind a zero-initialised gate (`spaces.gate`), through the
product's own `train_candidate`.

Arms: the baseline; SE and CBAM after the 4 backbone blocks; ECA on the 3 neck paths into Detect;
each attention arm plain and gated. Every run is scored as the search scores a trial (mAP50-95 of
best.pt re-validated), and its whole record (every epoch, gates included) is kept in
``pretrained_insertion.json`` beside this script, so the seed-noise analysis
(`seed_noise.py`) reads the same runs. Runs are cached under --work, and runs already in the committed
JSON are reused: rerun the same command to finish an interrupted benchmark or to add seeds.

Each attention arm is compared with its other insertion and with the baseline by Welch's t on the
seeds both have (`search.select.verdict.compare`, 95% interval), so "no difference beyond noise" is stated
as such.

Run: python results/benchmarks/pretrained_insertion.py [--seeds 4] [--extra-seeds 6] [--epochs 5] [--imgsz 320] [--no-train]
     (--extra-seeds: seeds for the baseline and the gated arms beyond --seeds, for seed_noise.py)
     python results/benchmarks/pretrained_insertion.py --scratch --arms "SE backbone" --seeds 3 --extra-seeds 3 --epochs 20 --imgsz 160
     (from scratch: yolov8n.yaml, each placement's base layers initialised from the seed; writes scratch_insertion.{json,md})
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from machine import describe_machine, publish
from search.study.provenance import environment
from trainers.offline import prepare_ultralytics

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATA = SHARED / "datasets" / "bccd" / "data.yaml"
WEIGHTS = SHARED / "weights" / "yolov8n.pt"
BACKBONE = ["backbone.2", "backbone.4", "backbone.6", "sppf.8"]  # after the 4 backbone C2f blocks
NECK = ["neck.15", "neck.18", "neck.21"]
PLACEMENTS = {"baseline": {}, "SE backbone": {p: ["se"] for p in BACKBONE},
              "CBAM backbone": {p: ["cbam"] for p in BACKBONE}, "ECA neck": {p: ["eca"] for p in NECK}}


def arms(names: list[str] | None = None) -> list[tuple[str, str, dict]]:
    """(arm label, insertion, placement modules): the baseline, then each placement of ``names``
    (default: all) plain and gated."""
    out = [("baseline", "gated", {})]
    for name, modules in PLACEMENTS.items():
        if modules and (names is None or name in names):
            out += [(f"{name} plain", "plain", modules), (f"{name} gated", "gated", modules)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4, help="seeds for every arm")
    parser.add_argument("--extra-seeds", type=int, default=6, help="seeds for the baseline and gated arms")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", default="/tmp/pretrained-insertion")
    parser.add_argument("--no-train", action="store_true", help="publish the runs done so far, train nothing")
    parser.add_argument("--scratch", action="store_true", help="train yolov8n.yaml from scratch instead of fine-tuning")
    parser.add_argument("--arms", nargs="*", choices=[n for n, m in PLACEMENTS.items() if m], help="placements (default: all)")
    args = parser.parse_args()
    stem = _stem(args)
    weights = None if args.scratch else WEIGHTS
    work = Path(args.work)
    prepare_ultralytics(work / "config")
    from spaces import Placement, load_base
    from trainers.data import build_proxy_data, load_dataset
    from trainers.train import Budget, TrialRecord, train_candidate

    base = load_base("yolov8n.yaml" if args.scratch else WEIGHTS)
    proxy = build_proxy_data(load_dataset(DATA), work / "proxy", args.imgsz)
    plan = [(seed, arm) for seed in range(max(args.seeds, args.extra_seeds)) for arm in arms(args.arms)
            if seed < args.seeds or arm[0] == "baseline" or arm[1] == "gated"]
    committed = Path(__file__).with_name(f"{stem}.json")
    earlier = {(r["arm"], r["seed"]): r for r in json.loads(committed.read_text())["runs"]} if committed.is_file() else {}
    runs = []
    for seed, (label, insertion, modules) in plan:  # seed-major: a stopped run still has whole seeds
        folder = work / f"{stem}-{label.replace(' ', '_')}-seed{seed}-{args.epochs}x{args.imgsz}"
        saved = folder / "record.json"
        if not saved.is_file() and (label, seed) in earlier:  # measured before, on another machine or work folder
            folder.mkdir(parents=True, exist_ok=True)
            fields = set(TrialRecord.__dataclass_fields__)
            saved.write_text(json.dumps({k: v for k, v in earlier[(label, seed)].items() if k in fields}))
        if not saved.is_file() and args.no_train:
            continue
        if not saved.is_file():
            budget = Budget(epochs=args.epochs, imgsz=args.imgsz, batch=16, seed=seed, device=args.device)
            record = train_candidate(Placement.of(modules), base, proxy, budget, folder, weights=weights, insertion=insertion)
            saved.write_text(json.dumps(record.to_dict()))
            print(f"{label} seed {seed}: {record.status} {record.final.get('map50_95')}", flush=True)
        record = TrialRecord(**json.loads(saved.read_text()))
        runs.append({"arm": label, "insertion": insertion, "seed": seed, **record.to_dict(), "gates_best": record.gates})
    # Where and with what it was published (every run so far was trained on that machine and versions).
    committed.write_text(json.dumps({"environment": environment(), "runs": runs}))
    publish(__file__, report(runs, args), name=stem)


def _stem(args: argparse.Namespace) -> str:
    """The name of this benchmark's outputs (``<stem>.json``, ``<stem>.md``)."""
    return "scratch_insertion" if args.scratch else "pretrained_insertion"


def _stats(values: list[float]) -> str:
    sd = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.4f}{sd}"


def _scores(runs: list[dict], label: str) -> dict[int, float]:
    """Seed -> mAP50-95 of the arm's completed runs."""
    return {r["seed"]: r["final"]["map50_95"] for r in runs if r["arm"] == label and r["status"] == "complete"}


def comparisons(runs: list[dict], names: list[str] | None) -> list[str]:
    """Per placement: gated against plain, and each against the baseline (Welch's t, 95%, on the
    seeds both sides have)."""
    from search.select.verdict import compare, verdict_line

    lines = []
    for name, _, _ in [a for a in arms(names) if a[1] == "plain"]:
        placement = name.removesuffix(" plain")
        pairs = [(f"{placement} gated", f"{placement} plain"), (f"{placement} plain", "baseline"), (f"{placement} gated", "baseline")]
        for a, b in pairs:
            sa, sb = _scores(runs, a), _scores(runs, b)
            seeds = sorted(set(sa) & set(sb))
            if len(seeds) >= 2:
                line = verdict_line(compare([sa[s] for s in seeds], [sb[s] for s in seeds], 0.95))
                lines.append(f"- {a} against {b} ({len(seeds)} shared seeds): {line}")
    return lines


def report(runs: list[dict], args: argparse.Namespace) -> str:
    """Markdown: one row per arm with per-seed mAP50-95, mean ± sd, precision, recall and gates,
    then the comparisons."""
    rows = []
    for label, _, _ in arms(args.arms):
        done = [r for r in runs if r["arm"] == label and r["status"] == "complete"]
        if not done:
            continue
        scores = [r["final"]["map50_95"] for r in done]
        gates = [statistics.fmean(r["gates_best"].values()) for r in done if r.get("gates_best")]
        rows.append(
            f"| {label} | {len(done)} | {', '.join(f'{s:.3f}' for s in scores)} | {_stats(scores)} | "
            f"{_stats([r['final']['precision'] for r in done])} | {_stats([r['final']['recall'] for r in done])} | "
            f"{_stats(gates) if gates else '-'} |"
        )
    start = ("start: yolov8n.yaml from scratch, each seed initialising the base layers of every arm alike" if args.scratch
             else "start: ../shared/weights/yolov8n.pt, every base tensor transferred by index")
    title = "Training bccd from scratch" if args.scratch else "Fine-tuning bccd from yolov8n.pt"
    options = (" --scratch" if args.scratch else "") + (f" --arms {' '.join(repr(a) for a in args.arms)}" if args.arms else "")
    return "\n".join([
        f"# {title}: attention inserted plainly or behind a zero gate", "", describe_machine(),
        f"- command: `python results/benchmarks/pretrained_insertion.py{options} --seeds {args.seeds} --extra-seeds "
        f"{args.extra_seeds} --epochs {args.epochs} --imgsz {args.imgsz}`",
        f"- budget: {args.epochs} epochs at {args.imgsz} px, batch 16, nbs 16, Ultralytics' default optimizer choice; "
        f"data: ../shared/datasets/bccd (292 train / 73 val images); {start}",
        "- score: mAP50-95 of best.pt re-validated (what a search trial is scored on); "
        "P and R of the same validation; gate: mean learned gate of the arm's modules at the best epoch "
        "(0: module unused, 1: module as published)", f"- raw runs: `{_stem(args)}.json`", "",
        "| arm | runs | mAP50-95 per seed | mean ± sd | precision | recall | gate |",
        "| --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        "Comparisons (Welch's t on the seeds both arms have, 95% interval of the difference in mAP50-95):", "",
        *comparisons(runs, args.arms), "",
    ])


if __name__ == "__main__":
    main()
