"""Dependencies a user's environment accepts (issue 30, item 5): torch and torchvision are ranges in pyproject.toml,
CI's tested pair is pinned in constraints.txt, and README's install and test commands are what .ci/run runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: pip's own copy of tomli
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TORCH = ("torch", "torchvision")
CI_PAIR = {"torch": "2.14.1", "torchvision": "0.29.1"}


def _dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {r.name: r for r in requirements if r.name in TORCH}


def _constraints() -> list[Requirement]:
    lines = [line.split("#")[0].strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    return [Requirement(line) for line in lines if line]


def test_torch_is_a_range_and_ci_pins_its_tested_pair():
    deps = _dependencies()
    assert set(deps) == set(TORCH)
    for r in deps.values():
        assert r.specifier and not any(s.operator in {"==", "==="} for s in r.specifier), f"{r} is pinned"
    pins = {r.name: [(s.operator, s.version) for s in r.specifier] for r in _constraints()}
    assert pins == {name: [("==", version)] for name, version in CI_PAIR.items()}
    for name, version in CI_PAIR.items():
        assert deps[name].specifier.contains(version), f"CI's {name} {version} is outside {deps[name]}"


@pytest.mark.parametrize("torch, torchvision", [("2.13.0+cpu", "0.28.0+cpu"), ("2.15.0", "0.29.2"), ("2.3.0", "0.18.0"),
                                                ("2.14.1+cu130", "0.29.1+cu130")])
def test_other_working_pairs_are_admitted(torch, torchvision):
    deps = _dependencies()
    assert deps["torch"].specifier.contains(torch) and deps["torchvision"].specifier.contains(torchvision)


def test_torch_older_than_numpy_2_is_refused():
    """opencv-python brings NumPy 2, and torch before 2.3 was built against NumPy 1."""
    deps = _dependencies()
    assert not deps["torch"].specifier.contains("2.2.2") and not deps["torchvision"].specifier.contains("0.17.2")


def _commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_exactly_readme_install_and_test_commands():
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    readme = _commands(block)
    assert len(readme) == 2 and "-c constraints.txt" in readme[0] and readme[1].startswith(".venv/bin/python -m pytest")
    ci = [c for c in _commands((ROOT / ".ci" / "run").read_text()) if not c.startswith(("set ", "cd "))]
    assert ci[0] == readme[0] and ci[-1] == readme[1]  # README's install first, its test command last
    assert all("mkdocs build --strict" in c or c.startswith(".venv/bin/ruff ") for c in ci[1:-1]), ci  # checks between


# The real question, "does installing us keep a user's in-range torch?", is asked of pip itself. The full
# `pip install --dry-run -e .` would need the index (ultralytics, ray, ... metadata), so it would not be offline-safe;
# here pip resolves only pyproject's torch and torchvision lines, with no index at all, against a bare venv whose
# installed torch is fake dist-info metadata: it succeeds only if it installs nothing. About 3 s (1 s per pair).
@pytest.mark.slow
@pytest.mark.parametrize("torch, torchvision, kept", [("2.13.0+cpu", "0.28.0+cpu", True), ("2.15.0", "0.29.2", True),
                                                      ("2.2.2", "0.17.2", False)])
def test_pip_keeps_an_installed_torch_in_range(torch, torchvision, kept, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    pair = (("torch", torch, ""), ("torchvision", torchvision, f"Requires-Dist: torch=={torch.split('+')[0]}\n"))
    for name, version, requires in pair:
        info = Path(purelib) / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}")
        (info / "INSTALLER").write_text("pip\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no configured index, find-links or machine-wide constraints
    lines = [str(r) for r in _dependencies().values()]
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "--no-index", "--quiet"]
    done = subprocess.run([*pip, "--report", "-", *lines], capture_output=True, text=True, env=env, timeout=120)
    if kept:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["install"] == []
    else:  # out of range: pip would have to replace it, and with no index it cannot
        assert done.returncode != 0 and "No matching distribution found for torch" in done.stderr
