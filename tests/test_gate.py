"""Function-preserving insertion (`spaces.gate`): with base weights transferred, a gated model
computes exactly what the base computes, for every registered type at every position kind; plain
insertion does not; the gates learn and are what the trainer records."""

from __future__ import annotations

import pytest
import torch
import yaml
from ultralytics.nn.tasks import DetectionModel

import spaces
from helpers import trained_looking
from spaces import Placement, build_yaml, find_positions, load_base, transfer_weights, write_yaml
from spaces.build import attention_layers
from spaces.gate import Gated, attention_layer, gate_values

V8 = load_base("yolov8n.yaml")
KINDS = ("backbone", "sppf", "fused", "neck")


def _base_model() -> DetectionModel:
    torch.manual_seed(0)
    return trained_looking(DetectionModel(V8, verbose=False))


def _flat(out) -> torch.Tensor:
    """Every tensor the model returns (decoded and raw head outputs), as one (B, -1) tensor."""
    if isinstance(out, torch.Tensor):
        return out.flatten(1)
    values = out.values() if isinstance(out, dict) else out
    return torch.cat([_flat(v) for v in values], 1)


BASE = _base_model()
X = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))


def _expected() -> torch.Tensor:
    """The base's outputs, computed now: under the same torch settings (threads, deterministic
    algorithms) as the outputs compared with it, which a training earlier in the session may change."""
    return _flat(BASE(X))


def _outputs(placement: Placement, insertion: str) -> torch.Tensor:
    new = DetectionModel(build_yaml(V8, placement, insertion), verbose=False).eval()
    report = transfer_weights(BASE, new, placement)
    assert report.transferred == report.total, str(report)
    return _flat(new(X))


def _at_kinds(kinds: tuple[str, ...], spec: str) -> Placement:
    return Placement.of({p.name: [spec] for p in find_positions(V8) if p.kind in kinds})


def test_every_position_kind_is_covered():
    assert {p.kind for p in find_positions(V8)} == set(KINDS)


@pytest.mark.parametrize("name", list(spaces.ATTENTION))
def test_gated_insertion_computes_what_the_base_computes(name):
    """``name`` at every position of every kind at once (15 places on yolov8n): outputs equal exactly."""
    torch.manual_seed(2)  # the inserted modules' own random init must not matter
    torch.testing.assert_close(_outputs(_at_kinds(KINDS, name), "gated"), _expected(), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["se", "cbam", "sk", "shuffle"])
def test_plain_insertion_changes_the_function(name):
    """Guards the test above against a vacuous comparison: as published, the module moves the outputs."""
    assert not torch.allclose(_outputs(_at_kinds(("backbone",), name), "plain"), _expected(), atol=1e-3)


def test_gate_learns_and_attention_then_receives_gradient():
    torch.manual_seed(0)
    layer = Gated(8, "se")
    x = torch.randn(2, 8, 5, 5)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    target = torch.randn_like(x)
    for _ in range(2):
        opt.zero_grad()
        ((layer(x) - target) ** 2).mean().backward()
        opt.step()
    assert layer.gate.item() != 0.0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.attn.parameters())


def test_attention_layer_names_the_insertions():
    assert isinstance(attention_layer("eca", 16, "gated"), Gated)
    assert type(attention_layer("eca", 16, "plain")).__name__ == "ECA"
    with pytest.raises(ValueError, match="gated, plain"):
        attention_layer("eca", 16, "soft")


def test_gate_values_per_position_read_the_built_model():
    placement = Placement.of({"backbone.4": ["se"], "fused.6": ["cbam"], "neck.15": ["eca", "simam"]})
    model = DetectionModel(build_yaml(V8, placement), verbose=False)
    holders = attention_layers(V8, placement)
    gated = [m for m in model.modules() if isinstance(m, Gated)]
    for i, m in enumerate(gated):
        m.gate.data.fill_(0.1 * (i + 1))
    values = gate_values({p: [model.model[i] for i in idx] for p, idx in holders.items()})
    assert set(values) == {"backbone.4", "fused.6", "neck.15"}
    assert all(0 < v <= 0.1 * len(gated) for v in values.values())
    plain = DetectionModel(build_yaml(V8, placement, "plain"), verbose=False)
    assert gate_values({p: [plain.model[i] for i in idx] for p, idx in holders.items()}) == {}


def test_gated_yaml_and_checkpoint_load_in_ultralytics(tmp_path):
    """The exported files keep the gates and load with `import spaces` first, whatever the file name."""
    from ultralytics import YOLO

    placement = Placement.of({"backbone.2": ["cbam(kernel_size=3)"], "fused.4": ["gc"]})
    path = write_yaml(build_yaml(load_base("yolov8s.yaml"), placement), tmp_path / "yolov8n-attn.yaml")
    assert yaml.safe_load(path.read_text())["scales"] == {"s": [0.33, 0.50, 1024]}
    model = YOLO(str(path))  # named like an "n" model, built at scale s
    gates = [m for m in model.model.modules() if isinstance(m, Gated)]
    assert gates and sum(p.numel() for p in model.model.parameters()) > 11_000_000
    gates[0].gate.data.fill_(0.25)
    weights = tmp_path / "best.pt"
    torch.save({"model": model.model}, weights)
    loaded = [m for m in YOLO(str(weights)).model.modules() if isinstance(m, Gated)]
    assert loaded[0].gate.item() == 0.25 and loaded[0].spec == "cbam(kernel_size=3)"
