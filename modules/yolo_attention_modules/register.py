"""Make the attention modules and fused blocks resolvable in Ultralytics model YAML files.

Ultralytics looks YAML module names up in the globals of `ultralytics.nn.tasks` and has no
registration hook, so this writes our attention classes there and wraps `parse_model` so that a
fused ``<Block>_GatedAtt`` row is built as its parent block and then fused (`yolo_attention_modules.fused`),
and a single-scale file loads at its one scale whatever its file name. Both lean on Ultralytics
internals and live here alone. Importing `yolo_attention_modules` runs it; every process that builds
a model from a YAML must have imported it (loading a .pt that holds our modules imports it).
"""

from __future__ import annotations

import functools

from torch import nn

from yolo_attention_modules.attention import MODULES
from yolo_attention_modules.fused import SUFFIXES, fuse_attention, split_fused_rows
from yolo_attention_modules.gate import Gated


def registered_modules() -> dict[str, type[nn.Module]]:
    """YAML name -> class for every attention module this package provides."""
    return {cls.__name__: cls for cls in MODULES.values()} | {Gated.__name__: Gated}


def register_modules() -> None:
    """Register our modules into Ultralytics' YAML parser; idempotent, safe in any process.

    Raises ``RuntimeError`` if Ultralytics already has a different object under one of our names.
    """
    import ultralytics.nn.tasks as tasks

    for name, cls in registered_modules().items():
        existing = vars(tasks).get(name)
        if existing is not None and existing is not cls:
            raise RuntimeError(f"Ultralytics already defines '{name}'; rename our module to avoid shadowing it")
        setattr(tasks, name, cls)

    if getattr(tasks.parse_model, "fuses_attention", False):
        return
    original = tasks.parse_model

    @functools.wraps(original)
    def parse_model(d, ch, verbose=True):
        d, fused = split_fused_rows(d)
        scales = d.get("scales") or {}
        if len(scales) == 1 and d.get("scale") not in scales:
            # Ultralytics guesses the scale from the file name (yolov8n-se.yaml: "n"); a single-scale
            # file, as `spaces.build_yaml` writes them, has only one answer whatever it is called.
            d["scale"] = next(iter(scales))
        model, save = original(d, ch, verbose)
        for i, (specs, insertion) in fused.items():
            fuse_attention(model[i], specs, insertion)
            model[i].type += f"{SUFFIXES[insertion]}{specs}"
            model[i].np = sum(p.numel() for p in model[i].parameters())
        return model, save

    parse_model.fuses_attention = True
    tasks.parse_model = parse_model
