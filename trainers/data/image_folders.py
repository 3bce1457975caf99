"""Classification data as an ImageFolder (one folder of images per class), and class folders given to another task."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.data.dataset import DataError, Dataset, entry_path, images_under, is_image, label_path, not_found
from trainers.data.images import broken_images, check_dropped

if TYPE_CHECKING:  # spaces imports Ultralytics: only once prepare_ultralytics has run
    from spaces.tasks import Task


VAL_FOLDERS = ("val", "validation", "valid", "test")  # a classification folder's val split, as Ultralytics looks for it


def load_image_folders(source: Path, folders: dict[str, Path], given: dict[int, str] | None) -> Dataset:
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
        broken = broken_images(listed, split, source)
        bad = dict(broken)
        for name, images in classes.items():
            kept = [image for image in images if image not in bad]
            if not kept:
                raise DataError(f"{folders[split] / name}: an empty class folder (no image Ultralytics can read); add images "
                                f"of '{name}' or remove the folder")
            class_of.update(dict.fromkeys(kept, ids[name]))
        check_dropped(broken, listed, split, source)
        splits[split] = tuple(image for image in listed if image in class_of)
        unusable += broken
    return Dataset(source.resolve(), names, splits["train"], splits["val"], tuple(unusable), task="classify", class_of=class_of)


def root_folders(source: Path) -> dict[str, Path]:
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


def yaml_folders(spec: dict, root: Path, source: Path) -> dict[str, Path]:
    """The train and val folders a classifier's data.yaml ``source`` names (relative to ``root``)."""
    folders = {}
    for key in ("train", "val"):
        path = entry_path(spec[key], root) if isinstance(spec[key], str) else None
        if path is None or path.is_file():
            raise DataError(f"{source}: '{key}: {spec[key]}' is not a folder; a classifier's data.yaml names one folder of "
                            f"class folders a split; fix '{key}'")
        if not path.is_dir():
            raise not_found(source, key, spec[key], path)
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
    return {sub.name: images_under(sub) for sub in sorted(folder.iterdir()) if sub.is_dir()}


def _detection_style(folder: Path, images: list[Path]) -> bool:
    """Whether split ``folder`` (holding ``images`` in its subfolders) is laid out for detection: images directly in it,
    or label files where Ultralytics looks for them (its ``/images/`` to ``/labels/`` rule)."""
    return (any(is_image(p) and p.is_file() for p in folder.iterdir())
            or any(label_path(image).is_file() for image in images if f"{os.sep}images{os.sep}" in str(image)))


def _holds_class_folders(folder: Path) -> bool:
    """Whether ``folder`` is one split of a classification dataset: images in its subfolders, none directly in it, no labels."""
    images = [image for images in _class_folders(folder).values() for image in images] if folder.is_dir() else []
    return bool(images) and not _detection_style(folder, images)


def _classification_text(source: Path, train: Path, task: Task) -> str:
    """One line for classification data (train folder ``train``) given to a ``task`` model."""
    return (f"{source}: a classification dataset ({train} holds one folder of images per class, no label files) and the model "
            f"a {task.name} model; give a -cls --model (e.g. --model yolov8n-cls.yaml) or a {task.name} data.yaml")


def folder_text(source: Path, task: Task) -> str:
    """One line for folder ``source`` given as the data of a ``task`` model, which reads a data.yaml."""
    if _holds_class_folders(source / "train"):
        return _classification_text(source, source / "train", task)
    return f"{source}: a folder, not a data file; give a data.yaml (train, val and names; e.g. {source / 'data.yaml'})"


def refuse_class_folders(spec: dict, root: Path, source: Path, task: Task) -> None:
    """``DataError`` naming classification data when data.yaml ``source``'s train folder holds one folder of images per
    class: said where a ``task`` model finds the file lacking (no names, no labelled objects)."""
    train = entry_path(spec["train"], root) if isinstance(spec["train"], str) else None
    if train is not None and _holds_class_folders(train):
        raise DataError(_classification_text(source, train, task))
