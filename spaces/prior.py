"""The usual placements: what people try by hand first, so that a short search already answers "does the usual
recipe help on my data?".

The attention literature and the community YAMLs put modules in four families of places, with four types
far more often than others (SE, CBAM, ECA, CoordAtt): one module before SPPF; one after each backbone
stage; fused inside the backbone's C2f/C3k2 bottlenecks (C2f_CBAM, C3SE); one on each neck path into the
head. `usual_placements` gives each family with each type the space allows, within its module limit
(the deepest positions of a family first, the ones nearest the head), named for the report.
"""

from __future__ import annotations

from spaces.build import PlacementError
from spaces.placement import Placement
from spaces.space import SearchSpace

USUAL_TYPES = {"se": "SE", "cbam": "CBAM", "eca": "ECA", "coord": "CoordAtt"}
FAMILIES = (("sppf", "before SPPF"), ("backbone", "after each backbone stage"), ("fused", "fused in the backbone's blocks"),
            ("neck", "on each neck path into the head"))


def _family(space: SearchSpace, kind: str) -> list[str]:
    """Positions of one family, at most the space's module limit, the deepest kept. Fused: the backbone's
    blocks only (those up to SPPF's input, when the model has one)."""
    positions = [p for p in space.insert_positions if p.kind == kind]
    if kind == "fused":
        sppf = [p.layer for p in space.insert_positions if p.kind == "sppf"]
        positions = [p for p in positions if not sppf or p.layer <= sppf[0]]
    names = [p.name for p in positions]
    return names[len(names) - min(len(names), space.max_modules) :]


def usual_placements(space: SearchSpace) -> list[tuple[str, Placement]]:
    """(name, placement) of every usual placement the space holds (module docstring), family by family."""
    found = []
    for kind, where in FAMILIES:
        names = _family(space, kind)
        for spec, label in USUAL_TYPES.items():
            if not names or spec not in space.choices:
                continue
            placement = Placement.of({name: [spec] for name in names})
            try:
                space.check(placement)
            except PlacementError:
                continue
            found.append((f"{label} {where}", placement))
    return found
