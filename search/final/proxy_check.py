"""Proxy fidelity: does the proxy ranking predict the full-training ranking on this dataset?

`validate_proxy` trains the top K placements of a study and K random other ones with the full
budget (``--final-epochs`` at ``--final-imgsz``; with several seeds, their mean is the full score,
since one full run's seed noise may be as large as the differences being ranked) and reports the
Spearman rank correlation between proxy and full mAP50-95, with its one-sided p-value (exact over
all orderings up to 8 candidates) and a 95% interval (Fisher z, only from 10 candidates on: below
that, and at rho = +-1, it is not trustworthy).

The search's own proxy runs are always compared. Given another proxy budget (more epochs, a larger
imgsz or fraction), the same candidates are also trained at that budget and compared with the same
full runs, so a user sees whether a cheaper or richer proxy would rank better without a new search.
Full runs go to ``validate/<placement key>/`` (further seeds to ``validate/<key>-seed<seed>/``),
other proxy runs to ``validate/proxy-<budget>/<placement key>/``; none is repeated on resume, and
the comparisons of every budget checked so far are kept in the study's ``proxy_validation``
attribute.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import replace
from pathlib import Path

import optuna
from scipy import stats

from search.config.run_config import RunConfig
from search.final.training import train_once
from search.study.attributes import StudyView, TrialView, record_proxy_validation
from search.study.records import placement_of, scored_trials, task_of_study
from search.study.start import study_data
from search.study.trial_steps import saved_proxy_run
from spaces import Placement
from spaces.tasks import Task
from trainers.data import build_proxy_data, load_dataset


def pick_candidates(study: optuna.Study, k: int, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    """The top ``k`` distinct placements by proxy score, then ``k`` random other completed ones."""
    distinct, seen = [], set()
    for trial in scored_trials(study):
        key = TrialView(trial).placement_key
        if key not in seen:
            seen.add(key)
            distinct.append(trial)
    rest = distinct[k:]
    return distinct[:k] + random.Random(seed).sample(rest, min(k, len(rest)))


MIN_INTERVAL_N = 10  # Fisher z on Spearman is poor below this many pairs
EXACT_MAX_N = 8  # up to 8! = 40320 orderings are enumerated for the p-value


def spearman_interval(rho: float, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Fisher-z interval of a Spearman correlation (standard error 1.03 / sqrt(n - 3)); None when
    n < `MIN_INTERVAL_N` or |rho| = 1, where it would claim a precision it does not have."""
    if n < MIN_INTERVAL_N or not math.isfinite(rho) or abs(rho) >= 1:
        return None
    z, half = math.atanh(rho), stats.norm.ppf(0.5 + confidence / 2) * 1.03 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def spearman_p(proxy: list[float], full: list[float]) -> float:
    """One-sided p-value of "the proxy ranks no better than chance": scipy's permutation test over
    every ordering of the full scores up to `EXACT_MAX_N` candidates (exact), else scipy's t
    approximation."""
    if len(proxy) > EXACT_MAX_N:
        return float(stats.spearmanr(proxy, full, alternative="greater").pvalue)
    test = stats.permutation_test((full,), lambda x: stats.spearmanr(proxy, x).statistic, permutation_type="pairings",
                                  alternative="greater", n_resamples=math.inf)
    return float(test.pvalue)


def rank_agreement(pairs: list[tuple[float | None, float | None]]) -> dict:
    """Spearman rho, its interval and chance p-value over the (proxy, full) pairs where both exist."""
    done = [(p, f) for p, f in pairs if p is not None and f is not None]
    proxy, full = [p for p, _ in done], [f for _, f in done]
    rho = stats.spearmanr(proxy, full).statistic if len(done) > 2 else math.nan
    defined = not math.isnan(rho)
    interval = spearman_interval(rho, len(done)) if defined else None
    return {"n": len(done), "spearman": rho if defined else None, "interval": list(interval) if interval else None,
            "p_value": spearman_p(proxy, full) if defined else None}


def proxy_settings(config: RunConfig) -> dict:
    """The proxy budget of ``config`` that validate-proxy may change (the batch stays the study's)."""
    return {"epochs": config.proxy_epochs, "imgsz": config.proxy_imgsz, "fraction": config.proxy_fraction}


def budget_label(settings: dict) -> str:
    """``10 ep at 160 px`` (``, 50% of train`` when a fraction of the training images)."""
    share = "" if settings["fraction"] == 1 else f", {settings['fraction']:.0%} of train"
    return f"{settings['epochs']} ep at {settings['imgsz']} px{share}"


def _cost(settings: dict) -> float:
    """Relative compute of a proxy budget (epochs x pixels x share of images), to order budgets."""
    return settings["epochs"] * settings["imgsz"] ** 2 * settings["fraction"]


def _proxy_data(config: RunConfig, proxy: RunConfig, task: Task) -> Path:
    """data.yaml of the cached proxy images at ``proxy``'s size and fraction (the study's own when equal)."""
    same = (proxy.proxy_imgsz, proxy.proxy_fraction) == (config.proxy_imgsz, config.proxy_fraction)
    folder = config.study_dir / ("proxy" if same else f"validate/data-{proxy.proxy_imgsz}px-{proxy.proxy_fraction:g}")
    return build_proxy_data(load_dataset(study_data(config), task), folder, proxy.proxy_imgsz, proxy.proxy_fraction, config.seed)


def full_runs(placement: Placement, key: str, base: dict, config: RunConfig, seeds: int, study: optuna.Study) -> dict:
    """Full trainings of ``placement`` with ``seeds`` seeds (the study's seed first): their
    scores (the task's), its mean and a status. Seed runs after the first go to ``validate/<key>-seed<seed>/``."""
    records = [train_once(placement, base, replace(config, seed=config.seed + n),
                          config.study_dir / "validate" / (key if n == 0 else f"{key}-seed{config.seed + n}"))
               for n in range(seeds)]
    score = task_of_study(study).score
    scores = [r.final[score] for r in records if r.status == "complete" and r.final.get(score) is not None]
    failed = seeds - len(scores)
    return {"full": statistics.fmean(scores) if scores else None, "full_seeds": scores,
            "status": "complete" if not failed else f"{failed} of {seeds} failed"}


def validate_proxy(study: optuna.Study, config: RunConfig, base: dict, k: int, proxy: RunConfig | None = None,
                   full_seeds: int = 1) -> dict:
    """Train the picked candidates in full with ``full_seeds`` seeds each (and at ``proxy``'s
    budget when it differs from the study's); store and return the proxy-versus-full comparison,
    on the mean full score, of every proxy budget checked so far."""
    proxy, task = proxy or config, task_of_study(study)
    own, other = proxy_settings(config), proxy_settings(proxy)
    full_budget = {"epochs": config.final_epochs, "imgsz": config.final_imgsz, "seeds": full_seeds}
    stored = StudyView(study).proxy_validation or {}
    if stored.get("k") != k:
        stored = {}  # other candidates: earlier proxy scores do not apply
    earlier = {row["trial"]: row["proxy"] for row in stored.get("rows", [])}
    data = _proxy_data(config, proxy, task) if other != own else None
    tag = "proxy-{epochs}ep-{imgsz}px-{fraction:g}".format(**other)
    rows = []
    for trial in pick_candidates(study, k, config.seed):
        placement, key = placement_of(trial), TrialView(trial).placement_key
        full = full_runs(placement, key, base, config, full_seeds, study)
        scores = {**earlier.get(trial.number, {}), budget_label(own): trial.values[0]}
        if data is not None:
            run = saved_proxy_run(placement, base, data, proxy.proxy_budget, config.study_dir / "validate" / tag / key, config, task)
            scores[budget_label(other)] = run[task.score] if run["status"] == "complete" else None
        rows.append({"trial": trial.number, "placement_str": TrialView(trial).placement_str, "proxy": scores, **full})
    checked = {b["label"]: b["budget"] for b in stored.get("budgets", [])} | {budget_label(own): own, budget_label(other): other}
    budgets = []
    for label, settings in sorted(checked.items(), key=lambda item: _cost(item[1])):
        pairs = [(row["proxy"].get(label), row["full"]) for row in rows]
        budgets.append({"label": label, "budget": settings, "searched": settings == own, **rank_agreement(pairs)})
    result = {"k": k, "full_budget": full_budget, "rows": rows, "budgets": budgets}
    record_proxy_validation(study, result)
    return result
