"""Proxy fidelity on a finished study: `python -m search validate-proxy <study> --k K`, with the
figures written beside this script. Run after bccd_search.py:
python results/benchmarks/proxy_fidelity.py /tmp/bench/bccd-cpu --k 2   (writes proxy_fidelity.md)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import optuna
from machine import describe_machine, publish

from search.config import load_study_config, storage_url_of


def _score(value: float | None) -> str:
    return "failed" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--k", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "search", "validate-proxy", str(args.study_dir), "--k", str(args.k)],
                          capture_output=True, text=True)  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    config = load_study_config(args.study_dir)
    result = optuna.load_study(study_name=config.study, storage=storage_url_of(args.study_dir)).user_attrs["proxy_validation"]
    rows = [f"| {r['trial']} | {r['placement_str']} | {_score(r['proxy'])} | {_score(r['full'])} |" for r in result["rows"]]
    rho = "undefined" if result["spearman"] is None else f"{result['spearman']:+.3f}"
    interval = "none (too few candidates)" if not result["interval"] else f"[{result['interval'][0]:+.2f}, {result['interval'][1]:+.2f}]"
    chance = "" if result.get("p_value") is None else f"; p = {result['p_value']:.3f} that the proxy ranks this well by chance"
    text = "\n".join([
        "# Proxy fidelity: proxy against full training", "", describe_machine(),
        f"- command: `python results/benchmarks/proxy_fidelity.py {args.study_dir} --k {args.k}` (exit {done.returncode}, {minutes:.1f} min)",
        f"- study `{config.study}`; proxy {result['proxy_budget']}; full {result['full_budget']}", "",
        "| trial | placement | proxy mAP50-95 | full mAP50-95 |", "| --- | --- | --- | --- |", *rows, "",
        f"Spearman rho = **{rho}** over {result['n']} candidates, 95% interval {interval}{chance}.", "",
    ])  # fmt: skip
    publish(__file__, text)


if __name__ == "__main__":
    main()
