"""Confirmation: the top candidates race the baseline on fresh seeds (`search.select.racing`).

One proxy run ranks placements barely better than chance: its seed noise is as large as the effect
of attention, and the best of many single runs is biased upwards (docs/ARCHITECTURE.md, "Facts"). So the best
``--confirm-top K`` distinct placements of the search (by their mean gain over the baseline on shared
seeds, `search.select.intensify.ranking`) race the baseline within ``--confirm-budget N`` proxy runs (the
baseline's included), on seeds the search never used (``seed + 1, ...``, after ``--intensify``'s
repeat seeds); `search.select.racing` holds the rules (selection, dropping, the test and its correction). The winner
is exported only when it passes that test; otherwise the baseline is. Each run is saved in
``confirm/<placement key>/seed<seed>/`` and not repeated on resume: the race replays the same
decisions from the saved scores.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import optuna

from search.final.decision import NOTHING_RACED, Confirmation, SeedRuns, race_verdict
from search.select.racing import ALPHA, Race, race
from search.select.verdict import Comparison, tradeoff_line, verdict_line
from search.study.attributes import TrialView
from search.study.progress import RaceProgress
from search.study.records import baseline_trial, placement_of, ranked_by_gain
from search.study.start import StudyRun
from search.study.trial_steps import saved_proxy_run
from spaces import Placement
from spaces.tasks import Task


def _seed_run(placement: Placement, seed: int, run: StudyRun) -> dict:
    """Metrics of one proxy run of ``placement`` with ``seed`` (saved, reused on resume)."""
    folder = run.config.study_dir / "confirm" / placement.key / f"seed{seed}"
    return saved_proxy_run(placement, run.base, run.proxy, replace(run.config.proxy_budget, seed=seed), folder, run.config, run.task)


def _contenders(study: optuna.Study, base_trial: optuna.trial.FrozenTrial, top: int) -> list[optuna.trial.FrozenTrial]:
    """The first trials of the best ``top`` placements of the search by their mean gain over the baseline on
    the seeds both trained (`search.select.intensify.ranking`: one seed each without ``--intensify``), the baseline's excluded."""
    return [trial for trial, _ in ranked_by_gain(study.get_trials(deepcopy=False), TrialView(base_trial).placement_key)[:top]]


def confirm(run: StudyRun, show_progress: bool = True) -> Confirmation:
    """Race the top candidates of ``run``'s study against the baseline on fresh seeds and pick the winner
    (None when no candidate beats the baseline beyond noise), on the task's score."""
    study, config, score = run.study, run.config, run.task.score
    base_trial = baseline_trial(study)
    if base_trial is None or base_trial.state != optuna.trial.TrialState.COMPLETE:
        raise ValueError(f"study '{study.study_name}' has no completed baseline trial to confirm against")
    top = _contenders(study, base_trial, config.confirm_top)
    trials = {TrialView(t).placement_key: t for t in (base_trial, *top)}
    labels = {key: f"trial {t.number}" for key, t in trials.items()}
    base_key, keys = TrialView(base_trial).placement_key, [TrialView(t).placement_key for t in top]
    runs: dict[tuple[str, int], dict] = {}
    with RaceProgress(config.confirm_budget, labels, enabled=show_progress) as progress:

        def train(key: str, seed: int) -> float | None:
            progress.start_run(key, seed, seed - config.seed)
            runs[key, seed] = _seed_run(placement_of(trials[key]), seed, run)
            done = runs[key, seed]["status"] == "complete" and runs[key, seed].get(score) is not None
            return runs[key, seed][score] if done else None

        found = race(keys, base_key, train, config.confirm_budget, config.search_seeds.stop, on_round=progress.round) if keys else None
    baseline = _entry(trials[base_key], runs, found, run.task)
    candidates = [_entry(trials[k], runs, found, run.task) for k in keys]
    if found is None:
        return Confirmation(baseline, candidates, None, NOTHING_RACED, config.confirm_budget, ALPHA)
    named = lambda key: f"{labels[key]} ({TrialView(trials[key]).placement_str})" if key else None  # noqa: E731
    line = verdict_line(found.comparison, run.task.score_label) if found.comparison is not None else None
    verdict = race_verdict(named(found.winner), labels.get(found.leader), line, found.stopped)
    return Confirmation(baseline, candidates, keys.index(found.winner) if found.winner is not None else None, verdict,
                        config.confirm_budget, found.alpha, found.runs, found.stopped, found.resolution())


def _entry(trial: optuna.trial.FrozenTrial, runs: dict[tuple[str, int], dict], found: Race | None, task: Task) -> SeedRuns:
    """A placement's confirmation: its completed runs' metrics and seeds, its fate in the race, and
    (tested candidates) the comparison and the precision/recall trade-off against the baseline."""
    view = TrialView(trial)
    key = view.placement_key
    mine = sorted((seed, m) for (k, seed), m in runs.items() if k == key)
    done = [(seed, m) for seed, m in mine if m["status"] == "complete" and m.get(task.score) is not None]
    entry = SeedRuns(trial.number, view.placement_str, view.placement_dict, [seed for seed, _ in done],
                     len(mine) - len(done), {k: [m[k] for _, m in done] for k in task.metric_names})
    if found is None or key == found.baseline:
        return entry
    tested = key == found.leader and found.comparison is not None
    return replace(entry, race=_fate(found, key), comparison=_comparison_dict(found.comparison, task) if tested else None,
                   tradeoff=_tradeoff(runs, key, found.baseline))


def _fate(found: Race, key: str) -> str:
    """What happened to contender ``key`` in the race, in a few words."""
    if key == found.winner:
        return "won the test"
    drop = found.dropped.get(key)
    if drop is not None:
        behind = "the baseline" if drop.behind == found.baseline else "the leader"
        why = "its runs failed" if drop.behind is None else f"clearly behind {behind}"
        return f"dropped after round {drop.round}: {why}"
    if key == found.leader:
        return "tested: not better beyond noise" if found.comparison else f"tested: {found.stopped}"
    return "not selected: another contender led"


def _tradeoff(runs: dict[tuple[str, int], dict], key: str, baseline: str) -> str | None:
    """`tradeoff_line` of mean precision and recall over the seeds both ``key`` and ``baseline`` completed."""
    scored = {(k, seed): m for (k, seed), m in runs.items() if m["status"] == "complete" and m.get("precision") is not None}
    seeds = sorted({s for k, s in scored if k == key} & {s for k, s in scored if k == baseline})
    if not seeds:
        return None

    def means(k: str) -> dict:
        return {name: statistics.fmean(scored[k, s][name] for s in seeds) for name in ("precision", "recall")}

    return tradeoff_line(means(key), means(baseline))


def _comparison_dict(c: Comparison, task: Task) -> dict:
    return {"difference": c.difference, "low": c.low, "high": c.high, "p_value": c.p_value, "method": c.method,
            "confidence": c.confidence, "correlation": c.correlation, "n_pairs": c.n_pairs, "n_candidate": c.n_candidate,
            "line": verdict_line(c, task.score_label)}
