"""`Placement`: which attention modules go where, as a small serialisable value.

A placement maps position names (see `spaces.positions`) to an ordered list of attention specs
and names the base model's own attention blocks that are removed. An attention spec is a short
string: the type, then any non-default settings, e.g. ``"se"``, ``"cbam(kernel_size=3)"``.
Specs are kept in canonical form (defaults omitted, settings sorted), so two equal placements
have one key and one hash, whichever way they were written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spaces.attention import attention_type, yaml_args
from yolo_attention_modules.spec import split_spec


def parse_spec(spec: str) -> tuple[str, dict]:
    """Split ``"cbam(kernel_size=3)"`` into ``("cbam", {"kernel_size": 3})``, validated.

    Raises ``ValueError`` naming the bad part for malformed specs, unknown types or settings.
    """
    name, params = split_spec(spec)
    yaml_args(name, 1, **params)  # validates the type and every setting
    return name, params


def canonical_spec(spec: str) -> str:
    """Canonical string of an attention spec: defaults dropped, settings sorted."""
    name, params = parse_spec(spec)
    defaults = {k: v[0] for k, v in attention_type(name).params.items()}
    kept = sorted((k, v) for k, v in params.items() if v != defaults[k])
    return name + (f"({', '.join(f'{k}={v}' for k, v in kept)})" if kept else "")


@dataclass(frozen=True)
class Placement:
    """Attention specs per position (non-empty lists only, sorted by position) and removed blocks."""

    modules: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dropped: tuple[str, ...] = ()

    @classmethod
    def of(cls, modules: Mapping[str, Iterable[str]] | None = None, dropped: Iterable[str] = ()) -> Placement:
        """Build a placement from ``{position: [spec, ...]}``, canonicalising every spec."""
        if isinstance(dropped, str):  # `dropped: drop.10` written as a scalar
            dropped = [dropped]
        items = []
        for position, specs in (modules or {}).items():
            if isinstance(specs, str):
                specs = [specs]
            canon = tuple(canonical_spec(s) for s in specs)
            if canon:
                items.append((str(position), canon))
        return cls(tuple(sorted(items)), tuple(sorted(set(dropped))))

    @classmethod
    def from_dict(cls, d: Mapping | None) -> Placement:
        """Inverse of `to_dict`; an empty or missing dict is the baseline."""
        d = d or {}
        unknown = set(d) - {"modules", "dropped"}
        if unknown:
            raise ValueError(f"placement has unknown keys {sorted(unknown)}: use 'modules' and 'dropped'")
        return cls.of(d.get("modules") or {}, d.get("dropped") or ())

    def to_dict(self) -> dict:
        """Plain dict for YAML/JSON: ``{"modules": {position: [spec, ...]}, "dropped": [...]}``."""
        return {"modules": {p: list(s) for p, s in self.modules}, "dropped": list(self.dropped)}

    @property
    def key(self) -> str:
        """Stable 12-hex-digit hash: equal placements share it across processes and machines."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @property
    def is_baseline(self) -> bool:
        """True for the unmodified base model."""
        return not self.modules and not self.dropped

    @property
    def count(self) -> int:
        """Number of attention modules added (a fused spec counts once per block)."""
        return sum(len(specs) for _, specs in self.modules)

    def __str__(self) -> str:
        if self.is_baseline:
            return "baseline (no attention)"
        parts = [f"{p}: {'+'.join(s)}" for p, s in self.modules] + [f"{p}: removed" for p in self.dropped]
        return "; ".join(parts)
