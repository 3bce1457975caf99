"""A model saved as Ultralytics saves a finished training's best.pt, so that ``YOLO(path)`` loads it as its task with
its class names, wherever Ultralytics and `yolo_attention_modules` are installed."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch
from ultralytics.cfg import DEFAULT_CFG_DICT
from ultralytics.utils.torch_utils import strip_optimizer

from spaces.tasks import task_of
from trainers.offline import ultralytics_logs_above


def save_checkpoint(model, task: str, source, yaml_path: str | Path, out: str | Path, extra: dict) -> tuple[int, str]:
    """Save ``model`` (built from ``yaml_path``) as Ultralytics saves a finished training's best.pt, with its own
    `strip_optimizer`: half precision, ``train_args`` (Ultralytics' defaults with ``task``, ``model`` and the image size
    of base model ``source``), date, version, license, docs; plus ``extra``. The model carries ``task`` and the class
    names of ``source`` (when it has as many classes; else 0..nc-1, said in one line), so ``YOLO(out)`` loads as its
    task with its names. Returns the file's size in bytes and a note for the user (empty when there is none)."""
    names = getattr(source, "names", None)
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names or {})
    note = ""
    if len(names) == len(model.names):
        model.names = names
    else:
        note = (f"the base checkpoint names {len(names)} classes and the new model has {len(model.names)}: its classes "
                f"are saved as 0..{len(model.names) - 1}; train it on your data to name them")
    same_task = task_of(source.yaml).name == task  # its own task: a checkpoint without train_args reads as detect
    base_args = getattr(source, "args", None) or {}
    kept = {k: base_args[k] for k in (("imgsz", "data", "single_cls") if same_task else ("imgsz",)) if k in base_args}
    model.task = task
    model.args = {**DEFAULT_CFG_DICT, **kept, "model": str(yaml_path), "task": task}  # as YOLO(yaml) sets them
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / Path(out).name
        torch.save({"model": model, "train_args": model.args}, full)
        with ultralytics_logs_above(logging.WARNING):  # its "Optimizer stripped from <temporary file>" would only confuse
            saved = strip_optimizer(full, str(out), updates=extra)
    if not saved:
        raise RuntimeError(f"Ultralytics could not re-save {out}")
    return Path(out).stat().st_size, note
