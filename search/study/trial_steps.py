"""The life of one trial, from Optuna's ask to its tell, shared by every executor (`search.study.executor`).

`prepare_trial` turns an asked trial into the placement to train, or tells it at once when it is infeasible
or repeats a finished trial (`tell_duplicate`); `report_epoch` hands each epoch to Optuna's pruner;
`finish_trial` records the `TrialRecord` and tells Optuna COMPLETE, PRUNED or FAIL. So every executor treats
baseline, infeasible, duplicate, pruned and failed trials alike. `queue_prior` and `queue_repeat` queue the
usual placements and the intensification's repeat seeds; `saved_proxy_run` is one proxy training outside the
search (confirmation, proxy check), kept in its folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from search.config.objectives import second_objective
from search.config.run_config import RunConfig
from search.select.intensify import next_repeat
from search.study.attributes import (
    StudyView,
    TrialView,
    copy_outcome,
    enqueue_repeat,
    enqueue_usual,
    mark_infeasible,
    mark_prior_queued,
    record_placement,
    record_training,
)
from search.study.records import finished_by_key, placement_of, placement_params, seed_scores, suggest_placement
from search.study.start import StudyRun
from search.study.storage import study_lock
from spaces import Placement, PlacementError, SearchSpace
from spaces.prior import usual_placements
from spaces.tasks import Task
from trainers.train import Budget, TrialRecord, train_candidate


def saved_proxy_run(placement: Placement, base: dict, proxy: Path, budget: Budget, folder: Path, config: RunConfig,
                    task: Task) -> dict:
    """Status, reason and scored metrics (``task``'s) of one proxy training of ``placement`` into ``folder``
    (starting from ``config``'s weights, with its insertion); saved as ``folder/metrics.json`` and
    reused from there on resume."""
    saved = folder / "metrics.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    record = train_candidate(placement, base, proxy, budget, folder, weights=config.weights, insertion=config.insertion)
    scored = score_metrics(record)
    metrics = {"status": record.status, "reason": record.reason, **{k: scored.get(k) for k in task.metric_names}}
    saved.write_text(json.dumps(metrics))
    return metrics


def queue_prior(study: optuna.Study, config: RunConfig, space: SearchSpace) -> None:
    """Queue the usual placements (`spaces.prior`) once per study, as soon as the baseline trains or has
    completed: next after it, whichever executor (on Ray, the workers free while the baseline trains take
    them). One worker never queues them ahead of a baseline queued again after it failed: it stops at the
    failure first. On Ray, a baseline that fails while they are queued is queued again behind them (Optuna
    asks queued trials in the order they were queued)."""
    if StudyView(study).prior_queued:
        return
    with study_lock(config):
        trials = study.get_trials(deepcopy=False)
        started = any(TrialView(t).is_baseline and t.state in (TrialState.RUNNING, TrialState.COMPLETE) for t in trials)
        if StudyView(study).prior_queued or not started:
            return
        usual = usual_placements(space)[: config.trials - 1]  # a resume with more --trials queues them then
        for name, placement in usual:
            enqueue_usual(study, placement_params(placement, space), name)
        if usual:
            mark_prior_queued(study)


def queue_repeat(study: optuna.Study, config: RunConfig, space: SearchSpace) -> None:
    """Queue the next repeat seed the intensification asks for (`search.select.intensify.next_repeat`), if any:
    a trial of its own with the leader's parameters and a ``seed`` attribute, so that it counts towards
    ``--trials``, trains on Ray like any trial, and survives a kill in the storage (a queued or dead
    repeat is asked again on resume with its seed). Under the study's lock: two workers queue it once."""
    with study_lock(config):
        trials = study.get_trials(deepcopy=False)
        tried = {(v.placement_key or v.repeat_of, v.repeat_seed)  # a queued repeat has no placement_key yet
                 for v in map(TrialView, trials) if v.repeat_seed is not None}
        wanted = next_repeat(seed_scores(trials, config.seed), Placement().key, config.intensify, config.intensify_seeds,
                             config.seed, tried)
        if wanted is not None:
            key, seed = wanted
            first = finished_by_key(trials)[key]
            enqueue_repeat(study, placement_params(placement_of(first), space), seed, key)


def prepare_trial(trial: Trial, study: optuna.Study, space: SearchSpace, trials: list[FrozenTrial]) -> Placement | None:
    """The placement an asked trial must train, or None when it was told without training:
    infeasible (PRUNED, not counted) or identical to a finished trial among ``trials`` (`tell_duplicate`)."""
    placement = suggest_placement(trial, space)
    record_placement(trial, placement)
    try:
        space.check(placement)
    except PlacementError as e:  # known before training: not trained, not counted
        mark_infeasible(trial, str(e))
        study.tell(trial, state=TrialState.PRUNED)
        return None
    twin = finished_by_key(trials).get(placement.key) if TrialView(trial).repeat_seed is None else None  # a repeat seed trains
    if twin is not None:
        tell_duplicate(trial, study, twin)
        return None
    return placement


def tell_duplicate(trial: Trial, study: optuna.Study, twin: FrozenTrial) -> None:
    """Finish ``trial`` with the outcome of ``twin``, a finished trial of the same placement."""
    copy_outcome(trial, twin)
    for step, value in twin.intermediate_values.items():
        trial.report(value, step)
    study.tell(trial, twin.values if twin.state == TrialState.COMPLETE else None, state=twin.state)


def report_epoch(trial: Trial, epoch: int, metrics: dict, config: RunConfig) -> bool:
    """Give Optuna one epoch's fitness; True when its pruner says stop. Multi-objective trials are
    never pruned (Optuna cannot); their curve is kept in the ``epochs`` attribute. The last epoch is
    never pruned either: the training is complete, and stopping it would only drop its result. A repeat seed
    of the intensification is neither pruned nor reported: its leader already passed the pruner, and its
    curves would raise the median that new placements are pruned against."""
    if len(config.directions) > 1 or TrialView(trial).repeat_seed is not None:
        return False
    trial.report(metrics["fitness"], epoch)
    return epoch < config.proxy_epochs and trial.should_prune()


def finish_trial(trial: Trial, run: StudyRun, record: TrialRecord) -> None:
    """Record a trained trial's metrics and tell Optuna its outcome (COMPLETE, PRUNED or FAIL)."""
    record_trial(trial, record, run.task)
    run.study.tell(trial, *outcome(record, run, trial))


def trial_dir(config: RunConfig, number: int) -> Path:
    """Folder of trial ``number``: ``<study>/trials/<number>``."""
    return config.study_dir / "trials" / str(number)


def record_trial(trial: Trial, record: TrialRecord, task: Task) -> None:
    """Keep a record's scored metrics (``task``'s), sizes, time and folder on the trial (`record_training`)."""
    scored = score_metrics(record)
    record_training(trial, record, {key: scored.get(key) for key in task.metric_names})


def score_metrics(record: TrialRecord) -> dict:
    """Metrics a trial is scored on: the re-validation of its best weights, else its best epoch."""
    return record.final or record.best


def outcome(record: TrialRecord, run: StudyRun, trial: Trial | FrozenTrial) -> tuple:
    """(values, state) for `Study.tell`: the task's score, then the second objective of a Pareto search
    (measured on ``record``, or read from what ``trial`` keeps: latency)."""
    if record.status == "pruned":
        return None, TrialState.PRUNED
    if record.status == "failed":
        return None, TrialState.FAIL
    score = score_metrics(record)[run.task.score]
    second = second_objective(run.config.objective)
    return ([score, second.measure(record, TrialView(trial))] if second else score), TrialState.COMPLETE
