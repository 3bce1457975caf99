"""Measured latency (`trainers.latency`, `search.study.latency_probe`): a real ONNX export timed with ONNX Runtime, the
cache by placement, the latency limits decided on the interval and the options' one-line errors.

No test here asserts on a measured time: the timing logic is fed known durations (stand-in runners or a
stand-in clock), a real timing is only checked to be positive and finite, and the one comparison of real
timings (a heavier model is slower) is marked slow; the real figures are `results/benchmarks/latency_table.py`'s."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from optuna.trial import TrialState

import trainers.latency
from helpers import TRAIN, one_line_error, study_of
from search.cli import main
from search.config import LATENCY_DEVICES, RunConfig
from search.study.latency_probe import RECHECK_ROUNDS, LatencyProbe
from search.study.start import start_search, study_data
from spaces import Placement
from trainers.latency import DEVICES, ROUNDS, WARMUP, Timing, compare, compare_torch, export_onnx, interleave, missing_extra

pytestmark = pytest.mark.skipif(missing_extra() is not None, reason="onnx or onnxruntime is not installed")
HEAVY = Placement.of({"backbone.2": ["cbam"], "neck.15": ["gam"]})


def test_the_option_lists_agree():
    assert LATENCY_DEVICES == DEVICES


def steady_clock():
    """A stand-in for ``time.perf_counter`` that advances 0.5 s per call (exact in binary): every timed run takes 0.5 s."""
    return itertools.count(step=0.5).__next__


def test_twice_as_slow_gives_2_and_identical_gives_1():
    """`interleave` fed known durations: exact figures without noise, and an interval that holds the true ratio with it."""
    assert interleave([lambda: 0.002, lambda: 0.001]) == Timing(2.0, 2.0, 2.0, 2.0, 1.0, ROUNDS)
    assert interleave([lambda: 0.001, lambda: 0.001], rounds=4) == Timing(1.0, 1.0, 1.0, 1.0, 1.0, 4)
    rng = np.random.default_rng(1)  # +-10% noise on every run
    slow = interleave([lambda: 0.002 * rng.uniform(0.9, 1.1), lambda: 0.001 * rng.uniform(0.9, 1.1)])
    assert slow.low < 2 < slow.high and slow.low <= slow.ratio <= slow.high and slow.ms > slow.reference_ms, slow
    same = interleave([lambda: 0.001 * rng.uniform(0.9, 1.1), lambda: 0.001 * rng.uniform(0.9, 1.1)])
    assert same.low < 1 < same.high, same


def test_interleaving_alternates_which_model_goes_first_so_drift_falls_on_both():
    """Warm-up runs of each, then blocks of ``runs`` with the first model alternating; a machine slowing down run by
    run (1% per run) then leaves two identical models at 1, where timing one always first would call it faster."""
    calls = []
    interleave([lambda: calls.append("c") or 1.0, lambda: calls.append("r") or 1.0], rounds=3, runs=2)
    assert "".join(calls) == "c" * WARMUP + "r" * WARMUP + "ccrr" + "rrcc" + "ccrr"
    ticks = itertools.count(1)
    drifting = lambda: 0.001 * (1 + 0.01 * next(ticks))  # noqa: E731
    timing = interleave([drifting, drifting])
    assert timing.low < 1 < timing.high and abs(timing.ratio - 1) < 0.01, timing


def test_an_onnx_export_is_timed_with_onnx_runtime(tmp_path, monkeypatch):
    """A real export (Ultralytics' ONNX exporter) of yolov8n at 64 px, beside its YAML, timed against itself with ONNX
    Runtime: with a stand-in clock the figures are exact; with the real clock they are only positive and finite."""
    from spaces import load_base, write_yaml

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    onnx = export_onnx(write_yaml(load_base("yolov8n.yaml"), tmp_path / "model.yaml"), 64)
    assert onnx == tmp_path / "model.onnx" and not list((tmp_path / "elsewhere").iterdir())  # beside its YAML, not in the cwd
    assert onnx.is_file() and onnx.suffix == ".onnx"
    assert compare(onnx, onnx, rounds=3, clock=steady_clock()) == Timing(1.0, 1.0, 1.0, 500.0, 500.0, 3, threads=1)
    real = compare(onnx, onnx, rounds=2, runs=1)
    assert all(math.isfinite(x) and x > 0 for x in (real.ratio, real.low, real.high, real.ms, real.reference_ms)), real
    assert real.rounds == 2 and real.threads == 1


def _torch_model(tmp_path, scale: str):
    """yolov8<scale> for 2 classes, one scale in the file (Ultralytics would guess it from the file's name otherwise)."""
    from spaces import load_base, write_yaml

    base = load_base(f"yolov8{scale}.yaml")
    return write_yaml({**base, "nc": 2, "scales": {scale: base["scales"][scale]}}, tmp_path / f"{scale}.yaml")


def test_the_torch_timing_runs_both_models_interleaved(tmp_path):
    """`compare_torch`, the --latency-device cuda path, run on the CPU with a stand-in clock (this machine has no GPU:
    its CUDA events and FP16 are not exercised here): both models built, fused and run, the figures exact."""
    import torch

    small = _torch_model(tmp_path, "n")
    timing = compare_torch(small, small, 64, device="cpu", rounds=2, runs=1, clock=steady_clock())
    assert timing == Timing(1.0, 1.0, 1.0, 500.0, 500.0, 2, threads=torch.get_num_threads())


@pytest.mark.slow
def test_the_torch_timing_ranks_a_heavier_model_slower(tmp_path):
    """Real timings on this machine's CPU (slow: a measured time is no verdict on a shared machine): yolov8s against
    yolov8n at 256 px is clearly slower."""
    import torch

    torch.set_num_threads(1)
    heavier = compare_torch(_torch_model(tmp_path, "s"), _torch_model(tmp_path, "n"), 256, device="cpu", rounds=8)
    assert heavier.ratio > 1.3 and heavier.low > 1.0, heavier


def _config(toy_data, tmp_path, **options) -> RunConfig:
    return RunConfig(data=str(toy_data), out=str(tmp_path), study="s", proxy_imgsz=64, final_imgsz=64, **options).resolved()


def test_each_placement_is_timed_once_per_study(toy_data, tmp_path, monkeypatch):
    """The baseline against itself once, each placement once: a second probe on the same study (a resume, another
    worker) and a duplicate placement reuse the study's figures. The real timing runs; only calls are counted."""
    calls = []
    monkeypatch.setattr("search.study.latency_probe.compare", lambda *a, **k: calls.append(a) or compare(*a, **k))
    config = _config(toy_data, tmp_path, objective="map+latency")
    run = start_search(config)
    first = run.latency.measure(HEAVY)
    assert len(calls) == 2  # baseline vs itself, then the placement
    again = LatencyProbe(run.study, config, run.base, study_data(config))
    assert again.measure(HEAVY) == first and len(calls) == 2
    assert run.study.user_attrs["latency"][HEAVY.key] == first and run.study.user_attrs["latency_baseline"]["ms"] > 0


def test_a_candidate_over_the_limit_is_infeasible_and_never_trains(toy_data, tmp_path, monkeypatch):
    """--max-slowdown 1.1 and a candidate measured at 1.5x: told PRUNED as infeasible before training, with its
    excess as the trial's Optuna constraint. The timing is stood in for (a real one is noisy at 64 px); the
    export, the cache and the loop are real."""
    slow = Timing(1.5, 1.45, 1.55, 3.0, 2.0, ROUNDS)
    monkeypatch.setattr("search.study.latency_probe.compare", lambda candidate, reference, rounds: slow)
    config = _config(toy_data, tmp_path, max_slowdown=1.1, sampler="random", trials=1)
    run = start_search(config)
    from search.study.loop import TrialLoop

    loop = TrialLoop(run)
    baseline = loop.next_trial()  # the baseline always trains: every candidate is compared with it
    assert baseline.placement.is_baseline and baseline.trial.user_attrs["latency_ratio"] == 1.0
    trial = run.study.ask()
    assert not run.latency.admit(trial, HEAVY)
    told = run.study.get_trials()[trial.number]
    assert told.state == TrialState.PRUNED and told.user_attrs["infeasible"] == told.user_attrs["latency_decision"] == \
        "1.500x the baseline's latency, over --max-slowdown 1.1 (95% interval [1.450, 1.550], wholly above it)"
    assert told.constraints == {"latency": pytest.approx(0.4)} and not (config.study_dir / "trials" / str(trial.number)).exists()


CBAM = Placement.of({"backbone.2": ["cbam"]})
WITHIN_NOISE = "; admitted, not shown slower than the limit"


@pytest.mark.parametrize("limits, timings, feasible, decision", [
    ({"max_slowdown": 1.1}, [(1.5, 1.45, 1.55)], False,  # clearly over
     "1.500x the baseline's latency, over --max-slowdown 1.1 (95% interval [1.450, 1.550], wholly above it)"),
    ({"max_slowdown": 1.1}, [(1.02, 1.01, 1.03)], True,  # clearly under
     "within --max-slowdown 1.1: 1.020x (95% interval [1.010, 1.030], wholly at or below it)"),
    ({"max_slowdown": 1.001}, [(0.994, 0.985, 1.004), (0.996, 0.99, 1.002)], True,  # the CBAM: across it twice
     "within noise of --max-slowdown 1.001: 0.996x (95% interval [0.990, 1.002], across it on a second measurement of "
     f"{RECHECK_ROUNDS} rounds){WITHIN_NOISE}"),
    ({"max_slowdown": 1.04}, [(1.03, 0.98, 1.12), (1.06, 1.05, 1.07)], False,  # across, then clearly over
     "1.060x the baseline's latency, over --max-slowdown 1.04 (95% interval [1.050, 1.070], wholly above it on a second "
     f"measurement of {RECHECK_ROUNDS} rounds)"),
    ({"max_slowdown": 1.04}, [(1.05, 0.98, 1.06), (1.01, 1.0, 1.02)], True,  # across (its point over), then clearly under
     "within --max-slowdown 1.04: 1.010x (95% interval [1.000, 1.020], wholly at or below it on a second measurement of "
     f"{RECHECK_ROUNDS} rounds)"),
    ({"max_latency_ms": 2.1}, [(1.1, 1.08, 1.12)], False,  # the ratio's interval times the baseline's 2 ms
     "2.2 ms, over --max-latency-ms 2.1 (95% interval [2.16, 2.24], wholly above it)"),
    ({"max_slowdown": 1.05, "max_latency_ms": 2.0}, [(1.05, 1.02, 1.08)], False,  # across one limit, over the other: once
     "2.1 ms, over --max-latency-ms 2 (95% interval [2.04, 2.16], wholly above it)"),
], ids=["over", "under", "across-twice", "across-then-over", "across-then-under", "ms-over",
        "over-one-across-other"])
def test_a_limit_is_decided_on_the_interval(toy_data, tmp_path, monkeypatch, limits, timings, feasible, decision):
    """Timings stood in for (the baseline against itself at 2 ms, then the candidate's ``timings`` in turn) and exports
    stood in for: infeasible when the whole interval is over a limit, feasible when it is at or below every one; an
    interval across a limit is measured once more in RECHECK_ROUNDS rounds, and still across it, the candidate trains
    "within noise". The decision is on the trial in one line with its interval; a second trial of the placement reuses it."""
    script, asked = [(1.0, 0.98, 1.02), *timings], []

    def stand_in(candidate, reference, rounds):
        asked.append(rounds)
        ratio, low, high = script.pop(0)
        return Timing(ratio, low, high, 2.0 * ratio, 2.0, rounds)

    monkeypatch.setattr("search.study.latency_probe.compare", stand_in)
    def export(model, imgsz):  # an empty file: the stand-in timings never read it
        model.with_suffix(".onnx").touch()
        return model.with_suffix(".onnx")

    monkeypatch.setattr("search.study.latency_probe.export_onnx", export)
    run = start_search(_config(toy_data, tmp_path, sampler="random", trials=1, **limits))
    for _ in range(2):  # the second trial of the placement measures nothing
        trial = run.study.ask()
        assert run.latency.admit(trial, CBAM) is feasible
        assert asked == [ROUNDS, ROUNDS] + [RECHECK_ROUNDS] * (len(timings) - 1) and not script
        attrs = run.study.get_trials(deepcopy=False)[trial.number]
        assert attrs.user_attrs["latency_decision"] == decision, attrs.user_attrs["latency_decision"]
        assert attrs.user_attrs["latency_interval"] == list(timings[-1][1:])
        assert attrs.user_attrs["latency_ms"] == pytest.approx(2.0 * timings[-1][0])
        assert (attrs.state == TrialState.PRUNED) is (not feasible)
        assert attrs.user_attrs.get("infeasible") == (None if feasible else decision)
        assert (attrs.constraints["latency"] > 0) is (not feasible)
    assert run.study.user_attrs["latency"][CBAM.key]["rounds"] == asked[-1]


def test_latency_options_that_cannot_work_are_one_line(toy_data, tmp_path, capsys, monkeypatch):
    base = ["run", "--data", str(toy_data), "--out", str(tmp_path), "--no-final", "--final-imgsz", "64", *TRAIN]
    assert "--latency-device 'tpu' is not known; choose one of cpu, cuda" in one_line_error([*base, "--latency-device", "tpu"], capsys)
    cuda = one_line_error([*base, "--objective", "map+latency", "--latency-device", "cuda"], capsys)  # no GPU here (CI neither)
    assert "--latency-device cuda: torch sees no CUDA GPU on this machine" in cuda
    assert "--max-slowdown must be a positive multiple" in one_line_error([*base, "--max-slowdown", "0"], capsys)
    err = one_line_error([*base, "--study", "b", "--max-latency-ms", "0.001"], capsys)
    assert "the baseline itself takes" in err and "over --max-latency-ms 0.001: no candidate can meet it" in err
    assert not list((tmp_path / "b").glob("trials/*"))  # nothing trained
    # without the extra (its absence stood in for: it is installed here)
    monkeypatch.setattr(trainers.latency.importlib.util, "find_spec", lambda name: None)
    assert "pip install onnx" in one_line_error([*base, "--objective", "map+latency"], capsys)


def test_a_latency_search_records_the_figures_on_every_trial(toy_data, tmp_path):
    """A real search with latency as its second objective: every trained trial carries its ratio and ms, and the
    study is told the ratio as its second value."""
    argv = ["run", "--data", str(toy_data), "--out", str(tmp_path), "--study", "l", "--trials", "2", "--no-final",
            "--objective", "map+latency", "--final-imgsz", "64", "--sampler", "random", *TRAIN, "--proxy-epochs", "1"]
    assert main(argv) == 0
    study = study_of(tmp_path / "l")
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert done and all(t.values[1] == t.user_attrs["latency_ratio"] and t.user_attrs["latency_ms"] > 0 for t in done)
    assert study.metric_names == ["mAP50-95 (proxy)", "latency (x baseline)"]
    assert dataclasses.asdict(RunConfig.load(tmp_path / "l" / "run.yaml"))["objective"] == "map+latency"
    report = (tmp_path / "l" / "report.md").read_text()
    latency = report.split("## Latency")[1].split("\n## ")[0]
    assert "ONNX Runtime, 1 thread, batch 1 at 64 px" in latency and "the spread of a ratio on this machine" in latency
    assert "| latency ms | x baseline [95%] |" in latency and "![mAP50-95 against latency](latency.png)" in latency
    assert (tmp_path / "l" / "latency.png").is_file()
    import pandas

    assert pandas.read_csv(tmp_path / "l" / "trials.csv")["latency_ratio"].notna().any()
