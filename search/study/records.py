"""What a study's trials hold, read back: the placement as Optuna params, repeat seeds, which trials count
towards ``--trials``, the baseline, and the completed placements ranked.

The Optuna study is the single source of truth: each trial carries its placement as params,
per-epoch fitness as intermediate values, and its metrics and folder as user attributes
(`search.study.attributes`, the only module that reads them by key). A trial
stopped by the pruner is PRUNED, one that broke is FAIL with its reason, never COMPLETE with a
truncated score.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from search.select.intensify import paired_gain, ranking
from search.study.attributes import StudyView, TrialView

if TYPE_CHECKING:  # spaces imports Ultralytics and torch: only where a placement is built
    from spaces import Placement, SearchSpace
    from spaces.tasks import Task


KEEP, DROP = "keep", "drop"
COUNT = "modules"  # Optuna parameter: how many attention modules the placement adds

# Stop asking when this many trials in a row were not trained: the sampler keeps proposing
# placements already evaluated or outside the space (a small space, or a converged sampler).
STALL_LIMIT = 50


def suggest_placement(trial: Trial, space: SearchSpace) -> Placement:
    """Ask Optuna for a placement: a module count, then a position and a type per module.

    Modules at the same position stack in slot order; more than ``max_per_position`` there makes
    the placement infeasible (`SearchSpace.check`). Each removable base block is kept or dropped.
    """
    from spaces import Placement

    positions = [p.name for p in space.insert_positions]
    count = trial.suggest_int(COUNT, 0, space.max_modules if positions else 0)
    modules: dict[str, list[str]] = {}
    for slot in range(1, count + 1):
        position = trial.suggest_categorical(f"m{slot}.position", positions)
        modules.setdefault(position, []).append(trial.suggest_categorical(f"m{slot}.type", space.choices))
    dropped = [p.name for p in space.drop_positions if trial.suggest_categorical(p.name, [KEEP, DROP]) == DROP]
    return Placement.of(modules, dropped)


def placement_params(placement: Placement, space: SearchSpace) -> dict:
    """The Optuna params that `suggest_placement` turns into ``placement`` (for enqueueing)."""
    slots = [(position, spec) for position, specs in placement.modules for spec in specs]
    params: dict = {COUNT: len(slots)}
    for slot, (position, spec) in enumerate(slots, 1):
        params[f"m{slot}.position"], params[f"m{slot}.type"] = position, spec
    params.update({p.name: DROP if p.name in placement.dropped else KEEP for p in space.drop_positions})
    return params


def interrupted_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of trials whose process died and that were queued again (a retry names them)."""
    return {TrialView(t).retry_of for t in trials} - {None}


def counted(trial: FrozenTrial, interrupted: set[int] = frozenset()) -> bool:
    """Whether a trial counts towards ``--trials``: finished, trained (not infeasible, not a duplicate of a trained
    placement), and not among ``interrupted`` (a trial whose process died)."""
    view = TrialView(trial)
    return (trial.state.is_finished() and trial.number not in interrupted and view.infeasible is None
            and view.duplicate_of is None)


def stalled(trials: list[FrozenTrial]) -> bool:
    """True when the last `STALL_LIMIT` finished trials were all told without training."""
    finished = [t for t in trials if t.state.is_finished()][-STALL_LIMIT:]
    return len(finished) == STALL_LIMIT and not any(counted(t) for t in finished)


def count_trials(trials: list[FrozenTrial]) -> int:
    """Trials done so far, as `counted` defines them."""
    interrupted = interrupted_numbers(trials)
    return sum(counted(t, interrupted) for t in trials)


def task_of_study(study: optuna.Study) -> Task:
    """The task ``study`` searched, on the score its ``--metric`` chose (studies from before tasks: detection)."""
    from spaces.tasks import TASKS

    view = StudyView(study)
    return TASKS[view.task_name].scored_on((view.config or {}).get("metric", "task"))


def placement_of(trial: FrozenTrial) -> Placement:
    """The placement a finished trial evaluated."""
    from spaces import Placement

    return Placement.from_dict(TrialView(trial).placement_dict)


def finished_by_key(trials: Iterable[FrozenTrial]) -> dict[str, FrozenTrial]:
    """Placement key -> first COMPLETE or PRUNED trial that trained it on the study's seed (for duplicate reuse)."""
    found: dict[str, FrozenTrial] = {}
    for trial in trials:
        view = TrialView(trial)
        if (trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and view.placement_key and not view.infeasible
                and view.repeat_seed is None):
            found.setdefault(view.placement_key, trial)
    return found


def seed_scores(trials: Iterable[FrozenTrial], seed: int = -1) -> dict[str, dict[int, float]]:
    """Placement key -> training seed -> first objective of its COMPLETE trials: what `search.select.intensify` ranks
    placements on. ``seed`` stands for the study's seed (trials without a repeat seed): give the real one where
    the seeds' numbers matter; for ranking only, the default -1 pairs runs as well (no repeat seed is negative)."""
    found: dict[str, dict[int, float]] = {}
    for trial in trials:
        view = TrialView(trial)
        if trial.state == TrialState.COMPLETE and view.placement_key and view.duplicate_of is None:
            found.setdefault(view.placement_key, {}).setdefault(view.repeat_seed if view.repeat_seed is not None else seed,
                                                                trial.values[0])
    return found


def ranked_by_gain(trials: Iterable[FrozenTrial], baseline_key: str) -> list[tuple[FrozenTrial, float]]:
    """(first trial, mean gain over the baseline on the seeds both trained) of every completed placement but the
    baseline, best first (`search.select.intensify.ranking`: one seed each without ``--intensify``)."""
    trials = list(trials)
    scores, first = seed_scores(trials), finished_by_key(trials)
    return [(first[key], paired_gain(scores, key, baseline_key)[0]) for key in ranking(scores, baseline_key)]


def rank_key(trial: FrozenTrial) -> tuple:
    """Sort key of COMPLETE trials, best first: first objective, then fewer parameters."""
    return -trial.values[0], TrialView(trial).parameter_count or 0, trial.number


def scored_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials, best first (`rank_key`)."""
    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=rank_key)


def first_baseline(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The first counted trial of the un-modified base model (later ones are duplicates of it)."""
    trials = list(trials)
    interrupted = interrupted_numbers(trials)
    return next((t for t in sorted(trials, key=lambda t: t.number) if TrialView(t).is_baseline and counted(t, interrupted)), None)


def failed_baseline(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The last failed training of the base model when no training of it succeeded or is under way:
    every placement would then fail the same way (a bad option, a missing GPU)."""
    ours = [t for t in trials if TrialView(t).is_baseline and TrialView(t).duplicate_of is None]
    failed = [t for t in ours if t.state == TrialState.FAIL]
    return failed[-1] if failed and len(failed) == len(ours) else None


def baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    """The study's baseline trial (`first_baseline`)."""
    return first_baseline(study.get_trials(deepcopy=False))
