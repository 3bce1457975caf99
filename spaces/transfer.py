"""Index-aware weight transfer from a base model to a model built with a `Placement`.

Ultralytics names tensors ``model.<layer>.<path>``; inserting layers shifts ``<layer>`` and its own
name matching (``intersect_dicts``) then drops most tensors after the first insertion. Here each
base tensor moves to its layer's new index; fused blocks keep their sub-module names, so
``<path>`` never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn
from ultralytics import YOLO
from ultralytics.utils.torch_utils import intersect_dicts

from spaces.build import layer_map
from spaces.layers import checkpoint_model
from spaces.placement import Placement
from spaces.tasks import task_of


@dataclass(frozen=True)
class TransferReport:
    """Counts of base tensors: ``transferred`` of ``total`` kept-layer tensors; ``removed`` were in dropped layers."""

    transferred: int
    total: int
    removed: int
    missing: tuple[str, ...]

    def __str__(self) -> str:
        text = f"transferred {self.transferred}/{self.total} base tensors"
        return text + (f" ({self.removed} in removed layers)" if self.removed else "")


def base_model(source: str | Path | nn.Module) -> nn.Module:
    """The base model (a `DetectionModel` or kin) from a checkpoint path, a `YOLO` object or a model."""
    if isinstance(source, (str, Path)):
        return checkpoint_model(source)
    return _detection_model(source)


def _detection_model(model: nn.Module) -> nn.Module:
    """The model inside an Ultralytics `YOLO` wrapper, or the model itself."""
    return model.model if isinstance(model, YOLO) else model


def check_matches(source: str | Path | nn.Module, base: dict) -> None:
    """``ValueError`` in one line unless every tensor of the checkpoint fits base model dict ``base``
    (the head's class layers, which follow the dataset's classes, aside). A detection checkpoint may start a
    model of another task (segment, pose, obb): its backbone, neck and box head transfer, and the task's own
    head branches start fresh."""
    checkpoint = base_model(source)
    made_for, base_task = task_of(checkpoint.yaml).name, task_of(base).name
    if "classify" in (made_for, base_task) and made_for != base_task:
        raise ValueError(f"checkpoint '{source}' is a {made_for} model and the base a {base_task} model: a classifier and a "
                         "box model share no head and few layers; give a checkpoint of the base's task (e.g. yolov8n-cls.pt for "
                         "yolov8n-cls.yaml) or leave --weights out to train from scratch")
    expected = task_of(base).model({**base, "nc": checkpoint.yaml.get("nc", base.get("nc"))}, verbose=False).state_dict()
    found = checkpoint.state_dict()
    wrong = [k for k, v in found.items() if k not in expected or expected[k].shape != v.shape]
    across = task_of(checkpoint.yaml).name == "detect" and task_of(base).name != "detect"
    if wrong or (len(found) != len(expected) and not across):
        raise ValueError(
            f"checkpoint '{source}' does not match the base model ({len(wrong)} of {len(found)} tensors differ in name or "
            "shape, e.g. another scale): give --model with the checkpoint itself, or the YAML it was trained from"
        )


def check_keypoints(source: str | Path | nn.Module, kpt_shape: list, data: str | Path) -> None:
    """``ValueError`` in one line when a pose checkpoint predicts other keypoints than the data's ``kpt_shape``
    (a detection checkpoint has none: the keypoint branch starts fresh)."""
    found = base_model(source).yaml.get("kpt_shape")
    if found is not None and list(found) != list(kpt_shape):
        raise ValueError(f"checkpoint '{source}' predicts kpt_shape {list(found)} and {data} has kpt_shape {list(kpt_shape)}; "
                         "give a checkpoint trained on these keypoints, a detection checkpoint, or the pose YAML to start from scratch")


def transfer_weights(source: str | Path | nn.Module, new_model: nn.Module, placement: Placement) -> TransferReport:
    """Copy every tensor of the base model into ``new_model`` (built from the base with ``placement``)."""
    base = base_model(source)
    new_model = _detection_model(new_model)
    mapping = layer_map(base.yaml, placement)
    target = new_model.state_dict()
    transferred, removed, missing = 0, 0, []
    base_state = base.state_dict()
    for key, tensor in base_state.items():
        prefix, layer, rest = key.split(".", 2)
        if int(layer) not in mapping:
            removed += 1
            continue
        new_key = f"{prefix}.{mapping[int(layer)]}.{rest}"
        if new_key in target and target[new_key].shape == tensor.shape:
            target[new_key] = tensor.to(target[new_key].dtype)
            transferred += 1
        else:
            missing.append(key)
    new_model.load_state_dict(target)
    return TransferReport(transferred, len(base_state) - removed, removed, tuple(missing))


def name_matched_count(source: str | Path | nn.Module, new_model: nn.Module) -> int:
    """How many base tensors Ultralytics' own name-and-shape matching would transfer (for comparison)."""
    base = base_model(source)
    return len(intersect_dicts(base.state_dict(), _detection_model(new_model).state_dict()))
