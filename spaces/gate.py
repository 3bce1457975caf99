"""Function-preserving insertion: attention behind a zero-initialised residual gate.

No registered module starts as the identity: a sigmoid gate at init halves its input (SE, ECA,
ESE, GC, triplet), two such gates quarter it (CBAM, coord, GAM, ELA), SK replaces its input with new
convolutions and shuffle permutes channels. Inserted into a pretrained model, each one destroys
what the next pretrained layer expects (yolov8n on coco128: mAP50-95 0.347 -> 0.0003 with SE after
the backbone blocks). `Gated` computes ``x + gate * (attn(x) - x)`` with a learnable scalar
``gate`` that starts at 0, so the new model computes exactly what the base computes until training
moves the gate; the learned value says how much of the module the network chose to use (1: the
module as published, 0: not at all). The idea is ReZero's (Bachlechner et al., ReZero is All You
Need, UAI 2021), applied to the attention's own output.

``INSERTIONS`` names the two ways a placement can be built: ``gated`` (this module) and ``plain``
(the module exactly as published).
"""

from __future__ import annotations

import torch
from torch import nn

from spaces.attention import make_attention
from spaces.placement import parse_spec

INSERTIONS = ("gated", "plain")


class Gated(nn.Module):
    """``x + gate * (attn(x) - x)``; ``gate`` (a scalar) starts at 0, so the module starts as the identity.

    Written in a model YAML as ``[-1, 1, Gated, [c1, spec]]``, ``spec`` an attention spec such as
    ``se`` or ``cbam(kernel_size=3)`` (`spaces.placement.parse_spec`).
    """

    def __init__(self, c1: int, spec: str) -> None:
        super().__init__()
        name, params = parse_spec(spec)
        self.spec = spec
        self.attn = make_attention(name, c1, **params)
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
        name, params = parse_spec(spec)
        return make_attention(name, channels, **params)
    raise ValueError(f"unknown insertion {insertion!r}; choose one of {', '.join(INSERTIONS)}")


def gate_values(layers: dict[str, list[nn.Module]]) -> dict[str, float]:
    """Mean gate of each position's `Gated` modules, for ``{position: [modules holding them]}``.

    Positions without a gate (plain insertion) are left out.
    """
    out = {}
    for position, modules in layers.items():
        gates = [float(m.gate.detach()) for module in modules for m in module.modules() if isinstance(m, Gated)]
        if gates:
            out[position] = sum(gates) / len(gates)
    return out
