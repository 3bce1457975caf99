"""Header for benchmark reports (date, machine and library versions, so figures can be reread) and the small
helpers several benchmarks share."""

from __future__ import annotations

from pathlib import Path

from search.study.provenance import environment, machine_text, versions_text


def describe_machine(env: dict | None = None) -> str:
    """Markdown lines: UTC date, CPU/GPU, cores, Python and package versions (of ``env``, a recorded
    `environment()`, e.g. the GPU machine's; this machine's now when None)."""
    env = env or environment()
    return "\n".join([f"- date: {env['date']}", f"- machine: {machine_text(env)}", f"- {versions_text(env)}"])


def publish(script: str, text: str, name: str | None = None) -> None:
    """Write a benchmark's markdown report beside its script (``x.py`` -> ``x.md``, or ``name.md``
    for a script that reports several settings) and print it."""
    path = Path(script)
    (path.with_name(f"{name}.md") if name else path.with_suffix(".md")).write_text(text)
    print(text)


def prepared_work(prefix: str, data: str) -> tuple[str, Path]:
    """(dataset name, scratch folder ``<tmp>/<prefix>-<dataset>``) of a benchmark that trains on ``data`` (a data.yaml or
    an ImageFolder), with
    Ultralytics made offline-safe there first (as every search does)."""
    import tempfile

    path = Path(data).resolve()
    name = path.name if path.is_dir() else path.parent.name  # a classifier's ImageFolder, or a data.yaml's folder
    work = Path(tempfile.gettempdir()) / f"{prefix}-{name}"
    from trainers.offline import prepare_ultralytics

    prepare_ultralytics(work / "config")
    return name, work


def sd_interval(sd: float, n: int) -> tuple[float, float]:
    """95% interval of a seed sd measured on ``n`` runs (chi-square on n - 1 degrees of freedom)."""
    from scipy import stats

    return tuple(sd * ((n - 1) / stats.chi2.ppf(q, n - 1)) ** 0.5 for q in (0.975, 0.025))


def r_interval(r: float, n: int) -> tuple[float, float]:
    """95% interval of a correlation ``r`` measured on ``n`` pairs (Fisher's z, sd 1 / sqrt(n - 3)); nan below 4."""
    import math

    if n < 4:
        return float("nan"), float("nan")
    z, half = math.atanh(min(max(r, -0.999999), 0.999999)), 1.96 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def training_parser(doc: str, **budget: int):
    """An argument parser (described by ``doc``'s first line) with what a benchmark that trains the base model
    needs: ``--data`` (a data.yaml), ``--model`` (a base YAML) and ``--weights`` (a checkpoint to start from); and an
    int option for each of ``budget``'s names with its default (``epochs=10`` gives ``--epochs``, default 10)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", required=True, help="an Ultralytics data.yaml")
    parser.add_argument("--model", required=True, help="the base model's YAML, e.g. yolov8n-obb.yaml")
    parser.add_argument("--weights", help="a checkpoint every run starts from (a detection one may start any task)")
    for name, default in budget.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    return parser
