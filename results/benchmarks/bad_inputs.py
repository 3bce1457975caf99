"""Bad inputs and faults, tried against the command line as a new user would, on generated data.

Each case runs `python -m search ...` in a fresh folder and records the exit code, how many lines
it wrote to stderr, its last line, and whether anything already computed was lost (trials of the
study before and after; "-" where nothing had been computed yet). Goal: every case either works
(exit 0) or stops with exit 2 (130 for Ctrl-C) and one line naming the problem and the fix, and no
case loses a trial.

Run: python results/benchmarks/bad_inputs.py [--work /tmp/bad-inputs]   (writes bad_inputs.md)
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import yaml
from machine import describe_machine, publish

from trainers.data import make_toy_dataset

FAST = ["--trials", "2", "--no-final", "--proxy-epochs", "1", "--proxy-imgsz", "32", "--proxy-batch", "4",
        "--device", "cpu", "--loader-workers", "0", "--quiet"]  # fmt: skip


def cli(*args: str, cwd: Path) -> tuple[int, list[str]]:
    """Run the command line; its exit code and its messages on stderr."""
    done = subprocess.run([sys.executable, "-m", "search", *args], cwd=cwd, capture_output=True, text=True)
    return done.returncode, _messages(done.stderr)


def _messages(stderr: str) -> list[str]:
    """Lines of stderr that are messages, not progress bars (tqdm: "[00:03<00:06", cursor-up codes)."""
    return [line for line in stderr.splitlines() if line.strip(" \x1b[A") and not re.search(r"\[\d\d:\d\d", line)]


def trials(study: Path) -> int:
    """Trials in a study's SQLite file (0 when there is none)."""
    db = study / "study.db"
    if not db.is_file():
        return 0
    with closing(sqlite3.connect(db)) as connection:
        return connection.execute("select count(*) from trials").fetchone()[0]


def _labels(data: Path, text: str, split: str = "train", share: float = 1.0) -> None:
    files = sorted((data.parent / "labels" / split).iterdir())
    for label in files[: max(1, round(len(files) * share))]:
        label.write_text(text)


def _space(folder: Path, spec: dict) -> str:
    (folder / "space.yaml").write_text(yaml.safe_dump(spec))
    return str(folder / "space.yaml")


def _edited_study(folder: Path, data: Path, edit: Callable[[Path], None], *command: str) -> tuple[int, list[str], str]:
    """Run a tiny study, apply ``edit`` to its run.yaml, run ``command``; trials before -> after."""
    cli("run", "--data", str(data), "--out", "out", "--study", "s", *FAST, cwd=folder)
    study = folder / "out" / "s"
    before = trials(study)
    edit(study / "run.yaml")
    code, lines = cli(*command, str(study), cwd=folder)
    return code, lines, f"{before} -> {trials(study)}"


def _ctrl_c(folder: Path, data: Path) -> tuple[int, list[str], str]:
    """Ctrl-C during the second trial, then `resume`: the first trial must not be trained again."""
    command = [sys.executable, "-m", "search", "run", "--data", str(data), "--out", "out", "--study", "s",
               *FAST[:-1], "--trials", "3"]  # fmt: skip
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    study = folder / "out" / "s"
    while not (study / "trials" / "1").exists() and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    err = _messages(process.communicate()[1])
    with closing(sqlite3.connect(study / "study.db")) as connection:
        kept = connection.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    code, _ = cli("resume", str(study), cwd=folder)
    retrained = (study / "trials" / "0" / "log").stat().st_mtime > (study / "trials" / "1").stat().st_mtime
    return process.returncode, err, f"{kept} complete kept; resume exit {code}, trial 0 {'retrained' if retrained else 'not retrained'}"


def _full_disk(folder: Path, data: Path) -> tuple[int, list[str], str]:
    """The study on a 3 MB tmpfs (root only), then the same command once it is 200 MB."""
    disk = folder / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True).returncode:
        return -1, ["(not run: mounting a tmpfs needs root)"], "-"
    try:
        command = ("run", "--data", str(data), "--out", str(disk), "--study", "s", *FAST)
        code, lines = cli(*command, cwd=folder)
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        again, _ = cli(*command, cwd=folder)
        return code, lines, f"again with space: exit {again}, {trials(disk / 's')} trials (1 interrupted, retried)"
    finally:
        subprocess.run(["umount", "--lazy", str(disk)])


def cases(data: Path) -> dict[str, Callable[[Path], tuple]]:
    """Case name -> a function of a fresh folder returning (exit code, stderr lines[, kept])."""
    run = ("run", "--data", str(data), "--out", "out", *FAST)
    return {
        "data.yaml not found": lambda f: cli("run", "--data", "missing.yaml", *FAST, cwd=f),
        "data.yaml with `path: .`, started from another folder": lambda f: cli(*run, cwd=f),
        "labels outside [0, 1] in every train image": lambda f: (_labels(data, "0 0.5 0.5 1.5 0.2\n"), cli(*run, cwd=f))[1],
        "val split without objects": lambda f: (_labels(data, "", "val"), cli(*run, cwd=f))[1],
        "class id outside names": lambda f: (_labels(data, "7 0.5 0.5 0.2 0.2\n", share=0.1), cli(*run, cwd=f))[1],
        "--weights is a text file": lambda f: ((f / "w.pt").write_text("hello"), cli(*run, "--weights", "w.pt", cwd=f))[1],
        "--weights is a YAML renamed .pt": lambda f: ((f / "w.pt").write_text("nc: 2\n"), cli(*run, "--weights", "w.pt", cwd=f))[1],
        "--proxy-imgsz 33": lambda f: cli(*run, "--proxy-imgsz", "33", cwd=f),
        "--trials 0": lambda f: cli(*run, "--trials", "0", cwd=f),
        "space `types: []`": lambda f: cli(*run, "--space", _space(f, {"types": []}), cwd=f),
        "space `types: se` (not a list)": lambda f: cli(*run, "--space", _space(f, {"types": "se"}), cwd=f),
        "space with an unknown type": lambda f: cli(*run, "--space", _space(f, {"types": ["nope"]}), cwd=f),
        "storage read-only (SQLite opened read-only)": lambda f: (
            cli("run", "--data", str(data), "--out", "out", "--study", "s", *FAST, cwd=f),
            cli(*run, "--study", "t", "--storage", f"sqlite:///file:{f / 'out' / 's' / 'study.db'}?mode=ro&uri=true", cwd=f))[1],  # fmt: skip
        "storage with a password, unreachable": lambda f: cli(*run, "--storage", "postgresql://me:s3cret@127.0.0.1:1/db", cwd=f),
        "storage driver not installed (mysql+pymysql)": lambda f: cli(*run, "--storage", "mysql+pymysql://me@127.0.0.1:1/db", cwd=f),
        "resume after run.yaml's proxy_epochs was edited": lambda f: _edited_study(
            f, data, lambda p: p.write_text(p.read_text().replace("proxy_epochs: 1", "proxy_epochs: 3")), "resume"),
        "resume with run.yaml broken": lambda f: _edited_study(f, data, lambda p: p.write_text("trials: [\n"), "resume"),
        "resume with run.yaml empty": lambda f: _edited_study(f, data, lambda p: p.write_text(""), "resume"),
        "resume of a study folder that does not exist": lambda f: cli("resume", "nowhere", cwd=f),
        "Ctrl-C during a trial, then resume": lambda f: _ctrl_c(f, data),
        "disk full during the first trial, then the same command": lambda f: _full_disk(f, data),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/bad-inputs")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    rows, bad = [], 0
    for n, (name, case) in enumerate(cases(work / "data" / "toy" / "data.yaml").items()):
        folder = work / f"case{n}"
        folder.mkdir(parents=True)
        shutil.rmtree(work / "data", ignore_errors=True)  # every case starts from intact data
        data = make_toy_dataset(work / "data" / "toy", n_train=8, n_val=4, imgsz=32)
        spec = yaml.safe_load(data.read_text())
        data.write_text(yaml.safe_dump({**spec, "path": "."}))  # relative, as many users write it
        code, lines, *kept = case(folder)
        good = code == 0 or (code in (2, 130) and len(lines) == 1 and "Traceback" not in "".join(lines))
        bad += not good
        last = (lines[-1] if lines else "").replace("|", "\\|").replace(str(work), "...")
        rows.append(f"| {name} | {code} | {len(lines)} | {last[:220]} | {kept[0] if kept else '-'} | {'yes' if good else 'NO'} |")
        print(rows[-1], flush=True)
    publish(__file__, "\n".join([
        "# Bad inputs and faults against the command line", "", describe_machine(),
        "- command: `python results/benchmarks/bad_inputs.py`; generated data (8 + 4 images, 32 px), 2 trials of 1 epoch",
        "- exit: the exit code; lines: lines on stderr (progress bars left out); kept: trials of the study before -> after, "
        "'-' where nothing was computed yet; ok: exit 0, or exit 2 / 130 with one line and no traceback", "",
        "| case | exit | lines | last line on stderr | kept | ok |", "| --- | --- | --- | --- | --- | --- |", *rows, "",
        f"{len(rows) - bad} of {len(rows)} cases as intended.", "",
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
