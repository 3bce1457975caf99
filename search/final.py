"""After the search: confirm the best candidates with seeds (`search.confirm`), retrain the winner
(and the baseline beside it) in full, export ``best.yaml``.

Layout (docs/ARCHITECTURE.md): ``final/`` holds the winner's model.yaml, weights/best.pt, results.csv and
log; ``final-baseline/`` the same for the un-modified base model, so the report compares two full
trainings, not a full training with a proxy. A finished final training is not repeated on resume.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import optuna
from filelock import FileLock, Timeout
from optuna.trial import FrozenTrial

from search.config import RunConfig
from search.confirm import confirm
from search.trials import METRICS, StudyRun, score_metrics, study_data
from search.study import placement_of, scored_trials
from spaces import Placement, build_yaml, write_yaml
from trainers.train import TrialRecord, class_count, full_train


def choose_winner(study: optuna.Study) -> FrozenTrial:
    """The best COMPLETE trial by the first objective (fewer parameters break ties)."""
    ranked = scored_trials(study)
    if not ranked:
        raise ValueError(f"study '{study.study_name}' has no completed trial yet; run or resume it first")
    return ranked[0]


def train_once(placement: Placement, base: dict, config: RunConfig, folder: Path) -> TrialRecord:
    """Full training of ``placement`` into ``folder``, or the saved record of an identical one."""
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
    record = full_train(placement, base, study_data(config), budget, folder, config.weights, config.insertion)
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


def finalize(run: StudyRun, show_progress: bool = True) -> dict:
    """Confirm the top candidates with seeds, retrain winner and baseline in full, write ``best.yaml``.

    ``run`` is the search that just ran (`search.executor.run_search`); its proxy data serves the
    confirmation. The winner is the baseline itself when no candidate beats it beyond seed noise. Returns the
    summary kept in the study's user attribute ``final``. Hold `final_claim` around it when
    several workers share the study.
    """
    study, config, base = run.study, run.config, run.base
    if config.confirm_top > 0:
        confirmation = confirm(study, config, base, run.proxy, show_progress)
        chosen = confirmation["winner"]
        winner = confirmation["candidates"][chosen] if chosen is not None else confirmation["baseline"]
        number, placement = winner["trial"], Placement.from_dict(winner["placement"])
        verdict = confirmation["verdict"]
    else:
        trial = choose_winner(study)
        number, placement, confirmation = trial.number, placement_of(trial), None
        verdict = (f"trial {number} ({placement}) had the best single proxy run; not confirmed with more seeds "
                   "(--confirm-top 0), so a difference to the baseline may be seed noise")  # fmt: skip
    summary = {"trial": number, "placement": placement.to_dict(), "placement_str": str(placement),
               "verdict": verdict, "confirmation": confirmation}  # fmt: skip
    record = train_once(placement, base, config, config.study_dir / "final")
    summary["final"] = _summary(record)
    if placement.is_baseline:
        summary["baseline"] = summary["final"]
    else:
        summary["baseline"] = _summary(train_once(Placement(), base, config, config.study_dir / "final-baseline"))
    study.set_user_attr("final", summary)
    if record.status != "complete":
        raise ValueError(f"the final training of {placement} failed: {record.reason} (see final/log)")
    shutil.copyfile(record.paths["model_yaml"], config.study_dir / "best.yaml")
    return summary


def _summary(record: TrialRecord) -> dict:
    """What the study keeps of a full training: its scored metrics, size, time and weights."""
    scored = score_metrics(record)
    return {**{k: scored.get(k) for k in METRICS}, "status": record.status,
            "reason": record.reason, "params": record.params, "gflops": record.gflops,
            "wall_time_s": record.wall_time_s, "weights": record.paths.get("weights"), "epochs": len(record.epochs),
            "gates": record.gates}  # fmt: skip


def export_trial(study: optuna.Study, config: RunConfig, base: dict, output: str | Path, trial: int | None = None) -> Path:
    """Write the model YAML of trial ``trial`` (default: the winner) to ``output``."""
    chosen = choose_winner(study) if trial is None else _trial(study, trial)
    placement = placement_of(chosen)
    model = {**build_yaml(base, placement, config.insertion), "nc": class_count(study_data(config))}
    return write_yaml(model, output, comment=f"trial {chosen.number} of study {study.study_name}\nplacement: {placement}")


def _trial(study: optuna.Study, number: int) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials) or "placement" not in trials[number].user_attrs:
        raise ValueError(f"study '{study.study_name}' has no evaluated trial {number}; see `report` for the list")
    return trials[number]

