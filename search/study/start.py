"""Everything before the first trial, for every executor (`search.study.executor`): `start_search` checks the
inputs against the study (the same options, data and storage), opens or resumes it, writes run.yaml, the
study's data.yaml and space.yaml, builds the proxy data once and queues the baseline; its `StudyRun` is
what the executors and the final step share. Resumable at any moment: the study in storage holds every
finished trial, and a trial a killed run left RUNNING is queued again (`search.study.storage.open_study`).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial
from ultralytics.cfg import DEFAULT_CFG

from search.config.objectives import second_objective
from search.config.options import times_candidates
from search.config.run_config import RunConfig
from search.config.run_file import shown, with_old_defaults
from search.config.study_folder import check_writable
from search.study.attributes import (
    StudyView,
    TrialView,
    enqueue_baseline,
    record_environment,
    record_identity,
    record_task,
    record_unusable_images,
)
from search.study.latency_probe import LatencyProbe
from search.study.provenance import environment
from search.study.records import failed_baseline, placement_params
from search.study.storage import open_study, study_lock
from spaces import Placement, SearchSpace, load_base, load_space
from spaces.tasks import Task, task_of
from spaces.transfer import check_keypoints, check_matches
from trainers.data import build_proxy_data, load_dataset, write_resolved_yaml
from trainers.files import replace_file
from trainers.train import check_device, check_train_args

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
    recorded = with_old_defaults(StudyView(study).config or config.public())  # older studies lack some
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
    recorded = StudyView(study).data_content  # studies from before it was recorded cannot be checked
    scored = [t for t in trials if t.state.is_finished() and TrialView(t).infeasible is None]
    if recorded and recorded != content and scored:
        raise ValueError(f"dataset {config.data} changed since this study's {len(scored)} trials were scored on it (images "
                         "or labels added, removed or modified); restore it, or start a new --study on the new data")


def load_inputs(config: RunConfig) -> tuple[dict, SearchSpace]:
    """Base model dict and validated search space of a run (errors are one-line ValueErrors). A supernet screen
    searches no removal of the base's own attention blocks: its supernet keeps every base layer (`spaces.supernet`)."""
    base = load_base(config.model)
    space = load_space(base, config.space)
    if config.screen == "supernet":
        space = dataclasses.replace(space, positions=tuple(p for p in space.positions if p.kind != "drop"))
    return base, space


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
        record_identity(study, config.public(), dataset.content)
        config.save(config.study_dir / "run.yaml")
    write_resolved_yaml(dataset, config.study_dir / "data.yaml")
    if dataset.unusable:
        print(f"warning: {dataset.unusable_text()}")
        record_unusable_images(study, dataset.unusable_text())
    crowded = dataset.crowded_text(config.train_args.get("max_det", DEFAULT_CFG.max_det))  # detections scored an image
    if crowded:
        print(f"warning: {crowded}")
    replace_file(config.study_dir / "space.yaml", yaml.safe_dump(space.to_dict(), sort_keys=False))
    proxy = build_proxy_data(dataset, config.study_dir / "proxy", config.proxy_imgsz, config.proxy_fraction, config.seed)
    record_task(study, task.name)
    second = second_objective(config.objective)  # the dashboard names the objectives, not "Objective 0"
    with warnings.catch_warnings():  # set_metric_names is marked experimental; it is how Optuna names objectives
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        scored = "supernet" if config.screen == "supernet" else "proxy"  # what a trial's value is
        study.set_metric_names([f"{task.score_label} ({scored})"] + ([second.label] if second else []))
    if StudyView(study).environment is None:  # where the first trials trained; a resume keeps it
        record_environment(study, environment())
    latency = LatencyProbe(study, config, base, study_data(config)) if config.measures_latency else None
    with study_lock(config):  # workers starting together queue one baseline; a failed one is queued again
        if not study.trials or failed_baseline(study.get_trials(deepcopy=False)):
            enqueue_baseline(study, placement_params(Placement(), space))
    return StudyRun(config, study, space, base, proxy, task, latency)
