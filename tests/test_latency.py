"""Measured latency (`trainers.latency`, `search.latency`): a real ONNX export timed with ONNX Runtime, the
cache by placement, the latency limits and the options' one-line errors."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import TRAIN, one_line_error, study_of
from optuna.trial import TrialState

import trainers.latency
from search.cli import main
from search.config import LATENCY_DEVICES, RunConfig
from search.latency import LatencyProbe
from search.trials import start_search, study_data
from spaces import Placement
from trainers.latency import DEVICES, Timing, compare, compare_torch, export_onnx, missing_extra

pytestmark = pytest.mark.skipif(missing_extra() is not None, reason="onnx or onnxruntime is not installed")
HEAVY = Placement.of({"backbone.2": ["cbam"], "neck.15": ["gam"]})


def test_the_option_lists_agree():
    assert LATENCY_DEVICES == DEVICES


def test_a_model_timed_against_itself_is_about_1(tmp_path, monkeypatch):
    """A real export (Ultralytics' ONNX exporter) of yolov8n at 64 px, timed against itself with ONNX Runtime: the
    ratio's interval holds the ratio, and the ratio is near 1 (a wide band: a shared 2-core CI machine is noisy)."""
    from spaces import load_base, write_yaml

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    onnx = export_onnx(write_yaml(load_base("yolov8n.yaml"), tmp_path / "model.yaml"), 64)
    assert onnx == tmp_path / "model.onnx" and not list((tmp_path / "elsewhere").iterdir())  # beside its YAML, not in the cwd
    timing = compare(onnx, onnx, rounds=12)
    assert onnx.is_file() and onnx.suffix == ".onnx"
    assert timing.low <= timing.ratio <= timing.high and 0.8 < timing.ratio < 1.25, timing
    assert timing.ms > 0 and timing.reference_ms > 0 and timing.rounds == 12 and timing.threads == 1


def test_the_torch_timing_ranks_a_heavier_model_slower(tmp_path):
    """`compare_torch`, the --latency-device cuda path, run on the CPU (this machine has no GPU: its CUDA events and
    FP16 are not exercised here): a model against itself is about 1, and yolov8s against yolov8n is clearly slower."""
    import torch

    from spaces import load_base, write_yaml

    torch.set_num_threads(1)
    def model(scale: str):  # one scale in the file: Ultralytics would guess it from the file's name otherwise
        base = load_base(f"yolov8{scale}.yaml")
        return write_yaml({**base, "nc": 2, "scales": {scale: base["scales"][scale]}}, tmp_path / f"{scale}.yaml")

    small, large = model("n"), model("s")
    itself = compare_torch(small, small, 64, device="cpu", rounds=8)
    assert itself.low <= itself.ratio <= itself.high and 0.8 < itself.ratio < 1.25, itself
    heavier = compare_torch(large, small, 256, device="cpu", rounds=8)  # large enough that compute, not Python, dominates
    assert heavier.ratio > 1.3 and heavier.low > 1.0, heavier


def _config(toy_data, tmp_path, **options) -> RunConfig:
    return RunConfig(data=str(toy_data), out=str(tmp_path), study="s", proxy_imgsz=64, final_imgsz=64, **options).resolved()


def test_each_placement_is_timed_once_per_study(toy_data, tmp_path, monkeypatch):
    """The baseline against itself once, each placement once: a second probe on the same study (a resume, another
    worker) and a duplicate placement reuse the study's figures. The real timing runs; only calls are counted."""
    calls = []
    monkeypatch.setattr("search.latency.compare", lambda *a, **k: calls.append(a) or compare(*a, rounds=2, runs=1, **k))
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
    slow = Timing(1.5, 1.45, 1.55, 3.0, 2.0, 2)
    monkeypatch.setattr("search.latency.compare", lambda candidate, reference: slow)
    config = _config(toy_data, tmp_path, max_slowdown=1.1, sampler="random", trials=1)
    run = start_search(config)
    from search.loop import TrialLoop

    loop = TrialLoop(run)
    baseline = loop.next_trial()  # the baseline always trains: every candidate is compared with it
    assert baseline.placement.is_baseline and baseline.trial.user_attrs["latency_ratio"] == 1.0
    trial = run.study.ask()
    assert not run.latency.admit(trial, HEAVY)
    told = run.study.get_trials()[trial.number]
    assert told.state == TrialState.PRUNED and "1.500x the baseline's latency, over --max-slowdown 1.1" in told.user_attrs["infeasible"]
    assert told.constraints == {"latency": pytest.approx(0.4)} and not (config.study_dir / "trials" / str(trial.number)).exists()


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
            "--objective", "map+latency", "--final-imgsz", "64", "--sampler", "random", *TRAIN, "--proxy-epochs", "1"]  # fmt: skip
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
