"""Pages of the documentation site generated from the code at build time (mkdocs-gen-files), so they cannot drift:
the command-line reference from the parser's own help, the attention modules table from the registry, and the
committed benchmark reports (results/benchmarks/*.md, with the HTML reports they link) as pages the guide links."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]


def cli_page() -> str:
    """`python -m search <command> --help` of every command, as the parser prints it."""
    from search.cli import _parser

    os.environ["COLUMNS"] = "110"  # argparse wraps help to the terminal's width
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["# Command line", "", "`python -m search --help` lists the commands; `--help` on each prints what follows. "
             "Bad input ends in one line on stderr and exit code 2, before anything trains; Ctrl-C ends in one line "
             "saying what was kept (exit code 130).", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in commands.choices.items():
        lines += [f"## {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def modules_page() -> str:
    """The attention registry (`spaces.attention.ATTENTION`) as a table: name, class, searchable settings, paper."""
    from trainers.offline import prepare_ultralytics

    prepare_ultralytics(Path(tempfile.mkdtemp()) / "config")  # offline, before Ultralytics is first imported
    from spaces.attention import ATTENTION

    intro = (ROOT / "docs" / "reference" / "modules_intro.md").read_text()
    rows = ["| name | class (YAML name) | searched settings (default first) | paper |", "| --- | --- | --- | --- |"]
    for t in ATTENTION.values():
        settings = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in t.params.items()) or "none"
        rows.append(f"| {t.name} | `{t.module.__module__}.{t.module.__name__}` | {settings} | {t.paper} |")
    return intro + "\n" + "\n".join(rows) + "\n"


with mkdocs_gen_files.open("reference/cli.md", "w") as page:
    page.write(cli_page())
with mkdocs_gen_files.open("reference/modules.md", "w") as page:
    page.write(modules_page())
reports = sorted(p for p in (ROOT / "results" / "benchmarks").iterdir() if p.suffix in (".md", ".html"))
for report in reports:
    with mkdocs_gen_files.open(f"benchmarks/{report.name}", "w") as page:
        page.write(report.read_text())
with mkdocs_gen_files.open("benchmarks/index.md", "w") as page:
    page.write("# Benchmarks\n\nEvery figure in this site comes from a script in `results/benchmarks/` whose report, with "
               "the date, machine and versions it was measured on, is committed beside it (rerun the command a report "
               "names to measure again):\n\n"
               + "".join(f"- [{r.stem}]({r.name})\n" for r in reports if r.suffix == ".md"))
