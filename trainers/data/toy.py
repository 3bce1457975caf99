"""A generated toy dataset of every task: coloured rectangles and ellipses a model learns in a few CPU epochs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

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
    root = Path(root)
    rng = np.random.default_rng(seed)
    if task == "classify":
        return _make_toy_folders(root, n_train, n_val, imgsz, n_classes, rng)
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
    image = np.full((imgsz, imgsz, 3), rng.integers(90, 160), dtype=np.uint8)
    image += rng.integers(0, 25, image.shape, dtype=np.uint8)
    return image


def _draw_toy_shape(image, cls: int, box: tuple[int, int, int, int], angle: float) -> tuple:
    """Fill class ``cls``'s shape (1: an ellipse, others: a rectangle) into ``box`` (x0, y0, w, h px) of ``image``,
    turned by ``angle`` degrees; returns its outline, its four corners and its four extreme points (px)."""
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
