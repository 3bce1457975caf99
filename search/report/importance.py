"""Sections on the search space itself: parameter importances and, for a multi-objective study, the
Pareto front."""

from __future__ import annotations

from search.config.objectives import second_objective
from search.report.context import Report
from search.report.text import metric, placement_text, table


def importance_section(report: Report) -> list[str]:
    """Each parameter's importance for the task's score (Optuna's default evaluator), or why there are none."""
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
    second = second_objective(config.objective)
    lines = ["## Pareto front", ""]
    front = sorted(study.best_trials, key=lambda t: -t.values[0])
    if not front:
        return lines + ["No trial has completed yet.", ""]
    rows = [[t.number, placement_text(t), metric(t.values[0]), f"{t.values[1]:,.{second.digits}f}"] for t in front]
    return lines + table(["trial", "placement", report.task.score_label, second.label], rows) + [""]
