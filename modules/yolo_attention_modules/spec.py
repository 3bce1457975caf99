"""Attention specs as written in model YAML files: ``"se"``, ``"cbam(kernel_size=3)"``."""

from __future__ import annotations

import ast
import re

_SPEC = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(?:\((.*)\))?\s*$")


def _literal(text: str):
    """A setting's value: a Python literal (8, 1e-4, True), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_spec(spec: str) -> tuple[str, dict]:
    """``"cbam(kernel_size=3)"`` -> ``("cbam", {"kernel_size": 3})``; ``ValueError`` naming the bad part when
    malformed. Only the syntax is checked here: the search checks names and settings (`spaces.placement`)."""
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if not match:
        raise ValueError(f"malformed attention spec {spec!r}: write a type such as 'se' or 'se(reduction=8)'")
    name, body = match.group(1).lower(), match.group(2)
    params: dict = {}
    for item in filter(None, (p.strip() for p in (body or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"malformed attention spec {spec!r}: settings are written key=value")
        params[key.strip()] = _literal(value.strip())
    return name, params
