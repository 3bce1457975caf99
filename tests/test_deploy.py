"""What a user deploys: checkpoints that load where only Ultralytics and `yolo_attention_modules` are installed,
that name nothing of the search in their pickle, and that still load when an earlier version wrote them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers import pickle_globals

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "tests" / "data" / "legacy_gated.pt"
# Top-level modules a deployment machine does not have: the search's packages, and what only the search installs.
SEARCH_ONLY = ("spaces", "search", "trainers", "optuna", "ray", "timm", "pandas")


def blocked_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where every `SEARCH_ONLY` module is absent (``sys.modules[name] = None``:
    importing it raises ModuleNotFoundError, and probes such as `importlib.util.find_spec` answer None), the
    repository is not on the path and only ``modules/`` (yolo_attention_modules) is added to it: the environment of a
    machine with Ultralytics and our one small package. A stand-in for a fresh virtual environment, which would need
    torch installed again (several GB) for each run."""
    guard = textwrap.dedent(f"""
        import sys
        sys.modules.update(dict.fromkeys({SEARCH_ONLY!r}))
        sys.path = [p for p in sys.path if p not in ("", {str(ROOT)!r})]
        sys.path.insert(0, {str(ROOT / "modules")!r})
    """)
    env = {**os.environ, "YOLO_OFFLINE": "True", "YOLO_AUTOINSTALL": "False", "YOLO_CONFIG_DIR": str(cwd / "config")}
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-c", guard + textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_a_checkpoint_written_before_the_modules_moved_still_loads():
    """tests/data/legacy_gated.pt was pickled on 2026-12-06 by the code of that day: every attention type behind its
    gate, fused and not, its classes under ``spaces.*`` and timm's layers. It loads, and computes what it computed."""
    names = pickle_globals(LEGACY)
    assert {"spaces.gate.Gated", "spaces.attention.SE", "spaces.fused.AttnBottleneck"} <= names  # what it tests
    import spaces  # noqa: F401  (registers the modules, as any process of the search)

    saved = torch.load(LEGACY, weights_only=False)
    model = saved["model"].float().eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(x)[0], saved["expected"], rtol=1e-3, atol=1e-3)


def test_the_search_pickles_no_module_of_its_own(tmp_path):
    """A model built now pickles its attention under `yolo_attention_modules`, and nothing under a generic name that
    Ultralytics' auto-install would take from PyPI (``spaces`` is Hugging Face's) or that only the search installs."""
    from spaces import Placement, build_yaml, load_base
    from spaces.tasks import task_of

    base = load_base("yolov8n.yaml")
    placement = Placement.of({"backbone.2": ["se"], "fused.4": ["cbam"], "backbone.6": ["sk"], "neck.15": ["eca"],
                              "neck.18": ["coord"], "neck.21": ["gc"], "sppf.8": ["ese", "ela"], "fused.18": ["shuffle"],
                              "fused.21": ["simam", "triplet", "gam"]})
    for insertion in ("gated", "plain"):
        model = task_of(base).model({**build_yaml(base, placement, insertion), "nc": 2}, verbose=False)
        torch.save({"model": model}, tmp_path / f"{insertion}.pt")
        names = pickle_globals(tmp_path / f"{insertion}.pt")
        ours = {n.rsplit(".", 1)[0] for n in names if n.startswith("yolo_attention_modules.")}
        assert ours, names  # the attention modules are there, under the package's own name
        assert not [n for n in names if n.split(".")[0] in SEARCH_ONLY], names


@pytest.mark.parametrize("insertion", ["gated", "plain"])
def test_a_model_with_attention_builds_and_loads_on_a_machine_without_the_search(tmp_path, insertion):
    """Every attention type, fused and not, in a YOLOv8 model: its YAML builds and its .pt loads and predicts where
    only Ultralytics and yolo_attention_modules can be imported."""
    from spaces import Placement, build_yaml, load_base, write_yaml
    from spaces.tasks import task_of

    base = load_base("yolov8n.yaml")
    placement = Placement.of({"backbone.2": ["se"], "fused.4": ["cbam"], "backbone.6": ["sk"], "neck.15": ["eca"],
                              "neck.18": ["coord"], "neck.21": ["gc"], "sppf.8": ["ese", "ela"], "fused.18": ["shuffle"],
                              "fused.21": ["simam", "triplet", "gam"]})
    model_dict = {**build_yaml(base, placement, insertion), "nc": 2}
    yaml_path = write_yaml(model_dict, tmp_path / "best.yaml")
    first = yaml_path.read_text().splitlines()[0]  # where Ultralytics alone fails with a bare KeyError, the file says why
    assert first.startswith("# needs yolo_attention_modules: pip install yolo-attention-modules") and "import" in first
    assert "needs" not in write_yaml(build_yaml(base, Placement(), insertion), tmp_path / "base.yaml").read_text()
    torch.manual_seed(0)
    model = task_of(base).model(model_dict, verbose=False).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = model(x)[0]
    torch.save({"model": model, "expected": expected}, tmp_path / "best.pt")
    done = blocked_python(f"""
        import torch, ultralytics
        from ultralytics import YOLO
        import yolo_attention_modules
        built = YOLO({str(yaml_path)!r})
        assert sum(p.numel() for p in built.model.parameters()) == {sum(p.numel() for p in model.parameters())}
        saved = torch.load({str(tmp_path / "best.pt")!r}, weights_only=False)
        out = saved["model"].eval()(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))[0]
        torch.testing.assert_close(out, saved["expected"])
        print("ok")
    """, tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


TASK_MODELS = {"detect": "yolov8n.yaml", "segment": "yolov8n-seg.yaml", "pose": "yolov8n-pose.yaml", "obb": "yolov8n-obb.yaml",
               "classify": "yolov8n-cls.yaml"}
PLACEMENT = {"backbone.6": ["se"], "fused.4": ["cbam"], "neck.15": ["eca"]}


def test_a_trained_winner_predicts_validates_exports_and_fine_tunes_without_the_search(toy_data, tmp_path):
    """The .pt Ultralytics' own trainer wrote for a model with attention (one epoch on the toy set, gates opened):
    where only Ultralytics and yolo_attention_modules import, it predicts, validates, exports to ONNX that predicts the
    same boxes, and trains on for an epoch, whose checkpoint again names nothing of the search."""
    from spaces import Placement, load_base
    from trainers.train import Budget, train_candidate

    budget = Budget(epochs=1, imgsz=64, batch=4, workers=0, device="cpu", amp=False, keep_weights=True,
                    overrides={"mosaic": 0.0, "warmup_epochs": 0, "optimizer": "AdamW", "lr0": 0.01})
    record = train_candidate(Placement.of(PLACEMENT), load_base("yolov8n.yaml"), toy_data, budget, tmp_path / "train")
    assert record.status == "complete", record.reason
    weights = Path(record.paths["weights"])
    assert not [n for n in pickle_globals(weights) if n.split(".")[0] in SEARCH_ONLY]
    image = next((Path(toy_data).parent / "images" / "val").iterdir())
    done = blocked_python(f"""
        from ultralytics import YOLO
        model = YOLO({str(weights)!r})
        assert model.task == "detect" and model.names == {{0: "rectangle", 1: "ellipse"}}, (model.task, model.names)
        boxes = model.predict({str(image)!r}, imgsz=64, conf=0.001, device="cpu", verbose=False)[0].boxes
        metrics = model.val(data={str(toy_data)!r}, imgsz=64, batch=4, workers=0, device="cpu", plots=False, verbose=False)
        onnx = YOLO(model.export(format="onnx", imgsz=64, simplify=False, device="cpu"), task="detect")
        again = onnx.predict({str(image)!r}, imgsz=64, conf=0.001, device="cpu", verbose=False)[0].boxes
        assert len(again) == len(boxes) and (again.xyxy - boxes.xyxy).abs().max() < 1, (len(again), len(boxes))
        tuned = YOLO({str(weights)!r}).train(data={str(toy_data)!r}, epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
                                              project={str(tmp_path)!r}, name="tuned", plots=False, amp=False, verbose=False)
        print("ok", len(boxes), metrics.box.map)
    """, tmp_path)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
    tuned = tmp_path / "tuned" / "weights" / "best.pt"
    assert tuned.is_file() and not [n for n in pickle_globals(tuned) if n.split(".")[0] in SEARCH_ONLY]


@pytest.mark.parametrize("task", ["segment", "pose", "obb", "classify"])
@pytest.mark.parametrize("generation", ["yolov8n", "yolo26n"])
def test_every_task_and_generation_loads_as_itself_without_the_search(task, generation, tmp_path):
    """A segment, pose, OBB or classify model with gated and plain attention, YOLOv8 and YOLO26 heads, saved as the
    search saves a checkpoint: where only Ultralytics and yolo_attention_modules import, it loads as its task and predicts."""
    from ultralytics import YOLO

    from search.cli import main
    from spaces import find_positions, load_base

    yaml_name = TASK_MODELS[task].replace("yolov8n", generation)
    base = YOLO(yaml_name)
    base.model.names = {i: f"c{i}" for i in range(len(base.model.names))}
    base.save(tmp_path / "base.pt")
    insertion = "plain" if generation == "yolo26n" else "gated"  # both ways, across the matrix
    neck = next(p.name for p in find_positions(load_base(yaml_name)) if p.kind == "neck")  # the first path into the head
    places = ["--place=backbone.6=se", "--place=fused.4=cbam", f"--place={neck}=eca"]
    assert main(["build", "--model", yaml_name, *places, "--insertion", insertion, "--weights", str(tmp_path / "base.pt"),
                 "--save-weights", str(tmp_path / "attn.pt"), "-o", str(tmp_path / "attn.yaml")]) == 0
    assert not [n for n in pickle_globals(tmp_path / "attn.pt") if n.split(".")[0] in SEARCH_ONLY]
    done = blocked_python(f"""
        import torch
        from ultralytics import YOLO
        model = YOLO({str(tmp_path / "attn.pt")!r})
        assert model.task == {task!r}, model.task
        model.predict(torch.zeros(1, 3, 64, 64), imgsz=64, device="cpu", verbose=False)
        import yolo_attention_modules
        YOLO({str(tmp_path / "attn.yaml")!r}, task={task!r})
        print("ok")
    """, tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_exports_are_checked_on_images_that_are_not_square(tmp_path):
    """A 4:3 image (as most photos, bccd's among them): the .pt would letterbox it to a rectangle, a static export takes
    a square, so both are compared on the square one; the check must pass, not fail on the input's shape."""
    import cv2
    import numpy as np
    from ultralytics import YOLO

    from search.cli import main
    from trainers.deploy import export_checked

    base = YOLO("yolov8n.yaml")
    base.save(tmp_path / "base.pt")
    assert main(["build", "--model", "yolov8n.yaml", "--place", "backbone.6=se", "--weights", str(tmp_path / "base.pt"),
                 "--save-weights", str(tmp_path / "attn.pt"), "-o", str(tmp_path / "attn.yaml")]) == 0
    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    checks = export_checked(tmp_path / "attn.pt", tmp_path / "out" / "best", 64, [image])
    assert [(c.format, c.ok, c.images, c.same) for c in checks] == [("onnx", True, 1, 1), ("torchscript", True, 1, 1)], checks
