"""The one table of the Ultralytics YAML blocks this package knows, with the roles each plays.

A new Ultralytics block is one row here; every module that sorts blocks reads its set from
`having`: the YAML resolver (`spaces.layers`), the positions of a base (`spaces.positions`) and
the receptive-field diagnosis (`search.report.receptive_fields`).
"""

from __future__ import annotations

# Roles:
#   channels    args[0] is the output channel count, scaled by width (parse_model's channel-first blocks)
#   head        the model's output head, of any task (its inputs are the neck paths; a classifier's one input)
#   backbone    a block of stacked bottlenecks after which attention may go (`backbone.<i>`)
#   fusable     its bottlenecks can host attention inside (`fused.<i>`): those built from `Bottleneck`
#   removable   the base's own attention block, which a placement may drop (`drop.<i>`)
#   bottlenecks the receptive field grows by its 3x3 bottleneck path (diagnostics)
#   conv        args [c2, k=1, s=1, ...]: one conv on the main path (diagnostics)
#   pool_conv   2x2 average pool (stride 1), then a stride-2 3x3 path (diagnostics)
#   global      sees the whole map: transformer and pooled attention blocks (diagnostics)
_BLOCKS = {
    "Conv": "channels conv", "DWConv": "channels conv", "GhostConv": "channels conv", "SCDown": "channels conv",
    "ConvTranspose": "channels", "nn.ConvTranspose2d": "channels", "DWConvTranspose2d": "channels",
    "Focus": "channels", "Classify": "channels head", "SPP": "channels", "SPPF": "channels", "SPPELAN": "channels",
    "ADown": "channels pool_conv", "AConv": "channels pool_conv",
    "Bottleneck": "channels bottlenecks", "GhostBottleneck": "channels", "C2fAttn": "channels",
    "C1": "channels backbone bottlenecks", "C2": "channels backbone bottlenecks",
    "C3": "channels backbone fusable bottlenecks", "C2f": "channels backbone fusable bottlenecks",
    "C3k2": "channels backbone fusable bottlenecks", "A2C2f": "channels backbone fusable bottlenecks",
    "C3x": "channels backbone bottlenecks", "C3Ghost": "channels backbone bottlenecks",
    "RepC3": "channels backbone bottlenecks", "C2fCIB": "channels backbone bottlenecks",
    "BottleneckCSP": "channels backbone bottlenecks", "RepNCSPELAN4": "channels backbone bottlenecks",
    "ELAN1": "channels backbone bottlenecks", "C3TR": "channels backbone global",
    "C2PSA": "channels removable global", "C2fPSA": "channels removable global", "PSA": "channels removable global",
    "AIFI": "global",
    "Detect": "head", "Segment": "head", "Pose": "head", "OBB": "head", "v10Detect": "head", "YOLOEDetect": "head",
    "WorldDetect": "head", "Segment26": "head", "Pose26": "head", "OBB26": "head",
}
ROLES = frozenset({"channels", "head", "backbone", "fusable", "removable", "bottlenecks", "conv", "pool_conv", "global"})
BLOCKS: dict[str, frozenset[str]] = {name: frozenset(roles.split()) for name, roles in _BLOCKS.items()}


def having(role: str) -> frozenset[str]:
    """The names of the blocks that play ``role`` (one of `ROLES`)."""
    if role not in ROLES:
        raise ValueError(f"unknown block role {role!r}; one of {', '.join(sorted(ROLES))}")
    return frozenset(name for name, roles in BLOCKS.items() if role in roles)
