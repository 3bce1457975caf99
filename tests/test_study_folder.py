"""Every command on a study folder it cannot write, and on a damaged study.db (issue 34): one line and exit 2, or the
right result where a command only reads the study (export, report --out, the dashboard), and never a traceback.

How a folder is made read-only here: as root, whom file permissions do not stop (a chmod'ed folder stays writable
for root), the study folder is bind-mounted read-only over itself, so writes fail with EROFS as on a read-only share
or snapshot; as any other user its folders lose their write permission (chmod a-w, EACCES). A root that may not mount
skips with the reason."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_report import TRIALS, dashboard_studies, free_port, get_json, make_confirmed_study, stop

from helpers import one_line_error
from search.cli import main
from trainers.data import make_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A finished study as `run` leaves it (hand-made, no trainings: `test_report.make_confirmed_study`), in
    ``tmp_path/out/s``, on a toy set in ``tmp_path/toy``."""
    toy = make_toy_dataset(tmp_path / "toy", n_train=4, n_val=2, imgsz=32)
    (tmp_path / "out").mkdir()
    return make_confirmed_study(tmp_path / "out", toy)


def _run_again(study: Path) -> list[str]:
    """`run` with the options the study was made with (the same study again)."""
    return ["run", "--data", str(study.parent.parent / "toy" / "data.yaml"), "--out", str(study.parent), "--study", "s",
            "--no-final", "--quiet", "--device", "cpu"]


@contextmanager
def read_only(folder: Path):
    """``folder`` read-only for this process and its children while the block runs (see the module's docstring)."""
    if os.geteuid() != 0:
        folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        modes = {p: p.stat().st_mode for p in folders}
        for p in folders:
            p.chmod(0o555)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("as root, a read-only folder needs a read-only bind mount, and mount is not permitted here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode:
            pytest.skip("as root, a read-only folder needs a read-only bind mount, and remounting is not permitted here")
        yield
    finally:  # lazily: this process may still hold the study.db open (SQLAlchemy's pool)
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def _files(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _dashboard_answers(study: Path) -> dict:
    """Start `python -m search dashboard` on ``study``, wait for its API to list the study, stop it; the study's detail."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "search", "dashboard", str(study), "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        studies = dashboard_studies(proc, port, 60)
        assert [s["study_name"] for s in studies] == ["s"]
        return get_json(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")
    finally:
        stop(proc)
        output = proc.stdout.read()
        proc.stdout.close()
        assert "Traceback" not in output, output


def test_every_command_on_a_read_only_study(study: Path, tmp_path: Path, capsys):
    """Commands that write into the study say so in one line with the fix that exists for them (run: another --out;
    resume and validate-proxy: make it writable or copy it; report: --out); export, report --out and the dashboard
    only read it, and work. Nothing in the folder changes."""
    before = _files(study)
    with read_only(study):
        assert "is not writable; choose another --out" in one_line_error(_run_again(study), capsys)
        line = one_line_error(["resume", str(study)], capsys)
        assert "is read-only here" in line and "copy the folder to a writable place and resume the copy" in line
        assert "--out" not in line  # an option resume does not have
        assert "--k and --full-seeds must be at least 1" in one_line_error(["validate-proxy", str(study), "--k", "0"], capsys)
        line = one_line_error(["validate-proxy", str(study)], capsys)
        assert "is read-only here" in line and "validate-proxy the copy" in line
        assert "give the report a writable folder with --out DIR" in one_line_error(["report", str(study)], capsys)

        assert main(["report", str(study), "--out", str(tmp_path / "report")]) == 0
        assert "Traceback" not in capsys.readouterr().err
        assert {"report.md", "report.html", "trials.csv", "map_by_trial.png"} <= {p.name for p in (tmp_path / "report").iterdir()}
        assert "| 2 | backbone.4: cbam |" in (tmp_path / "report" / "report.md").read_text()
        assert main(["export", str(study), "-o", str(tmp_path / "best.yaml")]) == 0  # reads the storage, never opens it to write
        assert "placement: baseline" in (tmp_path / "best.yaml").read_text()
        assert main(["export", str(study), "--trial", "2", "-o", str(tmp_path / "t2.yaml")]) == 0
        assert "placement: backbone.4: cbam" in (tmp_path / "t2.yaml").read_text()
        assert "Traceback" not in capsys.readouterr().err
        assert "is read-only here; give -o a path in a writable folder" in one_line_error(
            ["export", str(study), "-o", str(study / "mine.yaml")], capsys
        )
        detail = _dashboard_answers(study)
        assert detail["name"] == "s" and len(detail["trials"]) == len(TRIALS)
    assert _files(study) == before


DAMAGES = {
    "random bytes": lambda data, rng: rng.randbytes(len(data)),
    "cut to half": lambda data, rng: data[: len(data) // 2],
    "SQLite header, then garbage": lambda data, rng: data[:100] + rng.randbytes(len(data) - 100),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_every_command_on_a_damaged_study_db_names_it_damaged(study: Path, damage: str, capsys):
    """A study.db SQLite cannot read is named as damaged, with what to do, by every command; not as a URL to check.
    Nothing writes over it."""
    db = study / "study.db"
    db.write_bytes(DAMAGES[damage](db.read_bytes(), random.Random(34)))
    damaged = db.read_bytes()
    commands = [["resume"], ["export", "-o", str(study.parent / "x.yaml")], ["report"], ["validate-proxy"],
                ["dashboard", "--port", str(free_port())]]
    for argv in [_run_again(study)] + [[c[0], str(study), *c[1:]] for c in commands]:
        line = one_line_error(argv, capsys)
        assert "is a damaged SQLite file" in line and "trials are intact; restore a copy" in line, (argv[0], line)
        assert "check the URL" not in line
    assert db.read_bytes() == damaged
