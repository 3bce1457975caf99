"""Bad inputs and faults, tried against the command line as a new user would, on generated data.

Each case runs `python -m search ...` in a fresh folder and records the exit code, how many lines
it wrote to stderr, its last line, and whether anything already computed was lost (trials of the
study before and after; "-" where nothing had been computed yet). Goal: every case either works
(exit 0) or stops with exit 2 (130 for Ctrl-C, 143 for SIGTERM) and one line naming the problem and the fix,
and no case loses a trial or overwrites what was computed.

Run: python results/benchmarks/bad_inputs.py [--work /tmp/bad-inputs]   (writes bad_inputs.md)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path

import yaml

from machine import describe_machine, publish
from trainers.data import make_toy_dataset

FAST = ["--trials", "2", "--no-final", "--proxy-epochs", "1", "--proxy-imgsz", "32", "--proxy-batch", "4",
        "--device", "cpu", "--loader-workers", "0", "--quiet"]


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


def _ctrl_c(folder: Path, data: Path, sig: int = signal.SIGINT) -> tuple[int, list[str], str]:
    """Ctrl-C (or ``sig``) during the second trial, then `resume`: the first trial must not be trained again."""
    command = [sys.executable, "-m", "search", "run", "--data", str(data), "--out", "out", "--study", "s",
               *FAST[:-1], "--trials", "3"]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    study = folder / "out" / "s"
    while not (study / "trials" / "1").exists() and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(sig)
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


def _spec(data: Path, **changes) -> None:
    """Rewrite ``data`` with ``changes`` to its keys."""
    data.write_text(yaml.safe_dump({**yaml.safe_load(data.read_text()), **changes}))


def _tiny_images(data: Path, split: str, count: int | None = None) -> None:
    """Replace ``count`` (default all) images of ``split`` with 1x1 pixel ones."""
    import cv2
    import numpy as np

    for image in sorted((data.parent / "images" / split).iterdir())[:count]:
        cv2.imwrite(str(image), np.zeros((1, 1, 3), np.uint8))


def _val_list(data: Path, missing: bool = False) -> None:
    """``val: lists/val.txt`` with ``./`` lines, relative to the list's folder (or naming images that do not exist)."""
    (data.parent / "lists").mkdir()
    images = sorted((data.parent / "images" / "val").iterdir())
    (data.parent / "lists" / "val.txt").write_text("".join(f"./{'gone-' if missing else '../images/val/'}{p.name}\n" for p in images))
    _spec(data, val="lists/val.txt")


def _cut_jpeg(data: Path) -> None:
    """One train image as a JPEG cut to half its bytes (the proxy can decode it, Ultralytics' check cannot)."""
    import cv2

    image = sorted((data.parent / "images" / "train").iterdir())[0]
    jpeg = image.with_suffix(".jpg")
    cv2.imwrite(str(jpeg), cv2.imread(str(image)))
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    image.unlink()


def _study_then(folder: Path, data: Path, change: Callable[[Path], None], *command: str, first: tuple = ()) -> tuple[int, list[str], str]:
    """Run a tiny study (1 of its 2 trials), apply ``change`` to its folder, run ``command`` (in the folder
    ``change`` returns, or the study's); trials before -> after, and how many of them failed."""
    cli("run", "--data", str(data), "--out", "out", "--study", "s", *FAST, "--trials", "1", *first, cwd=folder)
    study = folder / "out" / "s"
    before = trials(study)
    where = change(study) or study
    code, lines = cli(*command, cwd=folder) if command and command[0] == "run" else cli(*command, str(where), cwd=folder)
    with closing(sqlite3.connect(where / "study.db")) as connection:
        failed = connection.execute("select count(*) from trials where state = 'FAIL'").fetchone()[0]
    return code, lines, f"{before} -> {trials(where)}, {failed} failed"


def _warned(*args: str, cwd: Path) -> tuple[int, list[str], str]:
    """`cli`, with the run's console warning (stdout) in the kept column."""
    done = subprocess.run([sys.executable, "-m", "search", *args], cwd=cwd, capture_output=True, text=True)
    warning = next((line for line in done.stdout.splitlines() if line.startswith("warning:")), "no warning")
    return done.returncode, _messages(done.stderr), warning.replace(str(cwd.parent), "...")[:200]


def _added_image(data: Path) -> None:
    """A copy of the first train image and its labels added to the dataset under a new name."""
    image = sorted((data.parent / "images" / "train").iterdir())[0]
    shutil.copy(image, image.with_name(f"added{image.suffix}"))
    shutil.copy(data.parent / "labels" / "train" / f"{image.stem}.txt", data.parent / "labels" / "train" / "added.txt")


def _moved(study: Path) -> Path:
    moved = study.parent.parent / "moved" / study.name
    moved.parent.mkdir()
    shutil.move(study, moved)
    return moved


def _read_only_data(folder: Path, data: Path) -> tuple[int, list[str], str]:
    """A whole search, final training included, on a read-only dataset folder; its files before and after."""
    files = lambda: {p: p.stat().st_mtime_ns for p in data.parent.rglob("*")}  # noqa: E731
    before, folders = files(), [data.parent, *(p for p in data.parent.rglob("*") if p.is_dir())]
    for d in folders:
        d.chmod(0o555)
    try:
        code, lines = cli("run", "--data", str(data), "--out", "out", *FAST[:1], "1", "--confirm-top", "0", "--final-epochs",
                          "1", "--final-imgsz", "32", *FAST[3:], cwd=folder)
    finally:
        for d in folders:
            d.chmod(0o755)
    return code, lines, "dataset unchanged" if files() == before else "DATASET WRITTEN TO"


def _two_workers(folder: Path, data: Path) -> tuple[int, list[str], str]:
    """Two `run` processes started at the same moment on one new study, with 1- and 2-epoch proxies."""
    base = [sys.executable, "-m", "search", "run", "--data", str(data), "--out", "out", "--study", "s", *FAST]
    workers = [subprocess.Popen([*base, "--proxy-epochs", e], cwd=folder, stderr=subprocess.PIPE, text=True) for e in ("1", "2")]
    ended = [(w.wait(), _messages(w.stderr.read())) for w in workers]
    refused = max(ended, key=lambda e: e[0] != 0)  # the refused one (or the second when both ran)
    with closing(sqlite3.connect(folder / "out" / "s" / "study.db")) as connection:
        steps = {n for (n,) in connection.execute("select max(step) from trial_intermediate_values join trials using (trial_id) "
                                                   "group by trial_id")}
    return refused[0], refused[1], f"exits {sorted(e[0] for e in ended)}; epochs in the study: {sorted(steps)}"


def _last_epoch(folder: Path, data: Path) -> tuple[int, list[str], str]:
    """1-epoch proxies under the median pruner: a trial that trained its only epoch is complete."""
    code, lines = cli("run", "--data", str(data), "--out", "out", "--study", "s", *FAST, "--trials", "4", "--pruner", "median",
                      "--sampler", "random", cwd=folder)
    with closing(sqlite3.connect(folder / "out" / "s" / "study.db")) as connection:
        pruned = connection.execute("select count(*) from trials t where state = 'PRUNED' and not exists (select 1 from "
                                    "trial_user_attributes a where a.trial_id = t.trial_id and a.key = 'infeasible')").fetchone()[0]
    return code, lines, f"{pruned} trained trial(s) pruned"


def _term_in_final(folder: Path, data: Path) -> tuple[int, list[str], str]:
    """SIGTERM during the final training, then `resume`: the trial is kept, the final training done again."""
    command = [sys.executable, "-m", "search", "run", "--data", str(data), "--out", "out", "--study", "s", "--trials", "1",
               "--confirm-top", "0", "--final-epochs", "5", "--final-imgsz", "32", *FAST[3:-1]]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    study = folder / "out" / "s"
    while not (study / "final").exists() and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    err = _messages(process.communicate()[1])
    with closing(sqlite3.connect(study / "study.db")) as connection:
        kept = connection.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    code, _ = cli("resume", str(study), cwd=folder)
    best = "written" if (study / "best.yaml").is_file() else "MISSING"
    return process.returncode, err, f"{kept} complete kept; resume exit {code}, best.yaml {best}"


def _tiny_study(folder: Path, data: Path) -> Path:
    """A tiny study of 1 trial in ``folder/out/s``; its folder."""
    cli("run", "--data", str(data), "--out", "out", "--study", "s", *FAST, "--trials", "1", cwd=folder)
    return folder / "out" / "s"


def _tree(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@contextmanager
def _read_only(folder: Path):
    """``folder`` read-only while the block runs (yields False where it cannot be made so): as root, whom permissions
    do not stop, bind-mounted read-only over itself (writes fail with EROFS, as on a read-only share); else chmod a-w."""
    if os.geteuid() != 0:
        folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        for d in folders:
            d.chmod(0o555)
        try:
            yield True
        finally:
            for d in folders:
                d.chmod(0o755)
        return
    mounted = not subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode
    try:
        yield mounted and not subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(folder)])


def _dashboard(study: Path) -> tuple[int, list[str], str]:
    """`dashboard` on ``study`` until its API lists a study (60 s at most), then Ctrl-C; what it served."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "search", "dashboard", str(study), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    served, deadline = "nothing served", time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with opener.open(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                study = json.loads(response.read())["study_summaries"][0]
            with opener.open(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", timeout=5) as response:
                served = f"served study {study['study_name']} ({len(json.loads(response.read())['trials'])} trials)"
            break
        except OSError:
            time.sleep(0.3)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=60)[1]
    chatter = ("Bottle v", "Listening on", "Hit Ctrl-C", "127.0.0.1 - -")  # the server's start-up and request log
    return process.returncode, [line for line in _messages(err) if not line.startswith(chatter)], served


def _on_study(folder: Path, data: Path, *command: str, read_only: bool = False, wrote: str | None = None) -> tuple[int, list[str], str]:
    """``command`` (``{study}`` standing for its folder) on a tiny study, made read-only first with ``read_only``;
    whether the study folder changed, and whether ``wrote`` (a path in the case's folder) was written."""
    study = _tiny_study(folder, data)
    before = _tree(study)
    with _read_only(study) if read_only else nullcontext(True) as ok:
        if not ok:
            return -1, ["(not run: as root, a read-only folder needs mount)"], "-"
        if command[0] == "dashboard":
            code, lines, served = _dashboard(study)
        else:
            (code, lines), served = cli(*(a.replace("{study}", str(study)) for a in command), cwd=folder), ""
    kept = [f"study folder {'unchanged' if _tree(study) == before else 'CHANGED'}"] if read_only else []
    kept += [f"{wrote} {'written' if (folder / wrote).is_file() else 'NOT WRITTEN'}"] if wrote else []
    return code, lines, "; ".join(kept + ([served] if served else [])) or "-"


DAMAGES = {  # what a study.db becomes: damage(its bytes, a seeded generator)
    "random bytes": lambda data, rng: rng.randbytes(len(data)),
    "cut to half": lambda data, rng: data[: len(data) // 2],
    "an SQLite header, then garbage": lambda data, rng: data[:100] + rng.randbytes(len(data) - 100),
}


def _damaged_db(folder: Path, data: Path, damage: str, command: str) -> tuple[int, list[str], str]:
    """A tiny study whose study.db is then damaged, and ``command`` on its folder; whether the damaged file and the trial
    folder were left as they were (nothing written over them)."""
    study = _tiny_study(folder, data)
    db = study / "study.db"
    db.write_bytes(DAMAGES[damage](db.read_bytes(), random.Random(34)))
    damaged = db.read_bytes()
    code, lines = _dashboard(study)[:2] if command == "dashboard" else cli(command, str(study), cwd=folder)
    return code, lines, f"study.db {'untouched' if db.read_bytes() == damaged else 'WRITTEN'}, trials/0 " + (
        "kept" if (study / "trials" / "0").is_dir() else "LOST")


def _finished_then(folder: Path, data: Path, *command: str) -> tuple[int, list[str], str]:
    """A finished tiny study (2 trials, no race, a 1-epoch final training at 32 px), then ``command`` run in its folder;
    whether its best.yaml (the decision) was kept."""
    cli("run", "--data", str(data), "--out", "out", "--study", "s", "--trials", "2", "--confirm-top", "0", "--final-epochs",
        "1", "--final-imgsz", "32", *FAST[3:], cwd=folder)
    best = folder / "out" / "s" / "best.yaml"
    if not best.is_file():
        return -1, ["(the study did not finish)"], "-"
    before = best.read_bytes()
    code, lines = cli(*command, cwd=best.parent)
    return code, lines, f"best.yaml {'kept' if best.read_bytes() == before else 'REPLACED'}"


def _no_train_labels(data: Path) -> None:
    for label in (data.parent / "labels" / "train").iterdir():
        label.unlink()


def _upper_case_suffixes(data: Path) -> None:
    for image in (data.parent / "images").rglob("*.png"):
        image.rename(image.with_suffix(".PNG"))


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
            cli(*run, "--study", "t", "--storage", f"sqlite:///file:{f / 'out' / 's' / 'study.db'}?mode=ro&uri=true", cwd=f))[1],
        "storage with a password, unreachable": lambda f: cli(*run, "--storage", "postgresql://me:s3cret@127.0.0.1:1/db", cwd=f),
        "storage driver not installed (mysql+pymysql)": lambda f: cli(*run, "--storage", "mysql+pymysql://me@127.0.0.1:1/db", cwd=f),
        "resume after run.yaml's proxy_epochs was edited": lambda f: _edited_study(
            f, data, lambda p: p.write_text(p.read_text().replace("proxy_epochs: 1", "proxy_epochs: 3")), "resume"),
        "resume with run.yaml broken": lambda f: _edited_study(f, data, lambda p: p.write_text("trials: [\n"), "resume"),
        "resume with run.yaml empty": lambda f: _edited_study(f, data, lambda p: p.write_text(""), "resume"),
        "resume of a study folder that does not exist": lambda f: cli("resume", "nowhere", cwd=f),
        "names: raccoon (a string)": lambda f: (_spec(data, names="raccoon"), cli(*run, cwd=f))[1],
        "names: {a: raccoon} (not a class id)": lambda f: (_spec(data, names={"a": "raccoon"}), cli(*run, cwd=f))[1],
        "names: {0: a, 2: b} (a gap)": lambda f: (_spec(data, names={0: "a", 2: "b"}), cli(*run, cwd=f))[1],
        "data.yaml not UTF-8 text": lambda f: (data.write_bytes(b"\xff\xfe\x00\x81"), cli(*run, cwd=f))[1],
        "every val image 1x1 px": lambda f: (_tiny_images(data, "val"), cli(*run, cwd=f))[1],
        "val list with ./ lines (valid)": lambda f: (_val_list(data), cli(*run, cwd=f))[1],
        "val list naming missing images": lambda f: (_val_list(data, missing=True), cli(*run, cwd=f))[1],
        "a 1x1 train image, a nan label, a cut JPEG, in 32 + 12 images (counted, kept out)": lambda f: (
            make_toy_dataset(data.parent, n_train=32, n_val=12, imgsz=32), _spec(data, path="."), _tiny_images(data, "train", 1),
            _labels(data, "0 nan 0.5 0.2 0.2\n", "val", share=0.01), _cut_jpeg(data), _warned(*run, cwd=f))[-1],
        "--seed -1": lambda f: cli(*run, "--seed", "-1", cwd=f),
        "--device 0 on a machine without a GPU": lambda f: cli(*run, "--device", "0", cwd=f),
        "--latency-device cuda on a machine without a GPU": lambda f: cli(*run, "--objective", "map+latency", "--latency-device",
                                                                         "cuda", cwd=f),
        "--proxy-recipe long (not a recipe)": lambda f: cli(*run, "--proxy-recipe", "long", cwd=f),
        "--intensify 2 --intensify-seeds 1": lambda f: cli(*run, "--intensify", "2", "--intensify-seeds", "1", cwd=f),
        "--set bogus_arg=1": lambda f: cli(*run, "--set", "bogus_arg=1", cwd=f),
        "--set lr0=abc": lambda f: cli(*run, "--set", "lr0=abc", cwd=f),
        "--set optimizer=Foo (the baseline fails)": lambda f: (
            *cli(*run, "--study", "s", "--set", "optimizer=Foo", cwd=f), f"{trials(f / 'out' / 's')} trial(s) trained"),
        "study moved mid-search, then resume --trials 2": lambda f: _study_then(f, data, _moved, "resume", "--trials", "2"),
        "study.db deleted, then resume": lambda f: _study_then(f, data, lambda s: (s / "study.db").unlink(), "resume"),
        "study.db truncated to 0 bytes, then resume": lambda f: _study_then(f, data, lambda s: (s / "study.db").write_bytes(b""),
                                                                          "resume"),
        "an image added to train, then the same command": lambda f: _study_then(
            f, data, lambda s: _added_image(data), "run", "--data", str(data), "--out", "out", "--study", "s", *FAST),
        "two workers started together, other --proxy-epochs": lambda f: _two_workers(f, data),
        "1-epoch proxies, median pruner": lambda f: _last_epoch(f, data),
        "read-only dataset folder, final training included": lambda f: _read_only_data(f, data),
        "Ctrl-C during a trial, then resume": lambda f: _ctrl_c(f, data),
        "disk full during the first trial, then the same command": lambda f: _full_disk(f, data),
        # issue 34: a damaged storage is told apart from an unreachable one
        **{f"study.db {damage}, then {command}": (lambda d, c: lambda f: _damaged_db(f, data, d, c))(damage, command)
           for damage, command in (("random bytes", "resume"), ("cut to half", "report"), ("an SQLite header, then garbage", "export"),
                                   ("cut to half", "dashboard"))},
        "--storage in a folder that does not exist (unreachable, as before)": lambda f: cli(
            *run, "--storage", "sqlite:////no/such/dir/x.db", cwd=f),
        # a read-only study folder
        "read-only study: run it again": lambda f: _on_study(f, data, "run", "--data", str(data), "--out", "out", "--study", "s",
                                                          *FAST, read_only=True),
        "read-only study: resume": lambda f: _on_study(f, data, "resume", "{study}", read_only=True),
        "read-only study: report": lambda f: _on_study(f, data, "report", "{study}", read_only=True),
        "read-only study: report --out DIR": lambda f: _on_study(f, data, "report", "{study}", "--out", "rep", read_only=True,
                                                              wrote="rep/report.md"),
        "read-only study: export --trial 0 -o a writable path": lambda f: _on_study(
            f, data, "export", "{study}", "--trial", "0", "-o", "t0.yaml", read_only=True, wrote="t0.yaml"),
        "read-only study: export -o into the study": lambda f: _on_study(
            f, data, "export", "{study}", "--trial", "0", "-o", "{study}/t0.yaml", read_only=True),
        "read-only study: validate-proxy": lambda f: _on_study(f, data, "validate-proxy", "{study}", read_only=True),
        "read-only study: dashboard (served, then Ctrl-C)": lambda f: _on_study(f, data, "dashboard", read_only=True),
        # export never replaces what the study decided; no traceback
        "finished study: export . --trial 1 (default -o best.yaml)": lambda f: _finished_then(f, data, "export", ".", "--trial", "1"),
        "export --trial 0 -o an existing folder": lambda f: _on_study(f, data, "export", "{study}", "--trial", "0", "-o", "."),
        "export --trial 0 -o a folder that does not exist yet": lambda f: _on_study(
            f, data, "export", "{study}", "--trial", "0", "-o", "new/dir/t0.yaml", wrote="new/dir/t0.yaml"),
        # data with nothing to learn from, or not a data file
        "every train label file empty (val labelled)": lambda f: (_labels(data, ""), cli(*run, cwd=f))[1],
        "every train label file missing (val labelled)": lambda f: (_no_train_labels(data), cli(*run, cwd=f))[1],
        "--data the dataset's folder": lambda f: cli("run", "--data", str(data.parent), "--out", "out", *FAST, cwd=f),
        "images with upper-case suffixes (.PNG, valid)": lambda f: (_upper_case_suffixes(data), cli(*run, cwd=f))[1],
        # options: NaN, infinity, a path for a name, negative workers
        "--timeout nan": lambda f: cli(*run, "--timeout", "nan", cwd=f),
        "--max-latency-ms inf": lambda f: cli(*run, "--max-latency-ms", "inf", cwd=f),
        "--proxy-fraction inf": lambda f: cli(*run, "--proxy-fraction", "inf", cwd=f),
        "--study ../../escaped": lambda f: (*cli("run", "--data", str(data), "--out", "a/b/out", *FAST, "--study", "../../escaped",
                                                cwd=f), "ESCAPED" if (f / "a" / "escaped").exists() else "nothing outside --out"),
        "--loader-workers -1": lambda f: cli(*run, "--loader-workers", "-1", cwd=f),
        "--set lr0=1e999 (infinity)": lambda f: cli(*run, "--set", "lr0=1e999", cwd=f),
        "build --place neck.99=se": lambda f: cli("build", "--place", "neck.99=se", "-o", "b.yaml", cwd=f),
        "dashboard --port 99999": lambda f: (_tiny_study(f, data), cli("dashboard", "out/s", "--port", "99999", cwd=f))[1],
        # SIGTERM, what a cluster scheduler sends, as Ctrl-C
        "SIGTERM during a trial, then resume": lambda f: _ctrl_c(f, data, signal.SIGTERM),
        "SIGTERM during the final training, then resume": lambda f: _term_in_final(f, data),
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
        good = code == 0 or (code in (2, 130, 143) and len(lines) == 1 and "Traceback" not in "".join(lines))
        bad += not good
        last = (lines[-1] if lines else "").replace("|", "\\|").replace(str(work), "...")
        rows.append(f"| {name} | {code} | {len(lines)} | {last[:220]} | {kept[0] if kept else '-'} | {'yes' if good else 'NO'} |")
        print(rows[-1], flush=True)
    publish(__file__, "\n".join([
        "# Bad inputs and faults against the command line", "", describe_machine(),
        "- command: `python results/benchmarks/bad_inputs.py`; generated data (8 + 4 images, 32 px), 2 trials of 1 epoch",
        "- exit: the exit code; lines: lines on stderr (progress bars left out); kept: trials of the study before -> after, "
        "or the files and folders the case checks, '-' where nothing was computed yet; ok: exit 0, or exit 2 / 130 / 143 with one "
        "line and no traceback", "",
        "| case | exit | lines | last line on stderr | kept | ok |", "| --- | --- | --- | --- | --- | --- |", *rows, "",
        f"{len(rows) - bad} of {len(rows)} cases as intended.", "",
    ]))


if __name__ == "__main__":
    main()
