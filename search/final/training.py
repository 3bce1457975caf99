"""After the search: confirm the best candidates with seeds (`search.final.confirm`), retrain the winner
(and the baseline beside it) in full, export ``best.yaml``.

Layout (docs/ARCHITECTURE.md): ``final/`` holds the winner's model.yaml, weights/best.pt, results.csv and
log; ``final-baseline/`` the same for the un-modified base model, so the report compares two full
trainings, not a full training with a proxy. A finished final training is not repeated on resume.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import optuna
from filelock import FileLock, Timeout
from optuna.trial import FrozenTrial

from search.config.run_config import RunConfig
from search.final.confirm import confirm
from search.final.decision import Decision, FullRun, unconfirmed_verdict
from search.final.export import FINAL_WEIGHTS, val_images
from search.study.attributes import TrialView, record_decision
from search.study.progress import FinalProgress, progress_note
from search.study.records import first_baseline, placement_of, ranked_by_gain, scored_trials
from search.study.start import StudyRun, study_data
from search.study.trial_steps import score_metrics
from spaces import Placement
from spaces.tasks import Task
from trainers.deploy import export_checked
from trainers.train import Report, TrialRecord, full_train


def choose_winner(study: optuna.Study) -> FrozenTrial:
    """The best COMPLETE trial by the first objective (fewer parameters break ties); with repeat seeds
    (``--intensify``), the first trial of the placement with the best mean gain over the baseline on shared
    seeds, or the baseline when none gains (`search.select.intensify.ranking`, as the race picks contenders)."""
    ranked = scored_trials(study)
    if not ranked:
        raise ValueError(f"study '{study.study_name}' has no completed trial yet; run or resume it first")
    trials = study.get_trials(deepcopy=False)
    base = first_baseline(trials)
    if base is None or not any(TrialView(t).repeat_seed is not None for t in trials):
        return ranked[0]
    ranked_placements = ranked_by_gain(trials, TrialView(base).placement_key)
    return ranked_placements[0][0] if ranked_placements and ranked_placements[0][1] > 0 else base


def train_once(placement: Placement, base: dict, config: RunConfig, folder: Path, report: Report | None = None) -> TrialRecord:
    """Full training of ``placement`` into ``folder``, or the saved record of an identical one; ``report`` hears
    each epoch (`trainers.train.Report`)."""
    saved = folder / "record.json"
    budget = config.final_budget
    key = {"placement": placement.key, "budget": budget.train_args(), "weights": config.weights, "insertion": config.insertion}
    if saved.is_file():
        data = json.loads(saved.read_text())
        saved_key = data.pop("key", None)
        record = TrialRecord(**data)
        if saved_key == key and record.status == "complete":
            return record
    shutil.rmtree(folder, ignore_errors=True)
    record = full_train(placement, base, study_data(config), budget, folder, config.weights, config.insertion, report)
    saved.write_text(json.dumps({**record.to_dict(), "key": key}, indent=1))
    return record


@contextmanager
def final_claim(config: RunConfig):
    """Yield True for the one worker of a study that may finalize now, False for the others.

    The claim is a lock on ``.final.lock`` in the study folder, tried once (never waited for); the
    OS releases it when its worker ends, killed or not.
    """
    lock = FileLock(config.study_dir / ".final.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def finalize(run: StudyRun, show_progress: bool = True) -> Decision:
    """Confirm the top candidates with seeds, retrain winner and baseline in full, write ``best.yaml``.

    ``run`` is the search that just ran (`search.study.executor.run_search`); its proxy data serves the
    confirmation. The winner is the baseline itself when no candidate beats it beyond seed noise. The
    `Decision` is kept in the study (`Decision.of_study` reads it). Hold `final_claim` around it when
    several workers share the study.
    """
    study, config, base = run.study, run.config, run.base
    if config.confirm_top > 0:
        confirmation = confirm(run, show_progress)
        chosen = confirmation.chosen
        decision = Decision(chosen.trial, chosen.placement, chosen.placement_str, confirmation.verdict, confirmation)
    else:
        trial = choose_winner(study)
        placement = str(placement_of(trial))
        decision = Decision(trial.number, TrialView(trial).placement_dict, placement, unconfirmed_verdict(trial.number, placement),
                            unconfirmed=True)
    placement = Placement.from_dict(decision.placement)
    runs = [("final", placement, f"trial {decision.trial} ({decision.placement_str})")]
    if not placement.is_baseline:
        runs.append(("final-baseline", Placement(), "the baseline"))
    note = progress_note(study)
    with FinalProgress(len(runs), config.final_epochs, run.task, show_progress, note) as progress:
        full = {}
        for folder, chosen, name in runs:
            progress.start(f"full training of {name}")
            full[folder] = train_once(chosen, base, config, config.study_dir / folder, progress.report)
            progress.finish_run()
        final = _full_run(full["final"], run.task, "final")
        baseline = _full_run(full["final-baseline"], run.task, "final-baseline") if len(runs) > 1 else final
        decision = replace(decision, final=final, baseline=baseline)
        record_decision(study, decision.to_dict())
        progress.done(decision.headline(run.task.score_label))
    record = full["final"]
    if record.status != "complete":
        raise ValueError(f"the final training of {placement} failed: {record.reason} (see final/log)")
    shutil.copyfile(config.study_dir / "final" / "model.yaml", config.study_dir / "best.yaml")
    export_checked(config.study_dir / FINAL_WEIGHTS, config.study_dir / "best", config.final_imgsz, val_images(config, run.task))
    return decision


def _full_run(record: TrialRecord, task: Task, folder: str) -> FullRun:
    """What the study keeps of a full training into the study's ``folder``: its scored metrics (``task``'s),
    size, time and weights (a path inside the study, so that the study can move)."""
    scored = score_metrics(record)
    weights = f"{folder}/weights/best.pt" if record.paths.get("weights") else None
    best, last = record.best, (record.epochs[-1] if record.epochs else {})
    return FullRun(record.status, {k: scored.get(k) for k in task.metric_names}, record.reason, record.params, record.gflops,
                   record.wall_time_s, weights, len(record.epochs), record.gates, best.get("epoch"), best.get(task.score),
                   last.get(task.score))
