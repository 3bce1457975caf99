"""`search.select.racing` on simulated scores, its wiring to cached trainings (`search.final.confirm`) and its options."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState, create_trial
from scipy import stats

from search.config import RunConfig
from search.select.power import RELIABLE_PAIRS, paired_detectable, welch_detectable
from search.select.racing import ALPHA, MIN_PAIRS, SELECTION_ROUNDS, Drop, Race, Round, look_level, looks, minimal_budget, race
from search.select.verdict import PAIRED, WELCH

BENCHMARKS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def scores_of(means: dict[str, float], sd: float = 0.004, corr: float = 0.5, seed: int = 0):
    """A ``run(key, seed)`` returning ``means[key]`` plus seed noise whose part sqrt(corr) is shared by
    every placement of a seed (common random numbers), the same score for the same key and seed."""
    keys = sorted(means)

    def run(key: str, s: int) -> float:
        noise = np.random.default_rng([seed, s]).standard_normal(len(keys) + 1)
        return means[key] + sd * (np.sqrt(corr) * noise[0] + np.sqrt(1 - corr) * noise[1 + keys.index(key)])

    return run


def counted(run):
    """``run`` with a list of the (key, seed) calls it received."""
    calls = []

    def wrapped(key: str, seed: int):
        calls.append((key, seed))
        return run(key, seed)

    return wrapped, calls


def test_clear_win_is_found_and_stops_early():
    run, calls = counted(scores_of({"base": 0.50, "a": 0.50, "b": 0.53, "c": 0.49}))
    found = race(["a", "b", "c"], "base", run, budget=30, first_seed=1)
    assert found.winner == "b" == found.leader and found.stopped == "the leader passed the test"
    assert found.comparison.low > 0 and found.comparison.confidence == pytest.approx(1 - 2 * found.level)
    assert found.dropped == {"a": Drop(2, "b"), "c": Drop(2, "b")}  # clearly behind the leader after round 2
    assert found.runs == len(calls) < 30  # the verdict settled before the budget was spent
    assert [r.seed for r in found.rounds] == list(range(1, len(found.rounds) + 1))  # fresh seeds, one per round
    assert all(set(r.scores) == {"base", "b"} for r in found.rounds if r.test)  # the test: leader and baseline only
    assert {s for _, s in calls} == {r.seed for r in found.rounds} and 0 not in {s for _, s in calls}


def test_clear_loss_ends_after_selection():
    run, _ = counted(scores_of({"base": 0.55, "a": 0.50, "b": 0.51, "c": 0.50}))
    found = race(["a", "b", "c"], "base", run, budget=30, first_seed=1)
    assert found.winner is None and found.leader is None and found.stopped == "every contender fell clearly behind"
    assert found.runs == SELECTION_ROUNDS * 4 and not any(r.test for r in found.rounds)
    assert {d.behind for d in found.dropped.values()} == {"base"}


def test_equal_placements_keep_the_baseline_and_spend_the_budget():
    found = race(["a", "b", "c"], "base", scores_of({k: 0.5 for k in ("base", "a", "b", "c")}, seed=3), budget=20, first_seed=1)
    assert found.winner is None and found.leader in {"a", "b", "c"}
    assert found.stopped in {"the budget is spent", "the leader fell clearly behind the baseline"}
    assert found.runs <= 20 and found.comparison is not None and found.comparison.low <= 0


def test_a_single_contender_is_tested_at_once_and_paired():
    found = race(["a"], "base", scores_of({"base": 0.50, "a": 0.52}, corr=0.8), budget=6, first_seed=11)
    assert all(r.test for r in found.rounds) and found.rounds[0].seed == 11
    assert found.test_rounds == 3 and looks(3) == (3,) and found.level == pytest.approx(0.05)
    assert found.comparison.method == PAIRED  # no selection rounds to decide on: same-seed pairs are paired


def test_pairing_is_decided_on_the_selection_rounds():
    # Within each seed the runs correlate negatively in selection and positively in the test: the test
    # must follow the selection rounds' correlation (Welch), not its own.
    def run(key: str, seed: int) -> float:
        shift = {"base": 0.0, "a": 0.02, "b": 0.0}[key]
        sign = 1 if seed > SELECTION_ROUNDS or key == "base" else -1
        return 0.5 + shift + sign * 0.004 * np.sin(seed) + 0.001 * np.cos(7 * seed + len(key) + shift * 100)

    found = race(["a", "b"], "base", run, budget=20, first_seed=1)
    assert found.leader == "a" and found.comparison.method == WELCH


def test_failed_runs_drop_the_arm_or_end_the_race():
    run = scores_of({"base": 0.5, "a": 0.52, "b": 0.5})
    broken = race(["a", "b"], "base", lambda k, s: None if k == "a" else run(k, s), budget=20, first_seed=1)
    assert broken.dropped["a"] == Drop(2, None) and broken.leader == "b"
    without_baseline = race(["a", "b"], "base", lambda k, s: None if k == "base" else run(k, s), budget=20, first_seed=1)
    assert without_baseline.stopped == "the baseline's runs failed" and without_baseline.winner is None


def test_a_race_replayed_from_saved_runs_trains_nothing_new():
    saved: dict[tuple[str, int], float] = {}
    score = scores_of({"base": 0.50, "a": 0.51, "b": 0.52})
    trainings, calls = counted(score)

    def run(key: str, seed: int) -> float:  # the cache layer in miniature: train once, then read
        if (key, seed) not in saved:
            saved[key, seed] = trainings(key, seed)
        return saved[key, seed]

    first = race(["a", "b"], "base", run, budget=24, first_seed=1)
    trained = len(calls)
    again = race(["a", "b"], "base", run, budget=24, first_seed=1)
    assert len(calls) == trained == first.runs and again == first


def test_looks_and_levels():
    assert looks(3) == (3,) and looks(4) == (3, 4) and looks(9) == (5, 9) and looks(10) == (5, 10)
    assert look_level(0.05, 3) == pytest.approx(0.05) and look_level(0.05, 10) == pytest.approx(0.025)
    assert minimal_budget(1) == 2 * MIN_PAIRS and minimal_budget(3) == SELECTION_ROUNDS * 4 + 2 * MIN_PAIRS


@pytest.mark.parametrize("contenders, baseline, budget, match", [
    ([], "base", 20, "at least one contender"), (["a", "a"], "base", 20, "distinct"), (["base"], "base", 20, "distinct"),
    (["a", "b", "c"], "base", minimal_budget(3) - 1, f"at least {minimal_budget(3)}"),
])
def test_bad_races_raise(contenders, baseline, budget, match):
    with pytest.raises(ValueError, match=match):
        race(contenders, baseline, scores_of({"base": 0.5, "a": 0.5}), budget, first_seed=1)


def test_resolution_matches_the_power_function():
    """The resolution comes from the sd of the test rounds' same-seed differences of the leader and the
    baseline (the test pairs them), not from the pooled seed sd and correlation."""
    found = race(["a", "b"], "base", scores_of({"base": 0.50, "a": 0.50, "b": 0.50}, seed=5), budget=20, first_seed=1)
    resolution = found.resolution()
    assert resolution["test_rounds"] == (20 - SELECTION_ROUNDS * 3) // 2
    assert resolution["test"] == PAIRED and resolution["measured_on"] == "test rounds"
    tested = [r for r in found.rounds if r.test]
    differences = [r.scores[found.leader] - r.scores["base"] for r in tested]
    assert resolution["pairs"] == len(tested) and resolution["difference_df"] == len(tested) - 1
    assert resolution["difference_sd"] == pytest.approx(np.std(differences, ddof=1))
    level = look_level(0.05, resolution["test_rounds"])
    expected = paired_detectable(resolution["difference_sd"], resolution["test_rounds"], level)
    assert resolution["detectable"] == pytest.approx(expected)
    n = resolution["seeds_needed"]
    assert paired_detectable(resolution["difference_sd"], n, look_level(0.05, n)) <= 0.01
    assert paired_detectable(resolution["difference_sd"], n - 1, look_level(0.05, n - 1)) > 0.01
    assert resolution["budget_needed"] == SELECTION_ROUNDS * 3 + 2 * n
    assert (resolution["sd"], resolution["correlation"]) == found.noise()  # still stored, for older readers


def _three_pairs(differences: list[float]) -> Race:
    """A finished single-contender race whose 3 test rounds have these same-seed differences (leader - baseline)."""
    rounds = tuple(Round(seed, True, {"base": 0.40 + 0.02 * seed, "a": 0.40 + 0.02 * seed + d})
                   for seed, d in enumerate(differences, 1))
    return Race("base", ("a",), budget=6, alpha=ALPHA, rounds=rounds, leader="a", test_rounds=3, level=look_level(ALPHA, 3),
                stopped="the budget is spent")


def test_power_statement_on_three_pairs_follows_their_paired_sd():
    """Issue 29: 3 pairs with differences (-0.048, -0.061, -0.030) have paired sd 0.0156; the report
    said a gain below 0.0066 could not be told from noise (pooled sd with a correlation of +1.00 from 3
    pairs). The stated detectable gain now follows the measured paired sd: doubling the spread of the
    differences doubles it, and the text says the race can only see large gains."""
    from search.report.outcome import resolution_text

    differences = [-0.048, -0.061, -0.030]
    mean = sum(differences) / 3
    wider = [mean + 2 * (d - mean) for d in differences]  # the same mean, twice the spread
    one, two = _three_pairs(differences).resolution(), _three_pairs(wider).resolution()
    sd = float(np.std(differences, ddof=1))
    assert one["difference_sd"] == pytest.approx(sd) == pytest.approx(0.01557, abs=1e-5)
    assert two["difference_sd"] == pytest.approx(2 * sd)
    assert one["pairs"] == 3 and one["difference_df"] == 2 and one["few_pairs"]
    t_gain = (stats.nct.sf(stats.t.isf(0.05, 2), 2, one["detectable"] / (sd / np.sqrt(3))))  # 80% power, 2 df
    assert t_gain == pytest.approx(0.8, abs=1e-4)
    assert two["detectable"] == pytest.approx(2 * one["detectable"])
    assert one["detectable"] > 5 * 0.0066  # not the correlation formula's optimistic figure
    assert two["power"] < one["power"] < 0.5  # far from "at least 97%" for 0.01

    text = resolution_text(one, 6, "mAP50-95")
    assert text.startswith("This race can only see large gains: it measured its noise on only 3 pairs (2 degrees of freedom)")
    assert (f"the sd of the same-seed differences between the tested placement and the baseline ({sd:.4f} mAP50-95 "
            "from 3 pairs of its test rounds; 2 degrees of freedom), its paired t cannot tell a gain below "
            f"{one['detectable']:.4f} mAP50-95 from noise (80% power)") in text
    assert f"{two['detectable']:.4f}" in resolution_text(two, 6, "mAP50-95")


def test_resolution_with_enough_pairs_or_unpaired():
    """With `RELIABLE_PAIRS` pairs or more the text states the figures without the warning; an unpaired
    test (Welch's) states them from the two sides' sds."""
    from search.report.outcome import resolution_text

    paired = race(["a"], "base", scores_of({"base": 0.5, "a": 0.5}, corr=0.8, seed=2), budget=2 * RELIABLE_PAIRS + 2, first_seed=1)
    resolution = paired.resolution()
    assert resolution["pairs"] >= RELIABLE_PAIRS and not resolution["few_pairs"]
    assert resolution_text(resolution, paired.budget, "mAP50-95").startswith("With this budget")

    selection = (Round(1, False, {"base": 0.50, "a": 0.51, "b": 0.49}),  # same-seed scores correlate negatively
                 Round(2, False, {"base": 0.51, "a": 0.50, "b": 0.50}))
    test = tuple(Round(seed, True, {"base": b, "a": a}) for seed, a, b in ((3, 0.52, 0.50), (4, 0.49, 0.51), (5, 0.50, 0.52)))
    unpaired = Race("base", ("a", "b"), budget=12, alpha=ALPHA, rounds=selection + test, leader="a", test_rounds=3)
    resolution = unpaired.resolution()
    sds = float(np.std([0.52, 0.49, 0.50], ddof=1)), float(np.std([0.50, 0.51, 0.52], ddof=1))
    assert resolution["test"] == WELCH and resolution["pairs"] == 3 and resolution["test_rounds"] == 3
    assert (resolution["candidate_sd"], resolution["baseline_sd"]) == pytest.approx(sds)
    assert resolution["detectable"] == pytest.approx(welch_detectable(*sds, 3, look_level(ALPHA, 3)))
    assert "not paired" in resolution_text(resolution, unpaired.budget, "mAP50-95")


def _selection_power():
    """The benchmark's simulation (results/benchmarks/selection_power.py), which imports its sibling `machine`."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("selection_power")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_whole_procedure_false_improves_at_most_5_percent_and_finds_a_real_winner():
    """Searches of 100 placements by single proxy runs, the top 3 raced with the default budget at the
    pretrained regime's noise: with all placements equal, the rate of "improves" is consistent with at
    most 5% (one-sided binomial test; the old rule's 7.6% would fail it with 400 searches more often
    than not); with one placement 0.01 better, it is exported in most searches (selection_power.md)."""
    simulation = _selection_power()
    budget, searches = RunConfig(data="x").confirm_budget, 400
    design = simulation.Design(trials=100, top=3, budget=budget)
    null = simulation.simulate(design, 0.004, 0.5, 0.01, 0, 99, searches, np.random.default_rng(0))
    false_improves = round(null.improves * searches)
    assert stats.binomtest(false_improves, searches, ALPHA, alternative="greater").pvalue > 0.05 and null.runs <= 100 + budget
    real = simulation.simulate(design, 0.004, 0.5, 0.01, 1, 99, 100, np.random.default_rng(1))
    assert real.found >= 0.7 and real.improves - real.found <= 0.05 and real.repeats == 0 and real.visited == 1


def test_an_intensified_search_keeps_its_false_improves_at_most_5_percent():
    """The same with the intensification (`search.select.intensify`): the race's seeds are fresh, so picking its
    contenders on repeat seeds cannot inflate false improvements; repeats cost visited placements."""
    simulation = _selection_power()
    design, searches = simulation.Design(trials=100, top=2, budget=20, leaders=2, seeds=2), 300
    null = simulation.simulate(design, 0.0045, 0.3, 0.01, 0, 99, searches, np.random.default_rng(2))
    assert stats.binomtest(round(null.improves * searches), searches, ALPHA, alternative="greater").pvalue > 0.05
    assert 0 < null.repeats < 50 and null.runs <= 120


# --- wiring: search.final.confirm over cached proxy runs ---------------------------------------------


def _study(means: dict[str, float]) -> optuna.Study:
    """An in-memory study whose trial 0 is the baseline and trials 1.. the placements in ``means``."""
    from spaces import Placement

    study = optuna.create_study(direction="maximize")
    for position, value in means.items():
        placement = Placement() if position == "base" else Placement.of({position: ["se"]})
        attrs = {"placement": placement.to_dict(), "placement_key": placement.key, "placement_str": str(placement),
                 "baseline": placement.is_baseline, "map50_95": value, "precision": 0.6, "recall": 0.5, "map50": 0.4}
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value, user_attrs=attrs))
    return study


def test_confirm_races_on_fresh_seeds_and_resumes_from_saved_runs(tmp_path, monkeypatch):
    import search.study.trial_steps
    from search.final.confirm import confirm
    from search.study.start import StudyRun
    from spaces.tasks import TASKS
    from trainers.train import TrialRecord

    means = {"base": 0.50, "neck.15": 0.50, "backbone.4": 0.53, "neck.18": 0.49}
    study = _study({k: v + 0.01 for k, v in means.items()})  # search scores: one lucky run each
    config = RunConfig(data="x", study="s", out=str(tmp_path), confirm_top=3, confirm_budget=20, seed=0)
    trainings = []

    def fake_train(placement, base, proxy, budget, folder, weights=None, insertion=None):
        assert budget.seed != config.seed, "confirmation must not reuse the search's seed"
        trainings.append((placement.key, budget.seed))
        position = next(iter(dict(placement.modules)), "base")
        score = scores_of(means)(position, budget.seed)
        folder.mkdir(parents=True, exist_ok=True)
        return TrialRecord(status="complete", placement=placement.to_dict(),
                           final={"map50_95": score, "precision": 0.6 + score, "recall": 0.5, "map50": score + 0.2})

    monkeypatch.setattr(search.study.trial_steps, "train_candidate", fake_train)
    run = StudyRun(config, study, None, {}, tmp_path / "proxy", TASKS["detect"])  # nothing is built: training is a stand-in
    result = confirm(run, show_progress=True)
    winner = result.chosen
    assert winner is result.candidates[result.winner] and winner.placement_str == "backbone.4: se"
    assert result.verdict.startswith(f"trial {winner.trial} (backbone.4: se) improves mAP50-95")
    assert winner.race == "won the test" and winner.comparison["low"] > 0 and winner.tradeoff
    assert all(c.race.startswith("dropped after round 2") for c in result.candidates if c is not winner)
    assert len(trainings) == result.runs <= 20 and len(result.baseline.scores("map50_95")) == len(result.baseline.seeds)
    assert result.noise["sd"] > 0 and result.noise["seeds_needed"] >= 2
    assert len(list((tmp_path / "s" / "confirm").glob("*/seed*/metrics.json"))) == len(trainings)

    trained = len(trainings)
    assert confirm(run, show_progress=False) == result  # replayed from metrics.json
    assert len(trainings) == trained


def test_confirmation_options(tmp_path):
    with pytest.raises(ValueError, match="--confirm-budget 10 cannot race 3 candidates.*at least 14"):
        RunConfig(data="x", confirm_top=3, confirm_budget=10).validate_confirmation()
    RunConfig(data="x", confirm_top=0, confirm_budget=0).validate_confirmation()  # no confirmation: no budget needed
    default = RunConfig(data="x").confirm_budget
    for top, budget in ((3, default), (12, minimal_budget(12))):  # 12 contenders need more runs than the default
        old = {"data": "d.yaml", "confirm_top": top, "confirm_seeds": 5}  # a run.yaml from before the race
        (tmp_path / "run.yaml").write_text(yaml.safe_dump(old))
        loaded = RunConfig.load(tmp_path / "run.yaml")
        assert (loaded.confirm_top, loaded.confirm_budget) == (top, budget)
        loaded.validate_confirmation()  # `resume` cannot change the budget: it must race the old top

    from search.cli import _parser

    args = _parser().parse_args(["run", "--data", "d.yaml", "--confirm-top", "2", "--confirm-budget", "24"])
    assert (args.confirm_top, args.confirm_budget) == (2, 24)
