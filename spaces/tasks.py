"""The Ultralytics tasks a search serves, one registry row each (`TASKS`), and which task a base is.

A `Task` says everything that differs between tasks: the head blocks that make a base model one of
its models, the Ultralytics model class that builds it, the metrics a training reports (Ultralytics'
results key, our name, the report's label), the score the search maximises, and which label files
Ultralytics would drop (none for a classifier, whose data is one folder of images per class). Loss names
are not listed: the diagnostics read them from the training's own records (Ultralytics derives them from
its loss). A new task is one row here plus its tests; the trainer, the search, the report and the data checks read it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import ultralytics.nn.tasks

METRICS_SEARCHED = ("task", "box")  # --metric: the task's own score, or its box mAP50-95


@dataclass(frozen=True)
class Metric:
    """One score of a training: Ultralytics' results key, our name, the name the report shows."""

    key: str
    name: str
    label: str


@dataclass(frozen=True)
class Task:
    """One Ultralytics task (module doc). Scores are fractions in [0, 1]."""

    name: str  # Ultralytics' task name (``YOLO(..., task=name)``)
    heads: frozenset[str]  # the last YAML block of a base model of this task
    model_class: str  # its class in ``ultralytics.nn.tasks``
    metrics: tuple[Metric, ...]
    score: str  # our name of the metric the search maximises
    # Why a label file would be dropped by Ultralytics, from its lines' value counts and the values per object
    # of the data's keypoints (kpt_shape; 0 without); None when it is usable. None: the task has no label files.
    label_problem: Callable[[list[int], int], str | None] | None
    keypoints: bool = False  # label lines are a box, then the data's keypoints (kpt_shape)
    masks: bool = False  # it learns masks from polygon labels
    rotated: bool = False  # its boxes are rotated: label lines are four corners

    @property
    def image_folders(self) -> bool:
        """Its data is an ImageFolder (``train/<class>/``, ``val/<class>/``, no label files): classification."""
        return self.label_problem is None

    @property
    def shown_beside(self) -> tuple[Metric, ...]:
        """The scores a race's table shows beside the searched one: box precision and recall, or a classifier's top-5."""
        return tuple(m for m in self.metrics if m.name in ("precision", "recall")) or tuple(m for m in self.metrics if m.name != self.score)

    @property
    def boxes(self) -> bool:
        """It reports box precision and recall (every task but classification)."""
        return any(m.name == "precision" for m in self.metrics)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def score_label(self) -> str:
        """The score's name as the report and the dashboard show it, e.g. ``mAP50-95``."""
        return next(m.label for m in self.metrics if m.name == self.score)

    def scored_on(self, metric: str) -> Task:
        """This task searching ``metric``: ``task`` (its own score) or ``box`` (its box mAP50-95, e.g. for a
        segmentation user who deploys the boxes)."""
        if metric not in METRICS_SEARCHED:
            raise ValueError(f"--metric '{metric}' is not known; choose one of {', '.join(METRICS_SEARCHED)}")
        if metric == "box" and not self.boxes:
            raise ValueError(f"--metric box: a {self.name} model has no boxes; leave --metric out to search its "
                             f"{self.score_label}")
        return self if metric == "task" else replace(self, score="map50_95")

    def model(self, cfg, **kwargs):
        """The Ultralytics model of this task built from ``cfg`` (a model dict or YAML path)."""
        return getattr(ultralytics.nn.tasks, self.model_class)(cfg, **kwargs)


BOX = (  # the box scores every task but classification reports, under (B)
    Metric("metrics/precision(B)", "precision", "P"),
    Metric("metrics/recall(B)", "recall", "R"),
    Metric("metrics/mAP50(B)", "map50", "mAP50"),
    Metric("metrics/mAP50-95(B)", "map50_95", "mAP50-95"),
)


ACCURACY = (  # a classifier's scores: the share of val images whose class is its first guess, or among its first five
    Metric("metrics/accuracy_top1", "top1", "top-1 acc"),
    Metric("metrics/accuracy_top5", "top5", "top-5 acc"),
)


def _beside_boxes(suffix: str, prefix: str) -> tuple[Metric, ...]:
    """The box scores named as such, then the four scores Ultralytics reports under ``(suffix)`` for a task's
    own output, e.g. masks (M): ``mask_map50_95``, "mask mAP50-95"."""
    boxes = tuple(Metric(m.key, m.name, f"box {m.label}") for m in BOX)
    return boxes + tuple(Metric(m.key.replace("(B)", f"({suffix})"), f"{prefix}_{m.name}", f"{prefix} {m.label}") for m in BOX)


def _boxes_or_polygons(lengths: list[int], kpt_values: int) -> str | None:
    """Ultralytics' rule for box and mask labels: ``class x y w h`` or a polygon ``class x1 y1 ...`` (at least 3
    points), and not both in one file."""
    bad = next((n for n in lengths if n != 5 and (n < 7 or n % 2 == 0)), None)
    if bad is not None:
        return f"a line has {bad} values, not class x y w h or a polygon class x1 y1 x2 y2 x3 y3 ..."
    if 5 in lengths and any(n > 6 for n in lengths):
        return "box lines and polygon lines are mixed in one file (Ultralytics drops it)"
    return None


def _keypoints(lengths: list[int], kpt_values: int) -> str | None:
    """Pose labels: ``class x y w h`` then the data's keypoints, ``kpt_shape`` values each."""
    bad = next((n for n in lengths if n != 5 + kpt_values), None)
    return None if bad is None else f"a line has {bad} values, not class x y w h and {kpt_values} keypoint values"


def _rotated_boxes(lengths: list[int], kpt_values: int) -> str | None:
    """OBB labels: ``class x1 y1 x2 y2 x3 y3 x4 y4``, the four corners."""
    bad = next((n for n in lengths if n != 9), None)
    return None if bad is None else f"a line has {bad} values, not class x1 y1 x2 y2 x3 y3 x4 y4"


TASKS = {
    "detect": Task("detect", frozenset({"Detect", "v10Detect"}), "DetectionModel", BOX, "map50_95", _boxes_or_polygons),
    "segment": Task("segment", frozenset({"Segment", "Segment26"}), "SegmentationModel", _beside_boxes("M", "mask"),
                    "mask_map50_95", _boxes_or_polygons, masks=True),
    "pose": Task("pose", frozenset({"Pose", "Pose26"}), "PoseModel", _beside_boxes("P", "pose"), "pose_map50_95", _keypoints,
                 keypoints=True),
    "obb": Task("obb", frozenset({"OBB", "OBB26"}), "OBBModel", BOX, "map50_95", _rotated_boxes, rotated=True),
    "classify": Task("classify", frozenset({"Classify"}), "ClassificationModel", ACCURACY, "top1", None),
}

# Heads of models no task here trains yet, and what they are (for the one-line refusal).
NOT_SERVED = {
    "YOLOEDetect": "a YOLOE model (open-vocabulary, needs text embeddings)",
    "YOLOESegment": "a YOLOE segmentation model (open-vocabulary, needs text embeddings)",
    "WorldDetect": "a YOLO-World model (open-vocabulary, needs text embeddings)",
    "RTDETRDecoder": "an RT-DETR model (transformer decoder, no YOLO detection head)",
}


def task_of(model: dict, name: str = "the base model") -> Task:
    """The task of model dict ``model`` (read from its last head block); ``ValueError`` in one line
    when no task here serves it. ``name`` is how the message names the model."""
    head = model["head"][-1][2] if model.get("head") else None
    found = next((task for task in TASKS.values() if head in task.heads), None)
    if found is None:
        what = NOT_SERVED.get(head, f"not a model of a task this tool serves (last layer {head})")
        served = ", ".join(f"{t.name} ({'/'.join(sorted(t.heads))} head)" for t in TASKS.values())
        raise ValueError(f"{name} is {what}; this tool searches YOLO models of these tasks: {served}, e.g. yolov8n.yaml, "
                         "yolo11n.yaml, yolov8n-cls.yaml or a checkpoint of one")
    return found
