"""Function-preserving insertion: attention behind a zero-initialised residual gate.

No attention module starts as the identity: a sigmoid gate at init halves its input (SE, ECA,
ESE, GC, triplet), two such gates quarter it (CBAM, coord, GAM, ELA), SK replaces its input with new
convolutions and shuffle permutes channels. Inserted into a pretrained model, each one destroys
what the next pretrained layer expects (yolov8n on coco128: mAP50-95 0.347 -> 0.0003 with SE after
the backbone blocks). `Gated` computes ``x + gate * (attn(x) - x)`` with a learnable scalar
``gate`` that starts at 0, so the new model computes exactly what the base computes until training
moves the gate; the learned value says how much of the module the network chose to use (1: the
module as published, 0: not at all). The idea is ReZero's (Bachlechner et al., ReZero is All You
Need, UAI 2021), applied to the attention's own output.

``INSERTIONS`` names the two ways a module goes in: ``gated`` (this module) and ``plain`` (the module
exactly as published).
"""

from __future__ import annotations

import torch
from torch import nn

from yolo_attention_modules.attention import MODULES
from yolo_attention_modules.spec import split_spec

INSERTIONS = ("gated", "plain")


def build_attention(spec: str, channels: int) -> nn.Module:
    """The module ``spec`` names (``"se"``, ``"cbam(kernel_size=3)"``) on ``channels`` channels, as published."""
    name, params = split_spec(spec)
    if name not in MODULES:
        raise ValueError(f"unknown attention type {name!r}; known: {', '.join(MODULES)}")
    return MODULES[name](channels, **params)


class Gated(nn.Module):
    """``x + gate * (attn(x) - x)``; ``gate`` (a scalar) starts at 0, so the module starts as the identity.

    Written in a model YAML as ``[-1, 1, Gated, [c1, spec]]``, ``spec`` an attention spec such as
    ``se`` or ``cbam(kernel_size=3)``.
    """

    def __init__(self, c1: int, spec: str) -> None:
        super().__init__()
        self.spec = spec
        self.attn = build_attention(spec, c1)
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate * (self.attn(x) - x)

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}"


def attention_layer(spec: str, channels: int, insertion: str) -> nn.Module:
    """One attention module on ``channels`` channels, gated or plain (see `INSERTIONS`)."""
    if insertion == "gated":
        return Gated(channels, spec)
    if insertion == "plain":
        return build_attention(spec, channels)
    raise ValueError(f"unknown insertion {insertion!r}; choose one of {', '.join(INSERTIONS)}")
