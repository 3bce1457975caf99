"""Classification end to end: `python -m search run` on a generated ImageFolder from a self-made ``-cls``
checkpoint (none can be downloaded here), scored on top-1 accuracy; its deployment files, report and Python result.
The data checks are in `test_classify_data.py`; gated insertion keeping a classifier exactly, in
`test_task_search.py::test_gated_insertion_keeps_every_task_head_exactly`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from helpers import TRAIN, one_line_error, study_of
from spaces import load_base
from spaces.tasks import TASKS
from trainers.data import make_toy_dataset


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An ImageFolder of 24 + 12 generated images (rectangles and ellipses, 64 px)."""
    return make_toy_dataset(tmp_path_factory.mktemp("cls") / "shapes", n_train=24, n_val=12, imgsz=64, task="classify")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A yolov8n-cls checkpoint of 1000 classes, as ImageNet's are, with seeded weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "yolov8n-cls.pt"
    torch.save({"model": TASKS["classify"].model(load_base("yolov8n-cls.yaml"), verbose=False)}, path)
    return path


def test_a_classification_search_runs_end_to_end(folder, checkpoint, tmp_path):
    """Search, race, final training, export and report on top-1 accuracy, fine-tuned from a checkpoint whose head has
    another class count; best.yaml builds a classifier, best.pt classifies where our packages cannot be imported, and
    `search.load` reads the decision."""
    args = ["run", "--data", str(folder), "--model", str(checkpoint), "--out", str(tmp_path), "--study", "c", "--trials", "3",
            "--confirm-top", "1", "--confirm-budget", "6", "--proxy-epochs", "2", "--final-epochs", "1", "--final-imgsz", "64",
            "--sampler", "random", *TRAIN]
    done = subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    study_dir = tmp_path / "c"
    study = study_of(study_dir)
    assert study.user_attrs["task"] == "classify" and study.metric_names == ["top-1 acc (proxy)"]
    first = study.trials[0]
    assert first.value == first.user_attrs["top1"] and 0 <= first.user_attrs["top5"] <= 1
    report = (study_dir / "report.md").read_text()
    assert "- objective: maximize top-1 acc" in report and "top-1 acc mean ± sd" in report and "top-5 acc (mean)" in report
    assert "### Receptive fields" in report and "Classify input" in report and "Object sizes" not in report
    assert "| format | file | largest raw difference | same top-1 class | check |" in report
    code = (
        "import numpy as np; from ultralytics import YOLO; "
        f"m = YOLO(r'{study_dir / 'best.yaml'}'); w = YOLO(r'{study_dir / 'best.pt'}'); "
        "r = w.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False)[0]; "
        "print(m.task, w.task, len(w.names), r.probs is not None)"
    )
    env = {**os.environ, "YOLO_OFFLINE": "True", "YOLO_AUTOINSTALL": "False", "PYTHONPATH": ""}
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                            cwd=tmp_path)  # cwd: our packages are not importable from there
    assert loaded.stdout.split()[-4:] == ["classify", "classify", "2", "True"], loaded.stderr[-2000:]
    import search
    from trainers.deploy import read_checks

    result = search.load(study_dir)
    assert result.verdict and result.study == study_dir
    assert {"top1", "top5"} <= set(result.leaderboard.columns) and "precision" not in result.leaderboard.columns
    checks = read_checks(study_dir)
    assert [c.format for c in checks] == ["onnx", "torchscript"] and all(c.ok for c in checks), checks


def test_a_detection_checkpoint_or_a_box_metric_cannot_start_a_classifier(folder, tmp_path, capsys):
    torch.manual_seed(0)
    detect = tmp_path / "det.pt"
    torch.save({"model": TASKS["detect"].model(load_base("yolov8n.yaml"), verbose=False)}, detect)
    line = one_line_error(["run", "--data", str(folder), "--model", "yolov8n-cls.yaml", "--weights", str(detect), "--out",
                           str(tmp_path), "--quiet"], capsys)
    assert "is a detect model and the base a classify model" in line
    line = one_line_error(["run", "--data", str(folder), "--model", "yolov8n-cls.yaml", "--metric", "box", "--out",
                           str(tmp_path), "--quiet"], capsys)
    assert "--metric box: a classify model has no boxes" in line
    line = one_line_error(["run", "--data", str(folder), "--model", "yolov8n.yaml", "--out", str(tmp_path), "--quiet"], capsys)
    assert "-cls" in line  # a class-folder dataset given to a detector names the classifier to use
