"""Header for benchmark reports: date, machine and library versions, so figures can be reread."""

from __future__ import annotations

from search.provenance import environment, machine_text, versions_text


def describe_machine(env: dict | None = None) -> str:
    """Markdown lines: UTC date, CPU/GPU, cores, Python and package versions (of ``env``, a recorded
    `environment()`, e.g. the GPU machine's; this machine's now when None)."""
    env = env or environment()
    return "\n".join([f"- date: {env['date']}", f"- machine: {machine_text(env)}", f"- {versions_text(env)}"])


def publish(script: str, text: str, name: str | None = None) -> None:
    """Write a benchmark's markdown report beside its script (``x.py`` -> ``x.md``, or ``name.md``
    for a script that reports several settings) and print it."""
    from pathlib import Path

    path = Path(script)
    (path.with_name(f"{name}.md") if name else path.with_suffix(".md")).write_text(text)
    print(text)
