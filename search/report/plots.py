"""The report's PNGs (matplotlib, no display, no network): the task's score by trial and the parameter
importances drawn by `optuna.visualization.matplotlib`, precision against recall, the exported
placement on the base model's layers, and the score against measured latency. matplotlib, and Optuna's plots on it,
are imported inside the functions that draw."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

from optuna.importance import BaseImportanceEvaluator

from search.final.decision import Decision
from search.report.context import BaseModel, Report, Trials, position_layer
from search.report.latency_section import PLOT as LATENCY_PLOT
from search.report.latency_section import pareto_front, timed_trials
from search.study.attributes import TrialView
from trainers.latency import DEVICE_NAMES


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure  # no pyplot: no backend, no display, no global state

    fig = Figure(figsize=(width, height), dpi=100, layout="tight")
    return fig, fig.subplots()


@contextmanager
def _optuna_plot(path: Path):
    """A block for one of Optuna's matplotlib plots, which draw on pyplot with their own style sheet:
    style and figure stay inside the block; the function yielded takes the plot's Axes and saves its
    figure to ``path`` when the block ends."""
    import matplotlib
    import matplotlib.pyplot as plt

    drawn = []
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plots are "experimental"; the importances' caveats are the table's
        yield drawn.append
        for ax in drawn:
            ax.figure.savefig(path, bbox_inches="tight")
            plt.close(ax.figure)


def _first_objective(report: Report):
    """Optuna's ``target`` for the task's score: None for a single objective, the first value of a Pareto study."""
    return (lambda t: t.values[0]) if len(report.study.directions) > 1 else None


def plot_map_by_trial(report: Report, path: Path) -> bool:
    """The task's score by trial (Optuna's optimization history: completed trials and the best so far), with
    pruned trials as x at their last fitness and the baseline as a line."""
    from optuna.visualization.matplotlib import plot_optimization_history

    groups = report.groups
    pruned = [t for t in groups.pruned if t.intermediate_values]
    if not groups.complete and not pruned:
        return False
    with _optuna_plot(path) as save:
        ax = plot_optimization_history(report.study, target=_first_objective(report), target_name=f"{report.task.score_label} (proxy)")
        if pruned:
            last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
            ax.plot([t.number for t in pruned], last, "x", color="tab:red", label="pruned (last fitness)")
        base = TrialView(groups.baseline).metric(report.task.score) if groups.baseline else None
        if base is not None:
            ax.axhline(base, color="gray", linestyle="--", label=f"baseline {base:.4f}")
        ax.set_title(f"{report.task.score_label} by trial")
        ax.legend(bbox_to_anchor=(1.02, 1.0), loc="upper left", fontsize="small")
        save(ax)
    return True


def plot_precision_recall(groups: Trials, path: Path) -> bool:
    """Precision against recall of the completed trials, the baseline highlighted."""
    points = [v for v in map(TrialView, groups.complete) if v.metric("precision") is not None and v.metric("recall") is not None]
    if not points:
        return False
    fig, ax = _figure(5.0, 4.5)
    others = [v for v in points if v.trial is not groups.baseline]
    if others:
        ax.scatter([v.metric("recall") for v in others], [v.metric("precision") for v in others], label="trials")
    if groups.baseline in [v.trial for v in points]:
        b = TrialView(groups.baseline)
        ax.scatter([b.metric("recall")], [b.metric("precision")], marker="*", s=200, color="tab:orange", label="baseline", zorder=3)
    ax.margins(0.15)  # zoomed to the trials: on a 0-1 scale they sit in one blob
    ax.set(xlabel="recall", ylabel="precision", title="Precision and recall (proxy)")
    ax.legend(loc="best", fontsize="small")
    fig.savefig(path)
    return True


class _Computed(BaseImportanceEvaluator):
    """Optuna's importance "evaluator" that returns the importances the report already computed
    (`search.report.context.importances`): computed once, and the plot shows what the table does."""

    def __init__(self, importances: dict[str, float]):
        self.importances = importances

    def evaluate(self, study, params=None, *, target=None) -> dict[str, float]:
        return dict(self.importances)


def plot_importances(report: Report, path: Path) -> bool:
    """The parameter importances of the report, drawn by Optuna."""
    from optuna.visualization.matplotlib import plot_param_importances

    if not report.importances:
        return False
    with _optuna_plot(path) as save:
        save(plot_param_importances(report.study, evaluator=_Computed(report.importances), target=_first_objective(report),
                                    target_name=report.task.score_label))
    return True


def placement_marks(placement: dict) -> dict[int, list[tuple[str, str]]]:
    """Base layer index -> [(kind, label)] for the positions of a placement dict."""
    marks: dict[int, list[tuple[str, str]]] = {}
    for name, specs in (placement.get("modules") or {}).items():
        kind, index = position_layer(name)
        marks.setdefault(index, []).append(("fused" if kind == "fused" else "after", "+".join(specs)))
    for name in placement.get("dropped") or []:
        marks.setdefault(position_layer(name)[1], []).append(("drop", "removed"))
    return marks


MARK_STYLE = {  # kind -> (marker, colour, where on the row, legend label)
    "after": (">", "tab:green", 0.5, "attention inserted after the layer"),
    "fused": ("o", "tab:blue", 0.0, "attention fused inside the block"),
    "drop": ("X", "tab:red", 0.0, "block removed"),
}


def plot_placement(decision: Decision | None, base: BaseModel, path: Path) -> bool:
    """The exported model's placement on the base model's layer list, one row per base layer."""
    if not decision or base.missing or not base.layers:
        return False
    placement = decision.placement
    try:
        marks = placement_marks(placement)
    except ValueError:
        return False
    n = len(base.layers)
    fig, ax = _figure(6.4, 1.2 + 0.26 * n)
    backbone = sum(layer.in_backbone for layer in base.layers)
    ax.axhspan(-0.5, backbone - 0.5, color="tab:blue", alpha=0.10, label="backbone")
    ax.axhspan(backbone - 0.5, n - 0.5, color="tab:orange", alpha=0.10, label="head")
    for layer in base.layers:
        ax.text(0.02, layer.index, f"{layer.index:>2}  {layer.module}", va="center", family="monospace", fontsize=8)
    used = set()
    for index, entries in marks.items():
        for slot, (kind, label) in enumerate(entries):
            marker, colour, offset, legend = MARK_STYLE[kind]
            y = index + offset
            x = 0.36 + 0.25 * slot
            ax.plot([x], [y], marker=marker, color=colour, linestyle="", markersize=8, label=None if kind in used else legend)
            ax.text(x + 0.03, y, label, va="center", fontsize=8, color=colour, weight="bold")
            used.add(kind)
    title = (f"Exported model: the baseline (trial {decision.trial}), no attention" if decision.keeps_baseline
             else f"Exported model: trial {decision.trial}, {decision.placement_str}")
    ax.set(xlim=(0, 1), ylim=(n - 0.5, -0.5), title=title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="lower right", fontsize="x-small")
    fig.savefig(path)
    return True


def plot_latency(report: Report, path: Path) -> bool:
    """The task's proxy score against the latency ratio of every timed trial, the Pareto front as a step line
    and the limit as a vertical line; False when nothing was timed."""
    timed = timed_trials(report)
    if not timed:
        return False
    score = report.task.score
    points = [(TrialView(t).latency_ratio, TrialView(t).metric(score)) for t in timed if TrialView(t).metric(score) is not None]
    fig, ax = _figure()
    ax.scatter([p[0] for p in points], [p[1] for p in points], label="trials")
    front = pareto_front(points)
    ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="tab:green", label="Pareto front")
    base = TrialView(report.groups.baseline).metric(score) if report.groups.baseline else None
    if base is not None:
        ax.scatter([1.0], [base], marker="*", s=160, color="tab:orange", label="baseline")
    if report.config.max_slowdown is not None:
        ax.axvline(report.config.max_slowdown, color="tab:red", linestyle="--", label=f"--max-slowdown {report.config.max_slowdown:g}")
    ax.set_xlabel(f"latency, x baseline ({DEVICE_NAMES[report.config.latency_device]}, measured)")
    ax.set_ylabel(f"{report.task.score_label} (proxy)")
    ax.legend()
    fig.savefig(path)
    return True


def write_plots(report: Report, folder: Path | None = None) -> dict[str, bool]:
    """Draw every plot into ``folder`` (default: the study folder); returns PNG name -> drawn. A plot from an earlier
    report whose data is gone is removed."""
    folder = folder or report.folder
    plots = {
        "map_by_trial.png": plot_map_by_trial(report, folder / "map_by_trial.png"),
        "precision_recall.png": plot_precision_recall(report.groups, folder / "precision_recall.png"),
        "importance.png": plot_importances(report, folder / "importance.png"),
        "placement.png": plot_placement(report.decision, report.base, folder / "placement.png"),
        LATENCY_PLOT: plot_latency(report, folder / LATENCY_PLOT),
    }
    for name, made in plots.items():
        if not made:
            (folder / name).unlink(missing_ok=True)
    return plots
