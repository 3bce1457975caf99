"""Header for benchmark reports: date, machine and library versions, so figures can be reread."""

from __future__ import annotations

from search.provenance import environment, machine_text, versions_text


def describe_machine(env: dict | None = None) -> str:
    """Markdown lines: UTC date, CPU/GPU, cores, Python and package versions (of ``env``, a recorded
    `environment()`, e.g. the GPU machine's; this machine's now when None)."""
    env = env or environment()
    return "\n".join([f"- date: {env['date']}", f"- machine: {machine_text(env)}", f"- {versions_text(env)}"])


def publish(script: str, text: str) -> None:
    """Write a benchmark's markdown report beside its script (``x.py`` -> ``x.md``) and print it."""
    from pathlib import Path

    Path(script).with_suffix(".md").write_text(text)
    print(text)
