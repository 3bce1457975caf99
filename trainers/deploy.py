"""Deployment files of a trained model, each checked against the PyTorch model it came from.

`export_checked` copies a training's best.pt to ``<stem>.pt`` and exports it with Ultralytics' own exporter, ONNX
and TorchScript by default (any format Ultralytics exports when its packages are installed: openvino, engine,
coreml, ...), beside it. A gate that trained to exactly 0 contributes nothing (``x + 0 * (attn(x) - x)``), so its
module is dropped from the exported graph (`drop_closed_gates`). Each exported file is then run through
Ultralytics' own predictor on real images, with the same letterbox, next to the .pt: the largest absolute
difference of the raw outputs, relative to their largest magnitude, and whether the detections at confidence
`CONF` are the same (count and classes, boxes within `BOX_TOLERANCE_PX`). Export is on the CPU, at batch 1 and the
training's image size, without onnxslim (``simplify=False``: it is not a dependency, and offline Ultralytics would
try to install it).
Torch, Ultralytics (yolo_attention_modules too), cv2 and numpy are imported inside functions: `search.cli` imports this at start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from trainers.offline import ultralytics_logs_above

CONF = 0.25  # detections compared at Ultralytics' default confidence
BOX_TOLERANCE_PX = 1.0  # boxes of "the same detection" differ by at most this, in pixels of the image
RELATIVE_TOLERANCE = 1e-3  # raw outputs within this share of their largest magnitude: float32 export noise
DEFAULT_FORMATS = ("onnx", "torchscript")
CHECK_IMAGES = 8  # val images a search checks each export on
CHECKS_FILE = "deploy.json"  # beside the exported files: what `export_checked` found, for the report


@dataclass(frozen=True)
class ExportCheck:
    """One exported file against the PyTorch model: ``relative`` is the largest absolute difference of the raw
    outputs over their largest magnitude; ``same`` the images whose detections match; ``ok`` whether every image
    matched and ``relative`` is within `RELATIVE_TOLERANCE`. ``reason`` says why an export failed."""

    format: str
    file: str
    ok: bool
    images: int = 0
    same: int = 0
    max_abs: float | None = None
    relative: float | None = None
    max_box_px: float | None = None
    dropped_gates: int = 0
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def drop_closed_gates(model) -> int:
    """Replace, in place, every `yolo_attention_modules.Gated` whose gate is exactly 0 by the identity it computes;
    the number replaced."""
    from torch import nn

    from yolo_attention_modules import Gated

    dropped = 0
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, Gated) and float(child.gate.detach()) == 0.0:
                identity = nn.Identity()
                for key in ("f", "i", "type"):  # a layer of the model's own list: Ultralytics routes by these
                    if hasattr(child, key):
                        setattr(identity, key, getattr(child, key))
                identity.np = 0
                setattr(parent, name, identity)
                dropped += 1
    return dropped


def export_checked(weights: str | Path, stem: str | Path, imgsz: int, images: list[Path],
                   formats: tuple[str, ...] = DEFAULT_FORMATS) -> list[ExportCheck]:
    """``weights`` copied to ``<stem>.pt`` and exported to each of ``formats`` beside it, each checked on ``images``
    at ``imgsz`` px; the checks are also written to `CHECKS_FILE` beside ``stem``."""
    from ultralytics import YOLO

    stem = Path(stem)
    pt, record = stem.with_suffix(".pt"), stem.parent / CHECKS_FILE
    asked = {"weights": _digest(Path(weights)), "imgsz": imgsz, "images": [Path(i).name for i in images], "formats": list(formats)}
    done = json.loads(record.read_text()) if record.is_file() else {}
    if done.get("asked") == asked and pt.is_file() and all((stem.parent / c["file"]).exists() for c in done["checks"] if c["file"]):
        return [ExportCheck(**c) for c in done["checks"]]  # nothing changed: an export is not repeated on resume
    pt.parent.mkdir(parents=True, exist_ok=True)
    if Path(weights).resolve() != pt.resolve():
        shutil.copyfile(weights, pt)
    reference = YOLO(str(pt))
    checks = []
    for name in formats:
        model = YOLO(str(pt))
        dropped = drop_closed_gates(model.model)
        try:
            options = {"simplify": False} if name == "onnx" else {}  # the only format here that would run onnxslim
            with ultralytics_logs_above(logging.WARNING):  # the exporter's banner and hints are not ours to print
                exported = Path(model.export(format=name, imgsz=imgsz, device="cpu", verbose=False, **options))
            check = _compare(reference, YOLO(str(exported), task=reference.task), images, imgsz)
            checks.append(ExportCheck(name, exported.name, dropped_gates=dropped, **check))
        except Exception as error:  # a format whose packages are missing, or that Ultralytics cannot export this model to
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            checks.append(ExportCheck(name, "", False, dropped_gates=dropped, reason=f"{type(error).__name__}: {reason}"))
    record.write_text(json.dumps({"asked": asked, "checks": [c.to_dict() for c in checks]}, indent=1))
    return checks


def read_checks(folder: str | Path) -> list[ExportCheck]:
    """The checks `export_checked` wrote into ``folder``, or none."""
    path = Path(folder) / CHECKS_FILE
    return [ExportCheck(**c) for c in json.loads(path.read_text())["checks"]] if path.is_file() else []


def _digest(path: Path) -> str:
    """sha1 of a file's bytes: the deployment files are exported again only when the weights changed."""
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _compare(reference, exported, images: list[Path], imgsz: int) -> dict:
    """Raw outputs and detections of ``exported`` against ``reference`` (two `ultralytics.YOLO`) on ``images``."""
    import cv2
    import numpy as np

    max_abs = scale = box_px = 0.0
    same = 0
    for path in images:
        image = cv2.imread(str(path))
        # rect=False: the square letterbox a static export takes, for the .pt too (it would pad a rectangle minimally)
        kept = [model.predict(image, imgsz=imgsz, conf=CONF, rect=False, device="cpu", verbose=False)[0]
                for model in (reference, exported)]
        tensor = reference.predictor.preprocess([image])  # that letterbox, one tensor for both
        raw = [_first(model.predictor.model(tensor)) for model in (reference, exported)]
        if raw[0].shape != raw[1].shape:
            return {"ok": False, "images": len(images), "reason": f"output shapes differ: {raw[0].shape} and {raw[1].shape}"}
        max_abs = max(max_abs, float(np.abs(raw[0] - raw[1]).max()))
        scale = max(scale, float(np.abs(raw[0]).max()))
        matched, px = _same_detections(*kept)
        same += matched
        box_px = max(box_px, px)
    relative = max_abs / scale if scale else 0.0
    ok = same == len(images) and relative <= RELATIVE_TOLERANCE
    return {"ok": ok, "images": len(images), "same": same, "max_abs": max_abs, "relative": relative, "max_box_px": box_px}


def _first(output):
    """The first tensor of a model's output (a tensor, or a list or tuple holding tensors) as a numpy array."""
    while isinstance(output, (list, tuple)):
        output = output[0]
    return output.detach().float().cpu().numpy() if hasattr(output, "detach") else output


def _same_detections(a, b) -> tuple[bool, float]:
    """Whether two `ultralytics.engine.results.Results` hold the same detections (count, classes, boxes within
    `BOX_TOLERANCE_PX`), and the largest box difference in pixels; a classifier's top-1 class instead."""
    if a.probs is not None:
        return int(a.probs.top1) == int(b.probs.top1), 0.0
    boxes_a, boxes_b = (r.obb if r.obb is not None else r.boxes for r in (a, b))
    if len(boxes_a) != len(boxes_b):
        return False, float("inf")
    if not len(boxes_a):
        return True, 0.0
    order_a, order_b = boxes_a.conf.argsort(descending=True), boxes_b.conf.argsort(descending=True)
    if not bool((boxes_a.cls[order_a] == boxes_b.cls[order_b]).all()):
        return False, float("inf")
    px = float((boxes_a.data[order_a, :4] - boxes_b.data[order_b, :4]).abs().max())
    return px <= BOX_TOLERANCE_PX, px
