"""`search.config.objectives`: the registry of second objectives, the values a trial is told with, and the
names the study gives its objectives (what optuna-dashboard shows instead of "Objective 0")."""

from __future__ import annotations

import re

import pytest
from optuna.trial import TrialState, create_trial

from helpers import one_line_error
from search.config import RunConfig
from search.config.objectives import CHOICES, OBJECTIVES, directions, second_objective
from search.study.start import StudyRun, start_search
from search.study.storage import open_study
from search.study.trial_steps import outcome
from spaces.tasks import TASKS
from trainers.train import TrialRecord

RECORD = TrialRecord("complete", {}, final={"precision": 0.5, "recall": 0.4, "map50": 0.6, "map50_95": 0.3}, params=1234,
                     gflops=8.5)


def test_every_registered_objective_is_an_option_with_its_direction():
    assert CHOICES == ("map", *(f"map+{name}" for name in OBJECTIVES))
    assert directions("map") == ["maximize"] and second_objective("map") is None
    for name, objective in OBJECTIVES.items():
        assert directions(f"map+{name}") == ["maximize", objective.direction]
    with pytest.raises(ValueError, match=re.escape("--objective 'map+speed' is not known; choose one of map, map+params")):
        second_objective("map+speed")


@pytest.mark.parametrize("objective, told", [("map", 0.3), ("map+params", [0.3, 1234]), ("map+gflops", [0.3, 8.5]),
                                             ("map+latency", [0.3, 1.07])])
def test_a_trial_is_told_the_task_score_then_the_second_objective(objective, told, tmp_path):
    config = RunConfig(data="unused.yaml", out=str(tmp_path), study="s", objective=objective)
    run = StudyRun(config, None, None, {}, tmp_path, TASKS["detect"])  # outcome reads the config and the task only
    trial = create_trial(state=TrialState.RUNNING, user_attrs={"latency_ratio": 1.07})  # measured before training
    assert outcome(RECORD, run, trial) == (told, TrialState.COMPLETE)


def test_the_study_names_its_objectives(toy_data, tmp_path):
    config = RunConfig(data=str(toy_data), out=str(tmp_path), study="s", objective="map+params", proxy_imgsz=64).resolved()
    run = start_search(config)
    assert run.study.metric_names == ["mAP50-95 (proxy)", "parameters"]
    assert run.study.user_attrs["task"] == "detect"
    assert open_study(config).metric_names == ["mAP50-95 (proxy)", "parameters"]  # kept in the storage


def test_an_unknown_objective_is_one_line(toy_data, tmp_path, capsys):
    line = one_line_error(["run", "--data", str(toy_data), "--out", str(tmp_path), "--objective", "map+energy"], capsys)
    assert "--objective 'map+energy' is not known; choose one of map, map+params, map+gflops, map+latency" in line
