"""Segment, pose and OBB models end to end: `python -m search run` on a generated set of each task (real
Ultralytics trainings), the dataset checks each task needs, and gated insertion keeping the function of
every task's head, YOLOv8 and YOLO26 alike."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from helpers import TRAIN, one_line_error, study_of, trained_looking
from spaces import Placement, build_yaml, find_positions, load_base, transfer_weights
from spaces.tasks import TASKS, task_of
from trainers.data import DataError, load_dataset, make_toy_dataset

MODELS = {"segment": "yolov8n-seg.yaml", "pose": "yolov8n-pose.yaml", "obb": "yolov8n-obb.yaml"}
SCORES = {"segment": "mask mAP50-95", "pose": "pose mAP50-95", "obb": "mAP50-95"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """data.yaml of a generated 16+8 image set per task (64 px)."""
    root = tmp_path_factory.mktemp("tasks")
    return {task: make_toy_dataset(root / task, n_train=16, n_val=8, imgsz=64, task=task) for task in MODELS}


@pytest.mark.parametrize("task", sorted(MODELS))
def test_a_search_of_each_task_runs_end_to_end(task, toy, tmp_path):
    """Search, race, final training, export and report, on the task's own score; best.yaml builds the
    task's model and the final weights predict its output (masks, keypoints, rotated boxes)."""
    args = ["run", "--data", str(toy[task]), "--model", MODELS[task], "--out", str(tmp_path), "--study", "t", "--trials", "2",
            "--confirm-top", "1", "--confirm-budget", "6", "--proxy-epochs", "2", "--final-epochs", "1", "--final-imgsz", "64",
            "--sampler", "random", *TRAIN]
    done = subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    study_dir = tmp_path / "t"
    study = study_of(study_dir)
    assert study.user_attrs["task"] == task and study.metric_names == [f"{SCORES[task]} (proxy)"]
    score = TASKS[task].score
    first = study.trials[0]
    assert first.value == first.user_attrs[score] and {m.name for m in TASKS[task].metrics} <= set(first.user_attrs)
    report = (study_dir / "report.md").read_text()
    assert f"- objective: maximize {SCORES[task]}" in report and f"{SCORES[task]} mean ± sd" in report
    assert (study_dir / "trials.csv").read_text().startswith("number,state,value,")  # one schema, whatever the score
    code = (
        "import spaces; from ultralytics import YOLO; import numpy as np; "
        f"m = YOLO(r'{study_dir / 'best.yaml'}'); w = YOLO(r'{study_dir / 'final' / 'weights' / 'best.pt'}'); "
        "r = w.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False)[0]; "
        "print(m.task, w.task, {'segment': 'masks', 'pose': 'keypoints', 'obb': 'obb'}[w.task] in r._keys)"
    )
    env = {**os.environ, "YOLO_OFFLINE": "True", "YOLO_AUTOINSTALL": "False"}
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert loaded.stdout.split()[-3:] == [task, task, "True"], loaded.stderr[-2000:]


def test_a_dataset_that_does_not_fit_the_model_is_one_line(toy, tmp_path, capsys):
    def run(model: str, data) -> str:
        return one_line_error(["run", "--data", str(data), "--model", model, "--out", str(tmp_path), "--quiet"], capsys)

    assert "is a pose dataset (kpt_shape [4, 3]) and the model a detect model" in run("yolov8n.yaml", toy["pose"])
    assert "needs 'kpt_shape: [keypoints, 2 or 3]'" in run("yolov8n-pose.yaml", toy["segment"])
    boxes = make_toy_dataset(tmp_path / "boxes", n_train=4, n_val=2, imgsz=64)
    assert "boxes only, no polygons" in run("yolov8n-seg.yaml", boxes)
    assert "of 4 train images are ones Ultralytics cannot use" in run("yolov8n-obb.yaml", boxes)  # 5 values, not 9
    assert not list(tmp_path.glob("*/study.db"))  # nothing started


def test_label_files_each_task_would_drop_are_counted(tmp_path):
    data = make_toy_dataset(tmp_path / "pose", n_train=12, n_val=4, imgsz=64, task="pose")
    label = tmp_path / "pose" / "labels" / "train" / "0000.txt"
    label.write_text(label.read_text() + "0 0.5 0.5 0.2 0.2\n")  # a box without keypoints
    found = load_dataset(data, TASKS["pose"])
    assert len(found.unusable) == 1 and "not class x y w h and 12 keypoint values" in found.unusable_text()
    detect = make_toy_dataset(tmp_path / "mixed", n_train=12, n_val=4, imgsz=64)
    label = tmp_path / "mixed" / "labels" / "train" / "0000.txt"
    label.write_text(label.read_text() + "0 0.1 0.1 0.3 0.1 0.3 0.3\n")  # a polygon beside box lines
    assert "mixed in one file" in load_dataset(detect, TASKS["detect"]).unusable_text()
    with pytest.raises(DataError, match="outside 0..1"):
        label.write_text("2 0.5 0.5 0.2 0.2\n")
        load_dataset(detect, TASKS["detect"])


def _flat(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.flatten(1)
    values = out.values() if isinstance(out, dict) else out
    return torch.cat([_flat(v) for v in values if v is not None], 1)


@pytest.mark.parametrize("model", ["yolov8n-seg.yaml", "yolov8n-pose.yaml", "yolov8n-obb.yaml", "yolo26n-seg.yaml",
                                   "yolo26n-pose.yaml", "yolo26n-obb.yaml", "yolov8n-cls.yaml", "yolo11n-cls.yaml",
                                   "yolo26n-cls.yaml"])
def test_gated_insertion_keeps_every_task_head_exactly(model):
    """SE at one position of each kind, gated: the same outputs as the base, to the last bit; plain differs."""
    base = load_base(model)
    task = task_of(base)
    torch.manual_seed(0)
    reference = trained_looking(task.model(base, verbose=False))
    kinds = {}
    for position in find_positions(base):
        kinds.setdefault(position.kind, position.name)
    placement = Placement.of({name: ["se"] for kind, name in kinds.items() if kind != "drop"})
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = _flat(reference(x))
    for insertion, same in (("gated", True), ("plain", False)):
        new = task.model(build_yaml(base, placement, insertion), verbose=False).eval()
        report = transfer_weights(reference, new, placement)
        assert report.transferred == report.total, str(report)
        assert torch.equal(_flat(new(x)), expected) is same, insertion


def test_a_detection_checkpoint_starts_a_model_of_another_task(tmp_path, capsys):
    """A self-made detection checkpoint (none can be downloaded here) into a segmentation model: every one of its
    tensors transfers, the mask branch starts fresh; a pose checkpoint of other keypoints than the data's is refused."""
    from search.cli import main

    torch.manual_seed(0)
    detect = tmp_path / "det.pt"
    torch.save({"model": TASKS["detect"].model(load_base("yolov8n.yaml"), verbose=False)}, detect)
    out = tmp_path / "seg.yaml"
    assert main(["build", "--model", "yolov8n-seg.yaml", "--place", "neck.15=se", "-o", str(out), "--weights", str(detect),
                 "--save-weights", str(tmp_path / "seg.pt")]) == 0
    said = capsys.readouterr().out
    total = len(torch.load(detect, weights_only=False)["model"].state_dict())
    assert f"transferred {total}/{total} base tensors" in said
    pose = tmp_path / "pose.pt"
    torch.save({"model": TASKS["pose"].model(load_base("yolov8n-pose.yaml"), verbose=False)}, pose)  # 17 keypoints
    data = make_toy_dataset(tmp_path / "toy", n_train=4, n_val=2, imgsz=64, task="pose")  # 4 keypoints
    line = one_line_error(["run", "--data", str(data), "--model", str(pose), "--out", str(tmp_path), "--quiet"], capsys)
    assert "predicts kpt_shape [17, 3]" in line and "has kpt_shape [4, 3]" in line


def test_metric_box_makes_a_segmentation_search_score_its_boxes(toy, tmp_path):
    from search.config import RunConfig
    from search.study.records import task_of_study
    from search.study.start import start_search

    config = RunConfig(data=str(toy["segment"]), model="yolov8n-seg.yaml", out=str(tmp_path), study="s", metric="box",
                       proxy_imgsz=64).resolved()
    run = start_search(config)
    assert run.task.score == "map50_95" and run.study.metric_names == ["box mAP50-95 (proxy)"]
    assert task_of_study(run.study).score == "map50_95"  # the report and export read it back


def test_an_unknown_demo_task_is_one_line(capsys):
    assert "--task 'depth' is not known; choose one of detect, segment, pose, obb, classify" in one_line_error(
        ["demo", "--task", "depth"], capsys)


def test_an_image_with_more_objects_than_max_det_is_said(tmp_path):
    """nuclei-seg has up to 369 nuclei in one image; Ultralytics scores at most 300 detections an image."""
    data = make_toy_dataset(tmp_path / "crowd", n_train=4, n_val=2, imgsz=64)
    label = tmp_path / "crowd" / "labels" / "val" / "0000.txt"
    label.write_text("".join(f"0 {0.1 + i / 400:.4f} 0.5 0.01 0.01\n" for i in range(301)))
    found = load_dataset(data, TASKS["detect"])
    assert found.most_objects == 301 and "add --set max_det=301" in found.crowded_text(300)
    assert found.crowded_text(400) is None


def _search(task: str, data, out, *extra: str) -> None:
    args = ["run", "--data", str(data), "--model", MODELS[task], "--out", str(out), "--study", "t", "--trials", "2",
            "--confirm-top", "1", "--confirm-budget", "6", "--proxy-epochs", "2", "--final-epochs", "1", "--final-imgsz", "64",
            "--sampler", "random", *TRAIN, *extra]
    done = subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_segmentation_study_resumes_exports_and_validates_its_proxy(toy, tmp_path):
    """The commands after a search, on a non-detection task: resume retrains nothing, export writes the decided
    segmentation model, validate-proxy trains full runs and compares them on the mask score."""
    from search.cli import main

    _search("segment", toy["segment"], tmp_path)
    study_dir = tmp_path / "t"
    trained = {p: p.stat().st_mtime_ns for p in study_dir.rglob("*") if p.name == "results.csv"}
    assert main(["resume", str(study_dir), "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in trained} == trained
    assert main(["export", str(study_dir), "-o", str(tmp_path / "best.yaml")]) == 0
    assert task_of(load_base(str(tmp_path / "best.yaml"))).name == "segment"
    assert main(["validate-proxy", str(study_dir), "--k", "1"]) == 0
    validation = study_of(study_dir).user_attrs["proxy_validation"]
    assert validation["rows"] and all(row["status"] == "complete" and row["full"] is not None for row in validation["rows"])
    assert "mask mAP50-95" in (study_dir / "report.md").read_text()


@pytest.mark.slow
def test_a_pose_search_on_ray(toy, tmp_path):
    """The Ray executor on a pose model: the same study shape as in-process, scored on pose mAP50-95."""
    _search("pose", toy["pose"], tmp_path, "--executor", "ray", "--workers", "2")
    study = study_of(tmp_path / "t")
    assert study.user_attrs["task"] == "pose" and study.metric_names == ["pose mAP50-95 (proxy)"]
    assert all(t.state.is_finished() for t in study.trials) and (tmp_path / "t" / "best.yaml").is_file()
