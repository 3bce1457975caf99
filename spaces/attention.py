"""Registry of attention modules that can be placed into an Ultralytics YOLO model.

Every module maps a (B, C, H, W) feature map to one of the same shape, for any C, H, W >= 1.
Constructors take the channel count ``c1`` first, then optional plain (int/float/bool) settings,
so a module can be written in a model YAML as ``[-1, 1, <ClassName>, [c1, *settings]]``; the
class ``__name__`` is that YAML name. Where timm has the module it is a thin subclass of timm's
class, CBAM is Ultralytics' own, and the rest are written here after their papers.

In training mode the BatchNorm layers inside gam, triplet and sk's convs need more than one
value per channel across the batch, like Ultralytics' own Conv (so batch 1 on a 1x1 map fails, and
for triplet also C = 1 with H or W = 1); in eval mode every size works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import EcaModule, EffectiveSEModule, GlobalContext, SelectiveKernel, SEModule
from timm.layers.coord_attn import CoordAttn, EfficientLocalAttn
from torch import nn
from ultralytics.nn.modules.conv import CBAM


class _GroupNorm(nn.GroupNorm):
    """nn.GroupNorm that also accepts a batch with one value per group (its output is then the bias)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)  # F.group_norm refuses it


class _SingleValueBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that normalises with running statistics when a training batch has one value per channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.shape[1]:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class SE(SEModule):
    """Squeeze-and-excitation channel gate; hidden width C / reduction rounded to a multiple of 8, >= 8 (timm)."""

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__(c1, rd_ratio=1.0 / reduction)


class ECA(EcaModule):
    """Efficient channel attention: a k-tap 1-D conv across pooled channels; k=0 picks k from C (timm)."""

    def __init__(self, c1: int, k: int = 0) -> None:
        if k:
            super().__init__(None, kernel_size=k)
        else:
            super().__init__(c1)


class CoordAtt(CoordAttn):
    """Coordinate attention: H and W gates from strip-pooled features; hidden (2/3) C / reduction as in SE (timm)."""

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__(c1, rd_ratio=1.0 / reduction)


class SimAM(nn.Module):
    """Parameter-free gate sigmoid(1 / energy) per activation; c1 is unused. 1x1 maps get the gate 0.5.

    Yang et al., "SimAM: A Simple, Parameter-Free Attention Module for CNNs", ICML 2021.
    """

    def __init__(self, c1: int, e_lambda: float = 1e-4) -> None:
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[2] * x.shape[3] - 1, 1)  # the paper's H*W - 1, guarded for 1x1 maps
        d = (x - x.mean((2, 3), keepdim=True)).pow(2)
        return x * torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / n + self.e_lambda)) + 0.5)


class GAM(nn.Module):
    """Channel MLP over the (B, H, W, C) permuted map, then a 7x7 conv-BN spatial gate; hidden C // rate (>= 1).

    Liu et al., "Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions", 2021.
    """

    def __init__(self, c1: int, rate: int = 4) -> None:
        super().__init__()
        c_ = max(1, c1 // rate)
        self.channel = nn.Sequential(nn.Linear(c1, c_), nn.ReLU(inplace=True), nn.Linear(c_, c1))
        self.spatial = nn.Sequential(
            nn.Conv2d(c1, c_, 7, padding=3, bias=False),  # no bias: BN follows
            nn.BatchNorm2d(c_),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_, c1, 7, padding=3, bias=False),
            nn.BatchNorm2d(c1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.sigmoid(self.channel(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))  # sigmoid as in the paper
        return x * torch.sigmoid(self.spatial(x))


class _ZPoolGate(nn.Module):
    """Gate over the (P, Q) plane of a (B, D, P, Q) map from max and mean over D; same shape out."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.bn(self.conv(z)))


class TripletAttention(nn.Module):
    """Mean of three Z-pool gates over the (C, W), (H, C) and (H, W) planes; c1 is unused.

    Misra et al., "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021.
    """

    def __init__(self, c1: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.cw = _ZPoolGate(kernel_size)
        self.hc = _ZPoolGate(kernel_size)
        self.hw = _ZPoolGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.hw(x)
        y = y + self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        y = y + self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        return y / 3


class ShuffleAttention(nn.Module):
    """Per channel group: a pooled channel gate on one half, a GroupNorm spatial gate on the other, then shuffle.

    Zhang & Yang, "SA-Net: Shuffle Attention for Deep Convolutional Neural Networks", ICASSP 2021.
    Groups used: the largest g <= groups dividing C with C // g >= 2 (else 1); a group's cg channels
    split into cg // 2 channel-gated and cg - cg // 2 spatially gated ones (the paper needs cg even);
    the final two-way channel shuffle is applied only when C is even.
    """

    def __init__(self, c1: int, groups: int = 8) -> None:
        super().__init__()
        self.groups = next((g for g in range(min(groups, c1), 1, -1) if c1 % g == 0 and c1 // g >= 2), 1)
        cg = c1 // self.groups
        self.split = (cg // 2, cg - cg // 2)
        cc, cs = self.split
        self.cweight = nn.Parameter(torch.zeros(1, cc, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, cc, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, cs, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, cs, 1, 1))
        self.gn = _GroupNorm(cs, cs)
        self.shuffle = c1 % 2 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xc, xs = x.reshape(b * self.groups, c // self.groups, h, w).split(self.split, 1)
        xc = xc * torch.sigmoid(self.cweight * xc.mean((2, 3), keepdim=True) + self.cbias)
        xs = xs * torch.sigmoid(self.sweight * self.gn(xs) + self.sbias)
        y = torch.cat((xc, xs), 1).reshape(b, c, h, w)
        if self.shuffle:
            y = y.reshape(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)
        return y


class GC(GlobalContext):
    """Global context block: softmax-pooled context through a LayerNorm MLP gates the channels (timm).

    Hidden width: timm's round(C / reduction), but at least 2, since LayerNorm over one channel is constant.
    """

    def __init__(self, c1: int, reduction: int = 8) -> None:
        super().__init__(c1, rd_channels=max(2, int(c1 / reduction + 0.5)))


class SK(SelectiveKernel):
    """Selective-kernel conv (3x3 and dilated 3x3 paths, softmax-mixed), C -> C channels at stride 1 (timm).

    Unlike the gates above, the output is the mixed conv features, not the input rescaled. The input
    is split across the two paths only when C is even (timm requires it). The attention's BN, which
    sees one pooled value per channel per image, falls back to running statistics at training batch 1.
    """

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__(c1, c1, rd_ratio=1.0 / reduction, split_input=c1 % 2 == 0)
        self.attn.bn = _SingleValueBatchNorm2d(self.attn.bn.num_features)


class ESE(EffectiveSEModule):
    """Effective squeeze-excitation: one C -> C 1x1 conv on pooled features, hard-sigmoid gate (timm)."""

    def __init__(self, c1: int) -> None:
        super().__init__(c1)


class ELA(EfficientLocalAttn):
    """Efficient local attention: depthwise 1-D convs on H and W strips, GroupNorm, sigmoid gates (timm).

    Built without timm's extra SiLU before the sigmoid, as in the paper's sigmoid(GN(conv)), and with a
    GroupNorm that accepts one value per sample (C = 1 at batch 1).
    """

    def __init__(self, c1: int, kernel_size: int = 7) -> None:
        super().__init__(c1, kernel_size=kernel_size, act_layer=nn.Identity, norm_layer=partial(_GroupNorm, 1))


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
