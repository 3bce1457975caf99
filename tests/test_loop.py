"""`search.study.loop.TrialLoop`, the trial loop every executor shares: its stop rule, checked once through
both executors, and twins of another worker's trial in training.

Real parts: the Optuna study in SQLite, `start_search` on a generated dataset, the Ray executor's Tune
searcher. Stand-ins: the training (`train_candidate` returns a record at once, so the test checks the
loop, not Ultralytics) and, for Ray, Tune's driver (the searcher is called as Tune calls it; a whole
Tune run is covered by tests/test_ray.py).
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

import search.study.inprocess
import search.study.screen
from helpers import drive_ray_searcher
from search.config import RunConfig
from search.study.inprocess import InProcess
from search.study.loop import TrialLoop
from search.study.records import placement_params
from search.study.start import load_inputs, start_search
from search.study.storage import open_study
from spaces import Placement
from trainers.train import TrialRecord

pytestmark = pytest.mark.timeout(300)  # a loop that never stops fails here, not in CI's limit
ELSEWHERE = "another-host:1"  # a live worker of another machine: its heartbeat, not its pid, decides


def _record(placement, *args, **kwargs) -> TrialRecord:
    """What a training of ``placement`` would return, at once (the stand-in for `train_candidate`)."""
    metrics = {"precision": 0.5, "recall": 0.5, "map50": 0.4, "map50_95": 0.3}
    epoch = {"epoch": 1, "fitness": 0.3, "time_s": 0.1, **metrics}
    return TrialRecord("complete", placement.to_dict(), epochs=[epoch], final=metrics, params=1, gflops=0.1)


def _held_elsewhere(study: optuna.Study, placement: Placement | None = None, space=None) -> None:
    """A RUNNING trial that another worker holds: of ``placement``, or of one this worker never proposes."""
    if placement is not None:
        study.enqueue_trial(placement_params(placement, space))
    trial = study.ask()
    trial.set_user_attr("worker", ELSEWHERE)
    trial.set_user_attr("placement_key", placement.key if placement is not None else "not in this space")


def _in_process(config: RunConfig) -> None:
    InProcess().run(config, show_progress=False)


def _ray_searcher(config: RunConfig) -> None:
    drive_ray_searcher(config, lambda suggested: _record(Placement.from_dict(suggested["placement"])))


@pytest.mark.parametrize("drive", [_in_process, _ray_searcher], ids=["inprocess", "ray"])
def test_trials_another_worker_holds_count_towards_the_total(drive, toy_data, tmp_path, monkeypatch):
    """--trials 3 with one trial held by another worker: this worker trains 2, whichever executor."""
    monkeypatch.setattr(search.study.screen, "train_candidate", _record)
    config = RunConfig(data=str(toy_data), out=str(tmp_path), study="s", trials=3, sampler="random", pruner="none",
                       proxy_epochs=1, proxy_imgsz=64).resolved()
    config.study_dir.mkdir(parents=True)
    study = open_study(config)
    _held_elsewhere(study)
    drive(config)
    mine = [t for t in study.get_trials() if t.user_attrs.get("worker") != ELSEWHERE and "duplicate_of" not in t.user_attrs
            and "infeasible" not in t.user_attrs]
    assert len(mine) == 2 and all(t.state == TrialState.COMPLETE for t in mine)


def test_a_twin_of_another_workers_trial_waits_and_is_told_its_outcome(toy_data, tmp_path):
    config = RunConfig(data=str(toy_data), out=str(tmp_path), study="s", trials=2, sampler="random", pruner="none",
                       proxy_epochs=1, proxy_imgsz=64).resolved()
    config.study_dir.mkdir(parents=True)
    study = open_study(config)
    _, space = load_inputs(config)
    se = Placement.of({space.insert_positions[0].name: ["se"]})
    _held_elsewhere(study, se, space)  # trial 0, another worker trains it
    study.enqueue_trial(placement_params(se, space))  # trial 1 asks the same placement here
    loop = TrialLoop(start_search(config))
    assert loop.next_trial() is None and loop.waiting and not loop.stopped  # 1 held elsewhere + 1 waiting = 2
    other = study.get_trials()[0]
    study.tell(other.number, 0.25)  # the other worker finishes
    asked = loop.next_trial()  # the twin does not count: one more trial trains here
    assert asked is not None and asked.number >= 2 and not loop.waiting
    twin = study.get_trials()[1]
    assert twin.state == TrialState.COMPLETE and twin.user_attrs["duplicate_of"] == 0 and twin.value == 0.25


def test_the_last_epoch_is_never_pruned(tmp_path):
    """A pruner that prunes every value (ThresholdPruner above any fitness) may stop a trial before its
    last epoch, never at it: a training that ran every epoch is complete."""
    from search.study.trial_steps import report_epoch

    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    config = RunConfig(data="d.yaml", out=str(tmp_path), study="s", proxy_epochs=2)
    trial = study.ask()
    assert report_epoch(trial, 1, {"fitness": 0.5}, config) is True
    assert report_epoch(trial, 2, {"fitness": 0.5}, config) is False
