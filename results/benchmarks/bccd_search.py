"""A real search on a dataset of ../shared/datasets at a CPU-sized budget, with its report copied here.

bccd from scratch (default): searched without pruning so that every candidate's full proxy curve is kept
for `pruner_choice.py`. With --pretrained: the documented main path, fine-tuning from
../shared/weights/yolov8n.pt with the default proxy (on the CPU 10 epochs at 224 px, short warm-up), pruner,
insertion and usual placements first, at a small trial and race budget.
With --case nuclei-seg | hituav-obb | tiger-pose: a segment, OBB or pose model fine-tuned from the COCO
detector (backbone and neck transfer, the task's head branches start fresh), searched on the task's score.
With --case bccd-cls: a yolov8n-cls classifier from scratch (no -cls checkpoint can be downloaded here) on the
blood-cell crops' ImageFolder, searched on top-1 accuracy (its seed noise: task_seed_noise_bccd-cls.md).
Run: python results/benchmarks/bccd_search.py [--pretrained | --case NAME] [--out /tmp/bench] [--device cpu]
(writes <case>.md and <case>_report.html, the study's self-contained report: bccd_search,
bccd_pretrained_search, nuclei-seg_search, ...)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine import describe_machine

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"
DETECTOR = str(SHARED / "weights" / "yolov8n.pt")
TASK_BUDGET = ["--trials", "4", "--confirm-top", "1", "--confirm-budget", "6",
               "--final-epochs", "5", "--final-imgsz", "320"]
DATASET = {"bccd_search": "bccd", "bccd_pretrained_search": "bccd", "nuclei-seg_search": "nuclei-seg",
           "hituav-obb_search": "hituav-obb", "tiger-pose_search": "tiger-pose", "bccd-cls_search": "bccd-cls"}
OPTIONS = {
    "bccd_search": ["--trials", "10", "--proxy-epochs", "10", "--proxy-imgsz", "160", "--pruner", "none",
                    "--confirm-top", "2", "--confirm-budget", "12", "--final-epochs", "20", "--final-imgsz", "160"],
    # 20 trials: the baseline, the 16 usual placements, 3 of the sampler's; a race of the best 2 within 12 runs
    "bccd_pretrained_search": ["--model", DETECTOR, "--trials", "20", "--confirm-top", "2",
                               "--confirm-budget", "12", "--final-epochs", "10", "--final-imgsz", "320"],
    # up to 369 nuclei an image: above Ultralytics' default max_det of 300, which would cut recall
    "nuclei-seg_search": ["--model", "yolov8n-seg.yaml", "--weights", DETECTOR, *TASK_BUDGET, "--proxy-epochs", "3",
                          "--set", "max_det=400"],
    "hituav-obb_search": ["--model", "yolov8n-obb.yaml", "--weights", DETECTOR, *TASK_BUDGET, "--proxy-epochs", "3"],
    # the pose branch starts fresh: 3 epochs score ~0 keypoint mAP (task_seed_noise_tiger-pose.md), so 10
    "tiger-pose_search": ["--model", "yolov8n-pose.yaml", "--weights", DETECTOR, *TASK_BUDGET, "--proxy-epochs", "10"],
    # the crops are about 20-150 px: 64 px keeps the proxies at seconds an epoch on the CPU
    "bccd-cls_search": ["--model", "yolov8n-cls.yaml", "--trials", "12", "--proxy-epochs", "5", "--proxy-imgsz", "64",
                        "--confirm-top", "2", "--confirm-budget", "16", "--final-epochs", "10", "--final-imgsz", "64"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/bench")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pretrained", action="store_true", help="fine-tune from yolov8n.pt (the main path)")
    parser.add_argument("--case", choices=[name.removesuffix("_search") for name in OPTIONS if not name.startswith("bccd_")])
    args = parser.parse_args()
    name = f"{args.case}_search" if args.case else "bccd_pretrained_search" if args.pretrained else "bccd_search"
    study = {"bccd_search": "bccd-cpu", "bccd_pretrained_search": "bccd-pretrained"}.get(name, args.case)
    folder = SHARED / "datasets" / DATASET[name]
    data = folder / "data.yaml" if (folder / "data.yaml").is_file() else folder  # a classifier's data is the ImageFolder
    report = HERE / f"{name}_report.html"
    command = [sys.executable, "-m", "search", "run", "--data", str(data), "--out", args.out, "--study", study,
               "--device", args.device, *OPTIONS[name], "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the search failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    study_dir = Path(args.out) / study
    shutil.copy(study_dir / "report.html", report)  # self-contained: plots inline, says when and where it ran
    start_from = "fine-tuned from yolov8n.pt" if DETECTOR in OPTIONS[name] else "from scratch"
    flag = f" --case {args.case}" if args.case else " --pretrained" if args.pretrained else ""
    said = [line for line in done.stderr.strip().splitlines() if "warn" not in line.lower()]  # not torch's deprecations
    resolution = [line for line in (study_dir / "report.md").read_text().splitlines() if "cannot be told from noise" in line]
    text = "\n".join([
        f"# A real search on {DATASET[name]} ({start_from}, CPU, small budget)",
        "", describe_machine(),
        f"- command: `python results/benchmarks/bccd_search.py{flag} --device {args.device}`, i.e. `python -m search run "
        f"--data {data.relative_to(SHARED / 'datasets')} {' '.join(OPTIONS[name]).replace(str(SHARED), '../shared')}`",
        f"- exit code {done.returncode}; wall time {seconds / 60:.1f} min", "",
        f"The study's own report, plots inline: [{report.name}]({report.name}).", "",
        "```", *done.stdout.strip().splitlines()[-6:], *said[-3:], "```", "",
        *[f"Resolution (from the report): {line.strip()}" for line in resolution], "",
    ])
    (HERE / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
