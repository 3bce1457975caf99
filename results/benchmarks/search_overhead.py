"""The search's own overhead per trial: everything a trial costs except Ultralytics' training and
validation (ask, the placement, duplicate and twin checks, the model YAML, building the model,
parameters and GFLOPs, weight transfer, the pruner, tell, progress), on a 100-trial study.

A stand-in replaces only ``ultralytics.YOLO.train``: it calls our callbacks for each epoch with a
score drawn from the placement (seeded), as Ultralytics' trainer would, so the search, the pruner and
`trainers.train.train_candidate` run as they do in a real search. A trial's overhead is the time between
two consecutive tells (the study's own timestamps); the first trials and the last are compared to see
whether it grows with the number of finished trials. The reference is the median wall time of the
28 real 5-epoch CPU proxy trials in pretrained_insertion.json (bccd from yolov8n.pt, 2 cores).

Run: python results/benchmarks/search_overhead.py [--trials 100] [--sampler tpe] [--name search_overhead]
(writes <name>.md and <name>.json). It drives only `python -m search run` options, so an older checkout
runs it too: PYTHONPATH=<checkout> python results/benchmarks/search_overhead.py --name search_overhead_before
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from machine import describe_machine, publish

HERE = Path(__file__).parent
WINDOW = 10  # trials compared at the start and at the end of the study


def _stand_in_train(self, **kwargs) -> None:
    """What ``YOLO.train`` does for our callbacks, without training: per epoch a seeded score for this
    placement (a curve rising to it), then Ultralytics' final re-validation."""
    layers = {k: v for k, v in self.model.yaml.items() if k != "yaml_file"}  # the placement's layers, not the trial's path
    rng = random.Random(hashlib.sha1(json.dumps(layers, sort_keys=True).encode()).hexdigest())
    target = rng.uniform(0.3, 0.6)
    losses = {"box_loss": 1.0, "cls_loss": 1.0, "dfl_loss": 1.0}
    trainer = SimpleNamespace(model=self.model, ema=None, epoch=0, tloss=None, fitness=0.0, metrics={},
                              label_loss_items=lambda tloss, prefix: {f"{prefix}/{k}": v for k, v in losses.items()})
    ours = [cb for event in ("on_train_epoch_end", "on_fit_epoch_end") for cb in self.callbacks[event]
            if "train_candidate" in cb.__qualname__]
    end_of_epoch, end_of_fit = ours
    epochs = kwargs["epochs"]
    for epoch in range(epochs):
        score = target * (epoch + 1) / epochs + rng.gauss(0, 0.01)
        trainer.epoch, trainer.fitness = epoch, score
        trainer.metrics = {"metrics/precision(B)": 0.6, "metrics/recall(B)": 0.5, "metrics/mAP50(B)": score + 0.2,
                           "metrics/mAP50-95(B)": score, **{f"val/{k}": v for k, v in losses.items()}}
        end_of_epoch(trainer)
        end_of_fit(trainer)
    end_of_fit(trainer)  # Ultralytics' final_eval of best.pt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--sampler", default="tpe", help="tpe (its own cost grows with the study) or random")
    parser.add_argument("--name", default="search_overhead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="overhead-"))
    from trainers.offline import prepare_ultralytics

    prepare_ultralytics(work / "config")
    import subprocess

    import optuna
    from ultralytics import YOLO

    import search
    from search.cli import main as cli
    from search.study.provenance import environment
    from trainers.data import make_toy_dataset

    YOLO.train = _stand_in_train
    data = make_toy_dataset(work / "toy", n_train=16, n_val=8, imgsz=64)
    start = time.perf_counter()
    code = cli(["run", "--data", str(data), "--out", str(work), "--study", "s", "--trials", str(args.trials), "--no-final",
                "--sampler", args.sampler, "--proxy-epochs", "5", "--proxy-imgsz", "64", "--device", "cpu",
                "--loader-workers", "0", "--quiet"])
    total = time.perf_counter() - start
    assert code == 0, f"the search exited {code}"
    checkout = Path(search.__file__).resolve().parents[1]
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{work / 's' / 'study.db'}")
    done = sorted(t.datetime_complete for t in study.trials if t.datetime_complete)
    cycles = [(b - a).total_seconds() for a, b in zip(done, done[1:])]  # one tell to the next
    counted = sum(1 for t in study.trials if not {"duplicate_of", "infeasible"} & set(t.user_attrs))
    runs = json.loads((HERE / "pretrained_insertion.json").read_text())["runs"]
    trial_s = statistics.median(r["wall_time_s"] for r in runs if r["status"] == "complete")
    first, last = statistics.median(cycles[:WINDOW]), statistics.median(cycles[-WINDOW:])
    per_trial = total / counted
    result = {"environment": environment(), "commit": commit, "sampler": args.sampler,
              "trials_counted": counted, "trials_told": len(study.trials), "total_s": total, "per_counted_trial_s": per_trial,
              "cycle_median_s": statistics.median(cycles), "first_window_s": first, "last_window_s": last,
              "reference_trial_s": trial_s, "share_of_trial": per_trial / trial_s}
    (HERE / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    publish(__file__, "\n".join([
        f"# The search's own overhead per trial ({args.name})", "", describe_machine(), "",
        f"Command: `python results/benchmarks/search_overhead.py --trials {args.trials} --sampler {args.sampler} --name "
        f"{args.name}` (stand-in for Ultralytics' training and validation only; the in-process executor, sampler "
        f"{args.sampler}, median pruner, 5 proxy epochs), on the code of commit {commit or 'unknown'}.", "",
        "| figure | value |", "| --- | --- |",
        f"| trials counted / told (told includes repeats and infeasible proposals) | {counted} / {len(study.trials)} |",
        f"| whole command | {total:.1f} s |",
        f"| overhead per counted trial | {per_trial:.3f} s |",
        f"| median time from one tell to the next | {statistics.median(cycles):.3f} s |",
        f"| ... over the first {WINDOW} tells / the last {WINDOW} | {first:.3f} s / {last:.3f} s |",
        f"| one real 5-epoch CPU proxy trial (median of pretrained_insertion.json) | {trial_s:.0f} s |",
        f"| overhead as a share of that trial | {100 * per_trial / trial_s:.2f}% |", "",
    ]), args.name)


if __name__ == "__main__":
    main()
