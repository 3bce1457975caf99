"""Registration into Ultralytics' YAML parser: every module, from a file, idempotent."""

from __future__ import annotations

import pytest
import torch
import yaml
from ultralytics import YOLO

import spaces
from spaces import register_modules
from spaces.register import registered_modules


def test_yaml_with_every_registered_module_builds(tmp_path):
    """One model YAML holding every attention type (after a block and fused) loads with YOLO()."""
    register_modules()
    register_modules()  # idempotent
    names = list(spaces.ATTENTION)
    rows = [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "C2f_Att", [16, True, names]], [-1, 1, "C2f_GatedAtt", [16, True, names]]]
    for name in names:
        rows.append([-1, 1, spaces.attention_type(name).module.__name__, spaces.attention.yaml_args(name, 16)])
        rows.append([-1, 1, "Gated", [16, name]])  # Ultralytics must pass the spec string through unchanged
    n = len(rows)
    head = [[-1, 1, "Conv", [32, 3, 2]], [-1, 1, "Conv", [64, 3, 2]], [[n - 1, n, n + 1], 1, "Detect", ["nc"]]]
    path = tmp_path / "every_module.yaml"
    path.write_text(yaml.safe_dump({"nc": 2, "backbone": rows, "head": head}))
    model = YOLO(str(path), task="detect").model
    built = {type(m).__name__ for m in model.modules()}
    assert set(registered_modules()) <= built
    fused = model.model[1].m[0].attn
    assert [type(m).__name__ for m in fused] == [spaces.attention_type(n).module.__name__ for n in names]
    assert [m.spec for m in model.model[2].m[0].attn] == names
    model.train()(torch.rand(2, 3, 64, 64))  # forward in training mode too


def test_registration_refuses_to_shadow_ultralytics(monkeypatch):
    import ultralytics.nn.tasks as tasks

    monkeypatch.setattr(tasks, "SE", object(), raising=False)
    with pytest.raises(RuntimeError, match="already defines 'SE'"):
        register_modules()
