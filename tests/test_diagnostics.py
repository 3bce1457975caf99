"""`search.report.receptive_fields`: fitting lines, object sizes from labels, receptive fields of YOLO models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search.report.receptive_fields import fit_gap_line, object_sizes, receptive_fields, size_table_markdown, stage_table


def _epochs(train: list[float], val: list[float]) -> list[dict]:
    """Per-epoch dicts whose total losses are ``train`` and ``val`` (split 50/20/30 over box/cls/dfl)."""
    rows = []
    for i, (t, v) in enumerate(zip(train, val)):
        row = {"epoch": i, "map50_95": 0.1}
        for prefix, total in (("train", t), ("val", v)):
            row.update({f"{prefix}/{k}_loss": share * total for k, share in (("box", 0.5), ("cls", 0.2), ("dfl", 0.3))})
        rows.append(row)
    return rows


def test_fit_gap_over_fitting():
    train = [5.0 - 0.07 * i for i in range(30)]
    val = [4.5 - 0.05 * i for i in range(20)] + [3.6 + 0.06 * i for i in range(10)]
    line = fit_gap_line(_epochs(train, val))
    assert line.startswith("baseline ends with val loss 4.14 vs train 2.97 (gap +1.17, val rising over the last 10 epochs")
    assert "over-fitting" in line


def test_fit_gap_under_fitting():
    train = [6.0 * math.exp(-i / 40) for i in range(30)]
    val = [5.0 * math.exp(-i / 50) for i in range(30)]
    line = fit_gap_line(_epochs(train, val), name="trial 3")
    assert line.startswith("trial 3 ends with val loss")
    assert "val still falling over the last 10 epochs): under-fitted" in line


def test_fit_gap_converged_unstable_and_too_short():
    flat = [3.0 + 0.001 * (-1) ** i for i in range(12)]
    assert "converged" in fit_gap_line(_epochs(flat, flat))
    rising = [3.0 + 0.1 * i for i in range(12)]
    assert "unstable" in fit_gap_line(_epochs(rising, rising))
    assert "too few" in fit_gap_line(_epochs([3.0, 2.0], [3.0, 2.0]))


def test_fit_gap_repeated_final_epoch_counts_once():
    losses = [3.0 - 0.1 * i for i in range(16)]
    epochs = _epochs(losses, losses)
    epochs.append({**epochs[-1], "val/box_loss": 1.0})  # Ultralytics' final_eval repeats the last epoch
    line = fit_gap_line(epochs)
    assert "val loss 1.75 vs train 1.50" in line  # the repeat wins: 1.0 + 0.5 * 1.5
    assert "over the last 5 epochs" in line  # 16 epochs, not 17


def test_object_sizes_from_labels(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("0 0.5 0.5 0.25 0.25\n1 0.2 0.2 0.1 0.4\n\nbad line here\n2 0.5 0.5 0 0.3\n")
    b.write_text("0 0.1 0.1 0.3 0.1 0.3 0.5\n0 0.5 0.5\n")  # a triangle (polygon) and a short line
    sizes = object_sizes([a, b], imgsz=320)
    assert sizes == pytest.approx([80.0, 64.0, math.sqrt(0.2 * 0.4) * 320])
    assert object_sizes([], 320).size == 0


@pytest.fixture(scope="module")
def yolov8n():
    from spaces import load_base

    return load_base("yolov8n.yaml")


def test_receptive_fields_of_yolov8n(yolov8n):
    rows = receptive_fields(yolov8n)
    assert [r["layer"] for r in rows] == list(range(23))
    assert (rows[1]["stride"], rows[1]["rf"]) == (4, 7)  # two stride-2 3x3 convs: 1 + 2*1 + 2*2
    assert (rows[2]["stride"], rows[2]["rf"]) == (4, 23)  # C2f, n = round(3 * 0.33) = 1: two 3x3 at stride 4
    assert rows[9]["rf"] == rows[8]["rf"] + 3 * 4 * 32  # SPPF: three 5x5 max-pools at stride 32
    backbone = [r["rf"] for r in rows[:10]]
    assert all(a < b for a, b in zip(backbone, backbone[1:]))
    assert rows[10]["module"] == "nn.Upsample" and rows[10]["stride"] == 16 and rows[10]["rf"] == rows[9]["rf"]
    assert rows[22] == {"layer": 22, "module": "Detect", "stride": None, "rf": None}


def test_stage_table_of_yolov8n(yolov8n):
    stages = stage_table(yolov8n)
    detect = [s for s in stages if s["detect"]]
    assert [(s["layer"], s["stride"], s["stage"]) for s in detect] == [
        (15, 8, "P3/8"), (18, 16, "P4/16"), (21, 32, "P5/32")
    ]
    backbone = [s for s in stages if not s["detect"]]
    assert [(s["stage"], s["layer"]) for s in backbone] == [
        ("P1/2", 0), ("P2/4", 2), ("P3/8", 4), ("P4/16", 6), ("P5/32", 9)
    ]


def test_attention_makes_the_field_global():
    from spaces import Placement, build_yaml, load_base

    yolo11 = receptive_fields(load_base("yolo11n.yaml"))
    assert yolo11[10]["module"] == "C2PSA" and yolo11[10]["rf"] == "global" and yolo11[9]["rf"] != "global"
    v8 = load_base("yolov8n.yaml")
    se = receptive_fields(build_yaml(v8, Placement.of({"backbone.4": ["se"]})))
    assert se[5]["module"] == "SE" and se[5]["rf"] == "global" and se[4]["rf"] == 95
    assert receptive_fields(build_yaml(v8, Placement.of({"backbone.4": ["se"]}), "plain")) == se  # Gated reads as SE
    gam = receptive_fields(build_yaml(v8, Placement.of({"backbone.4": ["gam"]})))
    assert gam[5]["rf"] == 95 + 2 * 6 * 8  # GAM's gate is two local 7x7 convs
    fused = receptive_fields(build_yaml(v8, Placement.of({"fused.4": ["gam"]})))
    assert fused[4]["module"] == "C2f_GatedAtt" and fused[4]["rf"] != "global"


def test_size_table_markdown(yolov8n):
    sizes = np.array([10.0, 30.0, 60.0, 70.0, 100.0, 200.0, 300.0, 64.0])
    table = size_table_markdown(sizes, stage_table(yolov8n))
    lines = table.splitlines()
    assert lines[0].startswith("| stage |")
    assert "| P3/8 Detect input | 15 | C2f | 8 | 879 | <= 64 | 50% (4) |" in lines
    assert "| P4/16 Detect input | 18 | C2f | 16 | 959 | 64-128 | 25% (2) |" in lines
    assert "| P5/32 Detect input | 21 | C2f | 32 | 1119 | > 128 | 25% (2) |" in lines
    assert any(line.startswith("| P1/2 backbone | 0 | Conv | 2 | 3 | – | – |") for line in lines)
    assert "median 67.0 px" in lines[-1] and "(8 objects)" in lines[-1]
    assert size_table_markdown(np.array([]), stage_table(yolov8n)).endswith("No objects found in the labels.")


def test_object_sizes_of_each_task_as_it_sees_its_objects(tmp_path):
    pose = tmp_path / "pose.txt"
    pose.write_text("0 0.5 0.5 0.25 0.25 0.25 0.25 2 0.5 0.75 2 0.9 0.9 0\n"  # 2 visible keypoints: their spread
                    "0 0.5 0.5 0.25 0.25 0.4 0.4 2 0.9 0.9 0 0 0 0\n")  # one visible: the box
    assert object_sizes([pose], 64, "keypoints").tolist() == [pytest.approx(math.sqrt(0.25 * 0.5) * 64), 16.0]
    assert object_sizes([pose], 64, "keypoints", kpt_dim=2).tolist()[1] != 16.0  # 2 values a keypoint: all count
    obb = tmp_path / "obb.txt"
    diamond = "0 0.5 0.25 0.75 0.5 0.5 0.75 0.25 0.5\n"  # a square of side 0.3536 turned 45 degrees
    obb.write_text(diamond)
    assert object_sizes([obb], 64, "rotated").tolist() == [pytest.approx(math.sqrt(0.125) * 64)]  # its own sides
    assert object_sizes([obb], 64).tolist() == [pytest.approx(0.5 * 64)]  # as a polygon: its bounding box
