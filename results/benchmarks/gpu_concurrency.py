"""Pretrained proxy runs on one GPU, 1, 4 and 8 at a time: runs per hour, and the seed study they make.

Each run is one trial as the search trains it (`trainers.train.train_candidate`: bccd fine-tuned
from yolov8n.pt, 5 epochs at 320 px, batch 16, gated insertion), in a process of its own, all
processes sharing the one GPU, as N trials of a search share it. The runs are the baseline and
three placements (SE and CBAM after the 4 backbone blocks, ECA on the 3 neck paths) on seeds
0, 1, 2, ... taken in that order: the first 2 runs go one at a time, the next 8 four at a time,
the next 16 eight at a time (runs per hour of each phase, wall clock from its first start to its
last end), then more seeds eight at a time until --launch-until seconds have passed. Every run is
kept in ``gpu_concurrency.json`` (the layout of ``pretrained_insertion.json``); the report adds the
seed sd and same-seed correlation of each way of scoring a run (`seed_noise.noise_rows`), for these
runs and for 30-epoch fine-tunes of the same arms (``gpu_full_finetune.json``, ``--epochs 30``).

On the GPU machine (no ../shared there, no polars: see `_polars_stand_in`):
    python results/benchmarks/gpu_concurrency.py --data D/bccd/data.yaml --weights D/yolov8n.pt --out $OUT
Here, to write gpu_concurrency.md from the JSON files it returned (committed beside this script):
    python results/benchmarks/gpu_concurrency.py --publish
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"
PROXY_RUNS, FULL_RUNS = HERE / "gpu_concurrency.json", HERE / "gpu_full_finetune.json"
SAMPLE_S = 5  # seconds between nvidia-smi samples of GPU utilisation and memory
ARMS = {
    "baseline": {},
    "SE backbone gated": {p: ["se"] for p in ("backbone.2", "backbone.4", "backbone.6", "sppf.8")},
    "CBAM backbone gated": {p: ["cbam"] for p in ("backbone.2", "backbone.4", "backbone.6", "sppf.8")},
    "ECA neck gated": {p: ["eca"] for p in ("neck.15", "neck.18", "neck.21")},
}
PHASES = ((1, 2), (4, 8), (8, 16))  # (runs at a time, runs) timed for runs per hour; then more at 8


def _polars_stand_in() -> None:
    """Ultralytics 8.4 imports polars only to read results.csv into the checkpoint it saves
    (`BaseTrainer.read_results_csv`); where polars is not installed (its 54 MB wheel does not fit the
    GPU machine's carry), pandas reads the same file. Training and validation do not touch it."""
    if importlib.util.find_spec("polars") is not None:
        return
    import io
    import types

    import pandas

    class Frame:
        def __init__(self, frame: pandas.DataFrame):
            self.frame = frame

        def to_dict(self, as_series: bool = True) -> dict:
            return self.frame.to_dict(orient="list")

    module = types.ModuleType("polars")
    module.read_csv = lambda data, infer_schema_length=None: Frame(pandas.read_csv(io.BytesIO(data)))
    sys.modules["polars"] = module


def run_one(args: argparse.Namespace) -> None:
    """Child process: train one (arm, seed) and write its record, times and GPU memory to JSON."""
    _polars_stand_in()
    from trainers.offline import prepare_ultralytics

    work = Path(args.work)
    prepare_ultralytics(work / "config")
    import torch

    from spaces import Placement, load_base
    from trainers.train import Budget, train_candidate

    start = time.time()
    budget = Budget(epochs=args.epochs, imgsz=args.imgsz, batch=16, seed=args.seed, device=args.device)
    folder = work / f"{args.arm.replace(' ', '_')}-seed{args.seed}"
    record = train_candidate(Placement.of(ARMS[args.arm]), load_base(args.weights), args.proxy, budget, folder,
                             weights=args.weights, insertion="gated")
    memory = torch.cuda.max_memory_reserved() / 2**30 if torch.cuda.is_available() else 0.0
    run = {"arm": args.arm, "insertion": "gated", "seed": args.seed, **record.to_dict(), "gates_best": record.gates,
           "start": start, "end": time.time(), "gpu_memory_gib": memory}
    (work / "runs" / f"{folder.name}.json").write_text(json.dumps(run))


def schedule(args: argparse.Namespace) -> None:
    """Parent: build the proxy data once, then run the phases; ``--out`` always holds every run finished so far."""
    from trainers.offline import prepare_ultralytics

    work = Path(args.work)
    (work / "runs").mkdir(parents=True, exist_ok=True)
    prepare_ultralytics(work / "config")
    from search.study.provenance import environment
    from trainers.data import build_proxy_data, load_dataset

    t0 = time.time()
    samples = work / "gpu_utilisation.csv"
    sampler = None
    if shutil.which("nvidia-smi"):  # a sample every SAMPLE_S seconds while the phases run
        with open(samples, "w") as sink:
            sampler = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,utilization.gpu,memory.used",
                                        "--format=csv,noheader,nounits", "-l", str(SAMPLE_S)], stdout=sink)
    proxy = build_proxy_data(load_dataset(args.data), work / "proxy", args.imgsz)
    queue = [(arm, seed) for seed in range(args.first_seed, args.max_seeds) for arm in ARMS]
    phases, env = [], environment()

    def save() -> None:
        runs = [json.loads(p.read_text()) for p in sorted((work / "runs").glob("*.json"))]
        result = {"environment": env, "phases": phases, "settings": vars(args), "runs": runs,
                  "gpu_utilisation": _utilisation(samples)}
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / args.name).write_text(json.dumps(result))

    plan = [(args.concurrency, len(queue))] if args.concurrency else [*PHASES, (8, len(queue))]
    for concurrency, count in plan:
        jobs, queue = queue[:count], queue[count:]
        running: list[subprocess.Popen] = []
        phase = {"concurrency": concurrency, "launched": 0, "began": time.time(), "ended": None}
        phases.append(phase)
        while jobs or running:
            still = [p for p in running if p.poll() is None]
            if len(still) < len(running):
                save()
            running = still
            while jobs and len(running) < concurrency and time.time() - t0 < args.launch_until:
                arm, seed = jobs.pop(0)
                command = [sys.executable, __file__, "--child", "--arm", arm, "--seed", str(seed), "--proxy", str(proxy),
                           *(f"--{k}={v}" for k, v in (("weights", args.weights), ("work", work), ("epochs", args.epochs),
                                                        ("imgsz", args.imgsz), ("device", args.device)))]
                with open(work / "children.log", "a") as sink:
                    running.append(subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT))
                phase["launched"] += 1
            if jobs and time.time() - t0 >= args.launch_until:
                jobs = []  # out of time: launch nothing more
            time.sleep(0.5)
        phase["ended"] = time.time()
        save()
        print(f"{phase['launched']} runs at {concurrency} at a time: {phase['ended'] - phase['began']:.0f} s", flush=True)
        if not phase["launched"]:
            break
    if sampler is not None:
        sampler.terminate()


def _utilisation(path: Path) -> list[list[float]]:
    """nvidia-smi's samples in ``path`` as [unix time s, utilisation %, memory used MiB] (its clock is UTC)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        stamp, busy, memory = (field.strip() for field in line.split(","))
        at = datetime.datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        rows.append([at.timestamp(), float(busy), float(memory)])
    return rows


def _busy(samples: list[list[float]], began: float, ended: float) -> str:
    """Median GPU utilisation (nvidia-smi: share of time a kernel ran) over the samples in [began, ended]."""
    inside = [busy for at, busy, _ in samples if began <= at <= ended]
    return f"{statistics.median(inside):.0f}%" if inside else "–"


def _arm_rows(runs: list[dict], label: str) -> list[str]:
    """One row per arm: runs, mean ± sd, P, R, Welch's 95% interval against the baseline, same-seed r."""
    from search.select.verdict import compare

    by_arm = {arm: sorted((r for r in runs if r["arm"] == arm and r["status"] == "complete"), key=lambda r: r["seed"]) for arm in ARMS}
    base = by_arm["baseline"]
    rows = []
    for arm, done in by_arm.items():
        scores = [r["final"]["map50_95"] for r in done]
        text = [f"{statistics.fmean(r['final'][k] for r in done):.3f}" for k in ("precision", "recall")]
        if arm == "baseline":
            rows.append(f"| {label} | {arm} | {len(done)} | {statistics.fmean(scores):.4f} ± {statistics.stdev(scores):.4f} | "
                        f"{' | '.join(text)} | – | – |")
            continue
        welch = compare(scores, [r["final"]["map50_95"] for r in base])
        seeds = sorted({r["seed"] for r in done} & {r["seed"] for r in base})
        paired = compare(*([next(r["final"]["map50_95"] for r in side if r["seed"] == s) for s in seeds] for side in (done, base)),
                         paired=True, pairing=False)
        rows.append(f"| {label} | {arm} | {len(done)} | {statistics.fmean(scores):.4f} ± {statistics.stdev(scores):.4f} | "
                    f"{' | '.join(text)} | {welch.difference:+.4f} [{welch.low:+.4f}, {welch.high:+.4f}], p={welch.p_value:.2f} | "
                    f"{paired.correlation:+.2f} |")
    return rows


def publish_report() -> None:
    """Write gpu_concurrency.md from the committed JSON (and the 30-epoch runs, when present)."""
    from seed_noise import HEADER, LEGEND, noise_rows

    from machine import describe_machine, publish
    from search.select.power import seed_noise

    result = json.loads(PROXY_RUNS.read_text())
    one = next(p for p in result["phases"] if p["concurrency"] == 1)
    per_hour = lambda p: p["launched"] / (p["ended"] - p["began"]) * 3600  # noqa: E731
    speed = [f"| {p['concurrency']} | {p['launched']} | {p['ended'] - p['began']:.0f} | {per_hour(p):.0f} | "
             f"{per_hour(p) / per_hour(one):.1f} | {_busy(result.get('gpu_utilisation', []), p['began'], p['ended'])} |"
             for p in result["phases"]]
    memory = max(r["gpu_memory_gib"] for r in result["runs"])
    full = json.loads(FULL_RUNS.read_text()) if FULL_RUNS.is_file() else {"runs": []}
    regimes = [("5 epochs", result["runs"])] + ([("30 epochs", full["runs"])] if full["runs"] else [])
    noise = []
    for label, runs in regimes:
        seeds, rows = noise_rows([r for r in runs if r["status"] == "complete"], list(ARMS))
        noise += [f"{label}, seeds {seeds[0]}-{seeds[-1]}:", "", HEADER, *rows, ""]
    eights = [(p["began"], p["ended"]) for p in result["phases"] + full.get("phases", []) if p["concurrency"] == 8]
    wall = {label: statistics.fmean(r["end"] - r["start"] for r in runs if any(b <= r["start"] <= e for b, e in eights))
            for label, runs in regimes}
    sd = {label: seed_noise({a: [r["final"]["map50_95"] for r in runs if r["arm"] == a] for a in ARMS})[0]
          for label, runs in regimes}
    cost = [f"{label}: sd {sd[label]:.4f}, {wall[label]:.0f} s a run, sd² x s {sd[label] ** 2 * wall[label]:.4f}" for label in wall]
    text = "\n".join([
        "# Pretrained proxy runs on one GPU: runs per hour at 1, 4 and 8 at a time, and their seed noise", "",
        describe_machine(result["environment"]),
        "- command, on the GPU machine: `python results/benchmarks/gpu_concurrency.py --data .../bccd/data.yaml "
        "--weights .../yolov8n.pt --out $OUT` (12 seeds x 4 arms, 5 epochs), then `... --epochs 30 --max-seeds 2 "
        "--concurrency 8` and `... --epochs 30 --first-seed 2 --max-seeds 4 --concurrency 8` (gpu_full_finetune.json); "
        "here: `python results/benchmarks/gpu_concurrency.py --publish`",
        "- each run: one trial as the search trains it (`train_candidate`, gated insertion), bccd fine-tuned from "
        "yolov8n.pt at 320 px, batch 16, AMP on, 2 dataloader workers, in its own process; the processes share the GPU. "
        "Ray was not measured: its wheel (79 MB) is larger than what the GPU machine takes along (64 MiB). polars "
        "(54 MB) was not installed either; `_polars_stand_in` reads results.csv with pandas for the checkpoint", "",
        "## Runs per hour", "",
        "Wall clock of each phase from its first start to its last end; every run is 5 epochs (the search's default "
        "pretrained proxy). GPU busy: median nvidia-smi utilisation (share of time a kernel ran) over the phase's "
        f"{SAMPLE_S}-s samples. Largest GPU memory one run reserved: {memory:.2f} GiB.", "",
        "| runs at a time | runs | wall s | runs per hour | x one at a time | GPU busy |", "| --- | --- | --- | --- | --- | --- |",
        *speed, "",
        "## Seed noise and arms against the baseline", "",
        "mAP50-95 of best.pt re-validated (the search's score). Interval: Welch's t, 95%, of arm mean - baseline "
        "mean, three arms each tested once (no correction for three tests: none is beyond noise anyway); r: same-seed "
        f"correlation with the baseline. Mean time of one run, 8 at a time, from the trainer's start (Python's start-up "
        f"excluded, which a search pays once per worker): {', '.join(f'{k} {v:.0f} s' for k, v in wall.items())}.", "",
        "| budget | arm | seeds | mAP50-95 mean ± sd | P | R | vs baseline | r |", "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(row for label, runs in regimes for row in _arm_rows(runs, label)), "",
        "What one GPU-second buys (the smaller sd² x time, the more a second of training narrows a mean): "
        + "; ".join(cost) + ".", "", f"- {LEGEND}", "", *noise,
    ])
    publish(__file__, text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(SHARED / "datasets" / "bccd" / "data.yaml"))
    parser.add_argument("--weights", default=str(SHARED / "weights" / "yolov8n.pt"))
    parser.add_argument("--out", default=str(Path(__file__).parent), help="folder for gpu_concurrency.json")
    parser.add_argument("--name", default="gpu_concurrency.json", help="file name of the JSON in --out")
    parser.add_argument("--work", default="/tmp/gpu-concurrency", help="folder for proxy data and runs")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--device", default="0")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--max-seeds", type=int, default=12, help="seeds --first-seed .. this - 1")
    parser.add_argument("--concurrency", type=int, help="run every run this many at a time (no timed phases)")
    parser.add_argument("--launch-until", type=float, default=360.0, help="seconds after start; no run starts later")
    parser.add_argument("--publish", action="store_true", help="write gpu_concurrency.md from the committed JSON; train nothing")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--proxy", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish_report()
    elif args.child:
        run_one(args)
    else:
        schedule(args)


if __name__ == "__main__":
    main()
