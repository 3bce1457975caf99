"""A real search on ../shared/datasets/bccd at a CPU-sized budget, with its report copied here.

From scratch (default): searched without pruning so that every candidate's full proxy curve is kept
for `pruner_choice.py`. With --pretrained: the documented main path, fine-tuning from
../shared/weights/yolov8n.pt with the default proxy (5 epochs at 320 px), pruner and insertion.
Run: python results/benchmarks/bccd_search.py [--pretrained] [--out /tmp/bench] [--device cpu]
(writes bccd_search.md and bccd_search_report.html, the study's self-contained report; with
--pretrained bccd_pretrained_search.md and bccd_pretrained_search_report.html)
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
DATA = SHARED / "datasets" / "bccd" / "data.yaml"
OPTIONS = {
    "bccd_search": ["--trials", "10", "--proxy-epochs", "10", "--proxy-imgsz", "160", "--pruner", "none",
                    "--confirm-top", "2", "--confirm-budget", "12", "--final-epochs", "20", "--final-imgsz", "160"],
    "bccd_pretrained_search": ["--model", str(SHARED / "weights" / "yolov8n.pt"), "--trials", "5", "--confirm-top", "1",
                               "--confirm-budget", "6", "--final-epochs", "10", "--final-imgsz", "320"],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/bench")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pretrained", action="store_true", help="fine-tune from yolov8n.pt (the main path)")
    args = parser.parse_args()
    name = "bccd_pretrained_search" if args.pretrained else "bccd_search"
    report, study = HERE / f"{name}_report.html", "bccd-pretrained" if args.pretrained else "bccd-cpu"
    command = [sys.executable, "-m", "search", "run", "--data", str(DATA), "--out", args.out, "--study", study,
               "--device", args.device, *OPTIONS[name], "--quiet"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the search failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    study_dir = Path(args.out) / study
    shutil.copy(study_dir / "report.html", report)  # self-contained: plots inline, says when and where it ran
    text = "\n".join([
        f"# A real search on bccd ({'fine-tuned from yolov8n.pt' if args.pretrained else 'from scratch'}, CPU, small budget)",
        "", describe_machine(),
        f"- command: `python results/benchmarks/bccd_search.py{' --pretrained' if args.pretrained else ''} --device "
        f"{args.device}`, i.e. `python -m search run --data bccd/data.yaml {' '.join(OPTIONS[name]).replace(str(SHARED), '../shared')}`",
        f"- exit code {done.returncode}; wall time {seconds / 60:.1f} min", "",
        f"The study's own report, plots inline: [{report.name}]({report.name}).", "",
        "```", *done.stdout.strip().splitlines()[-6:], *done.stderr.strip().splitlines()[-3:], "```", "",
    ])  # fmt: skip
    (HERE / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
