"""Intensification: the rule (`search.select.intensify`) on plain scores, and repeat seeds as trials of a real study,
through both executors' loops and a real search.

Real parts: the rule, the Optuna study in SQLite, `start_search` on a generated dataset, the Ray
executor's searcher, and (last test) a whole `python -m search run` with real Ultralytics training.
Stand-in in the loop tests: the training (`train_candidate` returns at once a score fixed by the
placement and the seed, so the test checks which seeds train, not Ultralytics), and for Ray, Tune's
driver (tests/test_ray.py covers a whole Tune run).
"""

from __future__ import annotations

import zlib
from collections import Counter

import pytest
from optuna.trial import TrialState

import search.study.inprocess
import search.study.screen
from helpers import TINY, drive_ray_searcher, study_of
from search.cli import main
from search.config import RunConfig
from search.select.intensify import next_repeat, paired_gain, ranking
from search.study.inprocess import InProcess
from search.study.loop import TrialLoop
from search.study.records import count_trials, seed_scores
from search.study.start import identity_changes, start_search
from search.study.storage import requeue
from search.study.trial_steps import queue_prior
from spaces import Placement
from trainers.train import TrialRecord

pytestmark = pytest.mark.timeout(600)


def test_paired_gain_is_the_mean_difference_on_shared_seeds_only():
    scores = {"b": {0: 0.50, 1: 0.40}, "x": {0: 0.53, 1: 0.45, 2: 0.99}}
    gain, seeds = paired_gain(scores, "x", "b")
    assert gain == pytest.approx((0.03 + 0.05) / 2) and seeds == 2  # seed 2: the baseline has no run to pair with
    assert paired_gain(scores, "y", "b") == (None, 0)


def test_ranking_pairs_each_placement_with_the_baseline_seed_for_seed():
    """A placement run on a hard seed (everyone scores low on seed 1) is not ranked below one run on an easy seed."""
    scores = {"b": {0: 0.60, 1: 0.40}, "easy": {0: 0.61}, "hard": {1: 0.43}, "both": {0: 0.59, 1: 0.41}}
    assert ranking(scores, "b") == ["hard", "easy", "both"]


def test_next_repeat_gives_the_baseline_each_seed_first_then_the_leaders_in_order():
    scores = {"b": {0: 0.5}, "x": {0: 0.56}, "y": {0: 0.55}, "z": {0: 0.40}}
    assert next_repeat(scores, "b", leaders=2, seeds=3, first_seed=0) == ("b", 1)
    scores["b"][1] = 0.5
    assert next_repeat(scores, "b", 2, 3, 0) == ("x", 1)
    assert next_repeat(scores, "b", 2, 3, 0, tried={("x", 1)}) == ("b", 2)  # x's seed 1 runs: the next seed
    assert next_repeat(scores, "b", 2, 3, 0, tried={("x", 1), ("b", 2), ("x", 2)}) == ("y", 1)
    scores |= {"x": {0: 0.56, 1: 0.55, 2: 0.57}, "y": {0: 0.55, 1: 0.54, 2: 0.50}, "b": {0: 0.5, 1: 0.5, 2: 0.5}}
    assert next_repeat(scores, "b", 2, 3, 0) is None  # both leaders have their 3 seeds; z is no leader
    assert next_repeat(scores, "b", 0, 3, 0) is None and next_repeat({"x": {0: 1.0}}, "b", 2, 3, 0) is None


def test_a_rerun_may_change_the_repeat_seeds_only_of_a_study_that_does_not_intensify(tmp_path):
    """--intensify-seeds (and --latency-device) measure nothing while unused, so a rerun may change them;
    once either run intensifies (or times candidates), they define what the study measured."""
    config = lambda **options: RunConfig(data="d.yaml", out=str(tmp_path), study="s", **options).public()  # noqa: E731
    assert identity_changes(config(intensify_seeds=2), config(intensify_seeds=4)) == []
    assert identity_changes(config(intensify=3, intensify_seeds=2), config(intensify=3, intensify_seeds=4)) == ["intensify_seeds"]
    assert identity_changes(config(intensify_seeds=2), config(intensify=3, intensify_seeds=4)) == ["intensify", "intensify_seeds"]
    assert identity_changes(config(), config(latency_device="cuda")) == []
    timed = config(objective="map+latency", latency_device="cuda")
    assert identity_changes(config(objective="map+latency"), timed) == ["latency_device"]
    assert identity_changes(config(max_slowdown=1.1), config(max_slowdown=1.1, latency_device="cuda")) == ["latency_device"]


def test_a_lucky_single_run_loses_its_lead_on_its_second_seed():
    scores = {"b": {0: 0.50, 1: 0.50}, "lucky": {0: 0.58, 1: 0.46}, "steady": {0: 0.53, 1: 0.53}}
    assert ranking(scores, "b") == ["steady", "lucky"]


def _score(key: str, seed: int) -> float:
    """A score fixed by the placement and the seed (the stand-in training's)."""
    return 0.3 + 0.01 * (zlib.crc32(f"{key}/{seed}".encode()) % 7)


def _record(placement: Placement, seed: int) -> TrialRecord:
    score = _score(placement.key, seed)
    metrics = {"precision": 0.5, "recall": 0.5, "map50": 0.4, "map50_95": score}
    return TrialRecord("complete", placement.to_dict(), epochs=[{"epoch": 1, "fitness": score, "time_s": 0.1, **metrics}],
                       final=metrics, params=1, gflops=0.1, reason=f"seed {seed}")


def _in_process(config: RunConfig) -> None:
    InProcess().run(config, show_progress=False)


def _ray_searcher(config: RunConfig) -> None:
    """The Ray executor's searcher; the seed it hands out is the one trained."""
    drive_ray_searcher(config, lambda suggested: _record(Placement.from_dict(suggested["placement"]), suggested["seed"]))


@pytest.mark.parametrize("drive", [_in_process, _ray_searcher], ids=["inprocess", "ray"])
@pytest.mark.parametrize("prior", [False, True], ids=["sampled", "usual-first"])
def test_repeat_seeds_are_trials_of_their_own_trained_on_their_seed(drive, prior, toy_data, tmp_path, monkeypatch):
    """Each (placement, seed) trains once, also while repeats wait in the queue behind the usual placements."""
    monkeypatch.setattr(search.study.screen, "train_candidate",
                        lambda placement, base, proxy, budget, *a: _record(placement, budget.seed))
    trials = 24 if prior else 14  # the 16 usual placements first, then repeats
    config = RunConfig(data=str(toy_data), out=str(tmp_path), study="s", trials=trials, sampler="random", pruner="none",
                       proxy_epochs=1, proxy_imgsz=64, seed=3, intensify=2, intensify_seeds=3, prior=prior).resolved()
    drive(config)
    trials = study_of(config.study_dir).get_trials()
    trained = [t for t in trials if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs]
    repeats = [t for t in trained if "seed" in t.user_attrs]
    assert repeats and count_trials(trials) == config.trials  # repeat seeds count towards --trials: a training each
    assert all(t.user_attrs["reason"] == f"seed {t.user_attrs.get('seed', 3)}" for t in trained)  # trained on their seed
    runs = Counter((t.user_attrs["placement_key"], t.user_attrs.get("seed", 3)) for t in trained)
    assert max(runs.values()) == 1 and {s for _, s in runs} == {3, 4, 5}  # each (placement, seed) once; seeds 3, 4, 5
    base = Placement().key
    assert all((base, t.user_attrs["seed"]) in runs for t in repeats)  # the baseline has every seed a leader has
    scores = seed_scores(trials, config.seed)
    assert all(scores[t.user_attrs["placement_key"]][t.user_attrs["seed"]] == t.value for t in repeats)


def test_a_dead_repeat_is_queued_again_on_its_seed(toy_data, tmp_path):
    config = RunConfig(data=str(toy_data), out=str(tmp_path), study="s", trials=2, proxy_epochs=1, proxy_imgsz=64,
                       intensify=1).resolved()
    run = start_search(config)
    asked = TrialLoop(run).next_trial()  # the baseline
    run.study.tell(asked.trial, state=TrialState.FAIL)
    frozen = run.study.get_trials()[0]
    frozen.user_attrs["seed"] = 1  # as a repeat of the baseline on seed 1 would be
    requeue(run.study, frozen)
    waiting = run.study.get_trials(states=(TrialState.WAITING,))[-1]
    assert waiting.user_attrs == {"retry_of": 0, "seed": 1, "repeat_of": Placement().key}


def test_an_intensified_search_races_on_seeds_after_its_repeats(learnable_data, tmp_path, capsys):
    """A real search (Ultralytics training) with --intensify 1 --intensify-seeds 2: the leader and the baseline
    train on seed 1 inside the search, and the confirmation's runs start at seed 2."""
    argv = ["run", "--data", str(learnable_data), "--out", str(tmp_path), "--study", "i", "--trials", "5", "--pruner", "none",
            "--intensify", "1", "--intensify-seeds", "2", "--no-prior", "--confirm-top", "1", "--confirm-budget", "6", "--seed", "0", *TINY]
    assert main(argv) == 0
    study = study_of(tmp_path / "i")
    seeds = {t.user_attrs.get("seed", 0) for t in study.get_trials() if t.state == TrialState.COMPLETE}
    assert seeds == {0, 1}
    raced = sorted(p.name for p in (tmp_path / "i" / "confirm").glob("*/seed*"))
    assert raced and min(int(name[4:]) for name in raced) == 2
    assert "| placement | seeds |" in (tmp_path / "i" / "report.md").read_text()  # the leaderboard counts each placement's seeds
    assert "seed" in (tmp_path / "i" / "trials.csv").read_text().splitlines()[0].split(",")  # and trials.csv each trial's


def test_the_usual_placements_are_queued_once_the_baseline_trains(toy_data, tmp_path):
    """The baseline first, then the usual placements (named), as many as --trials leaves; queued once the
    baseline trains (not before: it may fail, and its retry must come first)."""
    config = RunConfig(data=str(toy_data), out=str(tmp_path), study="s", trials=6, proxy_epochs=1, proxy_imgsz=64).resolved()
    run = start_search(config)
    assert [t.user_attrs for t in run.study.get_trials(states=(TrialState.WAITING,))] == [{"baseline": True}]
    loop = TrialLoop(run)
    baseline = loop.next_trial()
    assert baseline.trial.user_attrs["baseline"]  # asked before anything else is queued
    assert not run.study.get_trials(states=(TrialState.WAITING,))  # nothing queued before it was asked
    following = loop.next_trial()  # the baseline trains (Ray): the usual placements are queued, and the first handed out
    waiting = run.study.get_trials(states=(TrialState.WAITING,))
    assert [following.trial.user_attrs["prior"]] + [t.user_attrs["prior"] for t in waiting] == [
        "SE before SPPF", "CBAM before SPPF", "ECA before SPPF", "CoordAtt before SPPF", "SE after each backbone stage"]
    queue_prior(run.study, config, run.space)  # once per study: a second worker or a resume queues nothing again
    assert len(run.study.get_trials(states=(TrialState.WAITING,))) == 4
    other = RunConfig(data=str(toy_data), out=str(tmp_path), study="n", trials=6, proxy_epochs=1, proxy_imgsz=64,
                      prior=False).resolved()
    loop = TrialLoop(start_search(other))
    baseline = loop.next_trial()
    loop.finish(baseline, _record(baseline.placement, 0))
    assert "prior" not in loop.next_trial().trial.user_attrs and not loop.run.study.get_trials(states=(TrialState.WAITING,))
