"""Candidate positions for attention in a base model, derived from its YAML.

Names carry the base layer index, so they read against the base YAML:

- ``backbone.<i>``: after backbone block ``i`` (C3, C2f, C3k2, A2C2f, ...);
- ``sppf.<i>``: after layer ``i``, the input of SPPF ("before SPPF");
- ``neck.<i>``: after layer ``i``, on a path into the head (a classifier's one: "before the head");
- ``fused.<i>``: inside every bottleneck of block ``i`` (as the community's C3SE/C2f_CBAM do);
- ``drop.<i>``: the base's own attention block ``i`` (e.g. YOLO11's C2PSA), kept or removed.

Every placement at an "after" position inserts layers after ``i`` and redirects each reference to
``i`` (Concat, Detect, the next layer) to the last inserted layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from spaces.blocks import having
from spaces.layers import HEADS, Layer, resolve_layers

# Cross-stage-partial blocks after which attention is placed in the backbone.
BACKBONE_BLOCKS = having("backbone")
FUSABLE = having("fusable")  # blocks whose bottlenecks can host attention
REMOVABLE = having("removable")  # the base's own attention blocks, which a placement may remove

KINDS = ("backbone", "sppf", "neck", "fused", "drop")


@dataclass(frozen=True)
class Position:
    """A place in the base model: ``kind`` is one of `KINDS`, ``layer`` the base layer index."""

    name: str
    kind: str
    layer: int
    module: str
    channels: int


def _fusable(layer: Layer) -> bool:
    if layer.module not in FUSABLE:
        return False
    # A2C2f builds area-attention blocks (no bottleneck) when its `a2` argument is true.
    return layer.module != "A2C2f" or not (len(layer.args) > 1 and layer.args[1])


def find_positions(d: dict) -> list[Position]:
    """All candidate positions of model dict ``d``, in layer order (after-positions before fused)."""
    layers = resolve_layers(d)
    detect_inputs = {j for layer in layers if layer.module in HEADS for j in layer.inputs}
    sppf_inputs = {j for layer in layers if layer.module == "SPPF" for j in layer.inputs}
    positions = []
    for layer in layers:
        i, m, c = layer.index, layer.module, layer.c_out
        if i in sppf_inputs:
            positions.append(Position(f"sppf.{i}", "sppf", i, m, c))
        elif i in detect_inputs:
            positions.append(Position(f"neck.{i}", "neck", i, m, c))
        elif layer.in_backbone and m in BACKBONE_BLOCKS:
            positions.append(Position(f"backbone.{i}", "backbone", i, m, c))
        if _fusable(layer):
            positions.append(Position(f"fused.{i}", "fused", i, m, c))
        if m in REMOVABLE and len(layer.inputs) == 1:
            positions.append(Position(f"drop.{i}", "drop", i, m, c))
    return positions
