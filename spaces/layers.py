"""Plain-data view of an Ultralytics model YAML: one resolved record per layer.

Ultralytics resolves channels inside ``parse_model`` while it builds the network; attention layers
and fused blocks need those numbers in their YAML arguments (an unknown module gets its arguments
verbatim), so this module repeats the channel arithmetic over plain data, without building a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ultralytics.nn.tasks import load_checkpoint, yaml_model_load
from ultralytics.utils.ops import make_divisible  # parse_model's own rounding of channel counts

from spaces.blocks import having
from spaces.tasks import task_of

# Modules whose first YAML argument is the output channel count, scaled by width (the
# `base_modules` of Ultralytics' parse_model).
CHANNEL_FIRST = having("channels")
HEADS = having("head")


@dataclass(frozen=True)
class Layer:
    """One row of a model YAML with its resolved inputs and channels.

    ``index`` is the absolute layer index, ``inputs`` the absolute indices it reads, ``repeats``
    the row's ``n`` column and ``c_out`` its output channel count at the model's scale (0 for heads).
    """

    index: int
    module: str
    inputs: tuple[int, ...]
    repeats: int
    args: tuple
    c_out: int
    in_backbone: bool


def load_base(model: str | Path) -> dict:
    """Load a base model YAML by name (``yolov8n.yaml``) or path, with its scale made explicit; a
    checkpoint (``.pt``) gives the model dict it was built from.

    Raises ``ValueError`` with a one-line message when the file cannot be found or read.
    """
    if str(model).endswith(".pt"):
        d = {k: v for k, v in checkpoint_model(model).yaml.items() if k != "yaml_file"}
        task_of(d, f"base model '{model}'")
        return d
    try:
        d = yaml_model_load(str(model))
    except (FileNotFoundError, OSError) as e:
        raise ValueError(
            f"base model '{model}' not found: give a YAML path or an Ultralytics name such as yolov8n.yaml"
        ) from e
    if not isinstance(d, dict) or "backbone" not in d or "head" not in d:
        raise ValueError(f"base model '{model}' is not an Ultralytics model YAML: it needs 'backbone' and 'head' lists")
    task_of(d, f"base model '{model}'")
    scales = d.get("scales")
    if scales and not d.get("scale"):
        d["scale"] = next(iter(scales))  # Ultralytics' own fallback, made explicit
    return d


def checkpoint_model(path: str | Path):
    """The model inside an Ultralytics checkpoint file; ``ValueError`` in one line when it is none."""
    if not Path(path).is_file():
        raise ValueError(f"checkpoint '{path}' not found: give the path of a .pt file on this disk")
    try:
        model = load_checkpoint(path)[0]
    except Exception as e:  # torch.load raises many types for a file that is no checkpoint
        raise ValueError(f"'{path}' is not a loadable Ultralytics checkpoint ({type(e).__name__}); "
                         "give a .pt saved by Ultralytics") from None
    if not isinstance(getattr(model, "yaml", None), dict):
        raise ValueError(f"'{path}' holds no Ultralytics model with its YAML; give a .pt saved by Ultralytics")
    return model


def scale_constants(d: dict) -> tuple[float, float, float]:
    """(depth, width, max_channels) of the model dict at its scale."""
    scales, scale = d.get("scales"), d.get("scale")
    if scales:
        depth, width, max_channels = scales[scale or next(iter(scales))]
        return depth, width, max_channels
    return d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0), math.inf


def _absolute(f: Any, i: int) -> tuple[int, ...]:
    refs = f if isinstance(f, list) else [f]
    return tuple(r if r >= 0 else i + r for r in refs)


def resolve_layers(d: dict, input_channels: int = 3) -> list[Layer]:
    """Resolve every layer of model dict ``d`` the way ``ultralytics.nn.tasks.parse_model`` does."""
    _, width, max_channels = scale_constants(d)
    rows = list(d["backbone"]) + list(d["head"])
    n_backbone = len(d["backbone"])
    ch: list[int] = []
    layers: list[Layer] = []
    for i, (f, n, m, args) in enumerate(rows):
        inputs = _absolute(f, i)
        c_in = [ch[j] for j in inputs] if i else [input_channels]
        if m in CHANNEL_FIRST:
            c2 = args[0] if m == "Classify" else make_divisible(min(args[0], max_channels) * width, 8)
        elif m == "Concat":
            c2 = sum(c_in)
        elif m in HEADS:
            c2 = 0
        elif m in {"CBLinear", "TorchVision", "Index"}:
            c2 = args[0]
        else:
            c2 = c_in[0]
        layers.append(Layer(i, m, inputs, n, tuple(args), c2, i < n_backbone))
        ch.append(c2)
    return layers
