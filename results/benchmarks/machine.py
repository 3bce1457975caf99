"""Header for benchmark reports: date, machine and library versions, so figures can be reread."""

from __future__ import annotations

import datetime
import os
import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("torch", "torchvision", "ultralytics", "timm", "optuna", "ray", "numpy", "pandas")


def describe_machine() -> str:
    """Markdown lines: UTC date, CPU/GPU, cores, Python and package versions."""
    import torch

    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} -")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return "\n".join(
        [
            f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, GPU: {gpu}",
            f"- python {platform.python_version()}; " + ", ".join(versions),
        ]
    )


def publish(script: str, text: str) -> None:
    """Write a benchmark's markdown report beside its script (``x.py`` -> ``x.md``) and print it."""
    from pathlib import Path

    Path(script).with_suffix(".md").write_text(text)
    print(text)
