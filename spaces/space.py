"""The search space: positions, attention types and settings, counts and a cost budget.

A space file (YAML) restricts what the search may try; every key is optional::

    positions: ["backbone.*", "sppf.*", "neck.*", "fused.*", "drop.*"]   # fnmatch patterns
    types: [se, eca, cbam, coord, simam]      # default: every registered type
    max_per_position: 1                       # modules in a row at one position (0..k)
    max_total: 3                              # modules in the whole model (default: 3)
    settings:                                 # open up a type's settings (default: its default only)
      se: {reduction: [16, 8]}
      cbam: {kernel_size: [7, 3]}
    budget: {params_pct: 10, gflops_pct: 10}  # max added parameters / GFLOPs, % of the base

The baseline (no attention) is always in the space. The default of at most 3 modules keeps
candidates close to what people place by hand; raise ``max_total`` to search denser placements.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from ultralytics.utils.torch_utils import get_flops

from spaces.attention import ATTENTION, attention_type
from spaces.build import PlacementError, build_yaml
from spaces.placement import Placement, canonical_spec, parse_spec
from spaces.positions import Position, find_positions
from spaces.tasks import task_of

SPACE_KEYS = {"positions", "types", "max_per_position", "max_total", "settings", "budget"}
BUDGET_KEYS = {"params_pct", "gflops_pct"}
GFLOPS_IMGSZ = 640  # image side (pixels) at which GFLOPs are counted, as Ultralytics prints them


@dataclass(frozen=True)
class Cost:
    """Size of a model: parameters and GFLOPs at 640 px, with the change against the base in %."""

    params: int
    gflops: float
    params_pct: float
    gflops_pct: float


@dataclass(frozen=True)
class SearchSpace:
    """What the search may place where; build with `load_space`."""

    base: dict = field(repr=False, compare=False)
    positions: tuple[Position, ...]
    types: tuple[str, ...]
    max_per_position: int = 1
    max_total: int | None = 3
    settings: dict = field(default_factory=dict)
    budget: dict = field(default_factory=dict)

    @property
    def choices(self) -> tuple[str, ...]:
        """Every attention spec a position may receive (type x opened settings), canonical."""
        specs = []
        for name in self.types:
            opened = self.settings.get(name, {})
            keys = list(opened)
            for values in itertools.product(*(opened[k] for k in keys)):
                args = ", ".join(f"{k}={v}" for k, v in zip(keys, values))
                specs.append(canonical_spec(f"{name}({args})" if args else name))
        return tuple(dict.fromkeys(specs))

    @property
    def insert_positions(self) -> tuple[Position, ...]:
        """Positions that take attention modules (all but the removable blocks)."""
        return tuple(p for p in self.positions if p.kind != "drop")

    @property
    def drop_positions(self) -> tuple[Position, ...]:
        """The base's own attention blocks that a placement may remove."""
        return tuple(p for p in self.positions if p.kind == "drop")

    @property
    def max_modules(self) -> int:
        """Most modules one placement may add: ``max_total``, or every slot when unlimited."""
        limit = self.max_per_position * len(self.insert_positions)
        return limit if self.max_total is None else min(self.max_total, limit)

    def size(self) -> int:
        """Number of distinct placements, baseline included, before the budget is applied."""
        v, k = len(self.choices), self.max_per_position
        limit = self.max_modules
        ways = [1] + [0] * limit  # ways[t]: placements with t modules so far
        for _ in self.insert_positions:
            ways = [sum(ways[t - c] * v**c for c in range(min(k, t) + 1)) for t in range(limit + 1)]
        return sum(ways) * 2 ** len(self.drop_positions)

    @cached_property
    def base_cost(self) -> tuple[int, float]:
        """(parameters, GFLOPs) of the base model."""
        return _measure(self.base)

    def cost(self, placement: Placement) -> Cost:
        """Parameters and GFLOPs of the model the placement builds, and the change in %."""
        params, gflops = _measure(build_yaml(self.base, placement))
        base_params, base_gflops = self.base_cost
        return Cost(params, gflops, 100 * (params / base_params - 1), 100 * (gflops / base_gflops - 1))

    def check(self, placement: Placement) -> None:
        """Raise `PlacementError` with a one-line reason if the placement is outside this space."""
        names = {p.name for p in self.positions}
        allowed = set(self.choices)
        total = 0
        for position, specs in placement.modules:
            if position not in names:
                raise PlacementError(f"position '{position}' is not in the search space; its positions: "
                                     f"{', '.join(p.name for p in self.insert_positions) or 'none'}")
            if len(specs) > self.max_per_position:
                raise PlacementError(f"{len(specs)} modules at '{position}'; the space allows {self.max_per_position}")
            for spec in specs:
                if spec not in allowed:
                    raise PlacementError(f"attention '{spec}' is not in the search space; it has {', '.join(allowed)}")
            total += len(specs)
        if self.max_total is not None and total > self.max_total:
            raise PlacementError(f"{total} modules in all; the space allows {self.max_total}")
        for position in placement.dropped:
            if position not in names:
                raise PlacementError(f"removing '{position}' is not in the search space; removable: "
                                     f"{', '.join(p.name for p in self.drop_positions) or 'none'}")
        self.check_budget(placement)

    def check_budget(self, placement: Placement) -> None:
        """Raise `PlacementError` if the placement adds more parameters or GFLOPs than the budget."""
        if not self.budget:
            return
        cost = self.cost(placement)
        for key, value in (("params_pct", cost.params_pct), ("gflops_pct", cost.gflops_pct)):
            if key in self.budget and value > self.budget[key] + 1e-9:
                raise PlacementError(f"adds {value:.2f}% {key[:-4]}, over the budget of {self.budget[key]}%")

    def to_dict(self) -> dict:
        """The resolved space as a plain dict (what `space.yaml` holds)."""
        return {
            "positions": [p.name for p in self.positions],
            "types": list(self.types),
            "max_per_position": self.max_per_position,
            "max_total": self.max_total,
            "settings": {k: {s: list(v) for s, v in d.items()} for k, d in self.settings.items()},
            "budget": dict(self.budget),
        }


def _measure(model_dict: dict) -> tuple[int, float]:
    """(parameters, GFLOPs at `GFLOPS_IMGSZ`) of a model dict, built on the CPU as its task's model."""
    return model_cost(task_of(model_dict).model(model_dict, verbose=False))


def model_cost(model) -> tuple[int, float]:
    """(parameters, GFLOPs at `GFLOPS_IMGSZ`) of a built Ultralytics model: the one measure of a model's
    size that the search space, the trainer and the Ray executor share."""
    return sum(p.numel() for p in model.parameters()), get_flops(model, GFLOPS_IMGSZ)


def _fail(source: str, message: str) -> None:
    raise ValueError(f"{source}: {message}")


def load_space(base: dict, spec: str | Path | dict | None = None) -> SearchSpace:
    """Validate a space file (path, dict or None for the defaults) against a base model dict.

    Raises ``ValueError`` with a one-line message naming the file and the fix.
    """
    source = str(spec) if isinstance(spec, (str, Path)) else "search space"
    if isinstance(spec, (str, Path)):
        try:
            spec = yaml.safe_load(Path(spec).read_text())
        except OSError:
            _fail(source, "cannot read the space file; check the path")
        except yaml.YAMLError as e:
            _fail(source, f"not valid YAML ({str(e).splitlines()[0]})")
    spec = spec or {}
    if not isinstance(spec, dict):
        _fail(source, "a space file is a mapping with keys " + ", ".join(sorted(SPACE_KEYS)))
    unknown = set(spec) - SPACE_KEYS
    if unknown:
        _fail(source, f"unknown key(s) {sorted(unknown)}; known: {', '.join(sorted(SPACE_KEYS))}")

    for key in ("positions", "types"):
        if isinstance(spec.get(key), str):  # `types: se`: one item, not its characters
            spec = {**spec, key: [spec[key]]}
        if key in spec and not spec[key]:
            _fail(source, f"'{key}' is empty; list at least one, or leave the key out for all of them")
    every = find_positions(base)
    patterns = spec.get("positions") or ["*"]
    for pattern in patterns:
        if not any(fnmatch.fnmatch(p.name, str(pattern)) for p in every):
            _fail(source, f"position '{pattern}' matches nothing; positions: {', '.join(p.name for p in every)}")
    positions = tuple(p for p in every if any(fnmatch.fnmatch(p.name, str(pat)) for pat in patterns))

    types = tuple(spec.get("types") or ATTENTION)
    for name in types:
        try:
            attention_type(name)
        except ValueError as e:
            _fail(source, str(e))

    counts = {}
    for key, default in (("max_per_position", 1), ("max_total", 3)):
        value = spec.get(key, default)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            _fail(source, f"'{key}' must be a whole number >= 0, got {value!r}")
        counts[key] = value

    settings = {}
    for name, opened in (spec.get("settings") or {}).items():
        if name not in types:
            _fail(source, f"settings for '{name}', which is not among the space's types")
        if not isinstance(opened, dict):
            _fail(source, f"settings of '{name}' must map a setting to a list of values")
        for key, values in opened.items():
            values = tuple(values if isinstance(values, list) else [values])
            for value in values:
                try:
                    parse_spec(f"{name}({key}={value})")
                except ValueError as e:
                    _fail(source, str(e))
            settings.setdefault(name, {})[key] = values

    budget = spec.get("budget") or {}
    if not isinstance(budget, dict) or set(budget) - BUDGET_KEYS:
        _fail(source, f"'budget' takes {', '.join(sorted(BUDGET_KEYS))} (in % of the base model)")
    for key, value in budget.items():
        if not isinstance(value, (int, float)) or value < 0:
            _fail(source, f"budget {key} must be a number >= 0 (a % of the base), got {value!r}")

    space = SearchSpace(base, positions, types, counts["max_per_position"], counts["max_total"], settings, budget)
    if budget and not _budget_feasible(space):
        _fail(source, f"no placement with attention meets the budget {budget}; raise it or allow cheaper types")
    return space


def _budget_feasible(space: SearchSpace) -> bool:
    """True if at least one single-module placement (or a removal) fits the budget."""
    candidates = [Placement.of({p.name: [c]}) for p in space.insert_positions for c in space.choices]
    candidates += [Placement.of(dropped=[p.name]) for p in space.drop_positions]
    for placement in candidates:
        try:
            space.check_budget(placement)
            return True
        except PlacementError:
            continue
    return False
