"""Attention modules, the placement search space, YAML surgery and weight transfer.

Importing this package registers every attention module and fused block with Ultralytics' YAML
parser, so generated model YAML files (and checkpoints) load with `ultralytics.YOLO()`.
"""

from spaces.attention import ATTENTION, AttentionType, attention_type, make_attention
from spaces.build import PlacementError, build_yaml, layer_map, write_yaml
from spaces.layers import load_base
from spaces.placement import Placement
from spaces.positions import Position, find_positions
from spaces.register import register_modules
from spaces.space import Cost, SearchSpace, load_space
from spaces.transfer import TransferReport, transfer_weights

register_modules()

__all__ = [
    "ATTENTION",
    "AttentionType",
    "Cost",
    "Placement",
    "PlacementError",
    "Position",
    "SearchSpace",
    "TransferReport",
    "attention_type",
    "build_yaml",
    "find_positions",
    "layer_map",
    "load_base",
    "load_space",
    "make_attention",
    "register_modules",
    "transfer_weights",
    "write_yaml",
]
