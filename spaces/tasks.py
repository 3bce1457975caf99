"""The Ultralytics tasks a search serves, one registry row each (`TASKS`), and which task a base is.

A `Task` says everything that differs between tasks: the head blocks that make a base model one of
its models, the Ultralytics model class that builds it, the metrics a training reports (Ultralytics'
results key, our name, the report's label), the score the search maximises, the loss names of its
training, and how many values a line of its label files holds. A new task is one row here plus its
tests; the trainer, the search, the report and the data checks read it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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
    losses: tuple[str, ...]  # loss names in Ultralytics' results (``train/<name>``, ``val/<name>``)
    label_values: Callable[[int], bool]  # whether a label line of this many values is one of this task's
    label_format: str  # that rule in words, for the data checks' messages

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def score_label(self) -> str:
        """The score's name as the report and the dashboard show it, e.g. ``mAP50-95``."""
        return next(m.label for m in self.metrics if m.name == self.score)

    def model(self, cfg, **kwargs):
        """The Ultralytics model of this task built from ``cfg`` (a model dict or YAML path)."""
        import ultralytics.nn.tasks

        return getattr(ultralytics.nn.tasks, self.model_class)(cfg, **kwargs)


TASKS = {
    "detect": Task(
        name="detect",
        heads=frozenset({"Detect", "v10Detect"}),
        model_class="DetectionModel",
        metrics=(
            Metric("metrics/precision(B)", "precision", "P"),
            Metric("metrics/recall(B)", "recall", "R"),
            Metric("metrics/mAP50(B)", "map50", "mAP50"),
            Metric("metrics/mAP50-95(B)", "map50_95", "mAP50-95"),
        ),
        score="map50_95",
        losses=("box_loss", "cls_loss", "dfl_loss"),
        # A box (class x y w h), or a polygon, which Ultralytics' detection trainer turns into its box.
        label_values=lambda n: n == 5 or (n >= 7 and n % 2 == 1),
        label_format="class x y w h",
    ),
}

# Heads of models no task here trains yet, and what they are (for the one-line refusal).
NOT_SERVED = {
    "Segment": "a segmentation model", "Pose": "a pose model", "OBB": "an oriented-box model",
    "Classify": "a classification model", "YOLOEDetect": "a YOLOE model (open-vocabulary, needs text embeddings)",
    "YOLOESegment": "a YOLOE segmentation model (open-vocabulary, needs text embeddings)",
    "WorldDetect": "a YOLO-World model (open-vocabulary, needs text embeddings)",
    "RTDETRDecoder": "an RT-DETR model (transformer decoder, no YOLO detection head)",
}  # fmt: skip


def task_of(model: dict, name: str = "the base model") -> Task:
    """The task of model dict ``model`` (read from its last head block); ``ValueError`` in one line
    when no task here serves it. ``name`` is how the message names the model."""
    head = model["head"][-1][2] if model.get("head") else None
    found = next((task for task in TASKS.values() if head in task.heads), None)
    if found is None:
        what = NOT_SERVED.get(head, f"not a model of a task this tool serves (last layer {head})")
        served = ", ".join(f"{t.name} ({'/'.join(sorted(t.heads))} head)" for t in TASKS.values())
        raise ValueError(f"{name} is {what}; this tool searches YOLO models of these tasks: {served}, e.g. yolov8n.yaml, "
                         "yolo11n.yaml, yolov5nu.yaml or a checkpoint of one")  # fmt: skip
    return found
