"""YAML surgery: a base model dict plus a `Placement` gives a new model dict.

Pure functions over plain data. Attention "after" a layer becomes new rows right after it; every
absolute or relative ``from`` is re-indexed, and references to a layer that received attention
point at the last attention row. Fused positions rename a block ``<Block>_Att`` and append the
attention specs to its arguments (`spaces.fused`). Removed blocks vanish and their readers read the block's input.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from spaces.attention import attention_type, yaml_args
from spaces.fused import SUFFIX
from spaces.layers import resolve_layers
from spaces.placement import Placement, parse_spec
from spaces.positions import find_positions


class PlacementError(ValueError):
    """The placement does not fit the base model or the search space."""


def _plan(base: dict, placement: Placement) -> tuple[list[list], int, dict[int, int]]:
    """New rows, the new backbone length and the map from each kept base layer to its new index."""
    positions = {p.name: p for p in find_positions(base)}
    after, fused, dropped = {}, {}, set()
    for name, specs in placement.modules:
        pos = positions.get(name)
        if pos is None or pos.kind == "drop":
            known = ", ".join(p for p, v in positions.items() if v.kind != "drop")
            raise PlacementError(f"unknown attention position '{name}' for this model; known: {known}")
        (fused if pos.kind == "fused" else after)[pos.layer] = specs
    for name in placement.dropped:
        pos = positions.get(name)
        if pos is None or pos.kind != "drop":
            known = ", ".join(p for p, v in positions.items() if v.kind == "drop") or "none"
            raise PlacementError(f"'{name}' is not a removable block of this model; removable: {known}")
        dropped.add(pos.layer)

    layers = resolve_layers(base)
    n_backbone = len(base["backbone"])
    rows: list[list] = []
    ref = {-1: -1}  # base index -> new index that readers of it now read (-1: the image)
    kept: dict[int, int] = {}
    new_backbone = None
    for layer, (f, n, m, args) in zip(layers, list(base["backbone"]) + list(base["head"])):
        if layer.index == n_backbone:
            new_backbone = len(rows)
        if layer.index in dropped:
            ref[layer.index] = ref[layer.inputs[0]]
            continue
        new_i = len(rows)
        refs = [ref[j] for j in layer.inputs]
        new_f = [r - new_i if o < 0 else r for o, r in zip(f if isinstance(f, list) else [f], refs)]
        new_f = new_f if isinstance(f, list) else new_f[0]
        if layer.index in fused:
            rows.append([new_f, n, m + SUFFIX, [*copy.deepcopy(args), list(fused[layer.index])]])
        else:
            rows.append([new_f, n, m, copy.deepcopy(args)])
        kept[layer.index] = ref[layer.index] = new_i
        for spec in after.get(layer.index, ()):
            name, params = parse_spec(spec)
            rows.append([-1, 1, attention_type(name).module.__name__, yaml_args(name, layer.c_out, **params)])
            ref[layer.index] = len(rows) - 1
    return rows, new_backbone if new_backbone is not None else len(rows), kept


def build_yaml(base: dict, placement: Placement) -> dict:
    """Model dict of ``base`` with ``placement`` applied; single-scale, so any file name loads right."""
    rows, n_backbone, _ = _plan(base, placement)
    out = {k: copy.deepcopy(v) for k, v in base.items() if k not in {"backbone", "head", "yaml_file", "scales"}}
    scales, scale = base.get("scales"), base.get("scale")
    if scales:
        scale = scale or next(iter(scales))
        out["scale"], out["scales"] = scale, {scale: list(scales[scale])}
    out["backbone"], out["head"] = rows[:n_backbone], rows[n_backbone:]
    return out


def layer_map(base: dict, placement: Placement) -> dict[int, int]:
    """Base layer index -> new layer index, for every base layer the placement keeps."""
    return _plan(base, placement)[2]


def write_yaml(model: dict, path: str | Path, comment: str = "") -> Path:
    """Write a model dict as an Ultralytics-style YAML (one flow-style row per layer)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    body = {k: v for k, v in model.items() if k not in {"backbone", "head"}}
    text = header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None)
    for part in ("backbone", "head"):
        text += f"{part}:\n" + "".join(f"  - {yaml.safe_dump(row, default_flow_style=True).strip()}\n" for row in model[part])
    path.write_text(text)
    return path
