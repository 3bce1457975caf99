"""The search end to end: `python -m search run` as a user types it, resume after kill -9, bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from helpers import TINY, TRAIN, one_line_error, pickle_globals, study_of
from search.cli import main
from search.study.records import interrupted_numbers

ROOT = Path(__file__).resolve().parents[1]


def _search(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def finished_search(learnable_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    done = _search("run", "--data", str(learnable_data), "--out", str(out), "--study", "e2e", "--trials", "6",
                   "--pruner", "median", "--confirm-top", "1", "--confirm-budget", "6", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "e2e", done


def test_search_end_to_end(finished_search):
    study_dir, done = finished_search
    study = study_of(study_dir)
    trials = study.get_trials()
    first = trials[0]
    assert first.user_attrs["baseline"] and first.params["modules"] == 0 and first.state == TrialState.COMPLETE
    counted = [t for t in trials if not {"infeasible", "duplicate_of"} & set(t.user_attrs)]
    assert len(counted) == 6 and all(t.state.is_finished() for t in trials)
    for trial in counted:
        if trial.state == TrialState.COMPLETE:
            assert trial.value == trial.user_attrs["map50_95"] and trial.intermediate_values
        assert {"placement", "precision", "recall", "map50", "params", "gflops", "wall_time_s", "dir"} <= set(trial.user_attrs)
    assert any(t.state == TrialState.COMPLETE and t.value > 0 for t in counted), "the toy budget should learn"
    assert (study_dir / "best.yaml").is_file() and (study_dir / "final" / "weights" / "best.pt").is_file()
    trained = {name: yaml.safe_load((study_dir / name / "args.yaml").read_text()) for name in ("final", "trials/0")}
    assert trained["final"]["nbs"] == 64 and trained["trials/0"]["nbs"] == 4  # Ultralytics' recipe; the proxy's
    final = study.user_attrs["final"]
    assert "verdict: " in done.stdout and final["verdict"] in done.stdout
    confirmation = final["confirmation"]
    assert len(confirmation["candidates"]) == 1 and confirmation["runs"] <= 6 and confirmation["stopped"]
    assert confirmation["baseline"]["seeds"][0] == 1  # fresh seeds: the search trained with seed 0
    assert len(list((study_dir / "confirm").glob("*/seed1/metrics.json"))) == 2  # baseline and candidate
    assert len(list((study_dir / "confirm").glob("*/seed*/metrics.json"))) == confirmation["runs"]
    kept_baseline = confirmation["winner"] is None
    assert final["placement_str"] == ("baseline (no attention)" if kept_baseline else confirmation["candidates"][0]["placement_str"])
    for name in ("run.yaml", "space.yaml", "study.db", "trials/0/model.yaml", "trials/0/results.csv", "trials/0/log"):
        assert (study_dir / name).exists(), name
    environment = study.user_attrs["environment"]  # where and with what the trials trained, in the report too
    assert environment["packages"]["ultralytics"] == version("ultralytics") and environment["cpus"] == os.cpu_count()
    assert f"- started {environment['date']} on " in (study_dir / "report.md").read_text()


def test_best_yaml_and_weights_load_in_ultralytics(finished_search):
    study_dir, _ = finished_search
    code = (
        "import spaces, torch; from ultralytics import YOLO; "
        f"m = YOLO(r'{study_dir / 'best.yaml'}', task='detect'); "
        f"w = YOLO(r'{study_dir / 'final' / 'weights' / 'best.pt'}'); "
        "x = torch.zeros(1, 3, 64, 64); m.model.eval()(x); w.model.float().eval()(x); print('ok')"
    )
    env = {**os.environ, "YOLO_OFFLINE": "True", "YOLO_AUTOINSTALL": "False"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_median_pruner_prunes_losing_trials(learnable_data, tmp_path):
    """Pruning forced: 8 trials under the median pruner; some must stop early as PRUNED. In a fresh process:
    what a toy training scores can depend on what an earlier test left in this one (seed 1 pruned here after
    the other tests, and nothing alone)."""
    done = _search("run", "--data", str(learnable_data), "--out", str(tmp_path), "--study", "p", "--trials", "8",
                   "--pruner", "median", "--no-final", "--seed", "0", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = study_of(tmp_path / "p").get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED and not t.user_attrs.get("infeasible")]
    assert pruned and all(len(t.user_attrs["epochs"]) < 6 for t in pruned if "duplicate_of" not in t.user_attrs)


def test_export_writes_a_trial_yaml(finished_search, tmp_path):
    study_dir, _ = finished_search
    assert main(["export", str(study_dir), "--trial", "0", "-o", str(tmp_path / "t0.yaml")]) == 0
    assert "placement: baseline" in (tmp_path / "t0.yaml").read_text()


def test_the_decided_model_ships_with_checked_deployment_files(finished_search, tmp_path, capsys):
    """The end of `run` and `export` write best.pt, best.onnx and best.torchscript, each export checked against the
    weights on the study's val images (the report's table); the .pt pickles nothing of the search."""
    from trainers.deploy import read_checks

    study_dir, _ = finished_search
    for folder, stem in ((study_dir, "best"), (tmp_path, "mine")):
        if folder == tmp_path:
            assert main(["export", str(study_dir), "-o", str(tmp_path / "mine.yaml")]) == 0
            said = capsys.readouterr().out
            assert f"wrote {tmp_path / 'mine.onnx'}: 8 of 8 val images detect the same" in said
        checks = read_checks(folder)
        assert [(c.format, c.file, c.ok, c.images) for c in checks] == [("onnx", f"{stem}.onnx", True, 8),
                                                                         ("torchscript", f"{stem}.torchscript", True, 8)]
        assert all((folder / f"{stem}{suffix}").is_file() for suffix in (".pt", ".onnx", ".torchscript"))
        names = pickle_globals(folder / f"{stem}.pt")
        assert not [n for n in names if n.split(".")[0] in {"spaces", "search", "trainers", "timm", "optuna", "ray"}]
    assert "## Deployment files" in (study_dir / "report.md").read_text()


@pytest.mark.parametrize("executor", ["inprocess", pytest.param("ray", marks=pytest.mark.slow)])
def test_kill_nine_then_rerun_resumes_without_loss(executor, learnable_data, tmp_path):
    """The search killed with a trial (Ray: trials) in flight; the rerun keeps finished trials,
    retries each interrupted one once and reaches the trial count."""
    ray = ["--executor", "ray", "--workers", "2", "--sampler", "random", "--proxy-epochs", "4"] if executor == "ray" else []
    args = ["run", "--data", str(learnable_data), "--out", str(tmp_path), "--study", "r", "--trials", "5",
            "--no-final", "--pruner", "none", *TINY, *ray]
    process = subprocess.Popen([sys.executable, "-m", "search", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = tmp_path / "r" / "study.db"
    deadline = time.monotonic() + 300
    finished_before = []
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(1)
        if db.is_file() and (tmp_path / "r" / "run.yaml").is_file():  # run.yaml follows the study's creation
            trials = study_of(tmp_path / "r").get_trials()
            finished_before = [t for t in trials if t.state.is_finished()]
            training = [t for t in trials if t.state == TrialState.RUNNING  # model.yaml: train_candidate has started it
                        and (tmp_path / "r" / "trials" / str(t.number) / "model.yaml").is_file()]
            if len(finished_before) >= (1 if ray else 2) and training:  # killed in training, not while being asked or told
                break
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    done = _search(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = study_of(tmp_path / "r").get_trials()
    by_number = {t.number: t for t in trials}
    for before in finished_before:  # kept as they were
        assert by_number[before.number].state == before.state and by_number[before.number].values == before.values
    interrupted = [t for t in trials if t.number in interrupted_numbers(trials)]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted)
    assert len(interrupted) == 1 or ray  # in-process, one trial is in flight at a time
    for trial in interrupted:
        retries = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
        assert len(retries) == 1 and retries[0].params == trial.params and retries[0].state.is_finished()
    counted = [t for t in trials
               if t.state.is_finished() and t not in interrupted and not {"infeasible", "duplicate_of"} & set(t.user_attrs)]
    assert len(counted) == 5
    if not ray:
        trained = [t.user_attrs["placement_key"] for t in counted]
        assert len(trained) == len(set(trained))  # no placement trained twice


def test_bad_input_is_one_line_exit_2(learnable_data, tmp_path, capsys):
    data = str(learnable_data)
    base = ["--out", str(tmp_path), "--no-final", "--quiet"]
    (tmp_path / "bad_data.yaml").write_text("train: [oops\n")
    (tmp_path / "space_type.yaml").write_text("types: [se, wonder]\n")
    (tmp_path / "space_pos.yaml").write_text("positions: ['middle.*']\n")
    (tmp_path / "a_file").write_text("")
    cases = {
        "data file not found": ["run", "--data", str(tmp_path / "missing.yaml"), *base],
        "not valid YAML": ["run", "--data", str(tmp_path / "bad_data.yaml"), *base],
        "base model 'yolov99q.yaml' not found": ["run", "--data", data, "--model", "yolov99q.yaml", *base],
        "unknown attention type 'wonder'": ["run", "--data", data, "--space", str(tmp_path / "space_type.yaml"), *base],
        "matches nothing": ["run", "--data", data, "--space", str(tmp_path / "space_pos.yaml"), *base],
        "--trials must be at least 1, got 0": ["run", "--data", data, "--trials", "0", *base],
        "--trials must be at least 1, got -3": ["run", "--data", data, "--trials", "-3", *base],
        "cannot be created": ["run", "--data", data, "--no-final", "--out", str(tmp_path / "a_file" / "sub")],
        "cannot be opened": ["run", "--data", data, "--storage", "sqlite:////no/such/dir/x.db", *base],
        "holds no study": ["resume", str(tmp_path)],
        "--objective 'accuracy' is not known": ["run", "--data", data, "--objective", "accuracy", *base],
        "--seed must be at least 0": ["run", "--data", data, "--seed", "-1", *base],
        "--set bogus_arg: not an Ultralytics training argument": ["run", "--data", data, "--set", "bogus_arg=1", *base],
        "--set 'lr0=abc' is of invalid type str": ["run", "--data", data, "--set", "lr0=abc", *base],
        "--set cache=disk writes beside your images": ["run", "--data", data, "--set", "cache=disk", *base],
        "--device 0: this machine has no CUDA GPU; give --device cpu": ["run", "--data", data, "--device", "0", *base],
        "--device gpu: not a device": ["run", "--data", data, "--device", "gpu", *base],
        "--timeout must be a finite number, got nan": ["run", "--data", data, "--timeout", "nan", *base],
        "--max-slowdown must be a finite number, got inf": ["run", "--data", data, "--max-slowdown", "inf", *base],
        "--proxy-fraction must be a finite number, got nan": ["run", "--data", data, "--proxy-fraction", "nan", *base],
        "--study '../../escaped' is a name, not a path": ["run", "--data", data, "--study", "../../escaped", *base],
        "--loader-workers must be at least 0": ["run", "--data", data, "--loader-workers", "-1", *base],
        "--screen 'oneshot' is not known; choose one of standalone, supernet": ["run", "--data", data, "--screen", "oneshot", *base],
        "leave --intensify out with --screen supernet": ["run", "--data", data, "--screen", "supernet", "--intensify", "2", *base],
        "--set lr0=inf: not a finite number": ["run", "--data", data, "--set", "lr0=1e999", *base],
        "a folder, not a data file; give a data.yaml": ["run", "--data", str(learnable_data.parent), *base],
    }
    for message, argv in cases.items():
        assert message in one_line_error(argv, capsys), message
    assert not list(tmp_path.glob("*/study.db"))  # nothing started
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path.parent.parent / "escaped").exists()


def test_a_failing_baseline_stops_the_search_with_its_own_error(learnable_data, tmp_path, capsys):
    """An option Ultralytics accepts but cannot train with: the baseline fails, so would every trial;
    the search stops after it with its error (exit 2), and a rerun trains the baseline again first."""
    argv = ["run", "--data", str(learnable_data), "--out", str(tmp_path), "--study", "f", "--trials", "4", *TINY,
            "--proxy-epochs", "1", "--set", "optimizer=Foo"]
    err = one_line_error(argv, capsys)
    assert err.startswith("error: the baseline (trial 0) failed: ") and "Foo" in err and "run the same command again" in err
    assert one_line_error(argv, capsys).startswith("error: the baseline (trial 1) failed: ")
    assert [t.user_attrs.get("baseline") for t in study_of(tmp_path / "f").trials] == [True, True]


def test_bad_input_exit_code_in_a_real_process(tmp_path):
    done = _search("run", "--data", str(tmp_path / "missing.yaml"), "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    missing = f"error: {tmp_path / 'missing.yaml'}: data file not found; give the path of an Ultralytics data.yaml"
    assert done.stderr.strip().splitlines() == [missing]


def test_help_lists_commands():
    done = _search("--help", timeout=120)
    assert done.returncode == 0
    for command in ("run", "resume", "export", "space", "build"):
        assert command in done.stdout


@pytest.mark.parametrize("command", ["run", "resume", "export", "validate-proxy", "report", "dashboard", "demo", "space", "build"])
def test_every_commands_help_prints(command, capsys):
    """argparse formats help with %: a declared help text holding a literal one (a "95% interval") must not break it."""
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0 and "usage: python -m search " + command in capsys.readouterr().out


def test_validate_proxy_trains_candidates_in_full(finished_search, capsys):
    study_dir, _ = finished_search
    assert main(["validate-proxy", str(study_dir), "--k", "1"]) == 0
    result = study_of(study_dir).user_attrs["proxy_validation"]
    assert result["k"] == 1 and 1 <= len(result["rows"]) <= 2
    assert all(row["status"] == "complete" for row in result["rows"])
    assert len(list((study_dir / "validate").glob("*/weights/best.pt"))) == len(result["rows"])
    [searched] = result["budgets"]
    assert searched["searched"] and searched["n"] == len(result["rows"])
    study = study_of(study_dir)
    for row in result["rows"]:  # the search's own proxy scores, not new runs
        assert row["proxy"] == {searched["label"]: study.trials[row["trial"]].value}
    full_runs = {p: p.stat().st_mtime for p in (study_dir / "validate").glob("*/record.json")}

    # another proxy budget: the same candidates at 1 epoch; a second full seed each; the first
    # seed's full runs are reused, not repeated
    assert main(["validate-proxy", str(study_dir), "--k", "1", "--proxy-epochs", "1", "--full-seeds", "2"]) == 0
    again = study_of(study_dir).user_attrs["proxy_validation"]
    cheap, own = again["budgets"]  # cheapest first
    assert not cheap["searched"] and cheap["budget"]["epochs"] == 1 and own["label"] == searched["label"] and own["searched"]
    for row, first in zip(again["rows"], result["rows"]):
        assert len(row["full_seeds"]) == 2 and row["full_seeds"][0] == first["full"]
        assert row["full"] == pytest.approx(sum(row["full_seeds"]) / 2)
    assert len(list((study_dir / "validate").glob("*-seed*/weights/best.pt"))) == len(again["rows"])
    assert [row["trial"] for row in again["rows"]] == [row["trial"] for row in result["rows"]]
    assert all(set(row["proxy"]) == {cheap["label"], own["label"]} for row in again["rows"])
    runs = list((study_dir / "validate").glob("proxy-1ep-*/*/metrics.json"))
    assert len(runs) == len(again["rows"])
    assert {p: p.stat().st_mtime for p in full_runs} == full_runs
    assert f"Spearman proxy ({cheap['label']}) vs full" in capsys.readouterr().out
    assert main(["validate-proxy", str(study_dir), "--proxy-fraction", "1.5"]) == 2
    assert "--proxy-fraction must be in (0, 1], got 1.5" in capsys.readouterr().err


def test_spearman_interval_and_chance():
    from search.final.proxy_check import spearman_interval, spearman_p

    low, high = spearman_interval(0.8, 12)
    assert abs(low - 0.41) < 0.03 and abs(high - 0.94) < 0.02  # Fisher z: about [0.41, 0.94] for n = 12
    assert spearman_interval(0.5, 5) is None and spearman_interval(1.0, 20) is None
    assert spearman_p([1, 2, 3, 4], [10, 20, 30, 40]) == 1 / 24  # one ordering of 24 ranks perfectly
    assert spearman_p([1, 2, 3, 4], [40, 30, 20, 10]) == 1.0


def _moved(study_dir: Path, tmp_path: Path) -> Path:
    """A copy of ``study_dir`` moved away from where it was made: its first place no longer exists."""
    first, moved = tmp_path / "first" / study_dir.name, tmp_path / "elsewhere" / study_dir.name
    shutil.copytree(study_dir, first)
    shutil.move(first, moved)
    shutil.rmtree(tmp_path / "first")
    return moved


def _mtimes(folder: Path) -> dict[Path, int]:
    """Modification times (ns) of every training's results.csv and weights under ``folder``."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.name == "results.csv" or p.suffix == ".pt"}


def test_a_moved_study_resumes_in_its_new_folder(finished_search, learnable_data, tmp_path, capsys):
    """After the final step (and validate-proxy): resume, run again, export, report and validate-proxy in
    the new place retrain nothing and fail nothing."""
    study_dir, _ = finished_search
    moved = _moved(study_dir, tmp_path)
    before, trained = (study_dir / "study.db").stat().st_mtime_ns, _mtimes(moved)
    assert main(["resume", str(moved), "--quiet"]) == 0  # everything is done: reuses trials, confirmation and final
    assert f"study folder: {moved}" in capsys.readouterr().out
    assert (study_dir / "study.db").stat().st_mtime_ns == before  # the original was not touched
    argv = ["run", "--data", str(learnable_data), "--out", str(moved.parent), "--study", "e2e", "--trials", "6",
            "--pruner", "median", "--confirm-top", "1", "--confirm-budget", "6", *TINY]
    assert main(argv) == 0
    assert main(["export", str(moved), "-o", str(tmp_path / "best.yaml")]) == 0 and (tmp_path / "best.yaml").is_file()
    assert main(["report", str(moved)]) == 0 and (moved / "report.md").is_file()
    assert main(["validate-proxy", str(moved), "--k", "1", "--proxy-epochs", "1", "--full-seeds", "2"]) == 0
    assert {path: _mtimes(moved).get(path) for path in trained} == trained  # nothing trained again
    study = study_of(moved)
    assert not [t.number for t in study.trials if t.state == TrialState.FAIL]
    assert study.user_attrs["final"]["final"]["weights"] == "final/weights/best.pt"
    trained_in = {t.number: t.user_attrs["dir"] for t in study.trials if "dir" in t.user_attrs}  # a twin's: its original's
    assert trained_in and all(d == f"trials/{study.trials[n].user_attrs.get('duplicate_of', n)}" for n, d in trained_in.items())


def test_a_study_whose_storage_was_lost_is_refused_not_overwritten(finished_search, tmp_path, capsys):
    study_dir, _ = finished_search
    copy = tmp_path / "e2e"
    shutil.copytree(study_dir, copy)
    trained = _mtimes(copy)
    (copy / "study.db").unlink()
    err = one_line_error(["resume", str(copy), "--quiet"], capsys)
    assert "holds trials 0.." in err and "that its storage" in err and "does not know (0 trials)" in err and "new --study name" in err
    (copy / "study.db").write_bytes(b"")  # truncated to 0 bytes
    assert "does not know (0 trials)" in one_line_error(["resume", str(copy), "--quiet"], capsys)
    assert _mtimes(copy) == trained


def test_a_dataset_changed_between_runs_is_refused_not_mixed(learnable_data, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(learnable_data.parent, data)
    spec = yaml.safe_load((data / "data.yaml").read_text())
    (data / "data.yaml").write_text(yaml.safe_dump({**spec, "path": str(data)}))
    argv = ["run", "--data", str(data / "data.yaml"), "--out", str(tmp_path), "--study", "d", "--trials", "1", "--no-final",
            "--proxy-epochs", "1", *TRAIN]
    assert main(argv) == 0
    image = next((data / "images" / "train").iterdir())
    shutil.copy(image, image.with_name(f"extra{image.suffix}"))  # an image added to train
    shutil.copy(data / "labels" / "train" / f"{image.stem}.txt", data / "labels" / "train" / "extra.txt")
    err = one_line_error([*argv, "--trials", "2"], capsys)
    assert "changed since this study's 1 trials were scored on it" in err and "start a new --study" in err
    assert len(study_of(tmp_path / "d").trials) == 1


def test_two_workers_started_together_with_other_budgets_do_not_share_a_study(toy_data, tmp_path, monkeypatch):
    """Two workers on one new study, one with 1-epoch and one with 2-epoch proxies, the second checked
    while the first is between its own check and recording its options: exactly one is refused."""
    import threading

    from search.config import RunConfig
    from search.study import start as start_module

    configs = [RunConfig(data=str(toy_data), out=str(tmp_path), study="w", proxy_imgsz=64, proxy_epochs=epochs).resolved()
               for epochs in (1, 2)]
    checked, outcomes = threading.Event(), {}
    original = start_module.check_same_data

    def check_then_let_the_other_in(study, trials, config, content):  # the first worker waits here for the second's check
        if config is configs[0]:
            threading.Thread(target=start, args=(configs[1],)).start()
            checked.wait(timeout=5)  # the second passes its check (the race), or is held by the study's lock
        else:
            checked.set()
        original(study, trials, config, content)

    def start(config):
        try:
            start_module.start_search(config)
            outcomes[config.proxy_epochs] = "ran"
        except ValueError as e:
            outcomes[config.proxy_epochs] = str(e)

    monkeypatch.setattr(start_module, "check_same_data", check_then_let_the_other_in)
    start(configs[0])
    deadline = time.monotonic() + 60
    while len(outcomes) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert outcomes[1] == "ran" and "was searched with other settings (proxy_epochs 1 -> 2)" in outcomes[2], outcomes


def test_nothing_is_written_beside_the_users_data(learnable_data, tmp_path):
    """A search with its final training on a read-only dataset folder: it runs, and the folder is as it
    was (Ultralytics' label caches go into the study). Files are compared too: root may write anyway."""
    data = tmp_path / "data"
    shutil.copytree(learnable_data.parent, data)
    spec = yaml.safe_load((data / "data.yaml").read_text())
    (data / "data.yaml").write_text(yaml.safe_dump({**spec, "path": str(data)}))
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    folders = [data, *(p for p in data.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        argv = ["run", "--data", str(data / "data.yaml"), "--out", str(tmp_path / "out"), "--study", "r", "--trials", "1",
                "--confirm-top", "0", *TINY, "--proxy-epochs", "1", "--final-epochs", "1"]
        assert main(argv) == 0
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == before
    assert (tmp_path / "out" / "r" / "data" / "labels" / "train.cache").is_file()


def test_a_study_moved_mid_search_goes_on_in_its_new_folder(learnable_data, tmp_path, capsys):
    """Moved with trials still to run: the new trials read the moved proxy data and complete."""
    argv = ["run", "--data", str(learnable_data), "--out", str(tmp_path), "--study", "m", "--trials", "1", "--no-final",
            "--proxy-epochs", "1", *TRAIN]
    assert main(argv) == 0
    moved = tmp_path / "elsewhere" / "m"
    shutil.move(tmp_path / "m", moved)
    assert main(["resume", str(moved), "--trials", "2", "--quiet"]) == 0
    study = study_of(moved)
    assert [t.state for t in study.trials if "duplicate_of" not in t.user_attrs] == [TrialState.COMPLETE] * 2
    assert "path" not in yaml.safe_load((moved / "proxy" / "data.yaml").read_text())  # found beside its yaml


def test_an_edited_or_broken_run_yaml_is_one_line(finished_search, tmp_path, capsys):
    study_dir, _ = finished_search
    copy = tmp_path / "e2e"
    shutil.copytree(study_dir, copy)
    config = yaml.safe_load((copy / "run.yaml").read_text())
    (copy / "run.yaml").write_text(yaml.safe_dump({**config, "proxy_epochs": 9}))
    assert "was searched with other settings (proxy_epochs 6 -> 9)" in one_line_error(["resume", str(copy), "--quiet"], capsys)
    (copy / "run.yaml").write_text(yaml.safe_dump({**config, "proxy_epochs": "six"}))
    assert "'proxy_epochs: 'six'' should be of type int" in one_line_error(["resume", str(copy)], capsys)
    for text in ("data: [oops\n", ""):
        (copy / "run.yaml").write_text(text)
        assert "restore the file the search wrote" in one_line_error(["resume", str(copy)], capsys)


def test_an_image_size_ultralytics_would_change_is_refused(learnable_data, tmp_path, capsys):
    err = one_line_error(["run", "--data", str(learnable_data), "--out", str(tmp_path), "--proxy-imgsz", "33", "--quiet"], capsys)
    assert "--proxy-imgsz 33 is not a multiple of 32 (Ultralytics would train at 64); give 64" in err


def test_ctrl_c_names_the_study_folder(tmp_path, monkeypatch, capsys):
    """The interrupt message names the study folder to resume, not a placeholder (issue 29)."""
    import search.commands
    from search.cli import interrupted_text
    from trainers.data import make_toy_dataset

    def pressed(*_):
        raise KeyboardInterrupt

    data = make_toy_dataset(tmp_path / "toy", n_train=2, n_val=2, imgsz=32)
    monkeypatch.setattr(search.commands, "_search", pressed)  # Ctrl-C as the search starts
    assert main(["run", "--data", str(data), "--out", str(tmp_path / "out dir"), "--study", "c", "--quiet"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"interrupted: every finished trial and run is kept in the study; run the same command again (or " \
                  f"`python -m search resume '{tmp_path / 'out dir' / 'c'}'`) to go on where it stopped"  # quoted: a space
    assert "<study folder>" not in err and "resume" not in interrupted_text(None)


def test_ctrl_c_is_one_line_and_resumable(learnable_data, tmp_path):
    args = ["run", "--data", str(learnable_data), "--out", str(tmp_path), "--study", "c", "--trials", "3", "--no-final", *TINY]
    process = subprocess.Popen([sys.executable, "-m", "search", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:  # wait for a trial in training
        time.sleep(1)
        if (tmp_path / "c" / "run.yaml").is_file() and any(t.state == TrialState.RUNNING for t in study_of(tmp_path / "c").get_trials()):
            break
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: every finished trial and run is kept")
    assert f"(or `python -m search resume {tmp_path / 'c'}`)" in err.strip().splitlines()[-1]  # the real folder
    done = _search(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(interrupted_numbers(study_of(tmp_path / "c").get_trials())) == 1


def test_sigterm_is_one_line_exit_143_and_keeps_finished_trials(toy_data, tmp_path):
    """SIGTERM, what a cluster scheduler sends, once the first trial has finished: one line naming the way on, exit
    143 (128 + 15), and the finished trial kept in the study (issue 34). 1-epoch proxies keep it short."""
    args = ["run", "--data", str(toy_data), "--out", str(tmp_path), "--study", "t", "--trials", "3", "--no-final", *TRAIN,
            "--proxy-epochs", "1"]
    process = subprocess.Popen([sys.executable, "-m", "search", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:  # wait for the second trial in training
        time.sleep(0.5)
        if (tmp_path / "t" / "run.yaml").is_file() and any(t.number > 0 and t.state == TrialState.RUNNING
                                                           for t in study_of(tmp_path / "t").get_trials()):
            break
    assert process.poll() is None, "the run ended before it could be terminated"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("terminated (SIGTERM): every finished trial and run is kept")
    assert f"resume {tmp_path / 't'}" in err.strip().splitlines()[-1]
    assert study_of(tmp_path / "t").trials[0].state == TrialState.COMPLETE


# README's Python example with the end-to-end test's options in place of its full-size ones.
README_CALL = 'search.run(data="mydata.yaml", model="yolov8n.pt", trials=100)'
TINY_CALL = ("search.run(data=DATA, out=OUT, study='e2e', trials=6, pruner='median', confirm_top=1, confirm_budget=6, "
             "proxy_epochs=6, final_epochs=3, final_imgsz=64, proxy_imgsz=64, proxy_batch=4, device='cpu', "
             "loader_workers=0, quiet=True, train_args={'optimizer': 'AdamW', 'lr0': 0.005, 'mosaic': 0, 'warmup_epochs': 0})")


def test_the_python_call_decides_as_the_command_line_does(finished_search, learnable_data, tmp_path, capsys):
    """README's example, run with the end-to-end test's options: search.run returns the decision, placement and
    leaderboard the command line reached on the same seed; search.load reads the same Result from a moved study."""
    import search
    from search.final.decision import Decision
    from spaces.tasks import TASKS

    study_dir, _ = finished_search
    text = (ROOT / "README.md").read_text()
    example = text.split("## From Python")[1].split("```python\n")[1].split("```")[0]
    assert README_CALL in example
    scope = {"DATA": str(learnable_data), "OUT": str(tmp_path / "api")}
    exec(example.replace(README_CALL, TINY_CALL), scope)  # noqa: S102 - README's own example
    result, cli = scope["result"], Decision.of_study(study_of(study_dir), TASKS["detect"].metric_names)
    assert "Decided: " in capsys.readouterr().out and result.study == tmp_path / "api" / "e2e"
    assert result.placement == ("" if cli.keeps_baseline else cli.placement_str) and result.verdict == cli.verdict
    assert result.improved == (cli.confirmation.winner is not None) and result.best_pt.is_file()
    assert set(result.deployment) == {"onnx", "torchscript"} and result.best_yaml.is_file()
    from search.api import load

    expected = load(study_dir).leaderboard.drop(columns="wall_time_s")
    assert result.leaderboard.drop(columns="wall_time_s").equals(expected), (result.leaderboard, expected)
    moved = _moved(result.study, tmp_path / "elsewhere")
    again = search.load(moved)
    assert again.study == moved and again.verdict == result.verdict and again.leaderboard.equals(result.leaderboard)


def test_bad_python_input_is_a_search_error_with_the_command_lines_line(learnable_data, tmp_path, capsys):
    import search

    line = one_line_error(["run", "--data", str(learnable_data), "--out", str(tmp_path), "--trials", "0"], capsys)
    with pytest.raises(search.SearchError) as raised:
        search.run(data=str(learnable_data), out=str(tmp_path), trials=0)
    assert f"error: {raised.value}" == line
    with pytest.raises(search.SearchError, match="trails: not an option of search.run; did you mean trials"):
        search.run(data=str(learnable_data), trails=5)
    with pytest.raises(search.SearchError, match="trials='5': give an int"):
        search.run(data=str(learnable_data), trials="5")
    with pytest.raises(search.SearchError, match="holds no study"):
        search.load(tmp_path / "nothing")


def _quick_start() -> list[list[str]]:
    """README's quick-start commands (docs/index.md shows the same), as argument lists after `python -m search`."""
    import shlex

    block = (ROOT / "README.md").read_text().split("## Quick start")[1].split("```bash\n")[1].split("```")[0]
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    assert all(c[:3] == [".venv/bin/python", "-m", "search"] for c in commands), commands
    assert block in (ROOT / "docs" / "index.md").read_text()  # the site's home page shows the same commands
    return [c[3:] for c in commands]


def test_the_quick_start_commands_are_the_tools_own(capsys):
    """Each quick-start command parses as written (the slow variant below runs each on generated data)."""
    from search.cli import _parser

    commands = _quick_start()
    assert [c[0] for c in commands] == ["demo", "run", "dashboard"]
    for command in commands:
        _parser().parse_args(command)


@pytest.mark.slow
def test_the_quick_start_commands_run_on_generated_data(learnable_data, tmp_path):
    """demo (2 trials), run on the generated set from a checkpoint made here (the tiny budget), and the dashboard of
    the study it made, answering on its port: README's commands with only the data, the output and the budget
    substituted."""
    from ultralytics import YOLO

    base = YOLO("yolov8n.yaml")
    base.save(tmp_path / "yolov8n.pt")
    demo, run, dashboard = _quick_start()
    assert _search(*demo, "--trials", "2", "--out", str(tmp_path / "demo"), "--quiet").returncode == 0
    run = [str(learnable_data) if a == "mydata.yaml" else str(tmp_path / a) if a == "yolov8n.pt" else a for a in run]
    run = [a for a in run if a not in ("--trials", "100")] + ["--trials", "3", "--out", str(tmp_path), "--study", "q", *TINY]
    done = _search(*run)
    assert done.returncode == 0, done.stderr[-3000:]
    from test_report import dashboard_studies, free_port

    port = free_port()
    args = [a.replace("results/<study>", str(tmp_path / "q")) for a in dashboard] + ["--port", str(port)]
    server = subprocess.Popen([sys.executable, "-m", "search", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert [s["study_name"] for s in dashboard_studies(server, port, 60)] == ["q"]
    finally:
        server.terminate()
        server.wait(timeout=30)
