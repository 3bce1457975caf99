"""One-shot supernet of a search space: one model that holds every candidate placement at once.

The supernet is the base model with every insert position of the space holding each of the space's
``choices`` once, gated (`yolo_attention_modules.gate.Gated`), in the order of ``space.choices``; it is
an ordinary model dict built by `build_yaml`, so Ultralytics builds, trains and saves it as any other
candidate. Fused positions hold several specs as any fused block does (every bottleneck's attention
is a chain of one `Gated` per spec), so they are in the supernet too. The base's removable blocks
(``drop.*`` positions) are not: a supernet path never removes a block.

`activate` picks one path (SPOS, Guo et al., Single Path One-Shot NAS with Uniform Sampling, ECCV 2020):
the placement's modules compute as usual and every other `Gated` module is an exact identity whose
attention is not computed (its instance ``forward`` is replaced by that of an ``nn.Identity``; the
class is untouched). With every gate at 0 any path computes the base model exactly.

Several modules at one position run in the supernet's fixed order, the order of ``space.choices``:
``{"p": ["eca", "se"]}`` activates the same path as ``{"p": ["se", "eca"]}`` (se, then eca, when the
space lists se first), and a spec cannot be repeated at one position. `sample_placement` draws
placements already in that order.

The model dict carries, under `SUPERNET_KEY`, which of its layers hold each position's attention
(`attention_layers`), so a trained supernet checkpoint knows its own paths (`supernet_modules`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from torch import nn

from spaces.build import PlacementError, attention_layers, build_yaml
from spaces.gate import Gated
from spaces.placement import Placement

SUPERNET_KEY = "supernet"  # model-dict key: position -> indices of the supernet layers holding its attention
RETRIES = 100  # draws of one module count before `sample_placement` draws another count
MAX_DRAWS = 100  # module counts drawn before `sample_placement` gives the baseline

_SKIP = nn.Identity()  # its bound ``forward`` stands in for an inactive module's: pickles and deep-copies as torch's


def supernet_placement(space) -> Placement:
    """Every insert position of ``space`` holding each of ``space.choices`` once, in that order; nothing removed."""
    return Placement.of({p.name: list(space.choices) for p in space.insert_positions})


def supernet_yaml(space) -> dict:
    """Model dict of the supernet of ``space`` (gated insertion), with its `SUPERNET_KEY` layer map."""
    placement = supernet_placement(space)
    holders = attention_layers(space.base, placement)
    return {**build_yaml(space.base, placement, "gated"), SUPERNET_KEY: {p: list(idx) for p, idx in holders.items()}}


def _net(model) -> nn.Module:
    """The Ultralytics model (`DetectionModel` or kin) inside a `YOLO` wrapper or a DDP/compile wrapper, or the model."""
    from ultralytics import YOLO

    if isinstance(model, YOLO):
        model = model.model
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


def supernet_modules(model, holders: dict[str, list[int]] | None = None) -> dict[tuple[str, str], list[Gated]]:
    """(position, spec) -> the `Gated` modules of a built supernet that compute it: one at an "after" position,
    one per bottleneck at a fused position. ``holders`` (position -> layer indices, `attention_layers`) defaults
    to the map the supernet's own model dict carries (`SUPERNET_KEY`)."""
    net = _net(model)
    if holders is None:
        holders = (getattr(net, "yaml", None) or {}).get(SUPERNET_KEY)
        if holders is None:
            raise ValueError(f"the model is not a supernet: its model dict has no '{SUPERNET_KEY}' layer map; build it with supernet_yaml")
    found: dict[tuple[str, str], list[Gated]] = {}
    for position, indices in holders.items():
        for i in indices:
            for m in net.model[int(i)].modules():
                if isinstance(m, Gated):
                    found.setdefault((position, m.spec), []).append(m)
    return found


def _set(module: Gated, active: bool) -> None:
    if active:
        module.__dict__.pop("forward", None)  # the class's forward again
    else:
        module.forward = _SKIP.forward


def held_modules(placement: Placement, held) -> set[tuple[str, str]]:
    """The (position, spec) modules of ``placement``, each checked to be among ``held`` (the supernet's (position, spec)
    keys); `PlacementError` for a placement the supernet does not hold: a removed block, a spec twice at one position,
    a position or spec outside it."""
    if placement.dropped:
        raise PlacementError(f"the supernet removes no blocks; {', '.join(placement.dropped)} cannot be removed in it")
    wanted = set()
    for position, specs in placement.modules:
        twice = [s for s, n in Counter(specs).items() if n > 1]
        if twice:
            raise PlacementError(f"'{twice[0]}' twice at '{position}': the supernet holds each spec once per position")
        for spec in specs:
            if (position, spec) not in held:
                raise PlacementError(f"the supernet holds no '{spec}' at '{position}'")
            wanted.add((position, spec))
    return wanted


def activate(model, placement: Placement, holders: dict[str, list[int]] | None = None) -> None:
    """Make ``placement``'s (position, spec) modules of supernet ``model`` compute and every other `Gated` module an
    exact identity that is not computed; the baseline closes them all. Several specs at one position run in the
    supernet's order (module doc). `PlacementError` for a placement the supernet does not hold (`held_modules`)."""
    modules = supernet_modules(model, holders)
    wanted = held_modules(placement, modules)
    for key, gated in modules.items():
        for m in gated:
            _set(m, key in wanted)


def deactivate(model, holders: dict[str, list[int]] | None = None) -> None:
    """Every `Gated` module of supernet ``model`` computes again (the whole supernet, as built)."""
    for gated in supernet_modules(model, holders).values():
        for m in gated:
            _set(m, True)


def active_placement(model, holders: dict[str, list[int]] | None = None) -> Placement:
    """The placement whose modules compute in supernet ``model`` now (every one after `deactivate`)."""
    on: dict[str, list[str]] = {}
    for (position, spec), gated in supernet_modules(model, holders).items():
        if "forward" not in gated[0].__dict__:
            on.setdefault(position, []).append(spec)
    return Placement.of(on)


def sample_placement(space, rng: random.Random, check: Callable[[Placement], None] | None = None) -> Placement:
    """A placement of ``space`` the supernet holds, drawn by ``rng`` (deterministic for a seeded one).

    The module count is uniform over 0..``space.max_modules`` (0: the baseline); then that many slots are drawn
    uniformly among the positions' ``max_per_position`` slots (at most one per choice), and each position's specs
    uniformly without repetition, in the supernet's order. ``check`` (default ``space.check``; pass a memoised one
    when the space has a budget, each check then builds the model) refuses a draw with `PlacementError`: the same
    count is drawn again up to `RETRIES` times, then another count; after `MAX_DRAWS` counts, the baseline."""
    check = check or space.check
    choices = list(space.choices)
    order = {c: i for i, c in enumerate(choices)}
    cap = min(space.max_per_position, len(choices))
    slots = [p.name for p in space.insert_positions for _ in range(cap)]
    most = min(space.max_modules, len(slots))
    for _ in range(MAX_DRAWS):
        count = rng.randint(0, most)
        for _ in range(RETRIES):
            per_position = Counter(rng.sample(slots, count))
            placement = Placement.of({p: sorted(rng.sample(choices, n), key=order.__getitem__)
                                      for p, n in sorted(per_position.items())})
            try:
                check(placement)
            except PlacementError:
                continue
            return placement
    return Placement()
