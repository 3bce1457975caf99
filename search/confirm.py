"""Confirmation: the top candidates and the baseline, re-trained with several seeds.

One proxy run ranks placements barely better than chance: its seed noise is as large as the
effect of attention (DESIGN.md). So before the final retraining, the best ``--confirm-top K``
distinct placements and the baseline are trained with ``--confirm-seeds S`` seeds each (the
search's own run is seed 1 of S), the winner is the highest mean mAP50-95, and it must beat the
baseline by Welch's t-test (`search.verdict`) or the baseline is kept. Each run is saved in
``confirm/<placement key>/seed<seed>/`` and not repeated on resume.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import optuna

from search.config import RunConfig
from search.runner import METRICS, proxy_budget, saved_proxy_run
from search.study import baseline_trial, placement_of, scored_trials
from search.verdict import Comparison, beats_baseline, compare, tradeoff_line, verdict_line
from spaces import Placement


def _seed_run(placement: Placement, seed: int, base: dict, proxy: Path, config: RunConfig) -> dict:
    """Metrics of one proxy run of ``placement`` with ``seed`` (saved, reused on resume)."""
    folder = config.study_dir / "confirm" / placement.key / f"seed{seed}"
    return saved_proxy_run(placement, base, proxy, replace(proxy_budget(config), seed=seed), folder, config)


def _candidate(trial: optuna.trial.FrozenTrial, base: dict, proxy: Path, config: RunConfig) -> dict:
    """Per-metric scores over the seeds: the trial's own run first, then the extra seeds."""
    placement = placement_of(trial)
    runs = [{"status": "complete", **{k: trial.user_attrs.get(k) for k in METRICS}}]
    runs += [_seed_run(placement, config.seed + n, base, proxy, config) for n in range(1, config.confirm_seeds)]
    done = [r for r in runs if r["status"] == "complete" and r.get("map50_95") is not None]
    return {
        "trial": trial.number, "placement": placement.to_dict(), "placement_str": str(placement),
        "failed_runs": len(runs) - len(done), **{k: [r[k] for r in done] for k in METRICS},
    }  # fmt: skip


def confirm(study: optuna.Study, config: RunConfig, base: dict, proxy: Path) -> dict:
    """Re-train the top candidates and the baseline with several seeds and pick the winner.

    Returns ``{"baseline": ..., "candidates": [...], "winner": index or None, "verdict": str,
    "tradeoffs": {...}}``; ``winner`` is None when no candidate beats the baseline beyond noise.
    """
    base_trial = baseline_trial(study)
    if base_trial is None or base_trial.state != optuna.trial.TrialState.COMPLETE:
        raise ValueError(f"study '{study.study_name}' has no completed baseline trial to confirm against")
    seen, top = {base_trial.user_attrs["placement_key"]}, []
    for trial in scored_trials(study):
        key = trial.user_attrs["placement_key"]
        if key not in seen and len(top) < config.confirm_top:
            seen.add(key)
            top.append(trial)
    baseline = _candidate(base_trial, base, proxy, config)
    candidates = [_candidate(t, base, proxy, config) for t in top]
    for c in candidates:  # the baseline's own run always completed (its trial is COMPLETE)
        scored = bool(c["map50_95"])
        c["comparison"] = _comparison_dict(compare(c["map50_95"], baseline["map50_95"])) if scored else None
        c["tradeoff"] = tradeoff_line(_means(c), _means(baseline)) if scored else None
    ranked = sorted((i for i, c in enumerate(candidates) if c["map50_95"]), key=lambda i: -statistics.fmean(candidates[i]["map50_95"]))
    best = ranked[0] if ranked else None
    result = {"seeds": config.confirm_seeds, "baseline": baseline, "candidates": candidates, "winner": None}
    if best is None:
        result["verdict"] = "no candidate besides the baseline completed: keep the base model"
        return result
    comparison = compare(candidates[best]["map50_95"], baseline["map50_95"])
    line = verdict_line(comparison)
    if beats_baseline(comparison):
        result["winner"] = best
        result["verdict"] = f"trial {candidates[best]['trial']} ({candidates[best]['placement_str']}) {line}"
    else:
        result["verdict"] = f"no placement beat the baseline beyond noise: keep the base model (best candidate, trial {candidates[best]['trial']}: {line})"
    return result


def _means(candidate: dict) -> dict:
    """Mean precision and recall over a candidate's completed seed runs (at least one)."""
    return {k: statistics.fmean(candidate[k]) for k in ("precision", "recall")}


def _comparison_dict(c: Comparison) -> dict:
    return {"difference": c.difference, "low": c.low, "high": c.high, "p_value": c.p_value, "method": c.method,
            "line": verdict_line(c)}  # fmt: skip
