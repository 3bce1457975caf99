"""Sections on what was searched and how the trials ended: the header, the leaderboard of proxy
trainings (baseline first, duplicates and repeat seeds folded into the trial they repeat) and the
trials that did not complete. pandas is imported inside `leaderboard_frame`, the one function that builds a frame."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial, TrialState

from search.config.objectives import second_objective
from search.report.context import Report, Trials
from search.report.text import count, difference, duration, metric, metric_or_dash, placement_text, signed, table
from search.study.attributes import StudyView, TrialView
from search.study.provenance import machine_text, versions_text
from search.study.records import finished_by_key, ranked_by_gain, seed_scores

if TYPE_CHECKING:
    from spaces.tasks import Task

INSERTION_TEXT = {
    "gated": "gated (each module behind a learnable gate starting at 0: the model starts as the base)",
    "plain": "plain (modules as published; a pretrained model does not start as the base)",
}
SUPERNET_TEXT = ("- screen: supernet: each trial's score is one validation of its path in one shared model trained once "
                 "(search/study/screen.py), not a training of its own; the race below trains standalone seeds")
PROXY_PLOTS = ("map_by_trial.png", "precision_recall.png")  # drawn under the leaderboard


def header(report: Report) -> list[str]:
    """Title, what was searched, trial counts by outcome and the time it took."""
    config, study, groups = report.config, report.study, report.groups
    objective, second = f"maximize {report.task.score_label}", second_objective(config.objective)
    if second:
        objective += f", {second.direction} {second.label} (Pareto search)"
    counts = (f"{len(groups.complete)} complete, {len(groups.pruned)} pruned, {len(groups.failed)} failed, "
              f"{len(groups.infeasible)} infeasible (not trained), {len(groups.interrupted)} interrupted (retried)")
    reused = sum(TrialView(t).duplicate_of is not None for t in groups.complete + groups.pruned)
    if reused:
        counts += f"; {reused} of those reused the result of an identical placement (not counted towards --trials)"
    if groups.unfinished and report.decision:  # the study decided: these trials are not part of it
        waiting = sum(t.state == TrialState.WAITING for t in groups.unfinished)
        running = len(groups.unfinished) - waiting
        counts += "".join([f"; {waiting} queued, never started (the study reached --trials first)" if waiting else "",
                           f"; {running} left running by a stopped worker, not counted" if running else ""])
    elif groups.unfinished:
        counts += f"; {len(groups.unfinished)} running or waiting"
    model = config.model + (f" from weights {config.weights}" if config.weights else "")
    insertion = INSERTION_TEXT.get(config.insertion, config.insertion)
    decision, recorded = report.decision, StudyView(study)
    headline = decision.headline(report.task.score_label) if decision else "not decided yet"
    return [
        f"# Attention placement search {study.study_name}: {headline}",
        "",
        f"- base model: {model}",
        f"- dataset: {config.data}",
        f"- objective: {objective}",
        f"- attention inserted: {insertion}",
        f"- proxy training: {config.proxy_epochs} epochs at {config.proxy_imgsz} px, batch {config.proxy_batch}, "
        f"{config.proxy_fraction:.0%} of the training images; sampler {config.sampler}, pruner {config.pruner}",
        *([SUPERNET_TEXT] if config.screen == "supernet" else []),
        f"- trials: {counts}",
        *([f"- data warning: {recorded.unusable_images}"] if recorded.unusable_images else []),
        f"- wall time: {wall_time(study.trials, groups, recorded.supernet)}",
        *provenance_lines(recorded.environment),
        "",
    ]


def provenance_lines(env: dict | None) -> list[str]:
    """When, on what machine and with which versions the search started (none for studies without it)."""
    if not env:
        return []
    return [f"- started {env['date']} on {machine_text(env)}; {versions_text(env)}"]


def wall_time(trials: list[FrozenTrial], groups: Trials, supernet: dict | None = None) -> str:
    """Training time of the trials (reused duplicates not counted twice) and the clock time of the search; with the
    ``supernet`` screen's training (`StudyView.supernet`), its time and the trials' validations instead."""
    trained = [t for t in groups.complete + groups.pruned + groups.failed + groups.interrupted
               if TrialView(t).duplicate_of is None]
    training = sum(TrialView(t).wall_time_s or 0.0 for t in trained)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    clock = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    if supernet:
        part = ", the part after a resume" if supernet.get("resumed") else ""
        return (f"{duration(supernet['wall_time_s'])} training the supernet ({supernet['epochs']} epochs{part}), then "
                f"{duration(training)} scoring {len(trained)} trials on it; {duration(clock)} from first to last trial")
    return f"{duration(training)} training in {len(trained)} proxy runs; {duration(clock)} from first to last trial"


def leaderboard_frame(groups: Trials, task: Task):
    """The leaderboard as a `pandas.DataFrame`, one row per placement: the baseline, then the completed placements
    best first, with ``task``'s metrics (fractions), ``delta`` (the score against the baseline's: one proxy run, or
    with repeat seeds the mean gain on the seeds both trained, by which placements are then ranked as the race picks
    its contenders: `search.select.intensify.ranking`), ``seeds``, ``params``, ``gflops``, ``wall_time_s`` and ``also`` (the
    later trials folded into the row: duplicates, repeat seeds). What `search.run` returns and `leaderboard` prints."""
    import pandas

    complete = sorted(groups.complete, key=lambda t: t.number)
    firsts = finished_by_key(complete)
    later: dict[int, list[str]] = {}  # a trial -> the later trials of its placement: duplicates, repeat seeds
    for t in complete:
        v = TrialView(t)
        if v.duplicate_of is not None:
            later.setdefault(v.duplicate_of, []).append(f"#{t.number}")
        elif v.repeat_seed is not None and v.placement_key in firsts:
            later.setdefault(firsts[v.placement_key].number, []).append(f"#{t.number} seed {v.repeat_seed}")
    ranked = [t for t in groups.ranked if TrialView(t).duplicate_of is None and TrialView(t).repeat_seed is None]
    base_score = TrialView(groups.baseline).metric(task.score) if groups.baseline is not None else None
    gains: dict[int, float] = {}
    if any(TrialView(t).repeat_seed is not None for t in complete) and groups.baseline is not None:
        by_gain = ranked_by_gain(complete, TrialView(groups.baseline).placement_key)
        ranked, gains = [t for t, _ in by_gain], {t.number: gain for t, gain in by_gain}
    scores = seed_scores(complete)
    rows = []
    for rank, trial in ([("baseline", groups.baseline)] if groups.baseline is not None else []) + list(enumerate(ranked, 1)):
        v = TrialView(trial)
        rows.append({
            "rank": rank, "trial": trial.number,
            "placement": placement_text(trial) + (f" (usual: {v.usual_family})" if v.usual_family else ""),
            **{m.name: v.metric(m.name) for m in task.metrics},
            "delta": gains.get(trial.number, difference(v.metric(task.score), base_score)),
            "seeds": len(scores.get(v.placement_key, {})) or 1,
            "params": v.parameter_count, "gflops": v.gflops, "wall_time_s": v.wall_time_s,
            "also": ", ".join(later.get(trial.number, [])),
        })
    return pandas.DataFrame(rows, columns=["rank", "trial", "placement", *task.metric_names, "delta", "seeds", "params",
                                           "gflops", "wall_time_s", "also"])


def leaderboard(groups: Trials, task: Task, screen: str = "standalone") -> list[str]:
    """`leaderboard_frame` as a Markdown section, titled by how the trials were evaluated (``screen``: proxy trainings,
    or supernet scores); a seeds column only when some placement has repeat seeds, and the later trials of a placement
    named in its trial column."""
    lines = [f"## Leaderboard ({'supernet scores' if screen == 'supernet' else 'proxy trainings'})", ""]
    if groups.baseline is None and not groups.ranked:
        return lines + ["No trial has completed yet.", ""]
    frame = leaderboard_frame(groups, task)
    repeated = any(TrialView(t).repeat_seed is not None for t in groups.complete)
    delta = f"Δ {task.score_label} ({'mean over shared seeds' if repeated else 'single run'})"
    head = ["rank", "trial", "placement", *(["seeds"] if repeated else []), *(m.label for m in task.metrics), delta,
            "params (vs baseline)", "GFLOPs", "wall time"]
    params = [None if _value(p) is None else int(p) for p in frame["params"]]
    base_params = params[0] if groups.baseline is not None else None
    rows = []
    for row, size in zip(frame.itertuples(index=False), params):
        values = row._asdict()
        trial = f"{row.trial} (also {row.also})" if row.also else row.trial
        rows.append([row.rank, trial, row.placement, *([row.seeds] if repeated else []),
                     *(metric(_value(values[m.name])) for m in task.metrics), signed(_value(row.delta)),
                     count(size, base_params), metric_or_dash(_value(row.gflops), 2), duration(_value(row.wall_time_s))])
    gain = ("the mean gain over the baseline on the seeds both trained (the metrics shown are the study seed's run); "
            "placements are ranked on it, as the confirmation picks its contenders" if repeated else
            "one proxy run against the baseline's: a lead here is often seed noise, which the race on fresh seeds checks")
    note = f"Δ {task.score_label} is {gain}" if groups.baseline else "No baseline trial has completed."
    usual = sum(1 for v in map(TrialView, groups.complete) if v.usual_family and v.duplicate_of is None)
    if usual:
        note += (f"; {usual} placement(s) marked \"usual\" are the ones people try by hand, queued right after the baseline "
                 "(spaces/prior.py)")
    return lines + table(head, rows) + ["", note + ("." if groups.baseline else ""), ""]


def _value(x):
    """A frame's cell as a plain value: None for a missing one (pandas holds it as NaN)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def leaderboard_section(report: Report) -> list[str]:
    """The leaderboard, the link to every trial's row and the proxy plots under it."""
    plots = [f"![{name[:-4]}]({name})\n" for name in PROXY_PLOTS if report.files.get(name)]
    table = ["Every trial with its parameters and metrics, one row each: [trials.csv](trials.csv).", ""]
    return leaderboard(report.groups, report.task, report.config.screen) + (table if report.files.get("trials.csv") else []) + plots


def other_trials(report: Report) -> list[str]:
    """Short lists of the pruned, failed, infeasible and interrupted trials."""
    groups = report.groups
    lines = ["## Trials that did not complete", ""] if groups.pruned or groups.failed or groups.infeasible or groups.interrupted else []
    if groups.pruned:
        lines += ["### Pruned", ""] + [f"- trial {t.number}, {placement_text(t)}: {pruned_text(t)}" for t in groups.pruned] + [""]
    if groups.failed:
        lines += ["### Failed", ""]
        lines += [f"- trial {t.number}, {placement_text(t)}: {TrialView(t).reason or 'no reason recorded'}" for t in groups.failed]
        lines += [""]
    if groups.infeasible:
        lines += ["### Infeasible (rejected before training, not counted)", ""]
        lines += [f"- trial {t.number}, {placement_text(t)}: {TrialView(t).infeasible}" for t in groups.infeasible] + [""]
    if groups.interrupted:
        numbers = ", ".join(f"#{t.number}" for t in groups.interrupted)
        lines += [f"Interrupted by a stopped run and queued again (not counted): {numbers}.", ""]
    return lines


def pruned_text(trial: FrozenTrial) -> str:
    """When a pruned trial stopped, and its last fitness."""
    steps = trial.intermediate_values
    epoch = TrialView(trial).pruned_at or (max(steps) if steps else None)
    text = f"pruned at epoch {epoch}" if epoch is not None else "pruned"
    return text + (f" (fitness {metric(steps[max(steps)])})" if steps else "")
