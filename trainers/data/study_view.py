"""The study's copies of a dataset: its view of the user's data and the cached proxy subset.

`write_resolved_yaml` writes the study's view of the dataset (images linked, labels copied), so every
training reads the same images wherever it is started from and nothing is written beside the user's
data (its data.yaml through `trainers.files.replace_file`, which study files share: a reader never
sees one half-written). `build_proxy_data` writes, once per study, a
seeded subset of the training images pre-resized to the proxy size (validation images resized too),
so proxy trials do not decode full-size images again and again; it also writes Ultralytics' label
caches (a classifier's: of its image checks), under a lock, so that trials started together (Ray, several
workers) only read them. A classifier's copies are ImageFolders too, given to Ultralytics as their folder
(`ultralytics_data`).
Ultralytics is imported inside functions: search's demo command imports this package before `prepare_ultralytics`.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import yaml
from filelock import FileLock

from trainers.data.dataset import DataError, Dataset, label_path
from trainers.data.images import jpeg_ends
from trainers.files import replace_file
from trainers.offline import ultralytics_logs_above


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
    if image.suffix.lower() in (".jpg", ".jpeg") and not jpeg_ends(image):
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
