"""Proxy fidelity on a finished study, at the study's proxy budget and at other ones:
`python -m search validate-proxy <study> --k K [--proxy-epochs E --proxy-imgsz S]` per budget,
with the study report's comparison written beside this script. Run after bccd_search.py:
python results/benchmarks/proxy_fidelity.py /tmp/bench/bccd-cpu --k 4 --full-seeds 2 --budgets 5x160 15x160
(writes proxy_fidelity.md, or NAME.md with --name NAME; full and proxy runs are cached in the study, so a rerun only reads them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from machine import describe_machine, publish
from search.config import load_study_config
from search.report import read_report
from search.report.fidelity import proxy_section


def budget(text: str) -> list[str]:
    """``15x160`` -> the validate-proxy options of 15 epochs at 160 px."""
    epochs, imgsz = text.split("x")
    return ["--proxy-epochs", str(int(epochs)), "--proxy-imgsz", str(int(imgsz))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--full-seeds", type=int, default=1)
    parser.add_argument("--budgets", nargs="*", default=[], help="other proxy budgets as EPOCHSxIMGSZ, e.g. 5x160")
    parser.add_argument("--name", default="proxy_fidelity", help="the report's name beside this script (NAME.md)")
    args = parser.parse_args()
    options = ["--k", str(args.k), "--full-seeds", str(args.full_seeds)]
    commands = [[sys.executable, "-m", "search", "validate-proxy", str(args.study_dir), *options, *extra]
                for extra in [[]] + [budget(b) for b in args.budgets]]
    exits = [subprocess.run(command, capture_output=True, text=True).returncode for command in commands]
    config = load_study_config(args.study_dir)
    budgets = f" --budgets {' '.join(args.budgets)}" if args.budgets else ""
    text = "\n".join([
        "# Proxy fidelity: proxy against full training, at several proxy budgets", "", describe_machine(),
        f"- command: `python results/benchmarks/proxy_fidelity.py {args.study_dir} {' '.join(options)}{budgets} --name {args.name}`",
        f"- runs `python -m search validate-proxy {args.study_dir} {' '.join(options)}` with each budget (exit codes {exits})",
        f"- study `{config.study}` on `{config.data}`; seed {config.seed}", "",
        *proxy_section(read_report(args.study_dir))[2:],
    ])
    publish(__file__, text, name=args.name)


if __name__ == "__main__":
    main()
