"""YAML surgery: a base model dict plus a `Placement` gives a new model dict.

Pure functions over plain data. Attention "after" a layer becomes new rows right after it; every
absolute or relative ``from`` is re-indexed, and references to a layer that received attention
point at the last attention row. Fused positions rename a block (``<Block>_GatedAtt``) and append
the attention specs to its arguments (`spaces.fused`). Removed blocks vanish and their readers read
the block's input. ``insertion`` (`spaces.gate.INSERTIONS`) chooses how each module goes in:
``gated`` rows are ``Gated`` layers that start as the identity, ``plain`` rows the modules as published.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import NamedTuple

import yaml

from spaces.attention import attention_type, yaml_args
from spaces.fused import fused_name
from spaces.gate import INSERTIONS
from spaces.layers import resolve_layers
from spaces.placement import Placement, parse_spec
from spaces.positions import find_positions
from yolo_attention_modules import SUFFIXES, registered_modules


class PlacementError(ValueError):
    """The placement does not fit the base model or the search space."""


class _Plan(NamedTuple):
    rows: list[list]  # the new model's rows, backbone then head
    n_backbone: int  # how many of ``rows`` are the backbone
    kept: dict[int, int]  # base layer index -> its new index, for every kept layer
    holders: dict[str, list[int]]  # position name -> new indices of the layers holding its attention


def _plan(base: dict, placement: Placement, insertion: str = "gated") -> _Plan:
    """Lay out the new model's rows (see `_Plan`)."""
    if insertion not in INSERTIONS:
        raise PlacementError(f"unknown insertion {insertion!r}; choose one of {', '.join(INSERTIONS)}")
    positions = {p.name: p for p in find_positions(base)}
    after, fused, dropped = {}, {}, set()
    for name, specs in placement.modules:
        pos = positions.get(name)
        if pos is None or pos.kind == "drop":
            known = ", ".join(p for p, v in positions.items() if v.kind != "drop")
            raise PlacementError(f"unknown attention position '{name}' for this model; known: {known}")
        (fused if pos.kind == "fused" else after)[pos.layer] = (name, specs)
    for name in placement.dropped:
        pos = positions.get(name)
        if pos is None or pos.kind != "drop":
            known = ", ".join(p for p, v in positions.items() if v.kind == "drop") or "none"
            raise PlacementError(f"'{name}' is not a removable block of this model; removable: {known}")
        dropped.add(pos.layer)
    for layer, (name, _) in (after | fused).items():
        if layer in dropped:
            raise PlacementError(f"attention at '{name}' sits on a block the placement removes; keep the block or drop the attention")

    layers = resolve_layers(base)
    n_backbone = len(base["backbone"])
    rows: list[list] = []
    ref = {-1: -1}  # base index -> new index that readers of it now read (-1: the image)
    kept: dict[int, int] = {}
    holders: dict[str, list[int]] = {}
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
            position, specs = fused[layer.index]
            rows.append([new_f, n, fused_name(m, insertion), [*copy.deepcopy(args), list(specs)]])
            holders[position] = [new_i]
        else:
            rows.append([new_f, n, m, copy.deepcopy(args)])
        kept[layer.index] = ref[layer.index] = new_i
        position, specs = after.get(layer.index, (None, ()))
        for spec in specs:
            rows.append([-1, 1, *_attention_row(spec, layer.c_out, insertion)])
            ref[layer.index] = len(rows) - 1
            holders.setdefault(position, []).append(len(rows) - 1)
    return _Plan(rows, new_backbone if new_backbone is not None else len(rows), kept, holders)


def _attention_row(spec: str, channels: int, insertion: str) -> list:
    """(module, args) of one inserted attention row: ``Gated, [c, spec]`` or ``SE, [c, 16]``."""
    if insertion == "gated":
        return ["Gated", [channels, spec]]
    name, params = parse_spec(spec)
    return [attention_type(name).module.__name__, yaml_args(name, channels, **params)]


def build_yaml(base: dict, placement: Placement, insertion: str = "gated") -> dict:
    """Model dict of ``base`` with ``placement`` applied; single-scale, so any file name loads right."""
    rows, n_backbone, _, _ = _plan(base, placement, insertion)
    out = {k: copy.deepcopy(v) for k, v in base.items() if k not in {"backbone", "head", "yaml_file", "scales"}}
    scales, scale = base.get("scales"), base.get("scale")
    if scales:
        scale = scale or next(iter(scales))
        out["scale"], out["scales"] = scale, {scale: list(scales[scale])}
    out["backbone"], out["head"] = rows[:n_backbone], rows[n_backbone:]
    return out


def layer_map(base: dict, placement: Placement) -> dict[int, int]:
    """Base layer index -> new layer index, for every base layer the placement keeps."""
    return _plan(base, placement).kept


def attention_layers(base: dict, placement: Placement) -> dict[str, list[int]]:
    """Position name -> indices (in the new model) of the layers that hold its attention."""
    return _plan(base, placement).holders


def write_yaml(model: dict, path: str | Path, comment: str = "") -> Path:
    """Write a model dict as an Ultralytics-style YAML (one flow-style row per layer); a model with our attention
    says in its first comment line what builds it elsewhere (Ultralytics fails on it with a bare KeyError otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    modules = {row[2] for part in ("backbone", "head") for row in model[part] if isinstance(row[2], str)}
    if modules & set(registered_modules()) or any(m.endswith(tuple(SUFFIXES.values())) for m in modules):
        comment = ("needs yolo_attention_modules: pip install yolo-attention-modules (./modules of yolo-attention-search),"
                   " then `import yolo_attention_modules` before ultralytics.YOLO(this file)\n" + comment)
    text = "".join(f"# {line}\n" for line in comment.splitlines())
    for key, value in model.items():  # one key a line; nested values in flow style, as Ultralytics writes them
        if key in {"backbone", "head"}:
            continue
        if isinstance(value, dict):
            text += f"{key}:\n" + "".join(f"  {_flow(k)}: {_flow(v)}\n" for k, v in value.items())
        else:
            text += f"{_flow(key)}: {_flow(value)}\n"
    for part in ("backbone", "head"):
        text += f"{part}:\n" + "".join(f"  - {_flow(row)}\n" for row in model[part])
    path.write_text(text)
    return path


def _flow(value) -> str:
    """``value`` as one line of flow-style YAML."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]
