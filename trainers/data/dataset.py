"""A resolved dataset (`Dataset`) and where its files lie, by Ultralytics' rules.

Detection, segmentation, pose and OBB data is an Ultralytics data.yaml with label files; classification
data is an ImageFolder (``train/<class>/``, ``val/<class>/``: a class is a folder, its ids the sorted folder
names), given as its folder or as a data.yaml naming the two split folders.
Ultralytics is imported inside functions: search's demo command imports this package before `prepare_ultralytics`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


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


def is_image(path: Path) -> bool:
    """Whether Ultralytics takes ``path`` for an image, by its suffix (its IMG_FORMATS)."""
    from ultralytics.data.utils import IMG_FORMATS

    return path.suffix[1:].lower() in IMG_FORMATS


def images_under(folder: Path) -> list[Path]:
    """The image files anywhere under ``folder``, sorted: those Ultralytics itself would find."""
    return sorted(filter(is_image, folder.rglob("*")))


def entry_path(entry, root: Path) -> Path:
    """A data.yaml's split entry as a path: absolute, or relative to the dataset's ``root``."""
    return Path(entry) if Path(entry).is_absolute() else root / entry


def not_found(source: Path, key: str, entry, path: Path) -> DataError:
    return DataError(f"{source}: '{key}: {entry}' does not exist (looked for {path}); fix the path in the file")
