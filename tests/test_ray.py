"""The Ray Tune executor: same study as in-process, Optuna's pruner stops trials, bad input, and one
SQLite storage shared by several processes.

Real parts throughout: a local Ray cluster, real trainings on the toy set, a real Optuna study. The
only stand-ins are the Tune trial handed to the scheduler and its result dicts in the unit tests of
`OptunaSearcher`/`PruningScheduler` (a whole Tune run cannot be made to prune on cue).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState

from helpers import TRAIN, one_line_error, study_of
from search.cli import main
from search.config import RunConfig
from search.study import ray_executor
from search.study.loop import TrialLoop
from search.study.ray_executor import EPOCH_KEY, RECORD_KEY, OptunaSearcher, PruningScheduler, ray_temp_dir
from search.study.start import StudyRun
from search.study.storage import rdb_storage
from spaces.tasks import TASKS

# The toy training budget with 2 proxy epochs: enough to compare what the two executors do.
TINY = [*TRAIN, "--proxy-epochs", "2"]
SAME_STUDY = ["--trials", "4", "--sampler", "random", "--pruner", "none", "--no-final", "--seed", "0"]


def _outline(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.user_attrs["placement_key"], t.user_attrs.get("duplicate_of")) for t in study.trials]


def test_ray_executor_finds_the_in_process_study(learnable_data, tmp_path, monkeypatch):
    """Same seed, sampler and trial count: a local Ray cluster with 2 workers asks and records the
    same trials as the in-process executor; nothing is written to the home folder."""
    data, out = str(learnable_data), str(tmp_path / "results")
    assert main(["run", "--data", data, "--out", out, "--study", "inproc", *SAME_STUDY, *TINY]) == 0
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert main(["run", "--data", data, "--out", out, "--study", "ray", *SAME_STUDY, *TINY,
                 "--executor", "ray", "--workers", "2"]) == 0
    inproc, ray_study = study_of(tmp_path / "results" / "inproc"), study_of(tmp_path / "results" / "ray")
    assert _outline(ray_study) == _outline(inproc)
    assert {t.user_attrs["placement_key"] for t in ray_study.trials} == {t.user_attrs["placement_key"] for t in inproc.trials}
    assert [t.state for t in ray_study.trials] == [t.state for t in inproc.trials]
    first = ray_study.trials[0]
    assert first.user_attrs["baseline"] and first.state == TrialState.COMPLETE
    counted = [t for t in ray_study.trials if not {"infeasible", "duplicate_of"} & set(t.user_attrs)]
    assert len(counted) == 4
    for trial in counted:
        assert trial.user_attrs["params"] > 0 and len(trial.user_attrs["epochs"]) == 2 and trial.intermediate_values
        if trial.state == TrialState.COMPLETE:
            assert trial.value == trial.user_attrs["map50_95"]
    study_dir = tmp_path / "results" / "ray"
    assert (study_dir / "trials" / "0" / "results.csv").is_file()
    assert list((study_dir / "ray").glob("search-*/trial-0"))  # Tune's experiment lives in the study
    assert not list(home.iterdir()), f"written to the home folder: {list(home.rglob('*'))}"
    if not ray_temp_dir(study_dir).is_relative_to(study_dir):  # a long tmp_path: Ray's logs went to /tmp/ray-<hex>
        shutil.rmtree(ray_temp_dir(study_dir), ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_ray_input_is_one_line_exit_2(learnable_data, tmp_path, capsys, monkeypatch):
    import torch

    data = str(learnable_data)
    base = ["run", "--data", data, "--out", str(tmp_path), "--no-final", "--quiet"]
    cases = {
        "--workers must be at least 1, got 0": ["--executor", "ray", "--workers", "0"],
        "--executor 'dask' is not known": ["--executor", "dask"],
        "--gpus-per-trial must be in [0, 1]": ["--executor", "ray", "--gpus-per-trial", "1.5"],
        "--gpus-per-trial: options of the ray executor; add --executor ray": ["--gpus-per-trial", "0.25"],
        "--ray-address 127.0.0.1:": ["--executor", "ray", "--ray-address", f"127.0.0.1:{_free_port()}"],
        "write HOST:PORT": ["--executor", "ray", "--ray-address", "nowhere"],
        "Ray Client is not supported": ["--executor", "ray", "--ray-address", "ray://127.0.0.1:10001"],
    }
    if torch.cuda.device_count() == 0:  # a CPU-only machine: any GPU share is more than it has
        cases["--gpus-per-trial 0.25: this machine has 0 GPUs"] = ["--executor", "ray", "--gpus-per-trial", "0.25"]
    for message, extra in cases.items():
        assert message in one_line_error(base + extra, capsys), message

    # A port that accepts connections but never answers as Ray: the probe gives up after its time limit.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    threading.Thread(target=lambda: [server.accept() for _ in range(8)], daemon=True).start()
    monkeypatch.setattr(ray_executor, "PROBE_TIMEOUT_S", 8.0)
    start = time.monotonic()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    assert f"--ray-address {address}: no Ray cluster" in one_line_error(base + ["--executor", "ray", "--ray-address", address], capsys)
    assert time.monotonic() - start < 30
    server.close()
    assert not list(tmp_path.glob("*/study.db"))  # nothing started


def _space_and_config(tmp_path: Path, trials: int = 3) -> tuple:
    from spaces import load_base, load_space

    config = RunConfig(data="unused.yaml", out=str(tmp_path), study="unit", trials=trials, proxy_epochs=4,
                       pruner="none", sampler="random")
    return load_space(load_base(config.model)), config


def _epoch_result(epoch: int, fitness: float) -> dict:
    metrics = {"epoch": epoch, "precision": 0.5, "recall": 0.5, "map50": fitness, "map50_95": fitness,
               "fitness": fitness, "time_s": 1.5 * epoch}
    return {"epoch": epoch, "fitness": fitness, EPOCH_KEY: json.dumps(metrics)}


def _record_result(placement: dict, fitness: float) -> dict:
    from trainers.train import TrialRecord

    epoch = json.loads(_epoch_result(1, fitness)[EPOCH_KEY])
    final = {k: epoch[k] for k in ("precision", "recall", "map50", "map50_95")}
    record = TrialRecord("complete", placement, epochs=[epoch], final=final, params=10, gflops=1.0)
    return {"fitness": fitness, RECORD_KEY: json.dumps(record.to_dict())}


def _searcher(study: optuna.Study, space, config: RunConfig) -> OptunaSearcher:
    """The Tune searcher over the trial loop of ``study`` (no base model or proxy data: nothing trains here)."""
    return OptunaSearcher(TrialLoop(StudyRun(config, study, space, {}, Path("unused"), TASKS["detect"])))


def _searcher_and_scheduler(tmp_path: Path, prune_below: float) -> tuple:
    """A real Optuna study whose ThresholdPruner prunes any fitness below ``prune_below``, with
    the Tune searcher and scheduler around it."""
    space, config = _space_and_config(tmp_path)
    study = optuna.create_study(storage=rdb_storage(f"sqlite:///{tmp_path / 'unit.db'}"),
                                pruner=optuna.pruners.ThresholdPruner(lower=prune_below))
    searcher = _searcher(study, space, config)
    return study, searcher, PruningScheduler(searcher)


def test_scheduler_stops_a_trial_optuna_prunes_and_it_ends_pruned(tmp_path):
    """Any fitness below 1 is pruned; the Tune trial and its results are stand-ins for what a Ray
    worker would send."""
    study, searcher, scheduler = _searcher_and_scheduler(tmp_path, prune_below=1.0)
    suggested = searcher.suggest("tune-a")
    assert "placement" in suggested
    decision = scheduler.on_trial_result(None, SimpleNamespace(trial_id="tune-a"), _epoch_result(1, 0.3))
    assert decision == PruningScheduler.STOP
    searcher.on_trial_complete("tune-a", result=_epoch_result(1, 0.3))
    trial = study.trials[suggested["number"]]  # earlier ones: proposals told without training
    assert trial.state == TrialState.PRUNED and trial.intermediate_values == {1: 0.3}
    assert trial.user_attrs["status"] == "pruned" and trial.user_attrs["pruned_at"] == 1
    assert [e["epoch"] for e in trial.user_attrs["epochs"]] == [1] and trial.user_attrs["map50_95"] == 0.3
    assert not searcher.running


def test_scheduler_lets_a_good_trial_finish_complete(tmp_path):
    study, searcher, scheduler = _searcher_and_scheduler(tmp_path, prune_below=0.1)
    suggested = searcher.suggest("tune-a")
    assert scheduler.on_trial_result(None, SimpleNamespace(trial_id="tune-a"), _epoch_result(1, 0.3)) == PruningScheduler.CONTINUE
    searcher.on_trial_complete("tune-a", result=_record_result(suggested["placement"], 0.3))
    trial = study.trials[suggested["number"]]  # earlier ones: proposals told without training
    assert trial.state == TrialState.COMPLETE and trial.value == 0.3 and trial.user_attrs["params"] == 10


def _assert_asks_one_more(suggestion: dict, study: optuna.Study, first_new: int) -> None:
    """A duplicate does not count: one more trial is asked to train. The study's sampler may first
    propose placements told without training (repeats, or outside the space); they are skipped."""
    number = suggestion["number"]
    assert number >= first_new
    skipped = study.get_trials(deepcopy=False)[first_new:number]
    assert all({"duplicate_of", "infeasible"} & set(t.user_attrs) for t in skipped)


def test_trials_in_flight_count_and_a_running_twin_is_waited_for(tmp_path):
    """No more trials are asked than --trials needs, and a placement asked while an identical one
    trains is not trained twice: it is told its twin's outcome."""
    from search.study.records import placement_params
    from spaces import Placement

    space, config = _space_and_config(tmp_path, trials=3)
    study = optuna.create_study(storage=rdb_storage(f"sqlite:///{tmp_path / 'unit.db'}"))
    other = Placement.of({space.insert_positions[0].name: ["se"]})
    for placement in (Placement(), Placement(), other):
        study.enqueue_trial(placement_params(placement, space))
    searcher = _searcher(study, space, config)
    first = searcher.suggest("tune-a")  # trial 0: the baseline
    second = searcher.suggest("tune-b")  # trial 1 is the baseline again and waits; trial 2 trains
    assert first["number"] == 0 and second["number"] == 2
    assert searcher.suggest("tune-c") is None  # 3 asked: nothing more, but the twin is not told yet
    searcher.on_trial_complete("tune-a", result=_record_result(first["placement"], 0.2))
    assert study.trials[1].state == TrialState.COMPLETE and study.trials[1].user_attrs["duplicate_of"] == 0
    _assert_asks_one_more(searcher.suggest("tune-d"), study, first_new=3)
    searcher.on_trial_complete("tune-b", error=True)
    assert study.trials[2].state == TrialState.FAIL and "Ray worker failed" in study.trials[2].user_attrs["reason"]


def test_twins_of_a_failed_trial_train_once_more(tmp_path):
    from search.study.records import placement_params
    from spaces import Placement

    space, config = _space_and_config(tmp_path, trials=3)
    study = optuna.create_study(storage=rdb_storage(f"sqlite:///{tmp_path / 'unit.db'}"))
    placement = Placement.of({space.insert_positions[0].name: ["se"]})
    for _ in range(3):
        study.enqueue_trial(placement_params(placement, space))
    searcher = _searcher(study, space, config)
    assert searcher.suggest("tune-a")["number"] == 0
    assert searcher.suggest("tune-b") is None  # trials 1 and 2 wait for trial 0
    searcher.on_trial_complete("tune-a", error=True)
    retried = searcher.suggest("tune-c")
    assert retried["number"] == 1 and searcher.suggest("tune-d") is None  # trial 2 now waits for trial 1
    searcher.on_trial_complete("tune-c", result=_record_result(retried["placement"], 0.4))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert study.trials[2].user_attrs["duplicate_of"] == 1
    _assert_asks_one_more(searcher.suggest("tune-e"), study, first_new=3)


def test_ray_temp_dir_stays_short_for_unix_sockets(tmp_path):
    assert ray_temp_dir(Path("/r/s")) == Path("/r/s/ray/tmp")
    long_dir = tmp_path / ("x" * 80)
    short = ray_temp_dir(long_dir)
    assert short.name.startswith("ray-") and len(str(short)) + ray_executor.SOCKET_SUFFIX <= ray_executor.SOCKET_PATH_MAX
    assert ray_temp_dir(long_dir) == short  # the same study always gets the same folder


_ASK_TELL = textwrap.dedent(
    """
    import os, sys, time
    import optuna
    from search.study.storage import rdb_storage

    url, name, k, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=rdb_storage(url))
    time.sleep(max(0.0, go - time.time()))  # all processes start asking at the same moment
    for i in range(k):
        trial = study.ask()
        trial.set_user_attr("who", f"{os.getpid()}-{i}")
        x = trial.suggest_float("x", 0, 1)
        study.tell(trial, x * x)
    """
)


def test_one_sqlite_storage_takes_concurrent_processes(tmp_path):
    """N=4 processes, k=5 ask/tell cycles each, one study.db: exactly N*k trials, numbers 0..N*k-1
    each once, none lost or duplicated (the storage search.study.storage.open_study uses)."""
    n, k = 4, 5
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="shared", storage=rdb_storage(url))
    go = time.time() + 6  # after every process has imported Optuna
    processes = [subprocess.Popen([sys.executable, "-c", _ASK_TELL, url, "shared", str(k), str(go)], stderr=subprocess.PIPE, text=True)
                 for _ in range(n)]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
    trials = optuna.load_study(study_name="shared", storage=rdb_storage(url)).trials
    assert len(trials) == n * k
    assert sorted(t.number for t in trials) == list(range(n * k))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["who"] for t in trials}) == n * k


_HOLD_CLUSTER = textwrap.dedent(
    """
    import os, sys, time
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray
    ray.init(num_cpus=2, num_gpus=0, _temp_dir=sys.argv[1], include_dashboard=False, logging_level="ERROR")
    print(ray.get_runtime_context().gcs_address, flush=True)
    time.sleep(900)
    """
)


@pytest.mark.slow
def test_search_on_an_existing_cluster(learnable_data, tmp_path):
    """--ray-address: a cluster another process started (its own temp dir); resources are the cluster's."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-test-", dir="/tmp"))  # short: Ray's socket paths live under it
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_CLUSTER, str(temp_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = holder.stdout.readline().strip()
        assert address, "the cluster did not start"
        base = ["run", "--data", str(learnable_data), "--out", str(tmp_path), "--no-final", "--sampler", "random",
                "--pruner", "none", *TINY, "--executor", "ray", "--ray-address", address]
        bad = subprocess.run([sys.executable, "-m", "search", *base, "--study", "g", "--gpus-per-trial", "0.5"],
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and f"the cluster at {address} has 0 GPUs" in bad.stderr, bad.stderr[-2000:]
        done = subprocess.run([sys.executable, "-m", "search", *base, "--study", "c", "--trials", "2", "--workers", "2"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        trials = study_of(tmp_path / "c").get_trials()
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 and trials[0].user_attrs["baseline"]
        assert not (tmp_path / "c" / "ray" / "tmp").exists()  # the cluster keeps its own temp dir
    finally:
        holder.terminate()
        holder.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)
