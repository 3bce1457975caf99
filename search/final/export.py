"""What a study exports: the model YAML of its decided placement or of a chosen trial (`export_trial`, the ``export``
command), and the images its deployment files are checked on (`val_images`).
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from search.config.run_config import RunConfig
from search.final.decision import Decision
from search.study.attributes import TrialView
from search.study.records import placement_of, scored_trials, task_of_study
from search.study.start import study_data
from spaces import Placement, build_yaml, write_yaml
from spaces.tasks import Task
from trainers.data import load_dataset
from trainers.deploy import CHECK_IMAGES
from trainers.train import head_args

FINAL_WEIGHTS = Path("final") / "weights" / "best.pt"  # in the study folder: the decided model's trained weights


def val_images(config: RunConfig, task: Task) -> list[Path]:
    """The first `CHECK_IMAGES` val images of the study, in its own view of the data (or, for a study from before the
    view, the dataset's): what its deployment files are checked on."""
    views = (config.study_dir / "data" / "images" / "val", config.study_dir / "data" / "val")  # boxes' view, a classifier's
    view = next((v for v in views if v.is_dir()), None)
    images = sorted(p for p in view.rglob("*") if p.is_file()) if view else list(load_dataset(config.data, task).val)
    return images[:CHECK_IMAGES]


def export_trial(study: optuna.Study, config: RunConfig, base: dict, output: str | Path, trial: int | None = None) -> tuple[Path, str]:
    """Write the model YAML of trial ``trial`` to ``output``; by default of the placement the study decided
    on (`Decision`, the baseline when attention lost). Returns the path and what was exported, in words."""
    task = task_of_study(study)
    if trial is None:
        decision = Decision.of_study(study, task.metric_names)
        if decision is None:
            best = scored_trials(study)
            hint = f"; or choose a trial: --trial {best[0].number} had the best single proxy run" if best else ""
            raise ValueError(f"study '{study.study_name}' has not decided yet (its final step has not run): finish it with "
                             f"`python -m search resume {config.study_dir}`{hint}")
        number, placement = decision.trial, Placement.from_dict(decision.placement)
        said = f"the study's decision, trial {number} ({placement}): {decision.sentence(task.score, task.score_label)}"
    else:
        chosen = _trial(study, trial)
        number, placement = chosen.number, placement_of(chosen)
        said = f"trial {number} ({placement}), chosen by --trial"
    model = {**build_yaml(base, placement, config.insertion), **head_args(study_data(config))}
    path = write_yaml(model, output, comment=f"trial {number} of study {study.study_name}\nplacement: {placement}")
    return path, said


def _trial(study: optuna.Study, number: int) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials) or TrialView(trials[number]).placement_dict is None:
        raise ValueError(f"study '{study.study_name}' has no evaluated trial {number}; see `report` for the list")
    return trials[number]
