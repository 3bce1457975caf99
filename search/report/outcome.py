"""Sections on the outcome: the confirmation of the best candidates on fresh seeds and the verdict
(stated there only), then the full retraining of the exported model against the baseline."""

from __future__ import annotations

from search.report.context import Report, is_baseline_placement
from search.report.text import (METRICS, TIE, count, difference, duration, mean_of, mean_sd, metric, metric_or_dash, sentence,
                                signed, table)


def confirmation_section(report: Report) -> list[str]:
    """The race of the top candidates against the baseline on fresh seeds, its resolution, and the
    verdict (stated here only)."""
    summary = report.summary
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


def seed_row(entry: dict, label: str) -> list[object]:
    """One confirmation row: runs, mean ± sd of mAP50-95, mean P and R, its fate in the race, the
    comparison and the trade-off."""
    runs = str(len(entry.get("map50_95") or [])) + (f" ({entry['failed_runs']} failed)" if entry.get("failed_runs") else "")
    comparison = entry.get("comparison") or {}
    against = comparison.get("line") or ("–" if label == "baseline" or entry.get("race") else "not compared: no seed run completed")
    return [label, entry.get("trial"), entry.get("placement_str"), runs, mean_sd(entry.get("map50_95") or []),
            mean_of(entry.get("precision") or []), mean_of(entry.get("recall") or []), entry.get("race") or "–", against,
            entry.get("tradeoff") or "–"]  # fmt: skip


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


def final_section(report: Report) -> list[str]:
    """The full retraining of the exported model next to the baseline's, its placement, and what it adds
    to the verdict (`final_verdict`)."""
    lines = ["## Full retraining", ""]
    summary = report.summary
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
    picture = ["![placement of the exported model](placement.png)", ""] if report.files.get("placement.png") else []
    body = table(["", "baseline", "exported", "difference"], rows)
    return lines + [title, ""] + picture + body + ["", final_verdict(summary), ""] + gates_lines(win.get("gates"))


def gates_lines(gates: dict | None) -> list[str]:
    """The exported model's learned gates, one per position: how much of each module the network used."""
    if not gates:
        return []
    values = ", ".join(f"{position} {value:+.3f}" for position, value in gates.items())
    return [f"Learned gates of the exported model (mean per position; 0: module unused, 1: as published): {values}.", ""]


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
