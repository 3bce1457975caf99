"""Registry of attention modules that can be placed into an Ultralytics YOLO model: one row per module.

Every module maps a (B, C, H, W) feature map to one of the same shape, for any C, H, W >= 1.
Constructors take the channel count ``c1`` first, then optional plain (int/float/bool) settings,
so a module can be written in a model YAML as ``[-1, 1, <ClassName>, [c1, *settings]]``; the
class ``__name__`` is that YAML name. The classes live in `yolo_attention_modules.attention` (a saved model
needs them, and nothing of the search, where only Ultralytics is installed); this table adds what the search
needs of each: its searchable settings, its paper and the reach of its local gate.

In training mode the BatchNorm layers inside gam, triplet and sk's convs need more than one
value per channel across the batch, like Ultralytics' own Conv (so batch 1 on a 1x1 map fails, and
for triplet also C = 1 with H or W = 1); in eval mode every size works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

# Every class a checkpoint pickled before the modules moved names as ``spaces.attention.<name>`` (private
# helpers included) stays importable under that name, so those checkpoints still load.
from yolo_attention_modules.attention import (  # noqa: F401
    CBAM,
    ECA,
    ELA,
    ESE,
    GAM,
    GC,
    SE,
    SK,
    CoordAtt,
    ShuffleAttention,
    SimAM,
    TripletAttention,
    _GroupNorm,
    _SingleValueBatchNorm2d,
    _ZPoolGate,
)


@dataclass(frozen=True)
class AttentionType:
    """A registered attention module and its searchable settings.

    ``params`` lists constructor settings in constructor order, each with its allowed values, the
    first being the default; ``module.__name__`` is the name used in model YAML files. ``local``,
    for a module whose gate comes from local convolutions only, gives its (kernel, stride) path from
    its YAML args (the receptive-field diagnosis adds it); None: the gate pools the whole map.
    """

    name: str
    module: type[nn.Module]
    params: dict[str, tuple]
    paper: str
    local: Callable[[list], list[tuple[int, int]]] | None = None


ATTENTION: dict[str, AttentionType] = {
    t.name: t
    for t in (
        AttentionType("se", SE, {"reduction": (16, 8, 4)}, "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018"),
        AttentionType("eca", ECA, {"k": (0, 3, 5, 7)}, "Wang et al., ECA-Net: Efficient Channel Attention, CVPR 2020"),
        AttentionType(
            "cbam", CBAM, {"kernel_size": (7, 3)}, "Woo et al., CBAM: Convolutional Block Attention Module, ECCV 2018"
        ),
        AttentionType(
            "coord",
            CoordAtt,
            {"reduction": (16, 8, 32)},
            "Hou et al., Coordinate Attention for Efficient Mobile Network Design, CVPR 2021",
        ),
        AttentionType(
            "simam",
            SimAM,
            {"e_lambda": (1e-4,)},
            "Yang et al., SimAM: A Simple, Parameter-Free Attention Module for CNNs, ICML 2021",
        ),
        AttentionType(
            "gam",
            GAM,
            {"rate": (4, 2)},
            "Liu et al., Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions, "
            "arXiv:2112.05561, 2021",
            local=lambda args: [(7, 1), (7, 1)],  # two 7x7 convs; its channel MLP acts per position
        ),
        AttentionType(
            "triplet",
            TripletAttention,
            {"kernel_size": (7, 3)},
            "Misra et al., Rotate to Attend: Convolutional Triplet Attention Module, WACV 2021",
            local=lambda args: [(args[1] if len(args) > 1 and isinstance(args[1], int) else 7, 1)],  # one k x k conv
        ),
        AttentionType(
            "shuffle",
            ShuffleAttention,
            {"groups": (8, 4, 16)},
            "Zhang & Yang, SA-Net: Shuffle Attention for Deep Convolutional Neural Networks, ICASSP 2021",
        ),
        AttentionType(
            "gc",
            GC,
            {"reduction": (8, 4, 16)},
            "Cao et al., GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond, ICCVW 2019",
        ),
        AttentionType("sk", SK, {"reduction": (16, 8)}, "Li et al., Selective Kernel Networks, CVPR 2019"),
        AttentionType(
            "ese", ESE, {}, "Lee & Park, CenterMask: Real-Time Anchor-Free Instance Segmentation, CVPR 2020"
        ),
        AttentionType(
            "ela",
            ELA,
            {"kernel_size": (7, 5, 3)},
            "Xu & Wan, ELA: Efficient Local Attention for Deep Convolutional Neural Networks, arXiv:2403.01123, 2024",
        ),
    )
}


def attention_type(name: str) -> AttentionType:
    """The registered type called ``name``; ValueError listing the known names otherwise."""
    if name not in ATTENTION:
        raise ValueError(f"unknown attention type {name!r}; known: {', '.join(ATTENTION)}")
    return ATTENTION[name]


def yaml_args(name: str, channels: int, **params: int | float | bool) -> list:
    """Positional constructor arguments ``[channels, *settings]``: settings in declared order, defaults filled in."""
    kind = attention_type(name)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"attention {name!r} needs a positive int channel count, got {channels!r}")
    for key, value in params.items():
        allowed = kind.params.get(key)
        if allowed is None:
            known = ", ".join(kind.params) or "none"
            raise ValueError(f"attention {name!r} has no parameter {key!r}; parameters: {known}")
        if not any(value == a and type(value) is type(a) for a in allowed):
            raise ValueError(f"attention {name!r} parameter {key}={value!r} is not one of {allowed}")
    return [channels, *(params.get(key, allowed[0]) for key, allowed in kind.params.items())]


def make_attention(name: str, channels: int, **params: int | float | bool) -> nn.Module:
    """Build attention ``name`` on ``channels`` channels; settings are validated as in `yaml_args`."""
    return attention_type(name).module(*yaml_args(name, channels, **params))
