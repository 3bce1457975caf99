"""The life of one trial, from Optuna's ask to its tell, shared by every executor (`search.executor`).

`start_search` opens or resumes the study (inputs checked, dataset resolved and proxy data built
once, the baseline queued); `prepare_trial` turns an asked trial into the placement to train, or
tells it at once when it is infeasible or repeats a finished trial (`tell_duplicate`);
`report_epoch` hands each epoch to Optuna's pruner; `finish_trial` records the `TrialRecord` and
tells Optuna COMPLETE, PRUNED or FAIL. So every executor treats baseline, infeasible, duplicate,
pruned and failed trials alike. Resumable at any moment: the study in storage holds every finished
trial, and a trial a killed run left RUNNING is queued again (`search.study.open_study`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, Trial, TrialState
from ultralytics.cfg import DEFAULT_CFG

from search.config import RunConfig, check_writable, shown, times_candidates
from search.intensify import next_repeat
from search.latency import LatencyProbe
from search.objectives import second_objective
from search.provenance import environment
from search.study import (
    REPEAT_KEY,
    failed_baseline,
    finished_by_key,
    open_study,
    placement_of,
    placement_params,
    repeat_seed,
    seed_scores,
    study_lock,
    suggest_placement,
)
from spaces import Placement, PlacementError, SearchSpace, load_base, load_space
from spaces.prior import usual_placements
from spaces.tasks import Task, task_of
from spaces.transfer import check_keypoints, check_matches
from trainers.data import build_proxy_data, load_dataset, write_resolved_yaml
from trainers.files import replace_file
from trainers.train import Budget, TrialRecord, check_device, check_train_args, train_candidate

# Options that define what a study measures; a rerun may change the others (trials, timeout, ...).
IDENTITY = ("data", "model", "space", "weights", "insertion", "metric", "objective", "proxy_epochs", "proxy_imgsz",
            "proxy_fraction", "proxy_batch", "proxy_recipe", "seed", "intensify", "intensify_seeds", "latency_device", "train_args",
            "storage")


def _measures_with(option: str, config: dict) -> bool:
    """Whether a study run with ``config`` (a `RunConfig.public` dict) measures anything with ``option``:
    repeat seeds only when it intensifies, the latency device only when it times candidates."""
    if option == "intensify_seeds":
        return bool(config.get("intensify"))
    if option == "latency_device":
        return times_candidates(config)
    return True


def identity_changes(recorded: dict, current: dict) -> list[str]:
    """The `IDENTITY` options (of `RunConfig.public` dicts) a run changes against what its study recorded,
    leaving out those neither measures with (a rerun may change ``--intensify-seeds`` of a study that
    does not intensify)."""
    return [k for k in IDENTITY if recorded.get(k) != current.get(k)
            and (_measures_with(k, recorded) or _measures_with(k, current))]


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


def study_data(config: RunConfig) -> Path:
    """The study's own data.yaml (absolute image lists, written when the search starts): every
    training of the study, proxy, confirmation, final or validation, reads its images from it.
    A study from before this file existed falls back to the user's data.yaml."""
    resolved = config.study_dir / "data.yaml"
    return resolved if resolved.is_file() else Path(config.data)


def check_study_dir(config: RunConfig) -> None:
    """Create the study folder, or check that an existing one was made with the same settings."""
    check_writable(config.study_dir)
    saved_path = config.study_dir / "run.yaml"
    if saved_path.is_file():
        saved = RunConfig.load(saved_path)
        changed = identity_changes(saved.public(), config.public())
        if changed:
            raise ValueError(
                f"study {config.study_dir} was run with other {', '.join(changed)}; "
                "use the same options, `resume` it, or give a new --study name"
            )


def check_identity(study: optuna.Study, config: RunConfig) -> None:
    """``ValueError`` in one line when ``config`` measures something else than the study recorded
    (run.yaml edited between runs): one leaderboard must not mix budgets or data."""
    recorded = {"insertion": "plain", "metric": "task", "intensify": 0, "intensify_seeds": 2, "proxy_recipe": "ultralytics",
                "latency_device": "cpu", **(study.user_attrs.get("config") or config.public())}  # older studies lack some
    current = config.public()
    changed = identity_changes(recorded, current)
    if changed:
        was = ", ".join(f"{k} {recorded.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(f"study {config.study_dir} was searched with other settings ({was}); restore them or start a new --study")


def check_storage_holds_trials(trials: list[FrozenTrial], config: RunConfig) -> None:
    """``ValueError`` in one line when the study folder holds trials its storage does not know (``trials``: the
    storage's; it was deleted, emptied or replaced by an older copy): new trials would train over them."""
    known = len(trials)
    folders = config.study_dir / "trials"
    unknown = sorted(int(f.name) for f in folders.iterdir() if f.name.isdigit() and int(f.name) >= known) if folders.is_dir() else []
    if unknown:
        raise ValueError(f"study folder {config.study_dir} holds trials {unknown[0]}..{unknown[-1]} that its storage "
                         f"'{shown(config.storage_url)}' does not know ({known} trials): it was deleted, emptied or replaced; "
                         "restore it, or start afresh with a new --study name or --out")


def check_same_data(study: optuna.Study, trials: list[FrozenTrial], config: RunConfig, content: str) -> None:
    """``ValueError`` in one line when the dataset's files changed (`trainers.data.Dataset.content`: added,
    removed or modified) since the study's ``trials`` were scored: one leaderboard must not mix two datasets."""
    recorded = study.user_attrs.get("data_content")  # studies from before it was recorded cannot be checked
    scored = [t for t in trials if t.state.is_finished() and "infeasible" not in t.user_attrs]
    if recorded and recorded != content and scored:
        raise ValueError(f"dataset {config.data} changed since this study's {len(scored)} trials were scored on it (images "
                         "or labels added, removed or modified); restore it, or start a new --study on the new data")


def load_inputs(config: RunConfig) -> tuple[dict, SearchSpace]:
    """Base model dict and validated search space of a run (errors are one-line ValueErrors)."""
    base = load_base(config.model)
    return base, load_space(base, config.space)


@dataclass(frozen=True)
class StudyRun:
    """One run of a study with its inputs resolved once (`start_search`), passed to the executor and
    on to the final step."""

    config: RunConfig
    study: optuna.Study
    space: SearchSpace
    base: dict  # the base model's YAML dict
    proxy: Path  # the proxy data.yaml every proxy training of the study reads (trials, confirmation)
    task: Task  # the base model's task: its metrics and the score the search maximises
    latency: LatencyProbe | None = None  # times candidates before they train, when latency is measured


def start_search(config: RunConfig) -> StudyRun:
    """Everything before the first trial, for every executor: check the inputs, open the study
    (re-queueing interrupted trials), write run.yaml and space.yaml, cache the proxy data and queue
    the baseline as trial 0."""
    base, space = load_inputs(config)
    task = task_of(base).scored_on(config.metric)
    check_train_args(config.train_args)
    if not config.ray_address:  # a cluster's GPUs are on its nodes, not necessarily here
        check_device(config.device)
    if config.weights:  # a checkpoint of another model would transfer a fraction of its tensors
        check_matches(config.weights, base)
    dataset = load_dataset(config.data, task)
    if config.weights and task.keypoints:
        check_keypoints(config.weights, dataset.extra["kpt_shape"], config.data)
    check_study_dir(config)
    study = open_study(config, recover=True)
    with study_lock(config):  # workers started together: the first records what the study measures, the rest compare
        trials = study.get_trials(deepcopy=False)
        check_storage_holds_trials(trials, config)
        check_identity(study, config)
        check_same_data(study, trials, config, dataset.content)
        study.set_user_attr("config", config.public())
        study.set_user_attr("data_content", dataset.content)
        config.save(config.study_dir / "run.yaml")
    write_resolved_yaml(dataset, config.study_dir / "data.yaml")
    if dataset.unusable:
        print(f"warning: {dataset.unusable_text()}")
        study.set_user_attr("unusable_images", dataset.unusable_text())
    crowded = dataset.crowded_text(config.train_args.get("max_det", DEFAULT_CFG.max_det))  # detections scored an image
    if crowded:
        print(f"warning: {crowded}")
    replace_file(config.study_dir / "space.yaml", yaml.safe_dump(space.to_dict(), sort_keys=False))
    proxy = build_proxy_data(dataset, config.study_dir / "proxy", config.proxy_imgsz, config.proxy_fraction, config.seed)
    study.set_user_attr("task", task.name)
    second = second_objective(config.objective)  # the dashboard names the objectives, not "Objective 0"
    with warnings.catch_warnings():  # set_metric_names is marked experimental; it is how Optuna names objectives
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([f"{task.score_label} (proxy)"] + ([second.label] if second else []))
    if "environment" not in study.user_attrs:  # where the first trials trained; a resume keeps it
        study.set_user_attr("environment", environment())
    latency = LatencyProbe(study, config, base, study_data(config)) if config.measures_latency else None
    with study_lock(config):  # workers starting together queue one baseline; a failed one is queued again
        if not study.trials or failed_baseline(study.get_trials(deepcopy=False)):
            study.enqueue_trial(placement_params(Placement(), space), user_attrs={"baseline": True})
    return StudyRun(config, study, space, base, proxy, task, latency)


def queue_prior(study: optuna.Study, config: RunConfig, space: SearchSpace) -> None:
    """Queue the usual placements (`spaces.prior`) once per study, as soon as the baseline trains or has
    completed: next after it, whichever executor (on Ray, the workers free while the baseline trains take
    them). One worker never queues them ahead of a baseline queued again after it failed: it stops at the
    failure first. On Ray, a baseline that fails while they are queued is queued again behind them (Optuna
    asks queued trials in the order they were queued)."""
    if study.user_attrs.get("prior_queued"):
        return
    with study_lock(config):
        trials = study.get_trials(deepcopy=False)
        started = any(t.user_attrs.get("baseline") and t.state in (TrialState.RUNNING, TrialState.COMPLETE) for t in trials)
        if study.user_attrs.get("prior_queued") or not started:
            return
        usual = usual_placements(space)[: config.trials - 1]  # a resume with more --trials queues them then
        for name, placement in usual:
            study.enqueue_trial(placement_params(placement, space), user_attrs={"prior": name})
        if usual:
            study.set_user_attr("prior_queued", True)


def queue_repeat(study: optuna.Study, config: RunConfig, space: SearchSpace) -> None:
    """Queue the next repeat seed the intensification asks for (`search.intensify.next_repeat`), if any:
    a trial of its own with the leader's parameters and a ``seed`` attribute, so that it counts towards
    ``--trials``, trains on Ray like any trial, and survives a kill in the storage (a queued or dead
    repeat is asked again on resume with its seed). Under the study's lock: two workers queue it once."""
    with study_lock(config):
        trials = study.get_trials(deepcopy=False)
        tried = {(t.user_attrs.get("placement_key") or t.user_attrs.get(REPEAT_KEY), repeat_seed(t))  # queued ones: REPEAT_KEY
                 for t in trials if repeat_seed(t) is not None}
        wanted = next_repeat(seed_scores(trials, config.seed), Placement().key, config.intensify, config.intensify_seeds,
                             config.seed, tried)
        if wanted is not None:
            key, seed = wanted
            first = finished_by_key(trials)[key]
            study.enqueue_trial(placement_params(placement_of(first), space), user_attrs={"seed": seed, REPEAT_KEY: key},
                                skip_if_exists=False)


def prepare_trial(trial: Trial, study: optuna.Study, space: SearchSpace, trials: list[FrozenTrial]) -> Placement | None:
    """The placement an asked trial must train, or None when it was told without training:
    infeasible (PRUNED, not counted) or identical to a finished trial among ``trials`` (`tell_duplicate`)."""
    placement = suggest_placement(trial, space)
    trial.set_user_attr("placement", placement.to_dict())
    trial.set_user_attr("placement_key", placement.key)
    trial.set_user_attr("placement_str", str(placement))
    trial.set_user_attr("baseline", placement.is_baseline)
    try:
        space.check(placement)
    except PlacementError as e:  # known before training: not trained, not counted
        trial.set_user_attr("infeasible", str(e))
        study.tell(trial, state=TrialState.PRUNED)
        return None
    twin = finished_by_key(trials).get(placement.key) if repeat_seed(trial) is None else None  # a repeat seed trains
    if twin is not None:
        tell_duplicate(trial, study, twin)
        return None
    return placement


def tell_duplicate(trial: Trial, study: optuna.Study, twin: FrozenTrial) -> None:
    """Finish ``trial`` with the outcome of ``twin``, a finished trial of the same placement."""
    for key, value in twin.user_attrs.items():
        if key not in {"retry_of", "duplicate_of"}:
            trial.set_user_attr(key, value)
    trial.set_user_attr("duplicate_of", twin.number)
    for step, value in twin.intermediate_values.items():
        trial.report(value, step)
    study.tell(trial, twin.values if twin.state == TrialState.COMPLETE else None, state=twin.state)


def report_epoch(trial: Trial, epoch: int, metrics: dict, config: RunConfig) -> bool:
    """Give Optuna one epoch's fitness; True when its pruner says stop. Multi-objective trials are
    never pruned (Optuna cannot); their curve is kept in the ``epochs`` attribute. The last epoch is
    never pruned either: the training is complete, and stopping it would only drop its result. A repeat seed
    of the intensification is neither pruned nor reported: its leader already passed the pruner, and its
    curves would raise the median that new placements are pruned against."""
    if len(config.directions) > 1 or repeat_seed(trial) is not None:
        return False
    trial.report(metrics["fitness"], epoch)
    return epoch < config.proxy_epochs and trial.should_prune()


def finish_trial(trial: Trial, run: StudyRun, record: TrialRecord) -> None:
    """Record a trained trial's metrics and tell Optuna its outcome (COMPLETE, PRUNED or FAIL)."""
    record_trial(trial, record, run.task)
    run.study.tell(trial, *outcome(record, run, trial.user_attrs))


def trial_dir(config: RunConfig, number: int) -> Path:
    """Folder of trial ``number``: ``<study>/trials/<number>``."""
    return config.study_dir / "trials" / str(number)


def record_trial(trial: Trial, record: TrialRecord, task: Task) -> None:
    """Copy a record's metrics (``task``'s), sizes, time and folder (inside the study, wherever it moves)
    into the trial's user attributes."""
    scored = score_metrics(record)
    for key in task.metric_names:
        trial.set_user_attr(key, scored.get(key))
    attrs = {"status": record.status, "reason": record.reason, "pruned_at": record.pruned_at,
             "params": record.params, "gflops": record.gflops, "wall_time_s": round(record.wall_time_s, 2),
             "dir": f"trials/{trial.number}", "transfer": record.transfer, "epochs": record.epochs,
             "gates": record.gates}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def score_metrics(record: TrialRecord) -> dict:
    """Metrics a trial is scored on: the re-validation of its best weights, else its best epoch."""
    return record.final or record.best


def outcome(record: TrialRecord, run: StudyRun, attrs: dict) -> tuple:
    """(values, state) for `Study.tell`: the task's score, then the second objective of a Pareto search
    (measured on ``record``, or read from the trial's user attributes ``attrs``: latency)."""
    if record.status == "pruned":
        return None, TrialState.PRUNED
    if record.status == "failed":
        return None, TrialState.FAIL
    score = score_metrics(record)[run.task.score]
    second = second_objective(run.config.objective)
    return ([score, second.measure(record, attrs)] if second else score), TrialState.COMPLETE
