"""A real search on ../shared/datasets/bccd at a CPU-sized budget, with its report copied here.

Searched without pruning so that every candidate's full proxy curve is kept for
`pruner_choice.py`. Run: python results/benchmarks/bccd_search.py [--out /tmp/bench] [--device cpu]
(writes bccd_search.md and bccd_search_report.html, the study's self-contained report)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine import describe_machine, publish

HERE = Path(__file__).resolve().parent
REPORT = HERE / "bccd_search_report.html"
DATA = HERE.parents[2] / "shared" / "datasets" / "bccd" / "data.yaml"
OPTIONS = ["--trials", "10", "--proxy-epochs", "10", "--proxy-imgsz", "160", "--pruner", "none",
           "--confirm-top", "2", "--confirm-budget", "12", "--final-epochs", "20", "--final-imgsz", "160", "--quiet"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/bench")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    command = [sys.executable, "-m", "search", "run", "--data", str(DATA), "--out", args.out, "--study", "bccd-cpu",
               "--device", args.device, *OPTIONS]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the search failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    study_dir = Path(args.out) / "bccd-cpu"
    shutil.copy(study_dir / "report.html", REPORT)  # self-contained: plots inline, says when and where it ran
    text = "\n".join([
        "# A real search on bccd (CPU, small budget)", "", describe_machine(),
        f"- command: `python results/benchmarks/bccd_search.py --device {args.device}`, i.e. "
        f"`python -m search run --data bccd/data.yaml {' '.join(OPTIONS)}`",
        f"- exit code {done.returncode}; wall time {seconds / 60:.1f} min", "",
        f"The study's own report, plots inline: [{REPORT.name}]({REPORT.name}).", "",
        "```", *done.stdout.strip().splitlines()[-6:], *done.stderr.strip().splitlines()[-3:], "```", "",
    ])  # fmt: skip
    publish(__file__, text)


if __name__ == "__main__":
    main()
