"""Why attention might lower mAP on this dataset: two diagnostics the community gives.

1. Fitting: a run whose validation loss rises at the end over-fits (attention adds capacity and
   tends to hurt); one whose validation loss still falls is under-trained (more epochs may matter
   more than attention). `fit_gap_line` reads this off a run's per-epoch losses.
2. Receptive field against object sizes: attention adds context (most gates here pool the whole
   map); whether that helps depends on how the objects compare with what each detection level
   already sees. `object_sizes`, `receptive_fields`, `stage_table` and `size_table_markdown`.

Sizes, strides and receptive fields are in pixels of the network input (the training ``imgsz``).

`spaces` (even its block table) loads torch and Ultralytics, so it is imported inside the functions that read a
model: the report's other sections need neither, and Ultralytics is made offline-safe first
(`search.report.context.ready_ultralytics`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

TREND = 0.02  # a loss whose fitted change over the window exceeds 2% of its window mean is rising/falling
MIN_EPOCHS = 3
GLOBAL = "global"
OBJECTS_PER_STRIDE = 8  # conventional assignment: size s goes to the first level with stride * 8 >= s

# Roles of `spaces.blocks` read here: "bottlenecks", blocks approximated as `repeats` bottlenecks of two 3x3 convs
# (exact for C2f, an upper bound for C3); "conv", args [c2, k=1, s=1, ...], main path only; "pool_conv", a 2x2
# average pool (stride 1), then a stride-2 3x3 path; "global", blocks that see the whole map (transformer and pooled
# attention blocks): of the registry's attention types, those without a `local` path in their row (`_local_attention`).
@functools.cache
def _blocks(role: str) -> frozenset[str]:
    """The names of the blocks that play ``role`` (`spaces.blocks.having`)."""
    from spaces.blocks import having

    return having(role)


@functools.cache
def _local_attention() -> dict[str, Callable[[list], list[tuple[int, int]]]]:
    """YAML class name -> (kernel, stride) path of the registry's spatially local attention types."""
    from spaces.attention import ATTENTION

    return {t.module.__name__: t.local for t in ATTENTION.values() if t.local is not None}


# --- fitting -------------------------------------------------------------------------------------


def _relative_change(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares change of ``y`` from the first to the last ``x``, as a fraction of its mean."""
    slope = np.polyfit(x, y, 1)[0]
    return float(slope * (x[-1] - x[0]) / abs(y.mean())) if y.mean() else 0.0


def _trend(change: float) -> str:
    return "rising" if change > TREND else "falling" if change < -TREND else "flat"


def fit_gap_line(epochs: list[dict], name: str = "baseline") -> str:
    """One line on over- or under-fitting of run ``name`` from its per-epoch metric dicts.

    Losses are the sum of every loss the run recorded as both ``train/<loss>`` and ``val/<loss>`` (detection:
    box, cls and dfl; Ultralytics names them after each task's loss). The trend is a straight-line fit over the last
    third of the epochs (at least `MIN_EPOCHS`): rising or falling when the fitted change exceeds
    `TREND` of the mean; val rising with train not rising is over-fitting, val falling is
    under-fitting, both rising is unstable training, else converged. The final val - train gap is
    reported but does not decide: Ultralytics' train loss is measured on augmented (mosaic) images,
    so it is not on the same footing as the val loss. Epochs are keyed by ``"epoch"`` (list position
    when absent; the last dict of a repeated epoch wins) and those missing a loss are skipped.
    """
    names = sorted({k[len("train/"):] for e in epochs for k in e if k.startswith("train/")} &
                   {k[len("val/"):] for e in epochs for k in e if k.startswith("val/")})
    train_losses, val_losses = [f"train/{k}" for k in names], [f"val/{k}" for k in names]
    by_epoch = {e.get("epoch", i): e for i, e in enumerate(epochs)}
    rows = [e for _, e in sorted(by_epoch.items()) if all(k in e for k in train_losses + val_losses)]
    if len(rows) < MIN_EPOCHS:
        return f"{name} has {len(rows)} epochs with train and val losses: too few to judge its fitting"
    x = np.arange(len(rows), dtype=float)
    train = np.array([sum(e[k] for k in train_losses) for e in rows], dtype=float)
    val = np.array([sum(e[k] for k in val_losses) for e in rows], dtype=float)
    w = max(MIN_EPOCHS, round(len(rows) / 3))
    val_trend = _trend(_relative_change(x[-w:], val[-w:]))
    train_trend = _trend(_relative_change(x[-w:], train[-w:]))
    head = f"{name} ends with val loss {val[-1]:.2f} vs train {train[-1]:.2f} (gap {val[-1] - train[-1]:+.2f}, "
    window = f"over the last {w} epochs)"
    if val_trend == "rising" and train_trend == "rising":
        return f"{head}train and val rising {window}: unstable training; fix that before judging attention"
    if val_trend == "rising":
        return f"{head}val rising {window}: over-fitting; attention adds capacity and tends to hurt here"
    if val_trend == "falling":
        return f"{head}val still falling {window}: under-fitted; longer training may matter more than attention"
    return f"{head}val flat {window}: converged; the comparison with attention is fair at this length"


# --- object sizes --------------------------------------------------------------------------------


def _object_size(fields: list[str], shape: str = "extent", kpt_dim: int = 3) -> float | None:
    """sqrt(w*h) (normalized) of the object of one label line, as its task sees it (``shape``):
    ``extent``: a box ``class x y w h``, or a polygon's bounding box; ``rotated``: an oriented box's four
    corners, by its own two sides; ``keypoints``: the spread of a pose line's visible keypoints (``kpt_dim``
    values each, the third their visibility), falling back to its box when fewer than two are visible."""
    try:
        values = [float(v) for v in fields[1:]]
    except ValueError:
        return None
    if shape == "keypoints" and len(values) >= 4:
        points = [values[i : i + kpt_dim] for i in range(4, len(values) - kpt_dim + 1, kpt_dim)]
        seen = [(p[0], p[1]) for p in points if (p[2] > 0 if kpt_dim == 3 else True) and (p[0] > 0 or p[1] > 0)]
        xs, ys = [x for x, _ in seen], [y for _, y in seen]
        w, h = (max(xs) - min(xs), max(ys) - min(ys)) if len(seen) >= 2 else (values[2], values[3])
    elif shape == "rotated" and len(values) == 8:
        w = math.dist(values[0:2], values[2:4])
        h = math.dist(values[2:4], values[4:6])
    elif len(values) == 4:
        w, h = values[2], values[3]
    elif len(values) >= 6 and len(values) % 2 == 0:
        w, h = max(values[0::2]) - min(values[0::2]), max(values[1::2]) - min(values[1::2])
    else:
        return None
    return math.sqrt(w * h) if w > 0 and h > 0 and math.isfinite(w * h) else None


def object_sizes(label_files: Iterable[Path], imgsz: int, shape: str = "extent", kpt_dim: int = 3) -> np.ndarray:
    """Object sizes sqrt(w*h) in pixels at training size ``imgsz``, from YOLO label files, measured as the
    task sees its objects (`_object_size`: ``extent`` for boxes and polygons, ``rotated`` for oriented
    boxes, ``keypoints`` for pose).

    Assumes square images letterboxed to ``imgsz`` (normalized w and h both scale by ``imgsz``);
    for other aspect ratios the short side's extent is overestimated. Empty, malformed and zero-area
    lines are skipped.
    """
    sizes = [
        s * imgsz
        for path in label_files
        for line in Path(path).read_text().splitlines()
        if (s := _object_size(line.split(), shape, kpt_dim)) is not None
    ]
    return np.asarray(sizes, dtype=float)


# --- receptive fields ----------------------------------------------------------------------------


def _arg(args: tuple, i: int, default: int) -> int:
    return args[i] if len(args) > i and isinstance(args[i], int) else default


def _depth_repeats(n: int, depth: float) -> int:
    """A row's ``n`` scaled by depth as Ultralytics' parse_model does."""
    return max(round(n * depth), 1) if n > 1 else n


def _fused_parent(module: str) -> str:
    """``C2f`` for a fused row ``C2f_GatedAtt`` or ``C2f_Att``; other names unchanged."""
    return module.removesuffix("_GatedAtt").removesuffix("_Att")


def _unwrap(module: str, args: tuple, attention: dict[str, str]) -> tuple[str, tuple]:
    """A ``Gated`` row ``[c, spec]`` read as the attention it wraps (class name, YAML args)."""
    if module != "Gated":
        return module, args
    from spaces.attention import yaml_args
    from spaces.placement import parse_spec

    name, params = parse_spec(args[1])
    return attention[name], tuple(yaml_args(name, args[0], **params))


def _is_global(module: str, args: tuple, attention: dict[str, str]) -> bool:
    """True when the layer sees the whole map; ``attention`` maps registry names to YAML class names."""
    base = _fused_parent(module)
    if base in _blocks("global") or (base == "A2C2f" and len(args) > 1 and args[1]):  # A2C2f's a2: area attention
        return True
    if module != base:  # fused block: its last argument lists attention specs such as "se(reduction=8)"
        return any(attention.get(spec.partition("(")[0].strip().lower()) not in _local_attention() for spec in args[-1])
    return module in attention.values() and module not in _local_attention()


def _kernels(module: str, args: tuple, n: int) -> list[tuple[int, int]]:
    """The (kernel, stride) sequence of one local layer along its deepest path (empty: rf and stride kept)."""
    base = _fused_parent(module)
    if base in _blocks("bottlenecks"):
        return [(3, 1)] * (2 * n)
    if module in _blocks("conv"):
        k, dilation = _arg(args, 1, 1), _arg(args, 5, 1)
        return [(dilation * (k - 1) + 1, _arg(args, 2, 1))]
    if module in _blocks("pool_conv"):
        return [(2, 1), (3, 2)]
    if module == "SPPF":
        return [(_arg(args, 1, 5), 1)] * 3
    if module == "SPP":
        return [(max(args[1]) if len(args) > 1 else 13, 1)]
    if module in _local_attention():
        return _local_attention()[module](args)
    return []


def receptive_fields(model_dict: dict) -> list[dict]:
    """Theoretical receptive field and stride of every layer of an Ultralytics model dict.

    One dict per layer index: ``{"layer", "module", "stride", "rf"}`` with stride and rf in input
    pixels (ints), rf ``"global"`` from the first layer that sees the whole map onwards, and both
    None for heads (Detect and kin, which read several strides). A layer starts from the largest
    rf of its inputs and its first input's stride (so Concat passes them on, as do unknown modules);
    each conv of kernel k then adds (k - 1) * stride to the rf; nn.Upsample divides the stride.
    Theoretical rfs overstate what a network uses (the effective rf is far smaller).
    """
    from spaces.attention import ATTENTION
    from spaces.layers import HEADS, resolve_layers, scale_constants

    attention = {name: t.module.__name__ for name, t in ATTENTION.items()}
    depth = scale_constants(model_dict)[0]
    seen: list[tuple[int | str, int]] = []  # (rf, stride) of each layer so far
    rows = []
    for layer in resolve_layers(model_dict):
        if layer.module in HEADS:
            rows.append({"layer": layer.index, "module": layer.module, "stride": None, "rf": None})
            seen.append((1, 1))  # placeholder: nothing reads a head
            continue
        inputs = [seen[j] if j >= 0 else (1, 1) for j in layer.inputs]  # j < 0: the input image
        rfs = [rf for rf, _ in inputs]
        rf: int | str = GLOBAL if GLOBAL in rfs else max(rfs)
        stride = inputs[0][1]
        module, args = _unwrap(layer.module, layer.args, attention)
        if module == "nn.Upsample":
            stride = max(stride // _arg(args, 1, 2), 1)
        else:
            for k, s in _kernels(module, args, _depth_repeats(layer.repeats, depth)):
                rf = rf if rf == GLOBAL else rf + (k - 1) * stride
                stride *= s
            if _is_global(module, args, attention):
                rf = GLOBAL
        seen.append((rf, stride))
        rows.append({"layer": layer.index, "module": module, "stride": stride, "rf": rf})
    return rows


def _stage_name(stride: int) -> str:
    return f"P{round(math.log2(stride))}/{stride}"


def stage_table(model_dict: dict) -> list[dict]:
    """One row per stride level: the last backbone layer at each stride, then each Detect input.

    Rows are `receptive_fields` rows plus ``"stage"`` (e.g. ``"P3/8"``), ``"detect"`` (True for
    the head's inputs) and ``"where"`` (``"backbone"``, or e.g. ``"Detect input"``); approximation: a level's rf
    is that of the one layer that ends it.
    """
    from spaces.layers import HEADS, resolve_layers

    layers, fields = resolve_layers(model_dict), receptive_fields(model_dict)
    last_at = {row["stride"]: row for row, layer in zip(fields, layers) if layer.in_backbone}
    heads = [layer for layer in layers if layer.module in HEADS]
    detect = [fields[j] for j in heads[-1].inputs] if heads else []
    head = heads[-1].module if heads else ""
    return [{**row, "stage": _stage_name(row["stride"]), "detect": False, "where": "backbone"} for row in last_at.values()] + [
        {**row, "stage": _stage_name(row["stride"]), "detect": True, "where": f"{head} input"} for row in detect
    ]


def _size_range(low: float, high: float) -> str:
    if low <= 0:
        return f"<= {high:g}"
    return f"> {low:g}" if math.isinf(high) else f"{low:g}-{high:g}"


def size_table_markdown(sizes: np.ndarray, stages: list[dict]) -> str:
    """Markdown table of `stage_table` rows (stride, theoretical rf, objects) and a size-percentile line.

    Objects are shared out over the Detect inputs only: size s (px) goes to the smallest-stride level
    with stride * `OBJECTS_PER_STRIDE` >= s, else to the coarsest level; backbone rows show dashes.
    """
    sizes = np.asarray(sizes, dtype=float)
    detect = sorted((s for s in stages if s["detect"]), key=lambda s: s["stride"])
    bounds = [0.0] + [s["stride"] * OBJECTS_PER_STRIDE for s in detect[:-1]] + [math.inf]
    assigned: dict[int, tuple[str, str]] = {}  # layer -> (size range, share of objects)
    for stage, low, high in zip(detect, bounds, bounds[1:]):
        inside = int(np.count_nonzero((sizes > low) & (sizes <= high)))
        share = f"{inside / sizes.size:.0%} ({inside})" if sizes.size else "–"
        assigned[stage["layer"]] = (_size_range(low, high), share)
    lines = [
        "| stage | layer | module | stride (px) | theoretical RF (px) | object sizes (px) | objects |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in stages:
        size_range, share = assigned.get(s["layer"], ("–", "–")) if s["detect"] else ("–", "–")
        cells = [f"{s['stage']} {s['where']}", s["layer"], s["module"], s["stride"], s["rf"], size_range, share]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    if sizes.size:
        p10, p50, p90 = np.percentile(sizes, [10, 50, 90])
        lines += [
            "",
            f"Object sizes sqrt(w*h) at training size: 10th percentile {p10:.1f} px, median {p50:.1f} px, "
            f"90th percentile {p90:.1f} px ({sizes.size} objects).",
        ]
    else:
        lines += ["", "No objects found in the labels."]
    return "\n".join(lines)
