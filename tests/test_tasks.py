"""`spaces.tasks`: the task registry, which task a base model is, and what each row promises the trainer,
the search and the report (its score among its metrics, its model class, its label rule)."""

from __future__ import annotations

import pytest

from spaces import load_base
from spaces.tasks import TASKS, task_of


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_row_is_complete(name):
    task = TASKS[name]
    assert task.score in task.metric_names and task.score_label
    assert len(set(task.metric_names)) == len(task.metrics) and task.losses and task.heads
    import ultralytics.nn.tasks

    assert isinstance(getattr(ultralytics.nn.tasks, task.model_class), type)


def test_the_task_is_read_from_the_base_model():
    assert task_of(load_base("yolov8n.yaml")) is TASKS["detect"]
    assert task_of(load_base("yolo26n.yaml")) is TASKS["detect"]  # the NMS-free end-to-end head is a Detect too
    model = TASKS["detect"].model(load_base("yolov8n.yaml"), verbose=False)
    assert type(model).__name__ == "DetectionModel"


@pytest.mark.parametrize("yaml, what", [("yolov8n-seg.yaml", "a segmentation model"), ("yolov8n-pose.yaml", "a pose model")])
def test_a_base_of_a_task_not_served_is_one_line(yaml, what):
    with pytest.raises(ValueError, match=f"is {what}; this tool searches YOLO models of these tasks: detect") as err:
        load_base(yaml)
    assert "\n" not in str(err.value)


def test_detection_label_lines():
    rule = TASKS["detect"].label_values
    assert rule(5) and rule(7) and rule(9)  # a box, or a polygon Ultralytics turns into its box
    assert not rule(4) and not rule(6) and not rule(8)


def test_the_insertion_option_lists_what_the_builder_builds():
    """search.config repeats spaces.gate.INSERTIONS so that options are checked without importing torch."""
    from search.config import INSERTIONS
    from spaces.gate import INSERTIONS as BUILT

    assert INSERTIONS == BUILT
