"""A study folder on disk: its ``run.yaml`` read back wherever the folder moved (`load_study_config`), its storage URL,
whether it can be written, and where a command keeps Ultralytics' files (`prepare`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from search.config.run_config import RunConfig
from trainers.offline import prepare_ultralytics


def check_writable(folder: Path) -> None:
    """Raise ``ValueError`` if ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"output folder {folder} cannot be created ({e.strerror}); choose another --out") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"output folder {folder} is not writable; choose another --out")


def study_config_dir(study_dir: str | Path) -> Path | None:
    """Where a command on an existing study keeps Ultralytics' files: the study's ``config`` folder, or None (a
    per-user temporary folder, `search.config.study_folder.prepare`) where the study folder cannot be written (a read-only copy)."""
    return Path(study_dir) / "config" if os.access(study_dir, os.W_OK) else None


def check_study_writable(study_dir: str | Path, command: str) -> None:
    """Raise ``ValueError`` in one line when ``command``, which writes into the study folder, finds it read-only."""
    if not os.access(study_dir, os.W_OK):
        raise ValueError(f"study folder {study_dir} is read-only here (a read-only mount, or its permissions) and `{command}` "
                         f"writes into it; make it writable, or copy the folder to a writable place and {command} the copy")


def load_study_config(study_dir: str | Path, storage: str | None = None) -> RunConfig:
    """The ``run.yaml`` of a study folder (one-line ValueError if there is none), pointing at that
    folder even when it was moved or copied since the search wrote it; ``storage`` (a command's
    ``--storage``: the URL with the password run.yaml does not keep) replaces the saved URL."""
    folder = Path(study_dir).resolve()
    path = folder / "run.yaml"
    if not path.is_file():
        raise ValueError(f"{study_dir} holds no study (no run.yaml); give the folder `run` created")
    config = RunConfig.load(path)
    if config.study_dir.resolve() != folder:
        if folder.name != config.study:
            raise ValueError(f"{study_dir} holds study '{config.study}' under another folder name; "
                             f"rename the folder back to '{config.study}'")
        config = replace(config, out=str(folder.parent))
    return replace(config, storage=storage) if storage else config


def storage_url_of(study_dir: str | Path) -> str:
    """The storage URL of the study in ``study_dir``: its ``--storage``, else its study.db.

    The SQLite file is looked for in ``study_dir`` itself, so a moved or copied folder still works.
    """
    config = load_study_config(study_dir)
    if config.storage:
        return config.storage
    db = Path(study_dir) / "study.db"
    if not db.is_file():
        raise ValueError(f"{study_dir} has no study.db; was the search started in this folder?")
    return f"sqlite:///{db.resolve()}"


def prepare(config_dir: Path | None = None, quiet: bool = False) -> None:
    """Offline-safe Ultralytics with its files in ``config_dir`` (a temp folder if None); ``quiet``: Ultralytics' own
    bars and logs off (ours show progress)."""
    if quiet:
        os.environ["YOLO_VERBOSE"] = "False"
    prepare_ultralytics(config_dir or Path(tempfile.gettempdir()) / f"yolo-attention-search-{os.getuid()}")  # per user
