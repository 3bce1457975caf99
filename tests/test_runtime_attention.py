"""Tests for `yolo_attention_modules.attention`: the timm-free attention modules equal today's timm-based ones.

Each class must build the same ``state_dict()`` keys and shapes as the timm-based class of
`spaces.attention` (HEAD's thin timm subclasses) with the same arguments, and compute the same outputs and
BatchNorm running-stat updates from the same weights, in eval and train mode; and the module must import
and run where timm and the search's own packages cannot be imported.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

MODULES_DIR = Path(__file__).resolve().parents[1] / "modules"  # the folder holding the package
RUNTIME_FILE = MODULES_DIR / "yolo_attention_modules" / "attention.py"
if importlib.util.find_spec("yolo_attention_modules") is None:  # an editable install made before modules/ existed
    sys.path.insert(0, str(MODULES_DIR))  # (re-running `pip install -e .` maps it)

import yolo_attention_modules.attention as runtime  # noqa: E402
from spaces.attention import ATTENTION  # noqa: E402

CHANNELS = (1, 3, 8, 16, 64, 96)
SHAPE = (2, 9, 7)  # batch, H, W: H != W, so a swapped strip or permute shows


TIMM_BASED = ("se", "eca", "coord", "gc", "sk", "ese", "ela")  # today's thin subclasses of timm classes


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _is_timm_based(cls: type) -> bool:
    return any(c.__module__.startswith("timm") for c in cls.__mro__)


def _timm_reference(name: str, *args):
    """Today's timm-based class for ``name``, rebuilt from timm with the arguments its subclass passed."""
    from timm.layers import EcaModule, EffectiveSEModule, GlobalContext, SelectiveKernel, SEModule
    from timm.layers.coord_attn import CoordAttn, EfficientLocalAttn

    def eca(c1, k=0):
        return EcaModule(None, kernel_size=k) if k else EcaModule(c1)

    def sk(c1, reduction=16):
        m = SelectiveKernel(c1, c1, rd_ratio=1.0 / reduction, split_input=c1 % 2 == 0)
        m.attn.bn = runtime._SingleValueBatchNorm2d(m.attn.bn.num_features)  # as today's SK does
        return m

    factories = {
        "se": lambda c1, reduction=16: SEModule(c1, rd_ratio=1.0 / reduction),
        "eca": eca,
        "coord": lambda c1, reduction=16: CoordAttn(c1, rd_ratio=1.0 / reduction),
        "gc": lambda c1, reduction=8: GlobalContext(c1, rd_channels=max(2, int(c1 / reduction + 0.5))),
        "sk": sk,
        "ese": lambda c1: EffectiveSEModule(c1),
        "ela": lambda c1, kernel_size=7: EfficientLocalAttn(
            c1, kernel_size=kernel_size, act_layer=nn.Identity, norm_layer=partial(runtime._GroupNorm, 1)
        ),
    }
    return factories[name](*args)


def _reference(name: str, *args) -> nn.Module:
    """Today's class from `spaces.attention`; rebuilt from timm if that table already points at ours."""
    cls = ATTENTION[name].module
    if name in TIMM_BASED and not _is_timm_based(cls):
        return _timm_reference(name, *args)
    return cls(*args)


def _cases() -> list:
    """(name, args) for every declared value of every setting, others at their defaults, on each channel count."""
    cases = []
    for name, kind in ATTENTION.items():
        defaults = {k: v[0] for k, v in kind.params.items()}
        settings = [dict(defaults, **{k: v}) for k, vs in kind.params.items() for v in vs] or [defaults]
        unique = list({tuple(s.values()): None for s in settings})
        for c in CHANNELS:
            cases += [pytest.param(name, (c, *s), id="-".join(map(str, (name, c, *s)))) for s in unique]
    return cases


def _randomize(module: nn.Module) -> None:
    """Move every float parameter and buffer off its initial value (running variances kept positive)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, t in module.state_dict().items():
            if t.is_floating_point():
                r = torch.randn(t.shape, generator=g)
                t.copy_(r.abs() + 0.5 if key.endswith("running_var") else r)


# Constructor settings (after c1) and their defaults, as today's (HEAD's) timm-based classes declare them.
SIGNATURES = {
    "se": {"reduction": 16},
    "eca": {"k": 0},
    "cbam": {"kernel_size": 7},
    "coord": {"reduction": 16},
    "simam": {"e_lambda": 1e-4},
    "gam": {"rate": 4},
    "triplet": {"kernel_size": 7},
    "shuffle": {"groups": 8},
    "gc": {"reduction": 8},
    "sk": {"reduction": 16},
    "ese": {},
    "ela": {"kernel_size": 7},
}


def test_modules_table_matches_registry():
    assert list(runtime.MODULES) == list(ATTENTION) == list(SIGNATURES)
    for name, cls in runtime.MODULES.items():
        assert cls.__name__ == ATTENTION[name].module.__name__
        c1, *settings = inspect.signature(cls).parameters.values()
        assert c1.name == "c1" and c1.default is inspect.Parameter.empty, name
        assert {p.name: p.default for p in settings} == SIGNATURES[name], name
        assert cls.__module__ in ("yolo_attention_modules.attention", "ultralytics.nn.modules.conv"), name


@pytest.mark.parametrize(("name", "args"), _cases())
def test_matches_timm_based_class(name, args):
    try:
        ref = _reference(name, *args)
    except Exception:  # a combination today's class refuses
        pytest.skip("rejected by today's class")
    ours = runtime.MODULES[name](*args)

    assert not [type(m) for m in ours.modules() if type(m).__module__.startswith("timm")]
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    assert {k: v.shape for k, v in our_sd.items()} == {k: v.shape for k, v in ref_sd.items()}

    _randomize(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(SHAPE[0], args[0], *SHAPE[1:], generator=torch.Generator().manual_seed(0))
    for train in (False, True):
        ref.train(train)
        ours.train(train)
        with torch.no_grad():
            torch.testing.assert_close(ours(x.clone()), ref(x.clone()))
        ref_sd, our_sd = ref.state_dict(), ours.state_dict()
        for key in ref_sd:  # BatchNorm running stats after the train step
            torch.testing.assert_close(our_sd[key], ref_sd[key], msg=lambda m, k=key: f"{k}: {m}")


@pytest.mark.parametrize(
    ("name", "args"), [c for c in _cases() if c.values[0] in TIMM_BASED and c.values[1][0] in (3, 16)]
)
def test_runs_a_revived_timm_based_object(name, args):
    """Unpickling a checkpoint of today's code builds our class around the old object's ``__dict__``."""
    try:
        old = _reference(name, *args)
    except Exception:
        pytest.skip("rejected by today's class")
    _randomize(old)
    revived = runtime.MODULES[name].__new__(runtime.MODULES[name])
    revived.__setstate__(copy.deepcopy(old.__getstate__()))
    x = torch.randn(SHAPE[0], args[0], *SHAPE[1:], generator=torch.Generator().manual_seed(0))
    for train in (False, True):
        old.train(train)
        revived.train(train)
        with torch.no_grad():
            torch.testing.assert_close(revived(x.clone()), old(x.clone()))


def test_imports_and_runs_without_timm_or_search_packages(tmp_path):
    """Import the module in a fresh interpreter where timm, spaces, search and trainers raise ImportError.

    The interpreter runs in ``tmp_path`` with ``PYTHONPATH`` = ``modules/`` only. It imports
    ``yolo_attention_modules.attention`` through the package (so its ``__init__`` must be timm-free too)
    when ``modules/yolo_attention_modules/__init__.py`` exists, as it does since the package landed; only if
    that file is missing does it load ``attention.py`` by path with importlib. Then it builds each of the
    12 modules on 16 channels and runs a forward in train and eval mode.
    """
    use_package = (RUNTIME_FILE.parent / "__init__.py").is_file()
    code = textwrap.dedent(
        f"""
        import importlib.abc, importlib.util, sys

        BLOCKED = {{"timm", "spaces", "search", "trainers"}}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.partition(".")[0] in BLOCKED:
                    raise ImportError(f"blocked import of {{fullname}}")
                return None

        sys.meta_path.insert(0, Block())
        if {use_package!r}:
            import yolo_attention_modules.attention as attention
        else:
            spec = importlib.util.spec_from_file_location("yolo_attention_modules.attention", {str(RUNTIME_FILE)!r})
            attention = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = attention
            spec.loader.exec_module(attention)

        import torch

        assert list(attention.MODULES) == {list(ATTENTION)!r}, list(attention.MODULES)
        x = torch.randn(2, 16, 9, 7)
        for name, cls in attention.MODULES.items():
            m = cls(16)
            for train in (True, False):
                m.train(train)
                assert m(x.clone()).shape == x.shape, name
        loaded = sorted(n for n in sys.modules if n.partition(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok", len(attention.MODULES))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(MODULES_DIR)}
    env.setdefault("YOLO_CONFIG_DIR", str(tmp_path / "yolo-config"))
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.split() == ["ok", "12"]
