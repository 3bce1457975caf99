"""The report's latency section, when the study measured it (`search.study.latency_probe`): how it was measured and how
stable a ratio is on this machine, each candidate's latency beside its score, the limit, and the decision's
latency; `search.report.plots` draws the score against latency with the Pareto front and the limit (``latency.png``).
`spaces` (Ultralytics) is imported where the decision's placement is read."""

from __future__ import annotations

from optuna.trial import FrozenTrial

from search.report.context import Report
from search.report.text import metric, placement_text, table
from search.study.attributes import StudyView, TrialView
from trainers.latency import DEVICE_NAMES, describe

PLOT = "latency.png"
SHOWN = 15  # candidates the table lists, best score first


def timed_trials(report: Report) -> list[FrozenTrial]:
    """Trained trials with a latency figure, best score first (the baseline among them)."""
    groups = report.groups
    return [t for t in ([groups.baseline] if groups.baseline else []) + groups.ranked if TrialView(t).latency_ratio is not None]


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency ratio, score) points no other point beats on both (lower latency, higher score), by latency."""
    front, best = [], float("-inf")
    for ratio, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if score > best:
            front.append((ratio, score))
            best = score
    return front


def latency_section(report: Report) -> list[str]:
    measured = StudyView(report.study).latency_baseline
    if not measured:
        return []
    config, score = report.config, report.task.score
    itself = measured["self"]
    lines = ["## Latency", "",
             f"Measured before each candidate trained, {describe(config.latency_device, itself['threads'])}, batch 1 at "
             f"{config.final_imgsz} px, each candidate interleaved with the baseline in {itself['rounds']} rounds (median ratio, "
             f"95% bootstrap interval). The baseline takes {measured['ms']:.1f} ms; timed against itself it gave "
             f"{itself['ratio']:.3f}x [{itself['low']:.3f}, {itself['high']:.3f}], the spread of a ratio on this machine.", ""]
    limits = [f"--max-slowdown {config.max_slowdown:g}" if config.max_slowdown is not None else "",
              f"--max-latency-ms {config.max_latency_ms:g}" if config.max_latency_ms is not None else ""]
    slow = [t for t in report.groups.infeasible if TrialView(t).latency_ratio is not None]
    if any(limits):
        lines += [f"Limit {' and '.join(filter(None, limits))}: {len(slow)} proposed placement(s) over it, never trained.", ""]
    timed = timed_trials(report)
    rows = [[v.trial.number, placement_text(v.trial), metric(v.metric(score)), f"{v.latency_ms:.1f}",
             f"{v.latency_ratio:.3f} [{v.latency_interval[0]:.3f}, {v.latency_interval[1]:.3f}]"] for v in map(TrialView, timed[:SHOWN])]
    lines += table(["trial", "placement", f"{report.task.score_label} (proxy)", "latency ms", "x baseline [95%]"], rows) + [""]
    decision = report.decision
    if decision:
        from spaces import Placement

        key = Placement.from_dict(decision.placement).key  # the baseline's figure is cached too, at ratio 1
        ratio = (StudyView(report.study).latency_cache.get(key) or {}).get("ratio")
        if ratio is not None:
            lines += [f"The exported model ({decision.placement_str}) runs at {ratio:.3f}x the baseline's "
                      f"{DEVICE_NAMES[config.latency_device]} latency "
                      f"({ratio * measured['ms']:.1f} ms); {decision.sentence(score, report.task.score_label)}", ""]
    if report.files.get(PLOT):
        lines += [f"![{report.task.score_label} against latency]({PLOT})", ""]
    return lines
