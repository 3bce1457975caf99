"""The attention modules that a model found by the search carries, written on torch and Ultralytics alone.

Every module maps a (B, C, H, W) feature map to one of the same shape, for any C, H, W >= 1.
Constructors take the channel count ``c1`` first, then optional plain (int/float/bool) settings,
so a module can be written in a model YAML as ``[-1, 1, <ClassName>, [c1, *settings]]``; the
class ``__name__`` is that YAML name. CBAM is Ultralytics' own; the rest are written here.

Why no timm: a saved .pt pickles every module class by its module path, and it must load where only
Ultralytics is installed, so nothing here imports timm (nor the search's own packages). SE, ECA,
CoordAtt, GC, SK, ESE and ELA were thin subclasses of timm's classes; they are re-written by hand with
timm's layout: the same submodule, parameter and buffer names and shapes, so their ``state_dict()``
keys equal timm's and weights saved from the timm-based classes load unchanged, and the same
arithmetic. Their forwards read only attributes that the timm-based objects also carry, under the
same names, so a checkpoint pickled from those (whose ``__dict__`` holds timm's submodules) still runs.

In training mode the BatchNorm layers inside gam, triplet and sk's convs need more than one
value per channel across the batch, like Ultralytics' own Conv (so batch 1 on a 1x1 map fails, and
for triplet also C = 1 with H or W = 1); in eval mode every size works.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules.conv import CBAM


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """timm's ``make_divisible``: ``v`` rounded to a multiple of ``divisor`` (>= min_value), bumped up one
    multiple if rounding lost more than 1 - round_limit of ``v``."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


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


class _LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map; timm's ``LayerNorm2d`` (eps 1e-6)."""

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class _ConvMlp(nn.Module):
    """1x1-conv MLP ``fc1 -> norm -> act -> drop -> fc2``; timm's ``ConvMlp`` layout."""

    def __init__(self, in_features: int, hidden_features: int, norm_layer: type[nn.Module] | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_features, hidden_features, kernel_size=1, bias=True)
        self.norm = norm_layer(hidden_features) if norm_layer else nn.Identity()
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.0)
        self.fc2 = nn.Conv2d(hidden_features, in_features, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.norm(self.fc1(x)))))


class _BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm2d, then ``drop`` (Identity) and ``act`` (in-place ReLU); timm's ``BatchNormAct2d`` layout."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.drop = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(x)))


class _ConvNormAct(nn.Module):
    """Bias-free 3x3 conv (dilation d, padding d) then `_BatchNormAct2d`; timm's ``ConvNormAct`` layout."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2  # timm's get_padding at stride 1
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn = _BatchNormAct2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _SelectiveKernelAttn(nn.Module):
    """Softmax weights over the paths from their pooled sum; timm's ``SelectiveKernelAttn`` layout."""

    def __init__(self, channels: int, num_paths: int = 2, attn_channels: int = 32) -> None:
        super().__init__()
        self.num_paths = num_paths
        self.fc_reduce = nn.Conv2d(channels, attn_channels, kernel_size=1, bias=False)
        self.bn = _SingleValueBatchNorm2d(attn_channels)
        self.act = nn.ReLU(inplace=True)
        self.fc_select = nn.Conv2d(attn_channels, channels * num_paths, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.sum(1).mean((2, 3), keepdim=True)
        x = self.fc_select(self.act(self.bn(self.fc_reduce(x))))
        b, c, h, w = x.shape
        return torch.softmax(x.view(b, self.num_paths, c // self.num_paths, h, w), dim=1)


class SE(nn.Module):
    """Squeeze-and-excitation channel gate; hidden width C / reduction rounded to a multiple of 8, >= 8.

    Follows the layout (state-dict keys) and arithmetic of timm's ``SEModule``.
    """

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__()
        self.add_maxpool = False
        rd_channels = _make_divisible(c1 * (1.0 / reduction), 8, round_limit=0.0)
        self.fc1 = nn.Conv2d(c1, rd_channels, kernel_size=1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, c1, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_se = x.mean((2, 3), keepdim=True)
        if self.add_maxpool:
            x_se = 0.5 * x_se + 0.5 * x.amax((2, 3), keepdim=True)
        x_se = self.fc2(self.act(self.bn(self.fc1(x_se))))
        return x * self.gate(x_se)


class ECA(nn.Module):
    """Efficient channel attention: a k-tap 1-D conv across pooled channels; k=0 picks k from C.

    Follows the layout (state-dict keys) and arithmetic of timm's ``EcaModule``.
    """

    def __init__(self, c1: int, k: int = 0) -> None:
        super().__init__()
        if not k:  # timm's rule, gamma 2 and beta 1
            t = int(abs(math.log(c1, 2) + 1) / 2)
            k = max(t if t % 2 else t + 1, 3)
        if k % 2 != 1:
            raise ValueError(f"ECA needs an odd kernel size, got k={k}")
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)
        self.act = None  # timm's optional MLP mode, off
        self.conv2 = None
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))
        if self.conv2 is not None:
            y = self.conv2(self.act(y))
        y = self.gate(y).view(x.shape[0], -1, 1, 1)
        return x * y.expand_as(x)


class CoordAtt(nn.Module):
    """Coordinate attention: H and W gates from strip-pooled features; hidden (2/3) C / reduction as in SE.

    Follows the layout (state-dict keys) and arithmetic of timm's ``CoordAttn``.
    """

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__()
        self.has_skip = False
        rd_channels = _make_divisible(c1 * (1.0 / reduction) * (2 / 3), 8, round_limit=0.0)
        self.conv1 = nn.Conv2d(c1, rd_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(rd_channels)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(rd_channels, c1, kernel_size=1, bias=False)
        self.conv_w = nn.Conv2d(rd_channels, c1, kernel_size=1, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        y = torch.cat([x.mean(3, keepdim=True), x.mean(2, keepdim=True).transpose(-1, -2)], dim=2)
        y = self.act(self.bn1(self.conv1(y)))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        out = x * self.gate(self.conv_w(y_w.transpose(-1, -2))) * self.gate(self.conv_h(y_h))
        if self.has_skip:
            out = out + x
        return out


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


class GC(nn.Module):
    """Global context block: softmax-pooled context through a LayerNorm MLP gates the channels.

    Follows the layout (state-dict keys) and arithmetic of timm's ``GlobalContext``.

    Hidden width: timm's round(C / reduction), but at least 2, since LayerNorm over one channel is constant.
    """

    def __init__(self, c1: int, reduction: int = 8) -> None:
        super().__init__()
        self.conv_attn = nn.Conv2d(c1, 1, kernel_size=1, bias=True)
        self.mlp_add = None  # timm's additive fusion, off
        self.mlp_scale = _ConvMlp(c1, max(2, int(c1 / reduction + 0.5)), norm_layer=_LayerNorm2d)
        self.gate = nn.Sigmoid()
        self.init_last_zero = False
        nn.init.kaiming_normal_(self.conv_attn.weight, mode="fan_in", nonlinearity="relu")  # timm's init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.conv_attn is not None:
            attn = F.softmax(self.conv_attn(x).reshape(b, 1, h * w), dim=-1).unsqueeze(3)  # (B, 1, H * W, 1)
            context = (x.reshape(b, c, h * w).unsqueeze(1) @ attn).view(b, c, 1, 1)
        else:
            context = x.mean(dim=(2, 3), keepdim=True)
        if self.mlp_scale is not None:
            x = x * self.gate(self.mlp_scale(context))
        if self.mlp_add is not None:
            x = x + self.mlp_add(context)
        return x


class SK(nn.Module):
    """Selective-kernel conv (3x3 and dilated 3x3 paths, softmax-mixed), C -> C channels at stride 1.

    Follows the layout (state-dict keys) and arithmetic of timm's ``SelectiveKernel``.

    Unlike the gates above, the output is the mixed conv features, not the input rescaled. The input
    is split across the two paths only when C is even (timm requires it). The attention's BN, which
    sees one pooled value per channel per image, falls back to running statistics at training batch 1.
    """

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__()
        self.num_paths = 2
        self.in_channels = c1
        self.out_channels = c1
        self.split_input = c1 % 2 == 0
        c_in = c1 // 2 if self.split_input else c1
        # timm's default kernels [3, 5] kept as 3x3: dilations 1 and 2
        self.paths = nn.ModuleList([_ConvNormAct(c_in, c1, 3, dilation=d) for d in (1, 2)])
        self.attn = _SelectiveKernelAttn(c1, self.num_paths, _make_divisible(c1 * (1.0 / reduction), 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split_input:
            x_split = torch.split(x, self.in_channels // self.num_paths, 1)
            x_paths = [op(x_split[i]) for i, op in enumerate(self.paths)]
        else:
            x_paths = [op(x) for op in self.paths]
        x = torch.stack(x_paths, dim=1)
        return torch.sum(x * self.attn(x), dim=1)


class ESE(nn.Module):
    """Effective squeeze-excitation: one C -> C 1x1 conv on pooled features, hard-sigmoid gate.

    Follows the layout (state-dict keys) and arithmetic of timm's ``EffectiveSEModule``.
    """

    def __init__(self, c1: int) -> None:
        super().__init__()
        self.add_maxpool = False
        self.fc = nn.Conv2d(c1, c1, kernel_size=1, padding=0)
        self.gate = nn.Hardsigmoid()  # relu6(x + 3) / 6, timm's hard_sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_se = x.mean((2, 3), keepdim=True)
        if self.add_maxpool:
            x_se = 0.5 * x_se + 0.5 * x.amax((2, 3), keepdim=True)
        return x * self.gate(self.fc(x_se))


class ELA(nn.Module):
    """Efficient local attention: depthwise 1-D convs on H and W strips, GroupNorm, sigmoid gates.

    Follows the layout (state-dict keys) and arithmetic of timm's ``EfficientLocalAttn``.

    Built without timm's extra SiLU before the sigmoid, as in the paper's sigmoid(GN(conv)), and with a
    GroupNorm that accepts one value per sample (C = 1 at batch 1).
    """

    def __init__(self, c1: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.has_skip = False
        p = kernel_size // 2
        self.conv_h = nn.Conv2d(c1, c1, kernel_size=(kernel_size, 1), padding=(p, 0), groups=c1, bias=False)
        self.conv_w = nn.Conv2d(c1, c1, kernel_size=(1, kernel_size), padding=(0, p), groups=c1, bias=False)
        self.norm_h = _GroupNorm(1, c1)
        self.norm_w = _GroupNorm(1, c1)
        self.act = nn.Identity()
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_h = self.gate(self.act(self.norm_h(self.conv_h(x.mean(dim=3, keepdim=True)))))  # (B, C, H, 1)
        a_w = self.gate(self.act(self.norm_w(self.conv_w(x.mean(dim=2, keepdim=True)))))  # (B, C, 1, W)
        out = x * a_h * a_w
        if self.has_skip:
            out = out + x
        return out


# Registry name -> class; spaces/attention.py keeps each one's searchable settings and paper.
MODULES: dict[str, type[nn.Module]] = {
    "se": SE,
    "eca": ECA,
    "cbam": CBAM,
    "coord": CoordAtt,
    "simam": SimAM,
    "gam": GAM,
    "triplet": TripletAttention,
    "shuffle": ShuffleAttention,
    "gc": GC,
    "sk": SK,
    "ese": ESE,
    "ela": ELA,
}
