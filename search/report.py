"""The study report: ``report.md`` and its plots, written into the study folder.

`write_report` reads the Optuna study (the single source of truth, `search.study`) and the run's
``run.yaml``, and writes, in order: what was searched and how many trials ended how; the baseline
and a leaderboard of completed trials; the pruned, failed and infeasible ones; the full retraining
of the winner against the baseline with a plain verdict; parameter importances; the Pareto front
of multi-objective studies. Plots are PNGs beside the report (matplotlib, no display, no network).

"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import RunConfig, load_study_config, storage_url_of
from search.study import first_baseline, rank_key

METRICS = (("precision", "P"), ("recall", "R"), ("map50", "mAP50"), ("map50_95", "mAP50-95"))
TIE = 5e-5  # mAP50-95 differences below this print as +0.0000: a tie, not a win or a loss
SECOND_OBJECTIVE = {"map+params": "parameters", "map+gflops": "GFLOPs"}


# --- reading the study ---------------------------------------------------------------------------


def load_study(study_dir: str | Path) -> tuple[RunConfig, optuna.Study]:
    """The run configuration and the Optuna study of a study folder."""
    config = load_study_config(study_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return config, optuna.load_study(study_name=config.study, storage=storage_url_of(study_dir))


@dataclass
class Trials:
    """The study's trials sorted into the groups the report shows."""

    baseline: FrozenTrial | None = None
    ranked: list[FrozenTrial] = field(default_factory=list)  # COMPLETE, best first, baseline excluded
    complete: list[FrozenTrial] = field(default_factory=list)
    pruned: list[FrozenTrial] = field(default_factory=list)
    failed: list[FrozenTrial] = field(default_factory=list)
    infeasible: list[FrozenTrial] = field(default_factory=list)
    interrupted: list[FrozenTrial] = field(default_factory=list)
    unfinished: list[FrozenTrial] = field(default_factory=list)  # RUNNING or WAITING: a live study


def sort_trials(trials: list[FrozenTrial]) -> Trials:
    """Group trials by outcome; infeasible and interrupted ones are apart (they do not count)."""
    groups = Trials()
    for t in trials:
        if t.user_attrs.get("infeasible"):
            groups.infeasible.append(t)
        elif t.user_attrs.get("interrupted"):
            groups.interrupted.append(t)
        elif t.state == TrialState.COMPLETE:
            groups.complete.append(t)
        elif t.state == TrialState.PRUNED:
            groups.pruned.append(t)
        elif t.state == TrialState.FAIL:
            groups.failed.append(t)
        else:
            groups.unfinished.append(t)
    groups.baseline = first_baseline(trials)
    groups.ranked = sorted((t for t in groups.complete if t is not groups.baseline), key=rank_key)
    return groups


# --- formatting ----------------------------------------------------------------------------------


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


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def placement_text(trial: FrozenTrial) -> str:
    """The trial's placement, with a note when its result was reused from an identical trial."""
    text = trial.user_attrs.get("placement_str") or str(trial.params)
    twin = trial.user_attrs.get("duplicate_of")
    return text if twin is None else f"{text} (same as #{twin})"


# --- sections ------------------------------------------------------------------------------------


def header(config: RunConfig, study: optuna.Study, groups: Trials) -> list[str]:
    """Title, what was searched, trial counts by outcome and the time it took."""
    objective = "maximize mAP50-95"
    if config.objective in SECOND_OBJECTIVE:
        objective += f", minimize {SECOND_OBJECTIVE[config.objective]} (Pareto search)"
    counts = (f"{len(groups.complete)} complete, {len(groups.pruned)} pruned, {len(groups.failed)} failed, "
              f"{len(groups.infeasible)} infeasible (not trained), {len(groups.interrupted)} interrupted (retried)")  # fmt: skip
    reused = sum(t.user_attrs.get("duplicate_of") is not None for t in groups.complete + groups.pruned)
    if reused:
        counts += f"; {reused} of them reused the result of an identical placement"
    if groups.unfinished:
        counts += f"; {len(groups.unfinished)} running or waiting"
    model = config.model + (f" from weights {config.weights}" if config.weights else "")
    return [
        f"# Attention placement search: {study.study_name}",
        "",
        f"- base model: {model}",
        f"- dataset: {config.data}",
        f"- objective: {objective}",
        f"- proxy training: {config.proxy_epochs} epochs at {config.proxy_imgsz} px, batch {config.proxy_batch}, "
        f"{config.proxy_fraction:.0%} of the training images; sampler {config.sampler}, pruner {config.pruner}",
        f"- trials: {counts}",
        f"- wall time: {wall_time(study.trials, groups)}",
        "",
    ]


def wall_time(trials: list[FrozenTrial], groups: Trials) -> str:
    """Training time of the trials (reused duplicates not counted twice) and the clock time of the search."""
    trained = [t for t in groups.complete + groups.pruned + groups.failed + groups.interrupted
               if t.user_attrs.get("duplicate_of") is None]  # fmt: skip
    training = sum(t.user_attrs.get("wall_time_s") or 0.0 for t in trained)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    clock = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    return f"{duration(training)} training in {len(trained)} proxy runs; {duration(clock)} from first to last trial"


def trial_row(trial: FrozenTrial, baseline: FrozenTrial | None, label: str) -> list[object]:
    """One leaderboard row: metrics, difference to the baseline, sizes and time."""
    attrs = trial.user_attrs
    base = baseline.user_attrs if baseline else {}
    return [
        label, trial.number, placement_text(trial), *(metric(attrs.get(k)) for k, _ in METRICS),
        signed(difference(attrs.get("map50_95"), base.get("map50_95"))),
        count(attrs.get("params"), base.get("params")), metric_or_dash(attrs.get("gflops"), 2),
        duration(attrs.get("wall_time_s")),
    ]  # fmt: skip


def metric_or_dash(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def leaderboard(groups: Trials) -> list[str]:
    """The baseline, then the completed trials best first."""
    lines = ["## Leaderboard (proxy trainings)", ""]
    if groups.baseline is None and not groups.ranked:
        return lines + ["No trial has completed yet.", ""]
    head = ["rank", "trial", "placement", *(name for _, name in METRICS), "Δ mAP50-95", "params (vs baseline)",
            "GFLOPs", "wall time"]  # fmt: skip
    rows = []
    if groups.baseline is not None:
        rows.append(trial_row(groups.baseline, groups.baseline, "baseline"))
    rows += [trial_row(t, groups.baseline, str(i)) for i, t in enumerate(groups.ranked, 1)]
    note = "Δ mAP50-95 is against the baseline's proxy score." if groups.baseline else "No baseline trial has completed."
    return lines + table(head, rows) + ["", note, ""]


def other_trials(groups: Trials) -> list[str]:
    """Short lists of the pruned, failed, infeasible and interrupted trials."""
    lines = ["## Trials that did not complete", ""] if groups.pruned or groups.failed or groups.infeasible or groups.interrupted else []
    if groups.pruned:
        lines += ["### Pruned", ""] + [f"- #{t.number} {placement_text(t)}: {pruned_text(t)}" for t in groups.pruned] + [""]
    if groups.failed:
        lines += ["### Failed", ""]
        lines += [f"- #{t.number} {placement_text(t)}: {t.user_attrs.get('reason') or 'no reason recorded'}" for t in groups.failed]
        lines += [""]
    if groups.infeasible:
        lines += ["### Infeasible (rejected before training, not counted)", ""]
        lines += [f"- #{t.number} {placement_text(t)}: {t.user_attrs['infeasible']}" for t in groups.infeasible] + [""]
    if groups.interrupted:
        numbers = ", ".join(f"#{t.number}" for t in groups.interrupted)
        lines += [f"Interrupted by a stopped run and queued again (not counted): {numbers}.", ""]
    return lines


def pruned_text(trial: FrozenTrial) -> str:
    """When a pruned trial stopped, and its last fitness."""
    steps = trial.intermediate_values
    epoch = trial.user_attrs.get("pruned_at") or (max(steps) if steps else None)
    text = f"pruned at epoch {epoch}" if epoch is not None else "pruned"
    return text + (f" (fitness {metric(steps[max(steps)])})" if steps else "")


def final_section(study: optuna.Study) -> list[str]:
    """The full retraining of the winner next to the baseline's, and the verdict."""
    lines = ["## Full retraining", ""]
    summary = study.user_attrs.get("final")
    if not summary:
        return lines + ["No final retraining yet: it runs after the search (`python -m search resume <dir>`).", ""]
    win, base = summary.get("final") or {}, summary.get("baseline") or {}
    rows = [[name, metric(base.get(k)), metric(win.get(k)), signed(difference(win.get(k), base.get(k)))] for k, name in METRICS]
    rows += [
        ["params", count(base.get("params"), None), count(win.get("params"), base.get("params")), ""],
        ["GFLOPs", metric_or_dash(base.get("gflops"), 2), metric_or_dash(win.get("gflops"), 2), ""],
        ["epochs", base.get("epochs", "–"), win.get("epochs", "–"), ""],
        ["wall time", duration(base.get("wall_time_s")), duration(win.get("wall_time_s")), ""],
    ]  # fmt: skip
    title = f"winner: trial {summary.get('trial')} ({summary.get('placement_str')})"
    return lines + [title, ""] + table(["", "baseline", "winner", "difference"], rows) + ["", verdict(summary), ""]


def verdict(summary: dict) -> str:
    """One plain sentence: did attention beat the baseline after full retraining?"""
    win, base = summary.get("final") or {}, summary.get("baseline") or {}
    who = f"trial {summary.get('trial')} ({summary.get('placement_str')})"
    for name, record in (("winner", win), ("baseline", base)):
        if record.get("status") != "complete":
            return f"No verdict: the {name}'s full retraining did not complete ({record.get('reason') or 'no reason recorded'})."
    if not (summary.get("placement") or {}).get("modules") and not (summary.get("placement") or {}).get("dropped"):
        return "Attention lost: no placement beat the un-modified base model in the search, so the baseline is kept."
    diff = difference(win.get("map50_95"), base.get("map50_95"))
    if diff is None:
        return "No verdict: mAP50-95 is missing from a full retraining."
    scores = f"{metric(win['map50_95'])} mAP50-95 against the baseline's {metric(base['map50_95'])}"
    if diff >= TIE:
        return f"Attention won: {who} reached {scores} after full retraining ({signed(diff)})."
    if diff <= -TIE:
        return f"Attention lost: {who} reached {scores} after full retraining ({signed(diff)}); keep the baseline."
    return f"Attention made no difference: {who} reached {scores} after full retraining, a tie; the baseline is as good."


def importances(study: optuna.Study, groups: Trials) -> tuple[dict[str, float], str]:
    """Parameter importances over COMPLETE trials, or an empty dict and why there are none."""
    complete = groups.complete
    if len(complete) < 2:
        return {}, f"Parameter importances need at least 2 complete trials; this study has {len(complete)}."
    names = {name for t in complete for name in t.params}
    if not any(len({repr(t.params.get(n)) for t in complete}) > 1 for n in names):
        return {}, "Parameter importances are absent: every complete trial has the same parameters."
    if len({t.values[0] for t in complete}) < 2:
        return {}, "Parameter importances are absent: every complete trial scored the same mAP50-95."
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the default evaluator (PED-ANOVA) is "experimental"
            return optuna.importance.get_param_importances(study, target=target), ""
    except Exception as e:  # noqa: BLE001 (any evaluator error becomes one line of the report)
        return {}, f"Parameter importances could not be computed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def importance_section(found: dict[str, float], why: str, plot: str | None) -> list[str]:
    lines = ["## Parameter importances", ""]
    if not found:
        return lines + [why, ""]
    lines += table(["parameter", "importance"], [[k, metric(v)] for k, v in found.items()]) + [""]
    return lines + ([f"![parameter importances]({plot})", ""] if plot else [])


def pareto_section(study: optuna.Study, config: RunConfig) -> list[str]:
    """The Pareto front of a multi-objective study."""
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


# --- plots ---------------------------------------------------------------------------------------


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure  # no pyplot: no backend, no display, no global state

    fig = Figure(figsize=(width, height), dpi=100, layout="tight")
    return fig, fig.subplots()


def plot_map_by_trial(groups: Trials, path: Path) -> bool:
    """mAP50-95 by trial number: completed as dots, pruned as x at their last fitness, baseline as a line."""
    from matplotlib.ticker import MaxNLocator

    done = sorted(groups.complete, key=lambda t: t.number)
    done = [t for t in done if t.user_attrs.get("map50_95", t.values[0]) is not None]
    pruned = [t for t in groups.pruned if t.intermediate_values]
    if not done and not pruned:
        return False
    fig, ax = _figure()
    if done:
        ax.plot([t.number for t in done], [t.user_attrs.get("map50_95", t.values[0]) for t in done], "o", label="complete")
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.plot([t.number for t in pruned], last, "x", color="tab:red", label="pruned (last fitness)")
    base = groups.baseline.user_attrs.get("map50_95") if groups.baseline else None
    if base is not None:
        ax.axhline(base, color="gray", linestyle="--", label=f"baseline {base:.4f}")
    ax.set(xlabel="trial", ylabel="mAP50-95 (proxy)", title="mAP50-95 by trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best", fontsize="small")
    fig.savefig(path)
    return True


def plot_precision_recall(groups: Trials, path: Path) -> bool:
    """Precision against recall of the completed trials, the baseline highlighted."""
    points = [t for t in groups.complete if t.user_attrs.get("precision") is not None and t.user_attrs.get("recall") is not None]
    if not points:
        return False
    fig, ax = _figure(5.0, 4.5)
    others = [t for t in points if t is not groups.baseline]
    if others:
        ax.scatter([t.user_attrs["recall"] for t in others], [t.user_attrs["precision"] for t in others], label="trials")
    if groups.baseline in points:
        b = groups.baseline.user_attrs
        ax.scatter([b["recall"]], [b["precision"]], marker="*", s=200, color="tab:orange", label="baseline", zorder=3)
    ax.set(xlabel="recall", ylabel="precision", title="Precision and recall (proxy)", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    ax.legend(loc="best", fontsize="small")
    fig.savefig(path)
    return True


def plot_importances(found: dict[str, float], path: Path) -> bool:
    """Horizontal bars, most important on top."""
    if not found:
        return False
    names = list(found)[::-1]
    fig, ax = _figure(6.4, 1.0 + 0.35 * len(names))
    ax.barh(names, [found[n] for n in names])
    ax.set(xlabel="importance", title="Parameter importances")
    fig.savefig(path)
    return True


# --- the report ----------------------------------------------------------------------------------


def write_report(study_dir: str | Path) -> Path:
    """Write ``report.md`` and its PNG plots into ``study_dir``; returns the report's path."""
    folder = Path(study_dir)
    config, study = load_study(folder)
    groups = sort_trials(study.get_trials(deepcopy=False))
    found, why = importances(study, groups)
    plots = {
        "map_by_trial.png": plot_map_by_trial(groups, folder / "map_by_trial.png"),
        "precision_recall.png": plot_precision_recall(groups, folder / "precision_recall.png"),
        "importance.png": plot_importances(found, folder / "importance.png"),
    }
    for name, made in plots.items():  # a plot from an earlier report must not outlive its data
        if not made:
            (folder / name).unlink(missing_ok=True)
    lines = header(config, study, groups) + leaderboard(groups)
    lines += [f"![{name[:-4]}]({name})\n" for name in ("map_by_trial.png", "precision_recall.png") if plots[name]]
    lines += other_trials(groups) + final_section(study)
    lines += importance_section(found, why, "importance.png" if plots["importance.png"] else None)
    lines += pareto_section(study, config)
    path = folder / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
