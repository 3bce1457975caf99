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
    assert len(set(task.metric_names)) == len(task.metrics) and task.heads
    import ultralytics.nn.tasks

    assert isinstance(getattr(ultralytics.nn.tasks, task.model_class), type)


@pytest.mark.parametrize("generation", ["yolov8n", "yolo11n", "yolo26n"])
@pytest.mark.parametrize("name, suffix", [("detect", ""), ("segment", "-seg"), ("pose", "-pose"), ("obb", "-obb"),
                                          ("classify", "-cls")])
def test_the_task_is_read_from_the_base_model(generation, name, suffix):
    base = load_base(f"{generation}{suffix}.yaml")
    assert task_of(base) is TASKS[name]
    assert type(TASKS[name].model(base, verbose=False)).__name__ == TASKS[name].model_class


def test_a_base_of_a_task_not_served_is_one_line():
    with pytest.raises(ValueError, match="is an RT-DETR model .*; this tool searches YOLO models of these tasks") as err:
        load_base("rtdetr-l.yaml")
    assert "\n" not in str(err.value)


def test_label_lines_of_each_task():
    detect, pose, obb = TASKS["detect"].label_problem, TASKS["pose"].label_problem, TASKS["obb"].label_problem
    assert detect([5, 5], 0) is None and detect([7, 9], 0) is None  # boxes, or polygons Ultralytics turns into boxes
    assert "6 values" in detect([5, 6], 0) and "mixed" in detect([5, 7], 0)  # Ultralytics drops a file that mixes
    assert TASKS["segment"].label_problem is detect
    assert pose([41, 41], 36) is None and "5 values" in pose([41, 5], 36)  # 12 keypoints x 3
    assert obb([9], 0) is None and "7 values" in obb([7], 0)


def test_options_checked_without_torch_list_what_the_packages_accept():
    """search.config repeats spaces.gate.INSERTIONS so that options are checked without importing torch."""
    from search.config import INSERTIONS, METRICS_SEARCHED
    from spaces.gate import INSERTIONS as BUILT
    from spaces.tasks import METRICS_SEARCHED as SCORED

    assert INSERTIONS == BUILT and METRICS_SEARCHED == SCORED


def test_a_segmentation_search_may_search_the_box_score():
    assert TASKS["segment"].score == "mask_map50_95" and TASKS["segment"].scored_on("box").score == "map50_95"
    assert TASKS["segment"].scored_on("box").score_label == "box mAP50-95"
    assert TASKS["detect"].scored_on("box") == TASKS["detect"]
    with pytest.raises(ValueError, match="--metric 'mask' is not known; choose one of task, box"):
        TASKS["segment"].scored_on("mask")
    with pytest.raises(ValueError, match="--metric box: a classify model has no boxes; leave --metric out to search its top-1 acc"):
        TASKS["classify"].scored_on("box")
