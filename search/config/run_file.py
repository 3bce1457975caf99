"""``run.yaml``, the file a search saves its options in: read back with one-line errors for a broken file, and with
the defaults of older studies filled in (`run_file_values`); the storage URL kept without its password.

SQLAlchemy and `search.select.racing` (SciPy; a layer above) are imported inside the functions that use them:
``python -m search --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import MISSING, Field
from pathlib import Path

import yaml

from trainers.files import replace_file


def _parsed(url: str | None):
    """``url`` as a SQLAlchemy URL when it holds credentials; None otherwise (or when SQLAlchemy cannot read it)."""
    if not url or "@" not in url:
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: open_study reports it
        return None


def without_password(url: str | None) -> str | None:
    """Storage ``url`` with its password removed (the database driver then reads it from its own
    environment: PGPASSWORD or ~/.pgpass, MYSQL_PWD; or give the full URL again with `resume --storage`)."""
    parsed = _parsed(url)
    return parsed._replace(password=None).render_as_string(hide_password=False) if parsed and parsed.password else url


def shown(url: str | None) -> str | None:
    """Storage ``url`` as printed in messages: the password replaced by ``***``."""
    parsed = _parsed(url)
    return parsed.render_as_string(hide_password=True) if parsed else url


def same_kind(value, declared: str) -> bool:
    """True when a run.yaml value has its field's declared type (``"int"``, ...; an int passes for a float)."""
    kind = {"bool": bool, "int": int, "float": (int, float), "str": str, "dict": dict}[declared]
    return isinstance(value, kind) and (declared == "bool" or not isinstance(value, bool))


# What older studies lack and what the versions that wrote them did, in run.yaml and in the study's ``config``.
OLD_STUDY_DEFAULTS = {
    "insertion": "plain",  # studies from before gated insertion inserted plainly
    "proxy_recipe": "ultralytics",  # and those from before recipes trained with its defaults
    "proxy_imgsz": 320,  # every run.yaml holds it; one without it meant the old fixed default
    "prior": False,  # nor did they queue the usual placements: a resume does not start now
    "metric": "task",  # the task's own score, before --metric
    "intensify": 0,  # no repeat seeds, before --intensify
    "intensify_seeds": 2,
    "latency_device": "cpu",  # latency timed on the CPU, before --latency-device
    "screen": "standalone",  # every trial trained alone, before --screen
}


def with_old_defaults(values: dict) -> dict:
    """``values`` (run.yaml's, or the study's ``config``) with `OLD_STUDY_DEFAULTS` for the keys it lacks."""
    return values | {key: value for key, value in OLD_STUDY_DEFAULTS.items() if key not in values}


def write_run_file(path: str | Path, public: dict) -> None:
    """Write a run's options (`RunConfig.public`: without the storage password) as YAML, ``run.yaml``."""
    replace_file(path, yaml.safe_dump(public, sort_keys=False))


def run_file_values(path: str | Path, declared: tuple[Field, ...]) -> dict:
    """The options in ``run.yaml`` at ``path``, checked against the ``declared`` fields (`RunConfig`'s) and with the
    defaults of older studies filled in; a broken file, unknown keys or values of the wrong type are one-line errors."""
    try:
        values = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]}); restore the file the search wrote") from None
    if not isinstance(values, dict) or "data" not in values:
        raise ValueError(f"{path}: not a run configuration (a mapping with at least 'data'); restore the file the search wrote")
    values = with_old_defaults(values)
    # Studies from before the racing confirmation gave seeds per candidate (confirm_seeds); a budget
    # replaces it (below), and the race reuses their saved seed runs (same folders, same seeds).
    seeds_era = values.pop("confirm_seeds", None) is not None and "confirm_budget" not in values
    known = {f.name: f for f in declared}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; was it written by another version?")
    for key, value in values.items():
        kind = known[key].type.split(" | ")[0]  # "int | None" -> "int" (annotations are strings here)
        if value is not None and not same_kind(value, kind):
            raise ValueError(f"{path}: '{key}: {value!r}' should be of type {kind}; restore the file the search wrote")
    if seeds_era:  # the default budget, or the least that races its --confirm-top (resume cannot change it)
        from search.select.racing import minimal_budget

        default = {f.name: f.default for f in declared if f.default is not MISSING}
        values["confirm_budget"] = max(default["confirm_budget"], minimal_budget(values.get("confirm_top", default["confirm_top"])))
    return values
