"""The attention modules of models found by yolo-attention-search, for any Ultralytics environment.

A model the search exports (``best.yaml``, ``best.pt``) names these classes: ``import yolo_attention_modules``
and ``ultralytics.YOLO("best.yaml")`` builds it; ``YOLO("best.pt")`` imports this package by itself while it
unpickles. It needs Ultralytics (and so torch) and nothing else: no Optuna, Ray or timm. Its name is unique on
purpose: when a pickle names a module that is not installed, Ultralytics tries ``pip install <that name>``, and
``yolo_attention_modules`` is this distribution's (``pip install yolo-attention-modules``).
"""

from yolo_attention_modules.attention import MODULES
from yolo_attention_modules.fused import SUFFIXES, AttnBottleneck, fuse_attention, fused_name, split_fused_rows
from yolo_attention_modules.gate import INSERTIONS, Gated, attention_layer, build_attention
from yolo_attention_modules.register import register_modules, registered_modules
from yolo_attention_modules.spec import split_spec

register_modules()

__all__ = [
    "INSERTIONS",
    "MODULES",
    "SUFFIXES",
    "AttnBottleneck",
    "Gated",
    "attention_layer",
    "build_attention",
    "fuse_attention",
    "fused_name",
    "register_modules",
    "registered_modules",
    "split_fused_rows",
    "split_spec",
]
