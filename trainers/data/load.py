"""A user's data checked before any training starts (`load_dataset`).

`load_dataset` fails with one line naming the file and the fix; it also counts the images Ultralytics would
silently drop (labels it cannot use, images it cannot read) and refuses a dataset where too many are unusable
or the val split has no object.
spaces (it imports Ultralytics) is imported inside functions: search's demo command imports this package before `prepare_ultralytics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from trainers.data.dataset import DataError, Dataset
from trainers.data.image_folders import folder_text, load_image_folders, refuse_class_folders, root_folders, yaml_folders
from trainers.data.images import broken_images, check_dropped
from trainers.data.labels import check_labels, split_images

if TYPE_CHECKING:  # spaces imports Ultralytics: only once prepare_ultralytics has run
    from spaces.tasks import Task


TASK_KEYS = ("kpt_shape", "flip_idx")  # data.yaml keys a task reads besides the splits and names (pose)


def load_dataset(data: str | Path, task: Task | None = None) -> Dataset:
    """Read and validate the dataset of ``task`` (default: detection): an Ultralytics data.yaml whose labels are
    checked against ``names`` and the task's label format; for a classifier, an ImageFolder (`load_image_folders`)."""
    if task is None:
        from spaces.tasks import TASKS

        task = TASKS["detect"]
    source = Path(data)
    if source.is_dir():  # the one place a dataset path is checked: a folder is named as one
        if task.image_folders:
            return load_image_folders(source, root_folders(source), None)
        raise DataError(folder_text(source, task))
    keys = ("train", "val") if task.image_folders else ("train", "val", "names")  # a classifier's names are its folders
    needs = f"{', '.join(keys[:-1])} and {keys[-1]}"
    spec = _read_spec(source, task, needs)
    root = Path(spec.get("path") or ".")  # relative to the data.yaml's folder, wherever the run starts
    root = root if root.is_absolute() else source.resolve().parent / root
    missing = [k for k in keys if not spec.get(k)]
    if missing == ["names"]:
        refuse_class_folders(spec, root, source, task)
    if missing:
        raise DataError(f"{source}: missing {', '.join(missing)}; a data.yaml needs {needs}")
    if task.image_folders:
        return load_image_folders(source, yaml_folders(spec, root, source), _names(spec, source) if spec.get("names") else None)
    names = _names(spec, source)
    extra = {k: spec[k] for k in TASK_KEYS if k in spec}
    _check_task(source, task, extra.get("kpt_shape"))
    unusable, most, splits = [], 0, {}
    for split in ("train", "val"):
        listed = split_images(spec[split], root, source, split)
        broken = broken_images(listed, split, source)
        images = splits[split] = [image for image in listed if image not in dict(broken)]  # left out of every training
        bad_labels, objects, polygons, crowd = check_labels(images, len(names), source, task, extra.get("kpt_shape"))
        if split == "train" and objects == 0:  # Ultralytics would train on backgrounds alone, every trial scoring 0
            refuse_class_folders(spec, root, source, task)
            raise DataError(f"{source}: the train split has no labelled objects (every label file is empty or missing), so "
                            "no model can learn from it; label the train images")
        if split == "train" and task.masks and not polygons:
            raise DataError(f"{source}: the train labels are boxes only, no polygons, and a segmentation model learns its "
                            "masks from polygons; give polygon labels or a detection --model")
        if split == "val" and objects - len(bad_labels) <= 0:
            raise DataError(f"{source}: the val split has no labelled objects, so every trial would score 0; label the val images")
        check_dropped(broken + bad_labels, listed, split, source)
        unusable += broken + bad_labels
        most = max(most, crowd)
    return Dataset(source.resolve(), names, tuple(splits["train"]), tuple(splits["val"]), tuple(unusable), extra, task.name, most)


def _read_spec(source: Path, task: Task, needs: str) -> dict:
    """The mapping in data.yaml ``source`` (of the keys ``needs``, in words); ``DataError`` in one line when there is none."""
    if not source.is_file() and task.image_folders:
        raise DataError(f"{source}: not found; give the folder of a classification dataset (train/<class>/, val/<class>/) or a data.yaml")
    if not source.is_file():
        raise DataError(f"{source}: data file not found; give the path of an Ultralytics data.yaml")
    try:
        spec = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DataError(f"{source}: not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
    except UnicodeDecodeError:
        raise DataError(f"{source}: not a UTF-8 text file; give the path of an Ultralytics data.yaml") from None
    if not isinstance(spec, dict):
        raise DataError(f"{source}: expected a mapping with {needs}")
    return spec


def _names(spec: dict, source: Path) -> dict[int, str]:
    """The class names of data.yaml ``source`` (``names``: a list, or class ids to names; ``nc`` agreeing), by class id."""
    names = spec["names"]
    if isinstance(names, dict) and not all(isinstance(k, int) or str(k).isdigit() for k in names):
        raise DataError(f"{source}: names keys must be class ids 0..nc-1, got {list(names)[:3]}; "
                        "write names: {0: first, 1: ...} or a list")
    if not isinstance(names, (list, dict)):
        raise DataError(f"{source}: names must be a list or a mapping of class ids to names, got {names!r}; write names: [{names}]")
    names = dict(enumerate(names)) if isinstance(names, list) else {int(k): str(v) for k, v in names.items()}
    if sorted(names) != list(range(len(names))):
        raise DataError(f"{source}: names has class ids {sorted(names)}; class ids must run 0..nc-1 without gaps, as the labels use them")
    if "nc" in spec and spec["nc"] != len(names):
        raise DataError(f"{source}: nc is {spec['nc']} but names lists {len(names)} classes; make them agree")
    return names


def _check_task(source: Path, task: Task, kpt_shape) -> None:
    """``DataError`` in one line when the data.yaml's keypoints do not fit ``task``: a pose model needs
    ``kpt_shape``; a pose dataset needs a pose model."""
    if task.keypoints:
        if not (isinstance(kpt_shape, list) and len(kpt_shape) == 2 and kpt_shape[1] in (2, 3) and kpt_shape[0] >= 1):
            raise DataError(f"{source}: a pose model needs 'kpt_shape: [keypoints, 2 or 3]' in the data.yaml, got "
                            f"{kpt_shape!r}; add it, or give a --model of the task the labels are for")
    elif kpt_shape is not None:
        raise DataError(f"{source}: is a pose dataset (kpt_shape {kpt_shape}) and the model a {task.name} model; give a pose "
                        "--model (e.g. yolov8n-pose.yaml, yolo26n-pose.yaml)")
