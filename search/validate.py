"""Proxy fidelity: does the proxy ranking predict the full-training ranking on this dataset?

`validate_proxy` trains the top K placements of a study and K random other ones with the full
budget (``--final-epochs`` at ``--final-imgsz``) and reports the Spearman rank correlation between
proxy and full mAP50-95, with its one-sided p-value (exact over all orderings up to 8 candidates)
and a 95% interval (Fisher z, only from 10 candidates on: below that, and at rho = +-1, it is not
trustworthy). Full runs go to ``validate/<placement key>/`` and are not repeated on resume.
"""

from __future__ import annotations

import itertools
import math
import random

import optuna
from scipy import stats

from search.config import RunConfig
from search.final import train_once
from search.study import placement_of, scored_trials


def pick_candidates(study: optuna.Study, k: int, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    """The top ``k`` distinct placements by proxy score, then ``k`` random other completed ones."""
    distinct, seen = [], set()
    for trial in scored_trials(study):
        key = trial.user_attrs.get("placement_key")
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
    """One-sided p-value of "the proxy ranks no better than chance": exact by enumerating every
    ordering up to `EXACT_MAX_N` candidates, else scipy's t approximation."""
    rho = stats.spearmanr(proxy, full).statistic
    if len(proxy) > EXACT_MAX_N:
        return float(stats.spearmanr(proxy, full, alternative="greater").pvalue)
    orderings = list(itertools.permutations(full))
    return sum(stats.spearmanr(proxy, o).statistic >= rho - 1e-12 for o in orderings) / len(orderings)


def validate_proxy(study: optuna.Study, config: RunConfig, base: dict, k: int) -> dict:
    """Train the picked candidates in full; store and return the proxy-versus-full comparison."""
    rows = []
    for trial in pick_candidates(study, k, config.seed):
        record = train_once(placement_of(trial), base, config, config.study_dir / "validate" / trial.user_attrs["placement_key"])
        full = record.final.get("map50_95")
        rows.append({"trial": trial.number, "placement_str": trial.user_attrs.get("placement_str"),
                     "proxy": trial.values[0], "full": full, "status": record.status})  # fmt: skip
    done = [r for r in rows if r["full"] is not None]
    proxy, full = [r["proxy"] for r in done], [r["full"] for r in done]
    rho = stats.spearmanr(proxy, full).statistic if len(done) > 2 else math.nan
    interval = spearman_interval(rho, len(done))
    result = {"k": k, "rows": rows, "spearman": None if math.isnan(rho) else rho,
              "interval": list(interval) if interval else None, "n": len(done),
              "p_value": spearman_p(proxy, full) if len(done) > 2 else None,
              "full_budget": {"epochs": config.final_epochs, "imgsz": config.final_imgsz},
              "proxy_budget": {"epochs": config.proxy_epochs, "imgsz": config.proxy_imgsz, "fraction": config.proxy_fraction}}  # fmt: skip
    study.set_user_attr("proxy_validation", result)
    return result
