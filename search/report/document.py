"""``report.md`` and ``report.html``: the sections in reading order, each a function of one `Report`."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

from search.report.context import Report, read_report
from search.report.diagnosis import diagnostics_section
from search.report.fidelity import proxy_section
from search.report.importance import importance_section, pareto_section
from search.report.latency_section import latency_section
from search.report.outcome import confirmation_section, deployment_section, final_section
from search.report.plots import write_plots
from search.report.summary import header, leaderboard_section, other_trials
from search.study.attributes import attribute_columns

TRIALS_CSV = "trials.csv"
SECTIONS = (header, leaderboard_section, other_trials, confirmation_section, final_section, deployment_section, latency_section,
            proxy_section, diagnostics_section, importance_section, pareto_section)


HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72em; margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


IMAGE_SOURCE = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')


def inline_images(html: str, folder: Path) -> str:
    """Every ``<img src="x.png">`` of a file in ``folder`` becomes a base64 data URI."""

    def data_uri(match: re.Match) -> str:
        image = folder / match.group(2)
        if match.group(2).startswith("data:") or not image.is_file():
            return match.group(0)
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{encoded}{match.group(3)}"

    return IMAGE_SOURCE.sub(data_uri, html)


def write_html(markdown_text: str, folder: Path, title: str) -> Path:
    """``report.html``: the Markdown report as one self-contained page (tables, inlined PNGs, inline CSS)."""
    body = inline_images(markdown.markdown(markdown_text, extensions=["tables"], output_format="html"), folder)
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_trials_csv(report: Report, folder: Path | None = None) -> bool:
    """``trials.csv``: one row per trial (Optuna's ``trials_dataframe``): number, state, value(s) (the
    search's score, of COMPLETE trials), ``last_epoch_fitness`` (Ultralytics' fitness at the last epoch
    trained, pruned trials included), the sampled parameters (``params_*``), the trial's placement and metrics (the
    task's, then `search.study.attributes.CSV_ATTRIBUTES`, ``params`` being the model's parameter count), into
    ``folder`` (default: the study folder); False without trials."""
    folder = folder or report.folder
    frame = report.study.trials_dataframe(multi_index=False)
    names = report.study.metric_names or []  # Optuna names value columns after them; the file keeps one schema
    frame = frame.rename(columns={f"value_{n}": "value" for n in names} if len(names) == 1 else
                         {f"values_{n}": f"values_{i}" for i, n in enumerate(names)})
    if frame.empty:
        (folder / TRIALS_CSV).unlink(missing_ok=True)
        return False
    # One measure a column: value(s) is the score of COMPLETE trials only (Optuna gives a pruned trial its last
    # reported epoch fitness there); the fitness of the last epoch every trial trained has a column of its own.
    values = [c for c in frame.columns if c.startswith("value")]
    frame.loc[frame["state"] != "COMPLETE", values] = None
    last = {t.number: t.intermediate_values[max(t.intermediate_values)] for t in report.study.trials if t.intermediate_values}
    frame["last_epoch_fitness"] = frame["number"].map(last)
    attrs = attribute_columns(report.task.metric_names)
    kept = ["number", "state"] + [c for c in frame.columns if c in {"datetime_start", "datetime_complete", "last_epoch_fitness"}
                                  | set(attrs) or c.startswith(("value", "params_"))]
    frame[kept].rename(columns=attrs).to_csv(folder / TRIALS_CSV, index=False)
    return True


def write_report(study_dir: str | Path, storage: str | None = None, out: str | Path | None = None) -> Path:
    """Write ``report.md``, ``report.html``, trials.csv and the PNG plots into ``out`` (default: ``study_dir``, which
    is only read otherwise: a read-only study is reported elsewhere); returns the .md path. ``storage``: the study's
    URL with its password, when run.yaml's (kept without) is not enough."""
    report = read_report(study_dir, storage)
    folder = Path(out) if out is not None else report.folder
    folder.mkdir(parents=True, exist_ok=True)
    report.files = write_plots(report, folder) | {TRIALS_CSV: write_trials_csv(report, folder)}
    text = "\n".join(line for section in SECTIONS for line in section(report)).rstrip() + "\n"
    path = folder / "report.md"
    path.write_text(text, encoding="utf-8")
    write_html(text, folder, f"Attention placement search: {report.study.study_name}")
    return path
