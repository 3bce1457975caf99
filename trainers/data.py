"""Datasets of every task: validation of a user's data, the cached proxy subset, a generated toy set.

Detection, segmentation, pose and OBB data is an Ultralytics data.yaml with label files; classification
data is an ImageFolder (``train/<class>/``, ``val/<class>/``: a class is a folder, its ids the sorted folder
names), given as its folder or as a data.yaml naming the two split folders.
`load_dataset` checks the data before any training starts and fails with one line naming the
file and the fix; it also counts the images Ultralytics would silently drop (labels it cannot
use, images it cannot read) and refuses a dataset where too many are unusable or the val split has no object.
`write_resolved_yaml` writes the study's view of the dataset (images linked, labels copied), so every
training reads the same images wherever it is started from and nothing is written beside the user's
data (its data.yaml through `trainers.files.replace_file`, which study files share: a reader never
sees one half-written). `build_proxy_data` writes, once per study, a
seeded subset of the training images pre-resized to the proxy size (validation images resized too),
so proxy trials do not decode full-size images again and again; it also writes Ultralytics' label
caches (a classifier's: of its image checks), under a lock, so that trials started together (Ray, several
workers) only read them. A classifier's copies are ImageFolders too, given to Ultralytics as their folder
(`ultralytics_data`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from filelock import FileLock

from trainers.files import replace_file
from trainers.offline import ultralytics_logs_above

if TYPE_CHECKING:  # spaces imports Ultralytics: only once prepare_ultralytics has run
    from spaces.tasks import Task

TASK_KEYS = ("kpt_shape", "flip_idx")  # data.yaml keys a task reads besides the splits and names (pose)
UNUSABLE_LIMIT = 0.1  # largest share of a split's images whose labels Ultralytics drops before we refuse


class DataError(ValueError):
    """The dataset cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Dataset:
    """A resolved dataset: class names, the image files of each split and the task's own keys."""

    yaml_path: Path  # its data.yaml, or a classification dataset's folder
    names: dict[int, str]
    train: tuple[Path, ...]
    val: tuple[Path, ...]
    unusable: tuple[tuple[Path, str], ...] = ()  # (label file, or image left out of the splits, why) of images Ultralytics drops
    extra: dict = field(default_factory=dict)  # the task's own keys of the data.yaml (`TASK_KEYS`), written on with it
    task: str = "detect"  # the task its labels were checked for (Ultralytics scans and caches them for it)
    most_objects: int = 0  # the most labelled objects in one image
    class_of: dict[Path, int] = field(default_factory=dict)  # classification: each image's class id (its folder); else empty

    def crowded_text(self, max_det: int) -> str | None:
        """One line when an image holds more objects than validation keeps detections (``max_det``), or None."""
        if self.most_objects <= max_det:
            return None
        return (f"up to {self.most_objects} objects in one image, and Ultralytics scores at most max_det {max_det} "
                f"detections an image, so scores are capped there; add --set max_det={self.most_objects}")

    def unusable_text(self) -> str | None:
        """One line on the images Ultralytics will drop, or None when there are none."""
        if not self.unusable:
            return None
        path, why = self.unusable[0]
        listed = len(self.train) + len(self.val) + sum(p.suffix != ".txt" for p, _ in self.unusable)  # broken images left the splits
        return (f"{len(self.unusable)} of {listed} images are ones Ultralytics cannot use and will be left out "
                f"(e.g. {path}: {why}); fix those files to use them")

    @cached_property
    def content(self) -> str:
        """Hash of every image and label file's path, size and modification time, read once: it changes when
        the data does (the study refuses changed data; the proxy and the study's view are rebuilt)."""
        digest = hashlib.sha1()
        for image in self.train + self.val:
            for path in (Path(image),) if self.image_folders else (Path(image), label_path(Path(image))):
                stat = path.stat() if path.is_file() else None
                digest.update(f"{path}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1}\n".encode())
        return digest.hexdigest()[:16]

    @property
    def nc(self) -> int:
        """Number of classes."""
        return len(self.names)

    @property
    def image_folders(self) -> bool:
        """Its classes are its images' folders (classification): no label files."""
        return bool(self.class_of)


def label_path(image: Path) -> Path:
    """Label file of an image, by Ultralytics' own rule: last ``/images/`` becomes ``/labels/``, suffix ``.txt``."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([image])[0])


def _is_image(path: Path) -> bool:
    """Whether Ultralytics takes ``path`` for an image, by its suffix (its IMG_FORMATS)."""
    from ultralytics.data.utils import IMG_FORMATS

    return path.suffix[1:].lower() in IMG_FORMATS


def _images_under(folder: Path) -> list[Path]:
    """The image files anywhere under ``folder``, sorted: those Ultralytics itself would find."""
    return sorted(filter(_is_image, folder.rglob("*")))


def _entry_path(entry, root: Path) -> Path:
    """A data.yaml's split entry as a path: absolute, or relative to the dataset's ``root``."""
    return Path(entry) if Path(entry).is_absolute() else root / entry


def _not_found(source: Path, key: str, entry, path: Path) -> DataError:
    return DataError(f"{source}: '{key}: {entry}' does not exist (looked for {path}); fix the path in the file")


def _split_images(spec, root: Path, source: Path, key: str) -> list[Path]:
    images: list[Path] = []
    for entry in spec if isinstance(spec, list) else [spec]:
        path = _entry_path(entry, root)
        if path.is_dir():
            images += _images_under(path)
        elif path.is_file() and path.suffix == ".txt":
            for line in filter(None, map(str.strip, path.read_text().splitlines())):
                # Ultralytics' rule: a line starting ./ is relative to the list's folder (others, here, to the root)
                image = path.parent / line[2:] if line.startswith("./") else Path(line) if Path(line).is_absolute() else root / line
                images.append(image)
        else:
            raise _not_found(source, key, entry, path)
    if not images:
        listed = ", ".join(map(str, spec if isinstance(spec, list) else [spec]))
        raise DataError(f"{source}: '{key}' holds no images ({listed}); add images or fix the path")
    return images


def _image_problem(image: Path) -> str | None:
    """Why Ultralytics would leave ``image`` out (its ``check_image``: unreadable, under 10 px a side, a format
    it does not read, a JPEG cut short that cannot be decoded whole), or None. Ultralytics repairs a JPEG
    without its end marker by rewriting the file; this check only decodes it."""
    from PIL import Image
    from ultralytics.data.utils import IMG_FORMATS, exif_size

    if not image.is_file():
        return "image file not found"
    try:
        with Image.open(image) as im:
            im.verify()
            w, h = exif_size(im)
            kind = (im.format or "").lower()
        if w < 10 or h < 10:
            return f"image of {w}x{h} px, under Ultralytics' 10 px a side"
        if kind not in IMG_FORMATS | {"jpeg2000"}:
            return f"image format {kind or 'unknown'} Ultralytics does not read"
        if kind in ("jpg", "jpeg") and not _jpeg_ends(image):
            with Image.open(image) as im:
                im.load()
    except Exception as e:  # PIL raises many kinds for a damaged file
        return f"image cannot be decoded ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


def _jpeg_ends(image: Path) -> bool:
    """Whether a JPEG file ends with its FFD9 marker (Ultralytics rewrites one that does not)."""
    with image.open("rb") as f:
        return f.seek(0, 2) >= 2 and f.seek(-2, 2) >= 0 and f.read() == b"\xff\xd9"


def _check_labels(images: list[Path], nc: int, source: Path, task: Task,
                  kpt_shape: list | None) -> tuple[list[tuple[Path, str]], int, int, int]:
    """Label files Ultralytics would drop whole (with why), the number of objects, of polygon lines and the most
    objects in one image, for ``images``.

    Ultralytics' ``verify_image_label`` drops an image whose label file has lines of a length ``task`` does not
    read (`spaces.tasks.Task.label_problem`), or a value below 0 or a coordinate above 1 (keypoints: their x, y).
    A class id outside ``names`` is an error here, as a mistake in the file rather than in one label.
    """
    ndim = kpt_shape[1] if kpt_shape else 0
    kpt_values = kpt_shape[0] * kpt_shape[1] if kpt_shape else 0
    unusable, objects, polygons, most = [], 0, 0, 0
    for image in images:
        labels = label_path(image)
        if not labels.is_file():
            continue  # an image without objects: a background image, as in Ultralytics
        why, lengths = None, []
        for n, line in enumerate(labels.read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                values = [float(f) for f in fields]
            except ValueError:
                raise DataError(f"{labels}:{n}: '{line.strip()}' is not a YOLO label line (numbers: class, then coordinates)") from None
            if any(math.isnan(v) for v in values):
                why = why or f"line {n} has nan values"
                continue
            cls = values[0]
            if cls != int(cls) or not 0 <= cls < nc:
                raise DataError(
                    f"{labels}:{n}: class id {fields[0]} is outside 0..{nc - 1} ({source} names {nc} classes); "
                    "fix the label or add the class to 'names'"
                )
            points = values[1:5] + [v for i, v in enumerate(values[5:]) if i % ndim < 2] if ndim else values[1:]
            if min(points) < 0 or max(points) > 1:
                why = why or f"line {n} has coordinates outside [0, 1]"
            lengths.append(len(values))
            objects += 1
        polygons += sum(n > 6 for n in lengths) if not ndim else 0
        most = max(most, len(lengths))
        why = why or task.label_problem(lengths, kpt_values)
        if why:
            unusable.append((labels, why))
    return unusable, objects, polygons, most


def load_dataset(data: str | Path, task: Task | None = None) -> Dataset:
    """Read and validate the dataset of ``task`` (default: detection): an Ultralytics data.yaml whose labels are
    checked against ``names`` and the task's label format; for a classifier, an ImageFolder (`_load_image_folders`)."""
    if task is None:
        from spaces.tasks import TASKS

        task = TASKS["detect"]
    source = Path(data)
    if source.is_dir():  # the one place a dataset path is checked: a folder is named as one
        if task.image_folders:
            return _load_image_folders(source, _root_folders(source), None)
        raise DataError(_folder_text(source, task))
    keys = ("train", "val") if task.image_folders else ("train", "val", "names")  # a classifier's names are its folders
    needs = f"{', '.join(keys[:-1])} and {keys[-1]}"
    spec = _read_spec(source, task, needs)
    root = Path(spec.get("path") or ".")  # relative to the data.yaml's folder, wherever the run starts
    root = root if root.is_absolute() else source.resolve().parent / root
    missing = [k for k in keys if not spec.get(k)]
    if missing == ["names"]:
        _refuse_class_folders(spec, root, source, task)
    if missing:
        raise DataError(f"{source}: missing {', '.join(missing)}; a data.yaml needs {needs}")
    if task.image_folders:
        return _load_image_folders(source, _yaml_folders(spec, root, source), _names(spec, source) if spec.get("names") else None)
    names = _names(spec, source)
    extra = {k: spec[k] for k in TASK_KEYS if k in spec}
    _check_task(source, task, extra.get("kpt_shape"))
    unusable, most, splits = [], 0, {}
    for split in ("train", "val"):
        listed = _split_images(spec[split], root, source, split)
        broken = _broken(listed, split, source)
        images = splits[split] = [image for image in listed if image not in dict(broken)]  # left out of every training
        bad_labels, objects, polygons, crowd = _check_labels(images, len(names), source, task, extra.get("kpt_shape"))
        if split == "train" and objects == 0:  # Ultralytics would train on backgrounds alone, every trial scoring 0
            _refuse_class_folders(spec, root, source, task)
            raise DataError(f"{source}: the train split has no labelled objects (every label file is empty or missing), so "
                            "no model can learn from it; label the train images")
        if split == "train" and task.masks and not polygons:
            raise DataError(f"{source}: the train labels are boxes only, no polygons, and a segmentation model learns its "
                            "masks from polygons; give polygon labels or a detection --model")
        if split == "val" and objects - len(bad_labels) <= 0:
            raise DataError(f"{source}: the val split has no labelled objects, so every trial would score 0; label the val images")
        _check_dropped(broken + bad_labels, listed, split, source)
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


def _broken(listed: list[Path], split: str, source: Path) -> list[tuple[Path, str]]:
    """The images of ``listed`` (one split) Ultralytics cannot read, with why; ``DataError`` when that is every one."""
    broken = [(image, why) for image in listed if (why := _image_problem(image))]
    if listed and len(broken) == len(listed):
        image, why = broken[0]
        raise DataError(f"{source}: none of the {len(listed)} {split} images can be used (e.g. {image}: {why}); fix the "
                        f"'{split}' entry or the images")
    return broken


def _check_dropped(dropped: list[tuple[Path, str]], listed: list[Path], split: str, source: Path) -> None:
    """``DataError`` when Ultralytics would drop (``dropped``: file, why) more than `UNUSABLE_LIMIT` of a split's images."""
    if len(dropped) > UNUSABLE_LIMIT * len(listed):
        path, why = dropped[0]
        raise DataError(f"{source}: {len(dropped)} of {len(listed)} {split} images are ones Ultralytics cannot use "
                        f"(e.g. {path}: {why}); fix those files")


VAL_FOLDERS = ("val", "validation", "valid", "test")  # a classification folder's val split, as Ultralytics looks for it


def _load_image_folders(source: Path, folders: dict[str, Path], given: dict[int, str] | None) -> Dataset:
    """The classification dataset whose train and val ``folders`` hold one folder of images per class (``source``: its
    folder or data.yaml; ``given``: the names it lists, if any). Class ids are the sorted train folder names (Ultralytics'
    rule); every class must have usable images in both splits."""
    found = {split: _class_images(source, split, folder) for split, folder in folders.items()}
    names = dict(enumerate(sorted(found["train"])))
    if len(names) < 2:
        raise DataError(f"{folders['train']}: {len(names)} class folder(s) ({', '.join(names.values()) or 'none'}) and a "
                        "classifier needs at least 2 classes; add one folder of images per class")
    if given is not None and given != names:
        raise DataError(f"{source}: names ({', '.join(given.values())}) are not the sorted class folders of {folders['train']} "
                        f"({', '.join(names.values())}), which Ultralytics numbers the classes by; fix names or leave them out")
    for split, other in (("val", "train"), ("train", "val")):
        only = sorted(set(found[split]) - set(found[other]))
        if only:
            raise DataError(f"{folders[split] / only[0]}: class '{only[0]}' is in {split} but not in {other} ({folders[other]}); "
                            f"add its {other} images or remove the folder")
    ids = {name: i for i, name in names.items()}
    class_of, unusable, splits = {}, [], {}
    for split, classes in found.items():
        listed = [image for images in classes.values() for image in images]
        broken = _broken(listed, split, source)
        bad = dict(broken)
        for name, images in classes.items():
            kept = [image for image in images if image not in bad]
            if not kept:
                raise DataError(f"{folders[split] / name}: an empty class folder (no image Ultralytics can read); add images "
                                f"of '{name}' or remove the folder")
            class_of.update(dict.fromkeys(kept, ids[name]))
        _check_dropped(broken, listed, split, source)
        splits[split] = tuple(image for image in listed if image in class_of)
        unusable += broken
    return Dataset(source.resolve(), names, splits["train"], splits["val"], tuple(unusable), task="classify", class_of=class_of)


def _root_folders(source: Path) -> dict[str, Path]:
    """The train and val folders of classification folder ``source``; val also named as Ultralytics reads it
    (validation, valid; test when there is none)."""
    if not (source / "train").is_dir() and (source / "images").is_dir():
        raise DataError(f"{source}: a detection-style folder (images/, no train/<class>/ folders); give a detection --model "
                        "and its data.yaml, or one folder per class (train/<class>/, val/<class>/)")
    if not (source / "train").is_dir():
        raise DataError(f"{source}: no train folder; a classification dataset holds train/<class>/ and val/<class>/ image "
                        "folders; add them, or give the folder that holds them")
    val = next((source / name for name in VAL_FOLDERS if (source / name).is_dir()), None)
    if val is None:
        raise DataError(f"{source}: no val folder ({', '.join(VAL_FOLDERS)}); add val/ with a folder of images per class, as train/ has")
    return {"train": source / "train", "val": val}


def _yaml_folders(spec: dict, root: Path, source: Path) -> dict[str, Path]:
    """The train and val folders a classifier's data.yaml ``source`` names (relative to ``root``)."""
    folders = {}
    for key in ("train", "val"):
        path = _entry_path(spec[key], root) if isinstance(spec[key], str) else None
        if path is None or path.is_file():
            raise DataError(f"{source}: '{key}: {spec[key]}' is not a folder; a classifier's data.yaml names one folder of "
                            f"class folders a split; fix '{key}'")
        if not path.is_dir():
            raise _not_found(source, key, spec[key], path)
        folders[key] = path
    return folders


def _class_images(source: Path, split: str, folder: Path) -> dict[str, list[Path]]:
    """The images of each class folder in split ``folder``, by class name; ``DataError`` when it is laid out for detection."""
    found = _class_folders(folder)
    if _detection_style(folder, [image for images in found.values() for image in images]):
        raise DataError(f"{source}: a detection-style dataset ({split} images sit directly in {folder} or have label files, "
                        "not one folder per class); give a detection --model or one folder per class (train/<class>/, val/<class>/)")
    return found


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    """The images under each subfolder of ``folder``, by the subfolder's name (ImageFolder's classes, in its order)."""
    return {sub.name: _images_under(sub) for sub in sorted(folder.iterdir()) if sub.is_dir()}


def _detection_style(folder: Path, images: list[Path]) -> bool:
    """Whether split ``folder`` (holding ``images`` in its subfolders) is laid out for detection: images directly in it,
    or label files where Ultralytics looks for them (its ``/images/`` to ``/labels/`` rule)."""
    return (any(_is_image(p) and p.is_file() for p in folder.iterdir())
            or any(label_path(image).is_file() for image in images if f"{os.sep}images{os.sep}" in str(image)))


def _holds_class_folders(folder: Path) -> bool:
    """Whether ``folder`` is one split of a classification dataset: images in its subfolders, none directly in it, no labels."""
    images = [image for images in _class_folders(folder).values() for image in images] if folder.is_dir() else []
    return bool(images) and not _detection_style(folder, images)


def _classification_text(source: Path, train: Path, task: Task) -> str:
    """One line for classification data (train folder ``train``) given to a ``task`` model."""
    return (f"{source}: a classification dataset ({train} holds one folder of images per class, no label files) and the model "
            f"a {task.name} model; give a -cls --model (e.g. --model yolov8n-cls.yaml) or a {task.name} data.yaml")


def _folder_text(source: Path, task: Task) -> str:
    """One line for folder ``source`` given as the data of a ``task`` model, which reads a data.yaml."""
    if _holds_class_folders(source / "train"):
        return _classification_text(source, source / "train", task)
    return f"{source}: a folder, not a data file; give a data.yaml (train, val and names; e.g. {source / 'data.yaml'})"


def _refuse_class_folders(spec: dict, root: Path, source: Path, task: Task) -> None:
    """``DataError`` naming classification data when data.yaml ``source``'s train folder holds one folder of images per
    class: said where a ``task`` model finds the file lacking (no names, no labelled objects)."""
    train = _entry_path(spec["train"], root) if isinstance(spec["train"], str) else None
    if train is not None and _holds_class_folders(train):
        raise DataError(_classification_text(source, train, task))


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


def write_resolved_yaml(dataset: Dataset, out: str | Path) -> Path:
    """Write ``dataset`` as the study's own data.yaml at ``out``, over a view of it in ``data/`` beside it:
    each image linked (copied when Ultralytics would rewrite it: a JPEG without its end marker, which it
    "restores" in place), each label file copied. Trainings on it find the same images wherever they start,
    and write Ultralytics' label caches into the study, never beside the user's data, which may be
    read-only or shared. Rebuilt only when the dataset's files change (`Dataset.content`); paths inside are
    relative, so the study can move. A classifier's view is ``data/train/<class>/`` and ``data/val/<class>/``."""
    out = Path(out)
    view = out.parent / "data"
    manifest = {"source": str(dataset.yaml_path), "content": dataset.content}
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(out.parent / ".data.lock"):
        if not (out.is_file() and (view / "manifest.json").is_file() and json.loads((view / "manifest.json").read_text()) == manifest):
            fresh = view.with_name("data.new")
            shutil.rmtree(fresh, ignore_errors=True)
            for image, place in _placed(dataset, fresh, dataset.train):
                copy = place.with_name(place.name + image.suffix)
                _link_or_copy(image.resolve(), copy)
                if not dataset.image_folders:
                    _copy_labels(image, copy)
            (fresh / "manifest.json").write_text(json.dumps(manifest))
            shutil.rmtree(view, ignore_errors=True)  # a training that opened its files keeps reading them
            fresh.rename(view)
            replace_file(out, f"# {dataset.yaml_path}, resolved\n" + yaml.safe_dump(_written_spec(dataset, "data/"), sort_keys=False))
    return out


def _placed(dataset: Dataset, root: Path, train) -> Iterator[tuple[Path, Path]]:
    """Each image of ``train`` (the dataset's train images, or a subset) and of its val split, with where a copy of the
    dataset under ``root`` puts it, without suffix (its folder made): ``images/<split>/<n>_<stem>``, or for a classifier
    ``<split>/<class name>/<n>_<stem>``."""
    for split, images in (("train", train), ("val", dataset.val)):
        for n, image in enumerate(images):
            folder = root / split / dataset.names[dataset.class_of[image]] if dataset.image_folders else root / "images" / split
            folder.mkdir(parents=True, exist_ok=True)
            yield image, folder / f"{n:06d}_{image.stem}"


def _copy_labels(image: Path, copy: Path) -> None:
    """The label file of ``image`` (empty when it has none) where Ultralytics looks for the labels of its ``copy``."""
    labels, copied = label_path(image), label_path(copy)
    copied.parent.mkdir(parents=True, exist_ok=True)
    copied.write_text(labels.read_text() if labels.is_file() else "")


def _written_spec(dataset: Dataset, prefix: str) -> dict:
    """The data.yaml of a copy of ``dataset`` this module writes, its splits under folder ``prefix`` (relative, "" or
    "data/"); a classifier's says ``task: classify`` (`ultralytics_data`)."""
    if dataset.image_folders:
        return {"task": dataset.task, "train": f"{prefix}train", "val": f"{prefix}val", "names": dataset.names}
    return {"train": f"{prefix}images/train", "val": f"{prefix}images/val", "names": dataset.names, **dataset.extra}


def ultralytics_data(data_yaml: str | Path) -> str:
    """What to give Ultralytics as ``data=`` for a data.yaml this module wrote: the yaml itself, or for a classifier
    (Ultralytics reads no data.yaml for one) the folder holding its sibling ``train`` and ``val`` folders."""
    data_yaml = Path(data_yaml)
    spec = yaml.safe_load(data_yaml.read_text())
    if spec.get("task") != "classify":
        return str(data_yaml)
    train, val = Path(spec["train"]), Path(spec["val"])
    if (train.name, val.name, train.parent) != ("train", "val", val.parent):
        raise DataError(f"{data_yaml}: train and val must be sibling folders named train and val for Ultralytics' classifier; "
                        "write the data again (write_resolved_yaml, build_proxy_data)")
    return str((data_yaml.parent / train.parent).resolve())


def _link_or_copy(image: Path, link: Path) -> None:
    """``link`` to ``image``; a copy where linking fails, or where Ultralytics would rewrite the file (a
    JPEG that does not end with its FFD9 marker)."""
    if image.suffix.lower() in (".jpg", ".jpeg") and not _jpeg_ends(image):
        shutil.copyfile(image, link)
        return
    try:
        link.symlink_to(image)
    except OSError:  # a filesystem without links
        shutil.copyfile(image, link)


def build_proxy_data(dataset: Dataset, out_dir: str | Path, imgsz: int, fraction: float = 1.0, seed: int = 0) -> Path:
    """Write (once) a resized, seeded subset of ``dataset`` under ``out_dir``; returns its data.yaml.

    ``imgsz`` is the longest image side in pixels; ``fraction`` the share of training images kept
    (validation is kept whole, so scores stay comparable). A second call with the same settings
    reuses the files. A classifier's proxy is ``train/<class>/`` and ``val/<class>/``, its subset keeping every class.
    """
    if not 0 < fraction <= 1:
        raise DataError(f"proxy fraction {fraction} must be in (0, 1]")
    out = Path(out_dir).resolve()
    settings = {"source": str(dataset.yaml_path), "content": dataset.content, "imgsz": imgsz, "fraction": fraction,
                "seed": seed, "task": dataset.task}
    manifest = out / "manifest.json"
    data_yaml = out / "data.yaml"
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(out / ".lock"):  # workers of one study starting together: one builds, the others wait and reuse
        built = json.loads(manifest.read_text()) if manifest.is_file() and data_yaml.is_file() else {}
        if {key: built.get(key) for key in settings} != settings:
            _write_proxy_data(dataset, out, imgsz, fraction, seed)
        # Ultralytics' label caches hold absolute image paths: scanned again where the study lies now
        # (built here, or moved or copied since; earlier studies also wrote an absolute root into data.yaml).
        if built != {**settings, "folder": str(out)}:
            replace_file(data_yaml, yaml.safe_dump(_written_spec(dataset, "")))
            write_label_caches(out, {"names": dataset.names, **dataset.extra}, dataset.task)
            manifest.write_text(json.dumps({**settings, "folder": str(out)}))
    return data_yaml


def _write_proxy_data(dataset: Dataset, out: Path, imgsz: int, fraction: float, seed: int) -> None:
    """The images and labels of `build_proxy_data` under ``out`` (an earlier build's files removed:
    images dropped from the dataset since must not stay in the proxy)."""
    import cv2

    for folder in ("images", "labels", "train", "val"):
        shutil.rmtree(out / folder, ignore_errors=True)
    for image, place in _placed(dataset, out, _proxy_subset(dataset, fraction, seed)):
        pixels = cv2.imread(str(image))
        if pixels is None:
            raise DataError(f"{image}: cannot be read as an image; remove it or replace it")
        h, w = pixels.shape[:2]
        ratio = imgsz / max(h, w)
        if ratio < 1:
            pixels = cv2.resize(pixels, (max(1, round(w * ratio)), max(1, round(h * ratio))), interpolation=cv2.INTER_AREA)
        copy = place.with_name(place.name + ".jpg")
        cv2.imwrite(str(copy), pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not dataset.image_folders:
            _copy_labels(image, copy)


def _proxy_subset(dataset: Dataset, fraction: float, seed: int) -> list[Path]:
    """The seeded ``fraction`` of the train images a proxy keeps, sorted; a classifier's keeps at least one image of
    each class (the first of the shuffle), so that its proxy names the same classes."""
    train = list(dataset.train)
    random.Random(seed).shuffle(train)
    kept = train[: max(1, round(len(train) * fraction))]
    missing = set(dataset.class_of.values()) - {dataset.class_of.get(image) for image in kept}
    kept += [next(image for image in train if dataset.class_of[image] == cls) for cls in sorted(missing)]
    return sorted(kept)


def write_label_caches(root: Path, data: dict, task: str) -> None:
    """Have Ultralytics scan the labels under ``root/labels/<split>`` for ``task`` (``data``: names and the
    task's keys, e.g. kpt_shape) and save ``labels/<split>.cache``; the cache does not say which task it
    was scanned for, so it must be this one. A classifier's cache is of its image checks: ``<split>.cache``
    beside its folder ``root/<split>`` (keyed by the image paths and the classes).

    Trainings that start together and all find no cache race to write it, and Ultralytics' writer
    fails in the loser (it deletes the file the winner wrote: FileNotFoundError); with the caches
    written first, they only read them. The scan's lines are not shown (each training logs the
    cached warnings again)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import ClassificationDataset, YOLODataset

    with ultralytics_logs_above(logging.CRITICAL + 1):  # the scan's progress bar off too
        for split in ("train", "val"):
            if task == "classify":
                ClassificationDataset(str(root.resolve() / split), get_cfg(), augment=False, prefix=split)
            else:
                YOLODataset(img_path=str(root.resolve() / "images" / split), data=data, augment=False, task=task)


TOY_KEYPOINTS = 4  # a toy pose object's keypoints: the corners of its rectangle (the extreme points of its ellipse)


def make_toy_dataset(root: str | Path, n_train: int = 16, n_val: int = 8, imgsz: int = 96, n_classes: int = 2, seed: int = 0,
                     task: str = "detect") -> Path:
    """Generate a small dataset of coloured rectangles and ellipses for ``task``; returns its data.yaml, or for
    ``classify`` its folder (`_make_toy_folders`), as Ultralytics takes a classifier's data.

    Class 0 is a filled rectangle, class 1 a filled ellipse, further classes other colours of
    rectangle. Images are ``imgsz`` pixels square with 1-3 objects each, so a model learns the task
    in a few epochs on the CPU. Labels: boxes (detect), the shapes' outlines as polygons (segment), boxes
    with the `TOY_KEYPOINTS` corners as keypoints (pose, ``kpt_shape: [4, 3]``), or the four corners of
    shapes turned by a random angle (obb). The same seed draws the same detection set as before tasks.
    """
    import numpy as np

    root = Path(root)
    rng = np.random.default_rng(seed)
    if task == "classify":
        return _make_toy_folders(root, n_train, n_val, imgsz, n_classes, rng)
    import cv2

    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            image = _toy_background(rng, imgsz)
            lines = []
            for _ in range(int(rng.integers(1, 4))):
                cls = int(rng.integers(0, n_classes))
                w, h = (int(v) for v in rng.integers(imgsz // 6, imgsz // 2, 2))
                x0, y0 = int(rng.integers(0, imgsz - w)), int(rng.integers(0, imgsz - h))
                angle = float(rng.uniform(0, 90)) if task == "obb" else 0.0
                outline, corners, extremes = _draw_toy_shape(image, cls, (x0, y0, w, h), angle)
                xy = lambda points: " ".join(f"{min(max(v / imgsz, 0.0), 1.0):.6f}" for point in points for v in point)  # noqa: E731
                box = f"{(x0 + w / 2) / imgsz:.6f} {(y0 + h / 2) / imgsz:.6f} {w / imgsz:.6f} {h / imgsz:.6f}"
                label = {"detect": box, "segment": xy(outline[:-1] if cls == 1 else outline), "obb": xy(corners),
                         "pose": box + " " + " ".join(f"{xy([point])} 2" for point in extremes)}[task]
                lines.append(f"{cls} {label}")
            cv2.imwrite(str(root / "images" / split / f"{n:04d}.png"), image)
            (root / "labels" / split / f"{n:04d}.txt").write_text("\n".join(lines) + "\n")
    data_yaml = root / "data.yaml"
    spec = {"path": str(root.resolve()), "train": "images/train", "val": "images/val", "names": _toy_names(n_classes)}
    if task == "pose":
        spec["kpt_shape"] = [TOY_KEYPOINTS, 3]
    data_yaml.write_text(yaml.safe_dump(spec))
    return data_yaml


def _make_toy_folders(root: Path, n_train: int, n_val: int, imgsz: int, n_classes: int, rng) -> Path:
    """The classification toy set: ``root/<split>/<class name>/<n>.png``, each image one large shape of its class
    (half to three quarters of the ``imgsz`` px side, anywhere it fits) on a noisy background; the ``n_train`` and
    ``n_val`` images of a split spread evenly over the classes. Returns ``root``."""
    import cv2

    names = _toy_names(n_classes)
    for split, count in (("train", n_train), ("val", n_val)):
        if count < n_classes:
            raise ValueError(f"{count} {split} images cannot show {n_classes} classes; make at least one image per class")
        for n in range(count):
            cls = n % n_classes
            image = _toy_background(rng, imgsz)
            w, h = (int(v) for v in rng.integers(imgsz // 2, imgsz * 3 // 4, 2))
            _draw_toy_shape(image, cls, (int(rng.integers(0, imgsz - w)), int(rng.integers(0, imgsz - h)), w, h), 0.0)
            (root / split / names[cls]).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / names[cls] / f"{n:04d}.png"), image)
    return root


TOY_COLOURS = [(40, 40, 220), (40, 200, 40), (220, 60, 40), (200, 200, 40), (200, 40, 200)]  # BGR, by class id


def _toy_names(n_classes: int) -> dict[int, str]:
    """The toy classes: rectangle, ellipse, then rectangle2, rectangle3, ... (other colours)."""
    return {i: ["rectangle", "ellipse"][i] if i < 2 else f"rectangle{i}" for i in range(n_classes)}


def _toy_background(rng, imgsz: int):
    """An ``imgsz`` px square BGR image of one random grey with noise."""
    import numpy as np

    image = np.full((imgsz, imgsz, 3), rng.integers(90, 160), dtype=np.uint8)
    image += rng.integers(0, 25, image.shape, dtype=np.uint8)
    return image


def _draw_toy_shape(image, cls: int, box: tuple[int, int, int, int], angle: float) -> tuple:
    """Fill class ``cls``'s shape (1: an ellipse, others: a rectangle) into ``box`` (x0, y0, w, h px) of ``image``,
    turned by ``angle`` degrees; returns its outline, its four corners and its four extreme points (px)."""
    import cv2
    import numpy as np

    x0, y0, w, h = box
    colour = TOY_COLOURS[cls % len(TOY_COLOURS)]
    centre, half = (x0 + w / 2, y0 + h / 2), (w / 2, h / 2)
    corners = cv2.boxPoints((centre, (w, h), angle))  # (4, 2) pixels
    if cls == 1:
        outline = cv2.ellipse2Poly((x0 + w // 2, y0 + h // 2), (w // 2, h // 2), round(angle), 0, 360, 24)
        if angle:
            cv2.fillPoly(image, [outline], colour)
        else:  # drawn as the detection set always was
            cv2.ellipse(image, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), 0, 0, 360, colour, -1)
        extremes = [(centre[0] - half[0], centre[1]), (centre[0], centre[1] - half[1]),
                    (centre[0] + half[0], centre[1]), (centre[0], centre[1] + half[1])]
        return outline, corners, extremes
    outline = corners.round().astype(np.int32)
    if angle:
        cv2.fillPoly(image, [outline], colour)
    else:
        cv2.rectangle(image, (x0, y0), (x0 + w, y0 + h), colour, -1)
    return outline, corners, corners.tolist()
