"""Where and with what a result was made: UTC date, machine and library versions.

A study records it when a run starts (`search.study.start.start_search`), so its report says which
Ultralytics, torch and Optuna trained the trials and on which hardware; the benchmark scripts under
``results/benchmarks/`` head their reports with the same facts. Torch is imported inside `environment` alone: the
report words a recorded environment without it.
"""

from __future__ import annotations

import datetime
import os
import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("torch", "torchvision", "ultralytics", "timm", "optuna", "ray", "numpy", "pandas")


def environment() -> dict:
    """UTC date (minutes), CPU architecture and core count, GPU name or "none", Python and package versions."""
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "-"
    return {
        "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(), "packages": versions,
    }


def machine_text(env: dict) -> str:
    """``x86_64, 2 CPU cores, GPU: none``"""
    return f"{env['machine']}, {env['cpus']} CPU cores, GPU: {env['gpu']}"


def versions_text(env: dict) -> str:
    """``python 3.11.7; torch 2.14.1, ...``"""
    return f"python {env['python']}; " + ", ".join(f"{name} {v}" for name, v in env["packages"].items())
