"""Formatting shared by the report's sections: metrics, differences, durations, sizes, Markdown tables."""

from __future__ import annotations

import math
import statistics

from optuna.trial import FrozenTrial

from search.study.attributes import TrialView


def metric(value: float | None) -> str:
    """A metric to 4 decimals, or a dash when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4f}"


def signed(value: float | None) -> str:
    """A difference to 4 decimals with its sign."""
    return "–" if value is None else f"{value:+.4f}"


def difference(a: float | None, b: float | None) -> float | None:
    """``a - b``, or None when either is missing."""
    return None if a is None or b is None else a - b


def duration(seconds: float | None) -> str:
    """``12.3 s``, ``4 min 05 s`` or ``2 h 03 min``."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def count(value: float | None, base: float | None, unit: str = "") -> str:
    """A size (parameters, GFLOPs) and its change against the baseline's, in percent."""
    if value is None:
        return "–"
    text = f"{value:,}" if isinstance(value, int) else f"{value:.2f}"
    if base:
        text += f" ({100 * (value - base) / base:+.2f}%)"
    return text + unit


def metric_or_dash(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def mean_sd(values: list[float]) -> str:
    """``0.3133 ± 0.0153`` (sample sd), ``0.3000 (1 run)``, or a dash without values."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{metric(values[0])} (1 run)"
    return f"{metric(statistics.fmean(values))} ± {metric(statistics.stdev(values))}"


def mean_of(values: list[float]) -> str:
    return metric(statistics.fmean(values)) if values else "–"


def sentence(text: str) -> str:
    """``text`` as a sentence: capital first letter, one closing full stop."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "." if text else ""


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def placement_text(trial: FrozenTrial) -> str:
    """The trial's placement, with a note when its result was reused from an identical trial."""
    text = TrialView(trial).placement_str or str(trial.params)
    twin = TrialView(trial).duplicate_of
    return text if twin is None else f"{text} (same as #{twin})"
