"""Function-preserving insertion for the search: `Gated` and `attention_layer` live in
`yolo_attention_modules.gate` (a saved model needs them where only Ultralytics is installed) and are
re-exported here, also so that checkpoints pickled before that move (as ``spaces.gate.Gated``) still load;
`gate_values` reads the learned gates of a trained model."""

from __future__ import annotations

from torch import nn

from yolo_attention_modules.gate import INSERTIONS, Gated, attention_layer

__all__ = ["INSERTIONS", "Gated", "attention_layer", "gate_values"]


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
