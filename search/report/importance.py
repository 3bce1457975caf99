"""Sections on the search space itself: parameter importances and, for a multi-objective study, the
Pareto front."""

from __future__ import annotations

from search.report.context import Report
from search.report.text import SECOND_OBJECTIVE, metric, placement_text, table


def importance_section(report: Report) -> list[str]:
    """Each parameter's importance for mAP50-95 (Optuna's default evaluator), or why there are none."""
    lines = ["## Parameter importances", ""]
    if not report.importances:
        return lines + [report.importances_missing, ""]
    lines += table(["parameter", "importance"], [[k, metric(v)] for k, v in report.importances.items()]) + [""]
    return lines + (["![parameter importances](importance.png)", ""] if report.files.get("importance.png") else [])


def pareto_section(report: Report) -> list[str]:
    """The Pareto front of a multi-objective study."""
    study, config = report.study, report.config
    if len(study.directions) < 2:
        return []
    second = SECOND_OBJECTIVE.get(config.objective, "second objective")
    lines = ["## Pareto front", ""]
    front = sorted(study.best_trials, key=lambda t: -t.values[0])
    if not front:
        return lines + ["No trial has completed yet.", ""]
    digits = 0 if config.objective == "map+params" else 2
    rows = [[t.number, placement_text(t), metric(t.values[0]), f"{t.values[1]:,.{digits}f}"] for t in front]
    return lines + table(["trial", "placement", "mAP50-95", second], rows) + [""]
