"""The study report: ``report.md``, its plots and ``report.html``, written into the study folder.

`write_report` reads the Optuna study (the single source of truth, `search.study`) and the run's
``run.yaml``, and writes, in order: what was searched and how many trials ended how; the baseline
and a leaderboard of completed trials; the pruned, failed and infeasible ones; the confirmation of
the best candidates on fresh seeds, its resolution and the verdict (stated there only); the full
retraining of the exported model against the baseline and a diagram of the placement; whether the proxy predicts full training;
diagnostics (fitting, object sizes against receptive fields, where the placement sits); parameter
importances; the Pareto front of multi-objective studies. Plots are PNGs beside the report
(matplotlib, no display, no network); ``report.html`` is the same report in one self-contained file
(PNGs inlined), which opens from disk. Diagnostics that need the base model import `spaces` (torch
and Ultralytics) inside the functions that use it, so importing this module stays light.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import RunConfig, load_study_config, storage_url_of
from search.diagnostics import OBJECTS_PER_STRIDE, fit_gap_line, object_sizes, size_table_markdown
from search.provenance import machine_text, versions_text
from search.study import first_baseline, interrupted_numbers, rank_key

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
    interrupted = interrupted_numbers(trials)
    for t in trials:
        if t.user_attrs.get("infeasible"):
            groups.infeasible.append(t)
        elif t.number in interrupted:
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
        counts += f"; {reused} of those reused the result of an identical placement (not counted towards --trials)"
    if groups.unfinished:
        counts += f"; {len(groups.unfinished)} running or waiting"
    model = config.model + (f" from weights {config.weights}" if config.weights else "")
    insertion = INSERTION_TEXT.get(config.insertion, config.insertion)
    return [
        f"# Attention placement search: {study.study_name}",
        "",
        f"- base model: {model}",
        f"- dataset: {config.data}",
        f"- objective: {objective}",
        f"- attention inserted: {insertion}",
        f"- proxy training: {config.proxy_epochs} epochs at {config.proxy_imgsz} px, batch {config.proxy_batch}, "
        f"{config.proxy_fraction:.0%} of the training images; sampler {config.sampler}, pruner {config.pruner}",
        f"- trials: {counts}",
        *([f"- data warning: {study.user_attrs['unusable_images']}"] if study.user_attrs.get("unusable_images") else []),
        f"- wall time: {wall_time(study.trials, groups)}",
        *provenance_lines(study.user_attrs.get("environment")),
        "",
    ]


def provenance_lines(env: dict | None) -> list[str]:
    """When, on what machine and with which versions the search started (none for studies without it)."""
    if not env:
        return []
    return [f"- started {env['date']} on {machine_text(env)}; {versions_text(env)}"]


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
    repeats: dict[int, list[int]] = {}  # a trial -> the later trials that drew the same placement
    for t in groups.ranked:
        if t.user_attrs.get("duplicate_of") is not None:
            repeats.setdefault(t.user_attrs["duplicate_of"], []).append(t.number)
    rows = []
    if groups.baseline is not None:
        rows.append(trial_row(groups.baseline, groups.baseline, "baseline"))
    ranked = [t for t in groups.ranked if t.user_attrs.get("duplicate_of") is None]
    rows += [trial_row(t, groups.baseline, str(i)) for i, t in enumerate(ranked, 1)]
    for row in rows:  # the trial column names the repeats folded into it
        if row[1] in repeats:
            row[1] = f"{row[1]} (also {', '.join(f'#{n}' for n in repeats[row[1]])})"
    note = "Δ mAP50-95 is against the baseline's proxy score." if groups.baseline else "No baseline trial has completed."
    return lines + table(head, rows) + ["", note, ""]


def other_trials(groups: Trials) -> list[str]:
    """Short lists of the pruned, failed, infeasible and interrupted trials."""
    lines = ["## Trials that did not complete", ""] if groups.pruned or groups.failed or groups.infeasible or groups.interrupted else []
    if groups.pruned:
        lines += ["### Pruned", ""] + [f"- trial {t.number}, {placement_text(t)}: {pruned_text(t)}" for t in groups.pruned] + [""]
    if groups.failed:
        lines += ["### Failed", ""]
        lines += [f"- trial {t.number}, {placement_text(t)}: {t.user_attrs.get('reason') or 'no reason recorded'}" for t in groups.failed]
        lines += [""]
    if groups.infeasible:
        lines += ["### Infeasible (rejected before training, not counted)", ""]
        lines += [f"- trial {t.number}, {placement_text(t)}: {t.user_attrs['infeasible']}" for t in groups.infeasible] + [""]
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


INSERTION_TEXT = {
    "gated": "gated (each module behind a learnable gate starting at 0: the model starts as the base)",
    "plain": "plain (modules as published; a pretrained model does not start as the base)",
}


def final_section(study: optuna.Study, placement_plot: bool = False) -> list[str]:
    """The full retraining of the exported model next to the baseline's, its placement, and what it adds
    to the verdict (`final_verdict`)."""
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
    title = f"exported model: trial {summary.get('trial')} ({summary.get('placement_str')})"
    picture = ["![placement of the exported model](placement.png)", ""] if placement_plot else []
    body = table(["", "baseline", "exported", "difference"], rows)
    return lines + [title, ""] + picture + body + ["", final_verdict(summary), ""] + gates_lines(win.get("gates"))


def gates_lines(gates: dict | None) -> list[str]:
    """The exported model's learned gates, one per position: how much of each module the network used."""
    if not gates:
        return []
    values = ", ".join(f"{position} {value:+.3f}" for position, value in gates.items())
    return [f"Learned gates of the exported model (mean per position; 0: module unused, 1: as published): {values}.", ""]


def is_baseline_placement(placement: dict | None) -> bool:
    """True for a placement dict that adds no attention and removes nothing."""
    return not (placement or {}).get("modules") and not (placement or {}).get("dropped")


def sentence(text: str) -> str:
    """``text`` as a sentence: capital first letter, one closing full stop."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "." if text else ""


def final_verdict(summary: dict) -> str:
    """What the full retraining adds to the verdict, which the confirmation section states (once);
    summaries written before there was one get the full-retraining `verdict`."""
    if not summary.get("verdict"):
        return verdict(summary)
    return full_retraining_note(summary)


def full_retraining_note(summary: dict) -> str:
    """What one full retraining of each side says beside the verdict (one run each: no seed noise measured)."""
    win, base = summary.get("final") or {}, summary.get("baseline") or {}
    for name, record in (("exported model", win), ("baseline", base)):
        if record.get("status") != "complete":
            return f"The {name}'s full retraining did not complete ({record.get('reason') or 'no reason recorded'})."
    if is_baseline_placement(summary.get("placement")):
        return f"The baseline retrained in full reached {metric(base.get('map50_95'))} mAP50-95."
    diff = difference(win.get("map50_95"), base.get("map50_95"))
    if diff is None:
        return "mAP50-95 is missing from a full retraining."
    return (f"After one full retraining each: {metric(win['map50_95'])} mAP50-95 against the baseline's "
            f"{metric(base['map50_95'])} ({signed(diff)}); one run per side, so this difference carries seed noise.")  # fmt: skip


def verdict(summary: dict) -> str:
    """One plain sentence: did attention beat the baseline after full retraining?"""
    win, base = summary.get("final") or {}, summary.get("baseline") or {}
    who = f"trial {summary.get('trial')} ({summary.get('placement_str')})"
    for name, record in (("winner", win), ("baseline", base)):
        if record.get("status") != "complete":
            return f"No verdict: the {name}'s full retraining did not complete ({record.get('reason') or 'no reason recorded'})."
    if is_baseline_placement(summary.get("placement")):
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


# --- confirmation with seeds ---------------------------------------------------------------------


def mean_sd(values: list[float]) -> str:
    """``0.3133 ± 0.0153`` (sample sd), ``0.3000 (1 run)``, or a dash without values."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{metric(values[0])} (1 run)"
    return f"{metric(statistics.fmean(values))} ± {metric(statistics.stdev(values))}"


def mean_of(values: list[float]) -> str:
    return metric(statistics.fmean(values)) if values else "–"


def seed_row(entry: dict, label: str) -> list[object]:
    """One confirmation row: runs, mean ± sd of mAP50-95, mean P and R, its fate in the race, the
    comparison and the trade-off."""
    runs = str(len(entry.get("map50_95") or [])) + (f" ({entry['failed_runs']} failed)" if entry.get("failed_runs") else "")
    comparison = entry.get("comparison") or {}
    against = comparison.get("line") or ("–" if label == "baseline" or entry.get("race") else "not compared: no seed run completed")
    return [label, entry.get("trial"), entry.get("placement_str"), runs, mean_sd(entry.get("map50_95") or []),
            mean_of(entry.get("precision") or []), mean_of(entry.get("recall") or []), entry.get("race") or "–", against,
            entry.get("tradeoff") or "–"]  # fmt: skip


def confirmation_section(study: optuna.Study) -> list[str]:
    """The race of the top candidates against the baseline on fresh seeds, its resolution, and the
    verdict (stated here only)."""
    summary = study.user_attrs.get("final")
    if not summary:
        return []
    found = summary.get("confirmation")
    if not found:
        return ["## Confirmation with more seeds", "", not_confirmed_text(summary), ""]
    winner = found.get("winner")
    rows = [seed_row(found["baseline"], "baseline")]
    rows += [seed_row(c, f"candidate {i}" + (" (winner)" if i - 1 == winner else ""))
             for i, c in enumerate(found.get("candidates") or [], 1)]  # fmt: skip
    head = ["", "trial", "placement", "runs", "mAP50-95 mean ± sd", "P (mean)", "R (mean)", "in the race", "against the baseline", "trade-off"]
    lines = ["## Confirmation with more seeds", "", race_text(found), ""] + table(head, rows) + [""]
    resolution = resolution_text(found.get("noise"), found.get("budget"))
    if resolution:
        lines += [resolution, ""]
    return lines + [f"**Verdict: {sentence(summary['verdict'])}**", ""]


def race_text(found: dict) -> str:
    """How the confirmation decided: the race (`search.racing`), or the fixed seeds of older studies."""
    if found.get("budget") is None:
        return (f"Each placement's proxy training repeated with {found.get('seeds')} seeds (the search's run is the first) "
                "and compared by Welch's t (a study from before the racing confirmation).")  # fmt: skip
    k = len(found.get("candidates") or [])
    if k == 0:
        return "No placement besides the baseline completed in the search: there was nothing to confirm."
    entered = "The best placement of the search was tested against" if k == 1 else f"The best {k} placements of the search raced"
    selection = ("" if k == 1 else " The first rounds choose a leader and drop contenders clearly behind; the leader is "
                 "then tested against the baseline on further rounds only.")  # fmt: skip
    return (f"{entered} the baseline on seeds the search never used (in each round every placement trains with the same "
            f"seed), within a budget of {found['budget']} proxy runs: {found.get('runs')} spent ({found.get('stopped')})."
            f"{selection} The test (paired on same-seed scores when they correlate) looks halfway and at the end, at a "
            f"level split between its looks, so the whole procedure declares a false improvement at most "
            f"{found['alpha']:.0%} of the time. The table counts all of a placement's confirmation runs; the comparison "
            "uses the test rounds.")  # fmt: skip


def resolution_text(noise: dict | None, budget: int | None) -> str | None:
    """The smallest gain this confirmation could tell from noise, and the seeds a gain of
    ``noise["effect"]`` would need; None without measured noise."""
    if not noise:
        return None
    measured = (f"the noise measured in this confirmation (seed sd {noise['sd']:.4f} mAP50-95, same-seed correlation "
                f"{noise['correlation']:+.2f})")  # fmt: skip
    needed = noise.get("seeds_needed")
    more = (f"{needed} seeds per side (a --confirm-budget of about {noise['budget_needed']}) would be needed for "
            f"{noise['effect']:g}" if needed else f"no practical number of seeds would resolve {noise['effect']:g}")  # fmt: skip
    return (f"With this budget ({budget} runs, {noise['test_rounds']} test rounds) and {measured}, a gain below "
            f"{noise['detectable']:.4f} mAP50-95 cannot be told from noise (80% power); {more}.")


def not_confirmed_text(summary: dict) -> str:
    why = "--confirm-top 0" if "confirmation" in summary else "the run predates seed confirmation"
    return (f"The exported model (trial {summary.get('trial')}, {summary.get('placement_str')}) was not confirmed with "
            f"more seeds ({why}): it is the best single proxy run. One run's seed noise is about as large as "
            "the effect of attention, so its lead over the baseline may be noise; rerun with --confirm-top 3 to check.")  # fmt: skip


# --- proxy fidelity ------------------------------------------------------------------------------


def proxy_section(study: optuna.Study) -> list[str]:
    """Proxy against full-training mAP50-95 of the validated candidates, per proxy budget checked,
    and each budget's rank correlation with full training."""
    found = study.user_attrs.get("proxy_validation")
    if not found:
        return []
    budgets, seeds = found.get("budgets") or [], (found.get("full_budget") or {}).get("seeds", 1)

    def full_cells(row: dict) -> list[str]:  # the mean, then each seed's score when there are several
        each = ", ".join(f"{v:.4f}" for v in row.get("full_seeds") or []) or "–"
        return [metric(row.get("full"))] + ([each] if seeds > 1 else [])

    rows = [[r.get("trial"), r.get("placement_str"), *(metric(r["proxy"].get(b["label"])) for b in budgets),
             *full_cells(r), r.get("status")] for r in found.get("rows") or []]  # fmt: skip
    head = ["trial", "placement", *(f"proxy {b['label']}" + (" (searched)" if b.get("searched") else "") for b in budgets),
            "full mAP50-95" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""), *(["full per seed"] if seeds > 1 else []),
            "full training"]  # fmt: skip
    lines = ["## Does the proxy predict full training?", "", candidates_text(found), ""]
    lines += table(head, rows) + [""]
    lines += [f"- proxy {b['label']}: {spearman_text(b)}" for b in budgets]
    notes = [seed_noise_text(found, (study.user_attrs.get("final") or {}).get("confirmation")), full_noise_text(found)]
    reading = ("Reading it: near +1 the proxy ranks placements as full training does; below about 0.6 it ranks them "
               "poorly, so raise --proxy-epochs, --proxy-imgsz or --proxy-fraction (check a richer budget on the same "
               "candidates first: `validate-proxy --proxy-epochs N`).")  # fmt: skip
    return lines + [""] + [line for note in notes if note for line in (note, "")] + [reading, ""]


def candidates_text(found: dict) -> str:
    full, k = found.get("full_budget") or {}, found.get("k")
    seeds = full.get("seeds", 1)
    runs = "the study's seed" if seeds == 1 else f"{seeds} seeds, scored on their mean"
    return (f"The top {k} placements by the search's proxy score and up to {k} random others, trained in full "
            f"({full.get('epochs', '–')} epochs at {full.get('imgsz', '–')} px, {runs}), against their "
            "mAP50-95 at each proxy budget checked (the study's seed).")  # fmt: skip


def seed_noise_text(found: dict, confirmation: dict | None) -> str | None:
    """Whether the validated candidates' proxy scores differ by more than one placement's seeds do
    (seed confirmation at the searched budget), or None without both."""
    searched = next((b["label"] for b in found.get("budgets") or [] if b.get("searched")), None)
    scores = [r["proxy"].get(searched) for r in found.get("rows") or []]
    scores = [s for s in scores if s is not None]
    groups = [confirmation["baseline"], *confirmation["candidates"]] if confirmation else []
    spreads = [max(g["map50_95"]) - min(g["map50_95"]) for g in groups if len(g.get("map50_95") or []) > 1]
    if len(scores) < 2 or not spreads:
        return None
    span, noise = max(scores) - min(scores), max(spreads)
    head = (f"At the searched budget these candidates' proxy scores span {span:.4f} mAP50-95; one placement's seeds "
            f"differed by up to {noise:.4f} (seed confirmation).")  # fmt: skip
    if span <= noise:
        return (f"{head} **The candidates differ by less than seed noise**: no proxy budget can rank them reliably, and "
                "ρ here, high or low, is mostly luck. Trust the seed-confirmed verdict, not the single-run ranking.")  # fmt: skip
    return f"{head} The candidates differ by more than seed noise, so their ranking carries information."


def full_noise_text(found: dict) -> str | None:
    """How far the full runs' own seeds disagree, against how far the candidates' mean full scores
    spread; None with one seed."""
    rows = [r for r in found.get("rows") or [] if len(r.get("full_seeds") or []) > 1]
    if len(rows) < 2:
        return None
    noise = max(max(r["full_seeds"]) - min(r["full_seeds"]) for r in rows)
    means = [r["full"] for r in rows]
    return (f"In full training the candidates' mean scores span {max(means) - min(means):.4f} mAP50-95; one "
            f"placement's full-training seeds differed by up to {noise:.4f}.")  # fmt: skip


def spearman_text(found: dict) -> str:
    """``Spearman ρ = +0.80 (95% interval [-0.70, +0.99], 4 candidates)``, or why it is undefined."""
    n, rho, interval = found.get("n", 0), found.get("spearman"), found.get("interval")
    if rho is None:
        return (f"Spearman ρ is undefined: {n} candidates have both scores, and it needs at least 3 "
                "with scores that are not all tied.")  # fmt: skip
    p = found.get("p_value")
    chance = f", p={p:.3f} that ranks this good come by chance" if p is not None else ""
    if not interval:
        return f"Spearman ρ = {rho:+.2f} ({n} candidates{chance}; no interval: too few candidates for one to mean much)."
    return f"Spearman ρ = {rho:+.2f} (95% interval [{interval[0]:+.2f}, {interval[1]:+.2f}], {n} candidates{chance})."


# --- diagnostics ---------------------------------------------------------------------------------


@dataclass
class BaseModel:
    """The base model's layers and receptive fields, or why they could not be read."""

    layers: list = field(default_factory=list)  # spaces.layers.Layer rows
    fields: list[dict] = field(default_factory=list)  # search.diagnostics.receptive_fields rows
    stages: list[dict] = field(default_factory=list)  # search.diagnostics.stage_table rows
    missing: str = ""


def ready_ultralytics(folder: Path) -> None:
    """Ultralytics made offline-safe before `spaces` first imports it (``report`` may run on its own)."""
    import sys

    if "ultralytics" in sys.modules:
        return
    from trainers.offline import prepare_ultralytics

    prepare_ultralytics(os.environ.get("YOLO_CONFIG_DIR") or folder / "config")


def read_base_model(config: RunConfig, folder: Path) -> BaseModel:
    """Layers, receptive fields and stages of ``config.model`` (imports torch and Ultralytics)."""
    try:
        ready_ultralytics(folder)
        from search.diagnostics import receptive_fields, stage_table
        from spaces.layers import load_base, resolve_layers

        model = load_base(config.model)
        return BaseModel(resolve_layers(model), receptive_fields(model), stage_table(model))
    except Exception as e:  # noqa: BLE001 (a missing or odd model becomes one line of the report)
        return BaseModel(missing=f"the base model {config.model} could not be read ({one_line(e)})")


def one_line(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def training_object_sizes(config: RunConfig):
    """Object sizes (px at ``final_imgsz``) of the training labels, or None and why they are missing."""
    from trainers.data import label_path, load_dataset

    try:
        labels = [label_path(image) for image in load_dataset(config.data).train]
        return object_sizes([p for p in labels if p.is_file()], config.final_imgsz), ""
    except (ValueError, OSError) as e:  # DataError is a ValueError: moved or broken dataset
        return None, f"the training labels could not be read ({one_line(e)})"


def baseline_epochs(folder: Path, groups: Trials, summary: dict | None) -> tuple[list[dict], str]:
    """Per-epoch records of the baseline and whose they are: its full retraining if there is one, else its proxy trial."""
    if summary:
        record = folder / ("final" if is_baseline_placement(summary.get("placement")) else "final-baseline") / "record.json"
        try:
            epochs = json.loads(record.read_text()).get("epochs") or []
        except (OSError, ValueError, AttributeError):
            epochs = []
        if epochs:
            return epochs, "The baseline's full retraining"
    if groups.baseline is not None and groups.baseline.user_attrs.get("epochs"):
        return groups.baseline.user_attrs["epochs"], f"The baseline's proxy run (trial {groups.baseline.number})"
    return [], ""


def fit_text(folder: Path, groups: Trials, summary: dict | None) -> str:
    epochs, name = baseline_epochs(folder, groups, summary)
    if not epochs:
        return ("Fitting cannot be judged: no per-epoch losses of the baseline are recorded "
                "(no full retraining record, no completed baseline trial with epochs).")
    return sentence(fit_gap_line(epochs, name))


def sizes_text(sizes, why: str, base: BaseModel, imgsz: int) -> list[str]:
    """The stage table with the object sizes beside it, or why it is missing."""
    if base.missing:
        return [f"The size table is missing: {base.missing}."]
    if sizes is None:
        return [f"The size table is missing: {why}; has the dataset moved? The receptive fields alone:", ""] + stage_rows(base)
    return [f"Objects at the training size ({imgsz} px) against the theoretical receptive field (RF) of each stage:", "",
            size_table_markdown(sizes, base.stages)]  # fmt: skip


def stage_rows(base: BaseModel) -> list[str]:
    rows = [[s["stage"] + (" Detect input" if s["detect"] else " backbone"), s["layer"], s["module"], s["stride"], s["rf"]]
            for s in base.stages]  # fmt: skip
    return table(["stage", "layer", "module", "stride (px)", "theoretical RF (px)"], rows)


def position_layer(name: str) -> tuple[str, int]:
    """``"neck.15"`` -> ``("neck", 15)``: position names carry the base layer index (`spaces.positions`)."""
    kind, _, index = name.rpartition(".")
    return kind, int(index)


def stride_share(stride: int, sizes, stages: list[dict]) -> str:
    """The share of objects the Detect level at ``stride`` is assigned (as `size_table_markdown` shares them out)."""
    import numpy as np

    if sizes.size == 0:
        return "no objects in the training labels"
    strides = sorted(s["stride"] for s in stages if s["detect"])
    if stride not in strides:
        inside = int(np.count_nonzero(sizes <= stride * OBJECTS_PER_STRIDE))
        return (f"no Detect level reads stride {stride}; {inside / sizes.size:.0%} of the objects ({inside}) "
                f"are at most {stride * OBJECTS_PER_STRIDE} px (stride × {OBJECTS_PER_STRIDE})")  # fmt: skip
    at = strides.index(stride)
    low = 0.0 if at == 0 else strides[at - 1] * OBJECTS_PER_STRIDE
    high = math.inf if at == len(strides) - 1 else stride * OBJECTS_PER_STRIDE
    inside = int(np.count_nonzero((sizes > low) & (sizes <= high)))
    span = f"over {low:g} px" if math.isinf(high) else f"{low:g}-{high:g} px" if low else f"up to {high:g} px"
    return f"{inside / sizes.size:.0%} of the objects ({inside}, {span}) go to the stride-{stride} Detect level"


def position_line(name: str, what: str, base: BaseModel, sizes, why: str) -> str:
    """Where one position of the placement sits: its layer's stride and RF, and the objects at that stride."""
    kind, index = position_layer(name)
    row = base.fields[index]
    where = {"fused": f"inside the bottlenecks of layer {index}", "drop": f"layer {index} removed"}.get(kind, f"after layer {index}")
    rf = "sees the whole map (global RF)" if row["rf"] == "global" else f"theoretical RF {row['rf']} px"
    share = stride_share(row["stride"], sizes, base.stages) if sizes is not None else f"object shares unknown: {why}"
    return f"- `{name}` ({what}): {where} ({row['module']}), stride {row['stride']}, {rf}; {share}."


def placement_lines(summary: dict | None, base: BaseModel, sizes, why: str) -> list[str]:
    """One line per position of the exported placement, or why there are none."""
    if not summary:
        return ["No model has been exported yet, so there is no placement to place."]
    placement = summary.get("placement") or {}
    if is_baseline_placement(placement):
        return ["The exported model is the baseline: no attention to place."]
    if base.missing:
        return [f"The placement cannot be set against the receptive fields: {base.missing}."]
    items = [(name, "+".join(specs)) for name, specs in (placement.get("modules") or {}).items()]
    items += [(name, "removed") for name in placement.get("dropped") or []]
    lines = []
    for name, what in items:
        try:
            lines.append(position_line(name, what, base, sizes, why))
        except (ValueError, IndexError):
            lines.append(f"- `{name}` ({what}): its layer is not among the base model's layers.")
    return lines


def diagnostics_section(folder: Path, config: RunConfig, groups: Trials, summary: dict | None, base: BaseModel) -> list[str]:
    """Fitting of the baseline, object sizes against receptive fields, and where the placement sits."""
    sizes, why = training_object_sizes(config)
    lines = ["## Diagnostics", "", "### Fitting", "", fit_text(folder, groups, summary), ""]
    lines += ["### Object sizes and receptive fields", ""] + sizes_text(sizes, why, base, config.final_imgsz) + [""]
    lines += ["Theoretical RFs overstate what a network uses; attention that pools the whole map adds most where "
              "objects are large against the RF of the level that detects them.", ""]  # fmt: skip
    lines += ["### Where the exported placement sits", ""] + placement_lines(summary, base, sizes, why) + [""]
    return lines


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
    ax.margins(0.15)  # zoomed to the trials: on a 0-1 scale they sit in one blob
    ax.set(xlabel="recall", ylabel="precision", title="Precision and recall (proxy)")
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


def plot_placement(summary: dict | None, base: BaseModel, path: Path) -> bool:
    """The exported model's placement on the base model's layer list, one row per base layer."""
    if not summary or base.missing or not base.layers:
        return False
    placement = summary.get("placement") or {}
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
    title = (f"Exported model: the baseline (trial {summary.get('trial')}), no attention" if is_baseline_placement(placement)
             else f"Exported model: trial {summary.get('trial')}, {summary.get('placement_str')}")  # fmt: skip
    ax.set(xlim=(0, 1), ylim=(n - 0.5, -0.5), title=title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="lower right", fontsize="x-small")
    fig.savefig(path)
    return True


# --- the report ----------------------------------------------------------------------------------


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
    import html

    import markdown

    body = inline_images(markdown.markdown(markdown_text, extensions=["tables"], output_format="html"), folder)
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")  # fmt: skip
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_plots(folder: Path, groups: Trials, found: dict[str, float], summary: dict | None, base: BaseModel) -> dict[str, bool]:
    """Draw every plot; a plot from an earlier report whose data is gone is removed."""
    plots = {
        "map_by_trial.png": plot_map_by_trial(groups, folder / "map_by_trial.png"),
        "precision_recall.png": plot_precision_recall(groups, folder / "precision_recall.png"),
        "importance.png": plot_importances(found, folder / "importance.png"),
        "placement.png": plot_placement(summary, base, folder / "placement.png"),
    }
    for name, made in plots.items():
        if not made:
            (folder / name).unlink(missing_ok=True)
    return plots


def write_report(study_dir: str | Path) -> Path:
    """Write ``report.md``, ``report.html`` and the PNG plots into ``study_dir``; returns the .md path."""
    folder = Path(study_dir)
    config, study = load_study(folder)
    groups = sort_trials(study.get_trials(deepcopy=False))
    found, why = importances(study, groups)
    summary = study.user_attrs.get("final")
    base = read_base_model(config, folder)
    plots = write_plots(folder, groups, found, summary, base)
    lines = header(config, study, groups) + leaderboard(groups)
    lines += [f"![{name[:-4]}]({name})\n" for name in ("map_by_trial.png", "precision_recall.png") if plots[name]]
    lines += other_trials(groups) + confirmation_section(study) + final_section(study, plots["placement.png"])
    lines += proxy_section(study) + diagnostics_section(folder, config, groups, summary, base)
    lines += importance_section(found, why, "importance.png" if plots["importance.png"] else None)
    lines += pareto_section(study, config)
    text = "\n".join(lines).rstrip() + "\n"
    path = folder / "report.md"
    path.write_text(text, encoding="utf-8")
    write_html(text, folder, f"Attention placement search: {study.study_name}")
    return path
