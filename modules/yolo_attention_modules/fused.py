"""Attention inside every bottleneck of a CSP block (like the community's C3SE, C2f_CBAM).

In a model YAML a fused block is its Ultralytics block with a suffix appended to the name and the
list of attention specs appended to its arguments, e.g. ``[-1, 3, C2f_GatedAtt, [128, True, [se]]]``:
``_GatedAtt`` puts each module behind a zero-initialised gate (`yolo_attention_modules.gate`), ``_Att`` inserts it
as published.
Ultralytics builds the parent block from the row unchanged (so scaling, repeats and head choice
are its own), then `fuse_attention` turns every `Bottleneck` inside into an `AttnBottleneck` that
keeps ``cv1`` and ``cv2`` under their names and adds ``attn``: base state-dict keys stay valid.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from ultralytics.nn.modules.block import Bottleneck

from yolo_attention_modules.gate import attention_layer

SUFFIXES = {"gated": "_GatedAtt", "plain": "_Att"}  # insertion -> block name suffix


class AttnBottleneck(nn.Module):
    """Bottleneck whose residual branch passes through attention: ``x + attn(cv2(cv1(x)))``."""

    def __init__(self, base: Bottleneck, attn: nn.Module):
        super().__init__()
        self.cv1, self.cv2, self.add = base.cv1, base.cv2, base.add
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(self.cv2(self.cv1(x)))
        return x + y if self.add else y


def fuse_attention(block: nn.Module, specs: list[str], insertion: str) -> None:
    """Replace, in place, every `Bottleneck` inside ``block`` by an `AttnBottleneck` with ``specs``."""
    for parent in list(block.modules()):
        for name, child in parent.named_children():
            if type(child) is Bottleneck:
                channels = child.cv2.conv.out_channels
                attn = nn.Sequential(*(attention_layer(spec, channels, insertion) for spec in specs))
                setattr(parent, name, AttnBottleneck(child, attn))


def fused_name(module: str, insertion: str) -> str:
    """YAML name of block ``module`` with attention fused in: ``C2f`` -> ``C2f_GatedAtt``."""
    return module + SUFFIXES[insertion]


def split_fused_rows(d: dict) -> tuple[dict, dict[int, tuple[list[str], str]]]:
    """A copy of model dict ``d`` with fused rows turned back into their parent block, and the
    attention specs and insertion of each fused layer by absolute index."""
    d = copy.deepcopy(d)
    fused = {}
    for i, row in enumerate(list(d["backbone"]) + list(d["head"])):
        for insertion, suffix in SUFFIXES.items():
            if isinstance(row[2], str) and row[2].endswith(suffix):
                row[2] = row[2][: -len(suffix)]
                fused[i] = (list(row[3].pop()), insertion)
                break
    return d, fused
