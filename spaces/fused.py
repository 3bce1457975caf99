"""Attention fused inside every bottleneck of a CSP block: it lives in `yolo_attention_modules.fused` (a saved
model needs it) and is re-exported here, also so that checkpoints pickled before that move (as
``spaces.fused.AttnBottleneck``) still load."""

from yolo_attention_modules.fused import SUFFIXES, AttnBottleneck, fuse_attention, fused_name, split_fused_rows

__all__ = ["SUFFIXES", "AttnBottleneck", "fuse_attention", "fused_name", "split_fused_rows"]
