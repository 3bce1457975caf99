"""A data.yaml split's images and those of their label files Ultralytics would drop whole."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.data.dataset import DataError, entry_path, images_under, label_path, not_found

if TYPE_CHECKING:  # spaces imports Ultralytics: only once prepare_ultralytics has run
    from spaces.tasks import Task


def split_images(spec, root: Path, source: Path, key: str) -> list[Path]:
    images: list[Path] = []
    for entry in spec if isinstance(spec, list) else [spec]:
        path = entry_path(entry, root)
        if path.is_dir():
            images += images_under(path)
        elif path.is_file() and path.suffix == ".txt":
            for line in filter(None, map(str.strip, path.read_text().splitlines())):
                # Ultralytics' rule: a line starting ./ is relative to the list's folder (others, here, to the root)
                image = path.parent / line[2:] if line.startswith("./") else Path(line) if Path(line).is_absolute() else root / line
                images.append(image)
        else:
            raise not_found(source, key, entry, path)
    if not images:
        listed = ", ".join(map(str, spec if isinstance(spec, list) else [spec]))
        raise DataError(f"{source}: '{key}' holds no images ({listed}); add images or fix the path")
    return images


def check_labels(images: list[Path], nc: int, source: Path, task: Task,
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
