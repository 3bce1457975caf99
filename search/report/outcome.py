"""Sections on the outcome: the confirmation of the best candidates on fresh seeds and the verdict
(stated there only), then the full retraining of the exported model against the baseline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.final.decision import Confirmation, Decision, FullRun, SeedRuns
from search.report.context import Report
from search.select.power import SD_BOUND
from search.select.verdict import PAIRED
from trainers.deploy import BOX_TOLERANCE_PX, CONF, RELATIVE_TOLERANCE, read_checks

if TYPE_CHECKING:
    from spaces.tasks import Task
from search.report.text import count, difference, duration, mean_of, mean_sd, metric, metric_or_dash, sentence, signed, table


def confirmation_section(report: Report) -> list[str]:
    """The race of the top candidates against the baseline on fresh seeds, its resolution, and the
    verdict (stated here only)."""
    decision = report.decision
    if not decision:
        return []
    found = decision.confirmation
    if not found:
        return ["## Confirmation with more seeds", "", not_confirmed_text(decision), ""]
    task = report.task
    lines = ["## Confirmation with more seeds", "", race_text(found), ""] + race_table(found, task) + [""]
    resolution = resolution_text(found.noise, found.budget, task.score_label)
    if resolution:
        lines += [resolution, ""]
    return lines + [f"**Verdict: {sentence(decision.verdict)}**", ""]


def race_table(found: Confirmation, task: Task) -> list[str]:
    """The race as a Markdown table: the baseline, then each contender with its runs, scores, fate and comparison."""
    rows = [seed_row(found.baseline, "baseline", task)]
    rows += [seed_row(c, f"candidate {i}" + (" (winner)" if i - 1 == found.winner else ""), task)
             for i, c in enumerate(found.candidates, 1)]
    head = ["", "trial", "placement", "runs", f"{task.score_label} mean ± sd", *(f"{m.label} (mean)" for m in task.shown_beside),
            "in the race", "against the baseline", "trade-off"]
    return table(head, rows)


def seed_row(entry: SeedRuns, label: str, task: Task) -> list[object]:
    """One confirmation row: runs, mean ± sd of ``task``'s score, the means of the scores shown beside it, its fate in the race, the
    comparison and the trade-off."""
    scores = entry.scores(task.score)
    runs = str(len(scores)) + (f" ({entry.failed_runs} failed)" if entry.failed_runs else "")
    comparison = entry.comparison or {}
    against = comparison.get("line") or ("–" if label == "baseline" or entry.race else "not compared: no seed run completed")
    return [label, entry.trial, entry.placement_str, runs, mean_sd(scores), *(mean_of(entry.scores(m.name)) for m in task.shown_beside),
            entry.race or "–", against, entry.tradeoff or "–"]


def race_text(found: Confirmation) -> str:
    """How the confirmation decided: the race (`search.select.racing`), or the fixed seeds of older studies."""
    if found.budget is None:
        return (f"Each placement's proxy training repeated with {found.seeds} seeds (the search's run is the first) "
                "and compared by Welch's t (a study from before the racing confirmation).")
    k = len(found.candidates)
    if k == 0:
        return "No placement besides the baseline completed in the search: there was nothing to confirm."
    entered = "The best placement of the search was tested against" if k == 1 else f"The best {k} placements of the search raced"
    selection = ("" if k == 1 else " The first rounds choose a leader and drop contenders clearly behind; the leader is "
                 "then tested against the baseline on further rounds only.")
    return (f"{entered} the baseline on seeds the search never used (in each round every placement trains with the same "
            f"seed), within a budget of {found.budget} proxy runs: {found.runs} spent ({found.stopped})."
            f"{selection} The test (paired on same-seed scores when they correlate) looks halfway and at the end, at a "
            f"level split between its looks, so the whole procedure declares a false improvement at most "
            f"{found.alpha:.0%} of the time. The table counts all of a placement's confirmation runs; the comparison "
            "uses the test rounds.")


def resolution_text(noise: dict | None, budget: int | None, score: str) -> str | None:
    """The smallest gain of ``score`` (its label) this confirmation could tell from noise, from the spread
    the race measured (`search.select.racing.Race.resolution`), and the seeds a gain of ``noise["effect"]``
    would need; None without measured noise. With fewer than `search.select.power.RELIABLE_PAIRS` pairs it
    says first that the race can only see large gains."""
    if not noise:
        return None
    needed = noise.get("seeds_needed")
    more = (f"{needed} seeds per side (a --confirm-budget of about {noise['budget_needed']}) would be needed for "
            f"{noise['effect']:g}" if needed else f"no practical number of seeds would resolve {noise['effect']:g}")
    power = (f" Its test had a power of at least {noise['power']:.0%} to find a true gain of {noise['effect']:g} in the "
             "placement it tested (not counting the chance that the search put a true winner into the race: "
             "results/benchmarks/selection_power.md simulates both)." if "power" in noise else "")  # older studies
    if "difference_sd" not in noise:  # studies from before the resolution came from the measured differences
        measured = (f"the noise measured in this confirmation (seed sd {noise['sd']:.4f} {score}, same-seed correlation "
                    f"{noise['correlation']:+.2f})")
        return (f"With this budget ({budget} runs, {noise['test_rounds']} test rounds) and {measured}, a gain below "
                f"{noise['detectable']:.4f} {score} cannot be told from noise (80% power); {more}.{power}")
    paired = noise["test"] == PAIRED
    unit = _plural(noise["pairs"], "pair") if paired else _plural(noise["pairs"], "run") + " a side"
    where = ("its test rounds" if noise["measured_on"] == "test rounds" else
             "all its rounds, each contender against the baseline, as its test had fewer than two")
    df = f"{round(noise['difference_df'], 1):g} degrees of freedom"
    if paired:
        spread = (f"the sd of the same-seed differences between the tested placement and the baseline "
                  f"({noise['difference_sd']:.4f} {score} from {unit} of {where}; {df})")
    else:
        spread = (f"the seed sds of the tested placement and the baseline, not paired ({noise['candidate_sd']:.4f} and "
                  f"{noise['baseline_sd']:.4f} {score} from at least {unit} of {where}; one difference has sd "
                  f"{noise['difference_sd']:.4f}, {df})")
    text = (f"With this budget ({budget} runs, {noise['test_rounds']} test rounds) and {spread}, its {noise['test']} "
            f"cannot tell a gain below {noise['detectable']:.4f} {score} from noise (80% power); {more}.{power}")
    if not noise.get("few_pairs"):
        return text
    return (f"This race can only see large gains: it measured its noise on only {unit} ({df}), so that sd is itself loose "
            f"(its {noise.get('sd_bound', SD_BOUND):.0%} upper bound is {noise['difference_sd_upper']:.4f} {score}, at which a gain below "
            f"{noise['detectable_upper']:.4f} could not be told from noise). {text}")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def not_confirmed_text(decision: Decision) -> str:
    why = "--confirm-top 0" if decision.unconfirmed else "the run predates seed confirmation"
    return (f"The exported model (trial {decision.trial}, {decision.placement_str}) was not confirmed with "
            f"more seeds ({why}): it is the best single proxy run. One run's seed noise is about as large as "
            "the effect of attention, so its lead over the baseline may be noise; rerun with --confirm-top 4 to check.")


def final_section(report: Report) -> list[str]:
    """The full retraining of the exported model next to the baseline's, its placement, and what it adds
    to the verdict (`final_verdict`)."""
    lines = ["## Full retraining", ""]
    decision = report.decision
    if not decision:
        return lines + ["No final retraining yet: it runs after the search (`python -m search resume <dir>`).", ""]
    win, base = decision.final or FullRun("missing"), decision.baseline or FullRun("missing")
    rows = [[m.label, metric(base.metrics.get(m.name)), metric(win.metrics.get(m.name)),
             signed(difference(win.metrics.get(m.name), base.metrics.get(m.name)))] for m in report.task.metrics]
    rows += [
        ["params", count(base.params, None), count(win.params, base.params), ""],
        ["GFLOPs", metric_or_dash(base.gflops, 2), metric_or_dash(win.gflops, 2), ""],
        ["epochs", base.epochs if base.epochs is not None else "–", win.epochs if win.epochs is not None else "–", ""],
        ["best epoch (best.pt)", best_epoch_text(base), best_epoch_text(win), ""],
        ["wall time", duration(base.wall_time_s), duration(win.wall_time_s), ""],
    ]
    title = f"exported model: trial {decision.trial} ({decision.placement_str})"
    picture = ["![placement of the exported model](placement.png)", ""] if report.files.get("placement.png") else []
    body = table(["", "baseline", "exported", "difference"], rows)
    runs = [("exported model", win)] + ([] if decision.keeps_baseline else [("baseline", base)])
    falls = [text for name, run in runs if (text := fall_text(run, name, decision, report.task))]
    return (lines + [title, ""] + picture + body + ["", final_verdict(decision, report.task), ""]
            + [line for text in falls for line in (text, "")] + gates_lines(win.gates))


def deployment_section(report: Report) -> list[str]:
    """The deployment files the final step exported, each checked against the PyTorch model on the study's val
    images (`trainers.deploy.export_checked`); nothing before the final step wrote them."""
    checks = read_checks(report.folder)
    if not checks:
        return []
    rows = []
    for c in checks:
        if not c.file:
            rows.append([c.format, "–", "–", "–", f"export failed: {c.reason}"])
            continue
        rows.append([c.format, f"`{c.file}`", f"{c.max_abs:.2g} ({c.relative:.1e} of the largest output)",
                     f"{c.same} of {c.images}", "ok" if c.ok else "**differs from the PyTorch model**"])
    dropped = max(c.dropped_gates for c in checks)
    closed = [f"{dropped} gate(s) trained to exactly 0: their modules are left out of the exported graphs, which compute "
              "the same."] if dropped else []
    if report.task.image_folders:  # a classifier: Ultralytics' resize and centre crop, one class an image
        same, preprocess, match = "same top-1 class", "the same resize and crop", "whose top-1 class is the same"
    else:
        same, preprocess = "same detections", "the same letterbox"
        match = (f"whose detections at confidence {CONF} match (same count and classes, boxes within "
                 f"{BOX_TOLERANCE_PX:g} px)")
    return ["## Deployment files", "",
            "`best.pt` is the final training's best.pt (it loads with Ultralytics once `yolo_attention_modules` is "
            "installed: `pip install ./modules` from this repository); the others were exported from it with "
            f"Ultralytics' exporter and checked against it on {max(c.images for c in checks)} of the study's val images "
            f"with {preprocess}: the largest difference of the raw outputs (within {RELATIVE_TOLERANCE:g} of their "
            f"largest magnitude is ok), and images {match}.", "",
            *table(["format", "file", "largest raw difference", same, "check"], rows), "", *closed,
            *([""] if closed else [])]


def best_epoch_text(run: FullRun) -> str:
    """``3 of 10``: the epoch whose weights are best.pt; a dash for studies from before it was kept."""
    return "–" if run.best_epoch is None else f"{run.best_epoch} of {run.epochs}"


def fall_text(run: FullRun, name: str, decision: Decision, task: Task) -> str | None:
    """A warning when ``run``'s score fell after its best epoch by more than the race's seed sd (the closest noise
    measured for this data), or by any amount when no noise was measured; None when it did not fall."""
    fall = run.fall
    noise = (decision.confirmation.noise or {}).get("sd") if decision.confirmation else None
    if not fall or (noise is not None and fall <= noise):
        return None
    against = f"more than the seed sd of {noise:.4f} measured in the race" if noise is not None else "no seed noise measured to judge it"
    return (f"**The {name}'s full training fell after its best epoch**: {metric(run.best_score)} {task.score_label} at "
            f"epoch {run.best_epoch}, {metric(run.last_score)} at the last ({signed(-fall)}; {against}). best.pt keeps the "
            "best epoch, but a training that falls this far is unstable at these settings: see final/results.csv, and "
            "try more epochs, another image size or Ultralytics' own defaults through --set.")


def gates_lines(gates: dict | None) -> list[str]:
    """The exported model's learned gates, one per position: how much of each module the network used."""
    if not gates:
        return []
    values = ", ".join(f"{position} {value:+.3f}" for position, value in gates.items())
    return [f"Learned gates of the exported model (mean per position; 0: module unused, 1: as published): {values}.", ""]


def final_verdict(decision: Decision, task: Task) -> str:
    """What the full retraining adds to the verdict, which the confirmation section states (once);
    decisions recorded before there was one get the full retrainings' verdict (`Decision.sentence`)."""
    if not decision.verdict:
        return decision.sentence(task.score, task.score_label)
    return full_retraining_note(decision, task)


def full_retraining_note(decision: Decision, task: Task) -> str:
    """What one full retraining of each side says beside the verdict (one run each: no seed noise measured)."""
    win, base, score, label = decision.final, decision.baseline, task.score, task.score_label
    for name, record in (("exported model", win), ("baseline", base)):
        if record is None or not record.complete:
            return f"The {name}'s full retraining did not complete ({(record.reason if record else '') or 'no reason recorded'})."
    if decision.keeps_baseline:
        return f"The baseline retrained in full reached {metric(base.metrics.get(score))} {label}."
    diff = difference(win.metrics.get(score), base.metrics.get(score))
    if diff is None:
        return f"{label} is missing from a full retraining."
    return (f"After one full retraining each: {metric(win.metrics[score])} {label} against the baseline's "
            f"{metric(base.metrics[score])} ({signed(diff)}); one run per side, so this difference carries seed noise.")
