"""Study integrity: only dead trials are recovered (a live search beside the command is left alone),
by pid on this machine and by Optuna's heartbeat across machines; read-only commands change nothing."""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from helpers import one_line_error
from search.config import RunConfig
from search.study import storage as storage_module
from search.study.records import count_trials, interrupted_numbers
from search.study.storage import WORKER, open_study, recover_dead_trials


def _config(tmp_path) -> RunConfig:
    (tmp_path / "s").mkdir(exist_ok=True)
    return RunConfig(data="d.yaml", out=str(tmp_path), study="s").resolved()


def _running(study: optuna.Study, worker: str | None) -> optuna.trial.Trial:
    trial = study.ask()
    if worker is not None:
        trial.set_user_attr("worker", worker)
    return trial


def test_a_live_owner_keeps_its_trial_a_dead_one_is_retried(tmp_path):
    study = open_study(_config(tmp_path))
    mine = _running(study, WORKER)  # this process: alive
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = _running(study, f"{WORKER.rpartition(':')[0]}:{child.pid}")  # a finished process of this machine
    elsewhere = _running(study, "another-host:1")  # another machine: only its heartbeat decides
    open_study(_config(tmp_path))  # a read-only open (export, report) changes nothing
    assert all(t.state == TrialState.RUNNING for t in study.get_trials())
    recover_dead_trials(study)
    states = {t.number: t.state for t in study.get_trials()}
    assert states[mine.number] == TrialState.RUNNING and states[elsewhere.number] == TrialState.RUNNING
    assert states[dead.number] == TrialState.FAIL
    assert interrupted_numbers(study.get_trials()) == {dead.number}
    retry = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING
    assert count_trials(study.get_trials()) == 0  # the dead trial does not count


def test_a_trial_killed_while_its_placement_was_chosen_is_replaced_by_a_fresh_one(tmp_path):
    """Killed between two suggestions (only ``modules`` chosen, no worker yet): nothing was trained, so
    the retry is sampled in full instead of being pinned to a half-chosen placement; a trial killed in
    training is retried with its placement."""
    study = open_study(_config(tmp_path))
    half = study.ask()
    half.suggest_int("modules", 0, 4)  # the process died here, before it named itself or its placement
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    training = _running(study, f"{WORKER.rpartition(':')[0]}:{child.pid}")  # a process that has ended
    training.suggest_int("modules", 0, 4)
    training.set_user_attr("placement_key", "k")
    recover_dead_trials(study)
    retries = {t.user_attrs["retry_of"]: t for t in study.get_trials() if "retry_of" in t.user_attrs}
    assert set(retries) == {half.number, training.number}
    assert retries[half.number].system_attrs["fixed_params"] == {}
    assert retries[training.number].system_attrs["fixed_params"] == {"modules": training.params["modules"]}


def test_a_dead_trial_another_process_recovered_first_is_queued_once(tmp_path, monkeypatch):
    """Two processes saw the same dead trial RUNNING; the second to fail it finds it failed already
    (Optuna refuses to tell a finished trial) and queues no second retry."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    study = open_study(_config(tmp_path))
    dead = _running(study, f"{WORKER.rpartition(':')[0]}:{child.pid}")
    seen = study.get_trials(states=(TrialState.RUNNING,))  # what this process read, a moment ago
    recover_dead_trials(open_study(_config(tmp_path)))  # the other process, first
    monkeypatch.setattr(study, "get_trials", lambda *args, **kwargs: seen)
    recover_dead_trials(study)
    monkeypatch.undo()
    assert [t.user_attrs.get("retry_of") for t in study.get_trials()] == [None, dead.number]


def test_workers_take_trials_one_at_a_time_and_name_themselves_at_once(tmp_path):
    """SQLite cannot lock the row Optuna reads before it marks a queued trial RUNNING, so two workers
    could take the same queued trial; and a trial not yet named would look dead to a worker starting
    then. `ask` takes the study's lock: while another worker holds it, no trial is taken, and the one
    taken after carries its worker's name."""
    config = _config(tmp_path)
    study = open_study(config)
    study.enqueue_trial({"modules": 0})
    code = ("from search.config import RunConfig; from search.study.storage import ask, open_study; "
            f"config = RunConfig(data='d.yaml', out={str(tmp_path)!r}, study='s').resolved(); ask(open_study(config), config)")
    with storage_module.study_lock(config):  # another worker, asking or recovering
        other = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent.parent)
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=5)
        assert [t.state for t in study.get_trials()] == [TrialState.WAITING]
    assert other.wait(timeout=120) == 0
    [taken] = study.get_trials()
    assert taken.state == TrialState.RUNNING and taken.user_attrs["worker"] == f"{socket.gethostname()}:{other.pid}"


def test_a_worker_beats_for_the_trials_it_holds_and_no_other(tmp_path):
    """A search opening the study records heartbeats (Optuna's ``trial_heartbeats`` table) for this
    worker's RUNNING trial at once, and none for another worker's."""
    config = _config(tmp_path)
    study = open_study(config)
    mine, other = _running(study, WORKER), _running(study, "another-host:1")
    open_study(config, recover=True)  # starts this worker's heartbeat
    query = "SELECT trials.number FROM trial_heartbeats JOIN trials USING (trial_id)"
    deadline = time.monotonic() + 60
    with contextlib.closing(sqlite3.connect(config.study_dir / "study.db")) as db:
        while not (beating := {n for (n,) in db.execute(query)}) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert beating == {mine.number} and other.number not in beating


def test_a_silent_heartbeat_fails_the_trial_on_any_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(storage_module, "HEARTBEAT_S", 1)
    monkeypatch.setattr(storage_module, "GRACE_S", 1)
    study = open_study(_config(tmp_path))
    trial = _running(study, "another-host:1")
    study._storage.record_heartbeat(trial._trial_id)
    recover_dead_trials(study)
    assert study.get_trials()[0].state == TrialState.RUNNING  # heard from a moment ago
    time.sleep(2.5)
    recover_dead_trials(study)
    assert study.get_trials()[0].state == TrialState.FAIL
    assert interrupted_numbers(study.get_trials()) == {trial.number}


@contextlib.contextmanager
def _postgres(password: str | None = None):
    """A real PostgreSQL server (initdb, pg_ctl) on a free local port, with a database ``studies``, whose
    user ``searcher`` needs ``password`` when one is given; its URL (without the password). Skipped with
    the reason where the binaries or the driver are missing. As root it runs as ``nobody`` (postgres
    refuses root)."""
    pg_ctl = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))), None)
    if pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    psycopg2 = pytest.importorskip("psycopg2", reason="the [postgres] extra (psycopg2-binary) is not installed")
    pytest.importorskip("psycopg", reason="the [postgres] extra (psycopg) is not installed")
    user = {"user": "nobody"} if os.geteuid() == 0 else {}
    folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if user:
        shutil.chown(folder, "nobody")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = Path(pg_ctl).resolve().parent
    run = functools.partial(subprocess.run, check=True, capture_output=True, **user)
    auth = ["--auth=trust"]
    if password:
        (folder / "pw").write_text(password)
        auth = ["--auth=scram-sha-256", f"--pwfile={folder / 'pw'}"]
    run([str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "searcher", *auth])
    run([pg_ctl, "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "start",
         "-o", f"-p {port} -h 127.0.0.1 -k {folder}"])
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=port, user="searcher", password=password, dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE studies")
        connection.close()
        yield f"postgresql://searcher@127.0.0.1:{port}/studies"
    finally:
        run([pg_ctl, "-D", str(folder / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server for this module (`_postgres`) that trusts local connections."""
    with _postgres() as url:
        yield url


def test_a_storage_password_serves_the_whole_command_and_later_ones_ask_for_it(tmp_path, capsys, monkeypatch):
    """A search on a PostgreSQL storage with a password: the running command keeps it to the end (the
    report too); a later command without it says, in one line, the three ways to give it."""
    from helpers import TINY
    from search.cli import main
    from trainers.data import make_toy_dataset

    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))  # this machine's ~/.pgpass left out
    with _postgres(password="s3cret") as url:
        full = url.replace("searcher@", "searcher:s3cret@")
        data = make_toy_dataset(tmp_path / "toy", n_train=8, n_val=4, imgsz=64)
        argv = ["run", "--data", str(data), "--out", str(tmp_path), "--study", "pw", "--storage", full, "--trials", "1",
                "--confirm-top", "0", *TINY, "--proxy-epochs", "1", "--final-epochs", "1"]
        assert main(argv) == 0 and (tmp_path / "pw" / "report.md").is_file()
        capsys.readouterr()
        for command in (["report"], ["resume", "--quiet"], ["export"]):
            err = one_line_error([command[0], str(tmp_path / "pw"), *command[1:]], capsys)
            assert "needs its password: give the full URL with --storage, set PGPASSWORD, or add it to ~/.pgpass" in err, err
            assert "s3cret" not in err
        assert main(["report", str(tmp_path / "pw"), "--storage", full]) == 0
        monkeypatch.setenv("PGPASSWORD", "s3cret")
        assert main(["report", str(tmp_path / "pw")]) == 0


def test_the_loser_of_a_schema_creation_race_loads_the_winners_study(tmp_path, monkeypatch):
    """Two workers creating one new study.db at once: SQLite creates the schema table by table, so the
    loser's CREATE TABLE meets a table the winner made a moment ago (CI saw this once in 380 runs).
    Made deterministic: the winner has created everything, and the loser's "does the table exist?"
    check is answered "no" once, the moment before the race (a stand-in for the timing, not for SQLite)."""
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    winner = open_study(_config(tmp_path))
    winner.enqueue_trial({"x": 1})
    real, lied = SQLiteDialect.has_table, []

    def has_table_as_the_loser_saw_it(self, connection, table_name, *args, **kwargs):
        if not lied:
            lied.append(table_name)
            return False
        return real(self, connection, table_name, *args, **kwargs)

    monkeypatch.setattr(SQLiteDialect, "has_table", has_table_as_the_loser_saw_it)
    loser = open_study(_config(tmp_path))
    assert lied and len(loser.get_trials()) == 1  # the race happened and the loser loaded the winner's study


@pytest.mark.parametrize("server", ["sqlite", "postgresql"])
def test_two_workers_share_one_study(server, tmp_path, request):
    """Two `run` processes on one study (the default SQLite file, or a real PostgreSQL server): exactly
    --trials counted, no placement trained twice, and one confirmation, final training and export."""
    from helpers import TINY  # the toy budget the end-to-end tests use
    from trainers.data import make_toy_dataset

    storage = request.getfixturevalue("postgres_url") if server == "postgresql" else None
    data = make_toy_dataset(tmp_path / "data", n_train=16, n_val=8, imgsz=64)
    args = [sys.executable, "-m", "search", "run", "--data", str(data), "--out", str(tmp_path), "--study", "shared",
            "--trials", "4", "--pruner", "none", "--confirm-top", "0", *TINY, *(["--storage", storage] if storage else [])]
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=900) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    study = optuna.load_study(study_name="shared", storage=storage or f"sqlite:///{tmp_path / 'shared' / 'study.db'}")
    assert count_trials(study.get_trials()) == 4
    trained = [t.user_attrs["placement_key"] for t in study.get_trials() if t.state.is_finished()
               and "duplicate_of" not in t.user_attrs and "infeasible" not in t.user_attrs]
    assert len(trained) == len(set(trained)) == 4
    assert sum("exported" in out for out, _ in outputs) >= 1 and (tmp_path / "shared" / "best.yaml").is_file()


def test_one_worker_finalizes_and_a_killed_ones_claim_is_free_again(tmp_path):
    """`final_claim` is True for one holder at a time, whether the other holder is another process or
    this one; a holder killed with SIGKILL (no cleanup of its own) leaves the claim free to take."""
    from search.final.training import final_claim

    config = _config(tmp_path)
    code = ("from search.config import RunConfig; from search.final.training import final_claim; "
            f"config = RunConfig(data='d.yaml', out={str(tmp_path)!r}, study='s').resolved()\n"
            "with final_claim(config) as mine:\n    print(mine, flush=True)\n    input()")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent.parent, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert select.select([holder.stdout], [], [], 120)[0], "the holder did not claim within 120 s"
        assert holder.stdout.readline() == "True\n"
        with final_claim(config) as mine:
            assert mine is False
    finally:
        holder.kill()  # SIGKILL
        holder.wait(timeout=60)
    with final_claim(config) as mine, final_claim(config) as again:
        assert (mine, again) == (True, False)
    with final_claim(config) as mine:
        assert mine is True  # released when the holder's block ended


def test_storage_password_is_never_saved_or_shown(tmp_path, capsys):
    from search.cli import main

    url = "postgresql://searcher:s3cret@127.0.0.1:1/studies"
    config = RunConfig(data="d.yaml", storage=url).resolved()
    config.save(tmp_path / "run.yaml")
    saved = (tmp_path / "run.yaml").read_text()
    assert "s3cret" not in saved and "postgresql://searcher@127.0.0.1:1/studies" in saved
    assert RunConfig.load(tmp_path / "run.yaml").public() == config.public()  # same study identity
    from trainers.data import make_toy_dataset

    data = make_toy_dataset(tmp_path / "toy", n_train=2, n_val=2, imgsz=32)
    assert main(["run", "--data", str(data), "--out", str(tmp_path), "--storage", url, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "s3cret" not in err and err.count("\n") == 1 and ("[postgres]" in err or "cannot be opened" in err)
    assert main(["run", "--data", str(data), "--out", str(tmp_path), "--storage", "mysql+pymysql://u:s3cret@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err  # PyMySQL is not a dependency: its absence is named in one line
    assert "s3cret" not in err and err.count("\n") == 1 and "driver that 'mysql+pymysql' names" in err


def test_a_read_only_storage_is_one_line(tmp_path, capsys):
    """A storage that cannot be written (here SQLite opened read-only, which binds root too) stops
    the run before any training, in one line, instead of a traceback."""
    from search.cli import main
    from trainers.data import make_toy_dataset

    db = tmp_path / "other.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}")
    data = make_toy_dataset(tmp_path / "toy", n_train=2, n_val=2, imgsz=32)
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert main(["run", "--data", str(data), "--out", str(tmp_path), "--storage", url, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is read-only; make it writable" in err


def test_a_full_disk_stops_the_search_in_one_line_and_loses_nothing(tmp_path):
    """A study on a real 3 MB tmpfs: the first trial's checkpoint fills it; the run stops with one
    line (exit 2), the trial's partial weights are removed, and once the disk is larger the same
    command finishes the study. Needs root and mount (skipped with the reason elsewhere)."""
    from helpers import TINY
    from trainers.data import make_toy_dataset

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)]).returncode:
        pytest.skip("mounting a small tmpfs needs root and mount permission")
    try:
        data = make_toy_dataset(tmp_path / "data", n_train=8, n_val=4, imgsz=32)
        command = [sys.executable, "-m", "search", "run", "--data", str(data), "--out", str(disk), "--study", "s",
                   "--trials", "2", "--no-final", *TINY, "--proxy-epochs", "1"]
        full = subprocess.run(command, capture_output=True, text=True)
        assert full.returncode == 2 and full.stderr.strip().startswith("error: no space left on the disk"), full.stderr[-2000:]
        assert "Traceback" not in full.stderr and not list(disk.glob("s/trials/*/weights/*.pt"))
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert count_trials(optuna.load_study(study_name="s", storage=f"sqlite:///{disk / 's' / 'study.db'}").get_trials()) == 2
    finally:
        subprocess.run(["umount", "--lazy", str(disk)])  # lazy: the SQLite file this process opened may still be held
