"""The section on proxy fidelity: do the proxy's scores rank the validated candidates as full training
does (`search.final.proxy_check`), and are their differences larger than seed noise?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.final.decision import Confirmation
from search.report.context import Report
from search.report.text import metric, table
from search.study.attributes import StudyView

if TYPE_CHECKING:
    from spaces.tasks import Task


def proxy_section(report: Report) -> list[str]:
    """Proxy against full-training score of the validated candidates, per proxy budget checked, and each
    budget's rank correlation with full training."""
    found, task = StudyView(report.study).proxy_validation, report.task
    if not found:
        return []
    budgets, seeds = found.get("budgets") or [], (found.get("full_budget") or {}).get("seeds", 1)

    def full_cells(row: dict) -> list[str]:  # the mean, then each seed's score when there are several
        each = ", ".join(f"{v:.4f}" for v in row.get("full_seeds") or []) or "–"
        return [metric(row.get("full"))] + ([each] if seeds > 1 else [])

    rows = [[r.get("trial"), r.get("placement_str"), *(metric(r["proxy"].get(b["label"])) for b in budgets),
             *full_cells(r), r.get("status")] for r in found.get("rows") or []]
    head = ["trial", "placement", *(f"proxy {b['label']}" + (" (searched)" if b.get("searched") else "") for b in budgets),
            f"full {task.score_label}" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""), *(["full per seed"] if seeds > 1 else []),
            "full training"]
    lines = ["## Does the proxy predict full training?", "", candidates_text(found, task), ""]
    lines += table(head, rows) + [""]
    lines += [f"- proxy {b['label']}: {spearman_text(b)}" for b in budgets]
    notes = [seed_noise_text(found, report.decision.confirmation if report.decision else None, task), full_noise_text(found, task)]
    reading = ("Reading it: near +1 the proxy ranks placements as full training does; below about 0.6 it ranks them "
               "poorly, so raise --proxy-epochs, --proxy-imgsz or --proxy-fraction (check a richer budget on the same "
               "candidates first: `validate-proxy --proxy-epochs N`).")
    return lines + [""] + [line for note in notes if note for line in (note, "")] + [reading, ""]


def candidates_text(found: dict, task: Task) -> str:
    full, k = found.get("full_budget") or {}, found.get("k")
    seeds = full.get("seeds", 1)
    runs = "the study's seed" if seeds == 1 else f"{seeds} seeds, scored on their mean"
    return (f"The top {k} placements by the search's proxy score and up to {k} random others, trained in full "
            f"({full.get('epochs', '–')} epochs at {full.get('imgsz', '–')} px, {runs}), against their "
            f"{task.score_label} at each proxy budget checked (the study's seed).")


def seed_noise_text(found: dict, confirmation: Confirmation | None, task: Task) -> str | None:
    """Whether the validated candidates' proxy scores differ by more than one placement's seeds do
    (seed confirmation at the searched budget), or None without both."""
    searched = next((b["label"] for b in found.get("budgets") or [] if b.get("searched")), None)
    scores = [r["proxy"].get(searched) for r in found.get("rows") or []]
    scores = [s for s in scores if s is not None]
    groups = [confirmation.baseline, *confirmation.candidates] if confirmation else []
    spreads = [max(g.scores(task.score)) - min(g.scores(task.score)) for g in groups if len(g.scores(task.score)) > 1]
    if len(scores) < 2 or not spreads:
        return None
    span, noise = max(scores) - min(scores), max(spreads)
    head = (f"At the searched budget these candidates' proxy scores span {span:.4f} {task.score_label}; one placement's seeds "
            f"differed by up to {noise:.4f} (seed confirmation).")
    if span <= noise:
        return (f"{head} **The candidates differ by less than seed noise**: no proxy budget can rank them reliably, and "
                "ρ here, high or low, is mostly luck. Trust the seed-confirmed verdict, not the single-run ranking.")
    return f"{head} The candidates differ by more than seed noise, so their ranking carries information."


def full_noise_text(found: dict, task: Task) -> str | None:
    """How far the full runs' own seeds disagree, against how far the candidates' mean full scores
    spread; None with one seed."""
    rows = [r for r in found.get("rows") or [] if len(r.get("full_seeds") or []) > 1]
    if len(rows) < 2:
        return None
    noise = max(max(r["full_seeds"]) - min(r["full_seeds"]) for r in rows)
    means = [r["full"] for r in rows]
    return (f"In full training the candidates' mean scores span {max(means) - min(means):.4f} {task.score_label}; one "
            f"placement's full-training seeds differed by up to {noise:.4f}.")


def spearman_text(found: dict) -> str:
    """``Spearman ρ = +0.80 (95% interval [-0.70, +0.99], 4 candidates)``, or why it is undefined."""
    n, rho, interval = found.get("n", 0), found.get("spearman"), found.get("interval")
    if rho is None:
        return (f"Spearman ρ is undefined: {n} candidates have both scores, and it needs at least 3 "
                "with scores that are not all tied.")
    p = found.get("p_value")
    chance = f", p={p:.3f} that ranks this good come by chance" if p is not None else ""
    if not interval:
        return f"Spearman ρ = {rho:+.2f} ({n} candidates{chance}; no interval: too few candidates for one to mean much)."
    return f"Spearman ρ = {rho:+.2f} (95% interval [{interval[0]:+.2f}, {interval[1]:+.2f}], {n} candidates{chance})."
