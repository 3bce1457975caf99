"""Checkpoints that know what they are (issue 30, item 3): `build --weights base.pt --save-weights out.pt` writes a
checkpoint as Ultralytics writes its own, with the task, the base's class names, `train_args`, date and version, in
half precision. Bases are made here from Ultralytics' YAMLs and saved with Ultralytics' own `save` (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics import YOLO

from search.cli import main

YAMLS = {"detect": "yolov8n.yaml", "segment": "yolov8n-seg.yaml", "pose": "yolov8n-pose.yaml",
         "obb": "yolov8n-obb.yaml"}


def _base(path, yaml: str, names: dict | None = None):
    torch.manual_seed(0)
    model = YOLO(yaml)
    model.model.names = names or {i: f"{yaml.split('.')[0]}-class-{i}" for i in range(len(model.model.names))}
    model.save(path)  # half precision, date, version: as a user's own checkpoint
    return model


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("task", list(YAMLS))
def test_a_built_checkpoint_loads_as_its_task_with_the_base_names(task, tmp_path, capsys):
    base_path, out = tmp_path / "base.pt", tmp_path / "out.pt"
    base = _base(base_path, YAMLS[task])
    assert main(["build", "--model", str(base_path), "--place", "backbone.2=se", "-o", str(tmp_path / "m.yaml"),
                 "--weights", str(base_path), "--save-weights", str(out)]) == 0
    said = capsys.readouterr().out
    assert "note:" not in said and f"saved {out} (" in said
    loaded = YOLO(out)
    assert loaded.task == task and loaded.names == base.names
    ckpt = torch.load(out, map_location="cpu", weights_only=False)
    assert ckpt["train_args"]["task"] == task and ckpt["train_args"]["model"] == str(tmp_path / "m.yaml")
    assert ckpt["train_args"]["imgsz"] == 640 and ckpt["date"] and ckpt["version"]
    assert ckpt["transfer"].startswith("transferred")
    floats = [v for v in ckpt["model"].state_dict().values() if v.is_floating_point()]
    assert floats and {v.dtype for v in floats} == {torch.float16}
    # Half precision, as the base: the file grows by the added parameters' share (the pickle of the new module aside),
    # not 2x as a float32 save did.
    share = _params(ckpt["model"]) / _params(torch.load(base_path, map_location="cpu", weights_only=False)["model"])
    assert out.stat().st_size <= base_path.stat().st_size * share * 1.01
    results = loaded.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False)  # loaded as detect, it failed
    assert len(results) == 1


def test_a_base_of_other_classes_leaves_numbered_names_with_a_note(tmp_path, capsys):
    from ultralytics.nn.tasks import DetectionModel

    from spaces import load_base

    base_path, out = tmp_path / "base3.pt", tmp_path / "out.pt"
    model = YOLO("yolov8n.yaml")
    model.model = DetectionModel(load_base("yolov8n.yaml"), nc=3, verbose=False)
    model.model.names = {0: "cat", 1: "dog", 2: "bird"}
    model.save(base_path)
    assert main(["build", "--model", "yolov8n.yaml", "--place", "backbone.2=se", "-o", str(tmp_path / "m.yaml"),
                 "--weights", str(base_path), "--save-weights", str(out)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "names 3 classes and the new model has 80" in notes[0]
    loaded = YOLO(out)
    assert loaded.task == "detect" and loaded.names == {i: str(i) for i in range(80)}
