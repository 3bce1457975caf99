"""What a report reads, resolved once per report: the run configuration, the Optuna study (the single
source of truth, `search.study`) with its trials grouped by outcome, the final step's decision, the base
model's layers and receptive fields, and the parameter importances. Every section is a function of
this `Report` alone (`search.report.document.SECTIONS`).

`spaces` (torch and Ultralytics) is imported inside the functions that read the base model, after `ready_ultralytics`."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config.run_config import RunConfig
from search.config.study_folder import load_study_config, prepare, storage_url_of, study_config_dir
from search.final.decision import Decision

if TYPE_CHECKING:
    from spaces.tasks import Task
from search.report.receptive_fields import receptive_fields, stage_table
from search.study.attributes import TrialView
from search.study.records import first_baseline, interrupted_numbers, rank_key, task_of_study
from search.study.storage import load_study
from trainers.train import one_line


@dataclass
class Trials:
    """The study's trials sorted into the groups the report shows."""

    baseline: FrozenTrial | None = None
    ranked: list[FrozenTrial] = field(default_factory=list)  # COMPLETE, best first, baseline excluded
    complete: list[FrozenTrial] = field(default_factory=list)
    pruned: list[FrozenTrial] = field(default_factory=list)
    failed: list[FrozenTrial] = field(default_factory=list)
    infeasible: list[FrozenTrial] = field(default_factory=list)
    interrupted: list[FrozenTrial] = field(default_factory=list)
    unfinished: list[FrozenTrial] = field(default_factory=list)  # RUNNING or WAITING: a live study


def sort_trials(trials: list[FrozenTrial]) -> Trials:
    """Group trials by outcome; infeasible and interrupted ones are apart (they do not count)."""
    groups = Trials()
    interrupted = interrupted_numbers(trials)
    for t in trials:
        if TrialView(t).infeasible:
            groups.infeasible.append(t)
        elif t.number in interrupted:
            groups.interrupted.append(t)
        elif t.state == TrialState.COMPLETE:
            groups.complete.append(t)
        elif t.state == TrialState.PRUNED:
            groups.pruned.append(t)
        elif t.state == TrialState.FAIL:
            groups.failed.append(t)
        else:
            groups.unfinished.append(t)
    groups.baseline = first_baseline(trials)
    groups.ranked = sorted((t for t in groups.complete if t is not groups.baseline), key=rank_key)
    return groups


def position_layer(name: str) -> tuple[str, int]:
    """``"neck.15"`` -> ``("neck", 15)``: position names carry the base layer index (`spaces.positions`)."""
    kind, _, index = name.rpartition(".")
    return kind, int(index)


@dataclass
class BaseModel:
    """The base model's layers and receptive fields, or why they could not be read."""

    layers: list = field(default_factory=list)  # spaces.layers.Layer rows
    fields: list[dict] = field(default_factory=list)  # search.report.receptive_fields.receptive_fields rows
    stages: list[dict] = field(default_factory=list)  # search.report.receptive_fields.stage_table rows
    missing: str = ""


def ready_ultralytics(folder: Path) -> None:
    """Ultralytics made offline-safe before `spaces` first imports it (``report`` may run on its own)."""
    if "ultralytics" in sys.modules:
        return
    prepare(os.environ.get("YOLO_CONFIG_DIR") or study_config_dir(folder))  # a read-only study: a temporary folder


def read_base_model(config: RunConfig, folder: Path) -> BaseModel:
    """Layers, receptive fields and stages of ``config.model`` (imports torch and Ultralytics)."""
    try:
        ready_ultralytics(folder)
        from spaces.layers import load_base, resolve_layers

        model = load_base(config.model)
        return BaseModel(resolve_layers(model), receptive_fields(model), stage_table(model))
    except Exception as e:  # noqa: BLE001 (a missing or odd model becomes one line of the report)
        return BaseModel(missing=f"the base model {config.model} could not be read ({one_line(e)})")


def importances(study: optuna.Study, groups: Trials, task: Task) -> tuple[dict[str, float], str]:
    """Parameter importances over COMPLETE trials, or an empty dict and why there are none."""
    complete = groups.complete
    if len(complete) < 2:
        return {}, f"Parameter importances need at least 2 complete trials; this study has {len(complete)}."
    names = {name for t in complete for name in t.params}
    if not any(len({repr(t.params.get(n)) for t in complete}) > 1 for n in names):
        return {}, "Parameter importances are absent: every complete trial has the same parameters."
    if len({t.values[0] for t in complete}) < 2:
        return {}, f"Parameter importances are absent: every complete trial scored the same {task.score_label}."
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the default evaluator (PED-ANOVA) is "experimental"
            found = optuna.importance.get_param_importances(study, target=target)
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0]))), ""  # ties in one order, run after run
    except Exception as e:  # noqa: BLE001 (any evaluator error becomes one line of the report)
        return {}, f"Parameter importances could not be computed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


@dataclass
class Report:
    """Everything the sections read (`read_report`)."""

    folder: Path  # the study folder; report.md, report.html and the plots go here
    config: RunConfig
    study: optuna.Study
    task: Task  # the study's task: its metrics and score
    groups: Trials
    decision: Decision | None  # what the final step decided, None before it ran
    base: BaseModel
    importances: dict[str, float]  # parameter -> importance, empty when there are none ...
    importances_missing: str  # ... and why
    files: dict[str, bool] = field(default_factory=dict)  # file beside the report (plots, trials.csv) -> written


def read_report(study_dir: str | Path, storage: str | None = None) -> Report:
    """Read a study folder once for every section (imports torch and Ultralytics for the base model);
    ``storage``: its URL with the password run.yaml does not keep, when it needs one."""
    folder = Path(study_dir)
    config = load_study_config(folder, storage or storage_url_of(folder))
    ready_ultralytics(folder)
    study = load_study(config)
    task = task_of_study(study)
    groups = sort_trials(study.get_trials(deepcopy=False))
    found, why = importances(study, groups, task)
    decision = Decision.of_study(study, task.metric_names)
    return Report(folder, config, study, task, groups, decision, read_base_model(config, folder), found, why)
