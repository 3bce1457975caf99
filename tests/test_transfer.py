"""Weight transfer: with every inserted attention made an identity, the new model computes exactly
what the base computes (without the blocks a placement removes), for random placements (hypothesis)
on yolov8n and yolo11n. Models are built
with plain insertion, so the identity comes from the hooks here, not from the gates
(tests/test_gate.py checks those)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from ultralytics.nn.tasks import DetectionModel

import spaces
from spaces import Placement, build_yaml, find_positions, load_base, transfer_weights
from spaces.fused import AttnBottleneck
from spaces.register import registered_modules
from spaces.transfer import name_matched_count

BASES = {name: load_base(name) for name in ("yolov8n.yaml", "yolo11n.yaml")}
ATTENTION_CLASSES = tuple(registered_modules().values())
SPECS = [*spaces.ATTENTION, "se(reduction=4)", "cbam(kernel_size=3)", "eca(k=5)"]


def _base_model(name: str) -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel(BASES[name], verbose=False)
    for m in model.modules():  # non-trivial BatchNorm statistics, so a misplaced tensor shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _identity_attention(model: nn.Module) -> int:
    """Make every inserted or fused attention module return its input; returns how many."""
    hooked = 0
    for m in model.modules():
        target = m.attn if isinstance(m, AttnBottleneck) else m if isinstance(m, ATTENTION_CLASSES) else None
        if target is not None:
            target.register_forward_hook(lambda mod, inp, out: inp[0])
            hooked += 1
    return hooked


def _out(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = model(x)
    return y[0] if isinstance(y, (list, tuple)) else y


@st.composite
def placements(draw, base_name: str):
    positions = find_positions(BASES[base_name])
    dropped = [p.name for p in positions if p.kind == "drop" and draw(st.booleans())]
    removed = {name.rpartition(".")[2] for name in dropped}  # attention on a removed block is refused (test_space)
    modules = {
        p.name: draw(st.lists(st.sampled_from(SPECS), max_size=2))
        for p in positions
        if p.kind != "drop" and p.name.rpartition(".")[2] not in removed
    }
    return Placement.of({k: v for k, v in modules.items() if draw(st.booleans())}, dropped)


def _check_invariant(base_name: str, placement: Placement) -> None:
    base = reference = _base_model(base_name)
    if placement.dropped:  # a removed block changes the function: the reference is the base without it
        without = Placement.of({}, placement.dropped)
        reference = DetectionModel(build_yaml(BASES[base_name], without), verbose=False).eval()
        assert not transfer_weights(base, reference, without).missing
    new = DetectionModel(build_yaml(BASES[base_name], placement, "plain"), verbose=False).eval()
    report = transfer_weights(base, new, placement)
    assert report.transferred == report.total and not report.missing, str(report)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    expected = _out(reference, x)
    hooked = _identity_attention(new)
    assert hooked >= placement.count > 0 or placement.count == 0
    torch.testing.assert_close(_out(new, x), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("base_name", list(BASES))
def test_identity_attention_reproduces_base(base_name):
    @given(placements(base_name))
    @settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    def run(placement):
        _check_invariant(base_name, placement)

    run()


def test_identity_attention_beside_a_removed_block_reproduces_the_base_without_it():
    _check_invariant("yolo11n.yaml", Placement.of({"backbone.4": ["se"], "neck.16": ["eca", "cbam"]}, dropped=["drop.10"]))


def test_attention_really_changes_outputs():
    """Guard against a vacuous invariant: without the identity hooks the outputs differ."""
    placement = Placement.of({"backbone.4": ["se"], "fused.6": ["cbam"]})
    base = _base_model("yolov8n.yaml")
    new = DetectionModel(build_yaml(BASES["yolov8n.yaml"], placement, "plain"), verbose=False).eval()
    transfer_weights(base, new, placement)
    x = torch.rand(1, 3, 64, 64)
    assert not torch.allclose(_out(new, x), _out(base, x))


def test_every_placement_position_transfers_all_and_beats_name_matching(tmp_path):
    """From a checkpoint file: X = Y for attention at every position, Ultralytics' matching far fewer."""
    base = _base_model("yolo11n.yaml")
    path = tmp_path / "base.pt"
    torch.save({"model": base}, path)
    positions = find_positions(BASES["yolo11n.yaml"])
    placement = Placement.of({p.name: ["se"] for p in positions if p.kind != "drop"})
    new = DetectionModel(build_yaml(BASES["yolo11n.yaml"], placement), verbose=False)
    report = transfer_weights(path, new, placement)
    assert report.transferred == report.total == len(base.state_dict())
    assert name_matched_count(path, new) < report.total // 2
    assert str(report) == f"transferred {report.total}/{report.total} base tensors"


def test_dropped_block_tensors_are_reported():
    placement = Placement.of({"neck.16": ["eca"]}, dropped=["drop.10"])
    base = _base_model("yolo11n.yaml")
    new = DetectionModel(build_yaml(BASES["yolo11n.yaml"], placement), verbose=False)
    report = transfer_weights(base, new, placement)
    c2psa = sum(1 for k in base.state_dict() if k.startswith("model.10."))
    assert report.removed == c2psa > 0 and report.transferred == report.total == len(base.state_dict()) - c2psa
    assert "in removed layers" in str(report)
