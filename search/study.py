"""The Optuna side of a search: storage, sampler, pruner, placement parameters, trial records.

The Optuna study is the single source of truth: each trial carries its placement as params,
per-epoch fitness as intermediate values, and its metrics and folder as user attributes. A trial
stopped by the pruner is PRUNED, one that broke is FAIL with its reason, never COMPLETE with a
truncated score.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from search.config import RunConfig

if TYPE_CHECKING:  # spaces imports Ultralytics and torch: only where a placement is built
    from spaces import Placement, SearchSpace

KEEP, DROP = "keep", "drop"
COUNT = "modules"  # Optuna parameter: how many attention modules the placement adds
# User attributes that mark trials which do not count towards --trials: a run was killed, the
# placement broke the space's limits, or it repeated a placement already trained.
NOT_COUNTED = ("interrupted", "infeasible", "duplicate_of")
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


def make_sampler(config: RunConfig) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, grouped for the conditional slots) or random, seeded."""
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    with warnings.catch_warnings():  # `group` is marked experimental; it is what a conditional space needs
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, seed=config.seed, n_startup_trials=min(10, max(2, config.trials // 5))
        )


def make_pruner(config: RunConfig) -> optuna.pruners.BasePruner:
    """Pruner on per-epoch fitness; multi-objective studies cannot prune (Optuna) and get none."""
    if config.pruner == "none" or len(config.directions) > 1:
        return optuna.pruners.NopPruner()
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, config.proxy_epochs // 3))
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=max(1, config.proxy_epochs // 9), reduction_factor=3, min_early_stopping_rate=0
    )


# Seconds a SQLite connection waits for another process's write lock before "database is locked".
SQLITE_TIMEOUT_S = 60


def rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage for ``url``; SQLite connections wait up to `SQLITE_TIMEOUT_S` for a lock,
    so several processes (a dashboard, a second search) can share one study.db."""
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else None
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def open_study(config: RunConfig) -> optuna.Study:
    """Create or load the study; trials a killed process left RUNNING are marked FAIL
    (``interrupted``) and queued again with the same params."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar and report say what happens
    try:
        storage = rdb_storage(config.storage_url)
    except Exception as e:  # SQLAlchemy raises many kinds for a bad URL or an unreachable server
        raise ValueError(f"storage '{config.storage_url}' cannot be opened ({type(e).__name__}); check the URL") from None
    study = optuna.create_study(
        study_name=config.study,
        storage=storage,
        sampler=make_sampler(config),
        pruner=make_pruner(config),
        directions=config.directions,
        load_if_exists=True,
    )
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    return study


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial counts towards ``--trials``: finished, and neither interrupted nor infeasible."""
    return trial.state.is_finished() and not any(k in trial.user_attrs for k in NOT_COUNTED)


def stalled(study: optuna.Study) -> bool:
    """True when the last `STALL_LIMIT` finished trials were all told without training."""
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()][-STALL_LIMIT:]
    return len(finished) == STALL_LIMIT and not any(counted(t) for t in finished)


def count_trials(study: optuna.Study) -> int:
    """Trials done so far, as `counted` defines them."""
    return sum(counted(t) for t in study.get_trials(deepcopy=False))


def placement_of(trial: FrozenTrial) -> Placement:
    """The placement a finished trial evaluated."""
    from spaces import Placement

    return Placement.from_dict(trial.user_attrs.get("placement"))


def finished_by_key(study: optuna.Study) -> dict[str, FrozenTrial]:
    """Placement key -> first COMPLETE or PRUNED trial that trained it (for duplicate reuse)."""
    found: dict[str, FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        key = trial.user_attrs.get("placement_key")
        if key and not trial.user_attrs.get("infeasible"):
            found.setdefault(key, trial)
    return found


def rank_key(trial: FrozenTrial) -> tuple:
    """Sort key of COMPLETE trials, best first: first objective, then fewer parameters."""
    return -trial.values[0], trial.user_attrs.get("params") or 0, trial.number


def scored_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials, best first (`rank_key`)."""
    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=rank_key)


def first_baseline(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The first counted trial of the un-modified base model (later ones are duplicates of it)."""
    return next((t for t in sorted(trials, key=lambda t: t.number) if t.user_attrs.get("baseline") and counted(t)), None)


def baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    """The study's baseline trial (`first_baseline`)."""
    return first_baseline(study.get_trials(deepcopy=False))
