"""Tests for the attention registry in `spaces.attention`."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import torch
import ultralytics.nn.tasks as tasks
from ultralytics.nn.modules.conv import CBAM

from spaces.attention import ATTENTION, attention_type, make_attention, yaml_args

NAMES = list(ATTENTION)
SHAPES = [(1, 3, 1, 7), (2, 3, 7, 5), (2, 16, 8, 8), (1, 64, 5, 3), (2, 1, 3, 3)]
DECLARED = [(n, k, v) for n, t in ATTENTION.items() for k, vs in t.params.items() for v in vs]


def _perturb(module: torch.nn.Module) -> None:
    """Move every parameter off its initial value, so zero-initialised gates do not hide a broken path."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_train_mode(name: str, shape: tuple) -> None:
    torch.manual_seed(0)
    m = make_attention(name, shape[1]).train()
    _perturb(m)
    x = torch.randn(shape, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for key, p in m.named_parameters():
        if p.requires_grad and p.numel():  # ShuffleAttention at C = 1 has an empty channel half
            assert p.grad is not None and torch.isfinite(p.grad).all(), key
            assert p.grad.abs().sum() > 0, f"no gradient reaches {key}"


@pytest.mark.parametrize("name", NAMES)
def test_tiny_maps_eval_mode(name: str) -> None:
    for shape in [(1, 1, 1, 1), (1, 5, 1, 1), (1, 1, 1, 7), (1, 3, 7, 1)]:
        y = make_attention(name, shape[1]).eval()(torch.randn(shape))
        assert y.shape == shape and torch.isfinite(y).all(), shape


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str) -> None:
    x = torch.randn(2, 16, 6, 6)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        outs.append(make_attention(name, 16)(x))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize(("name", "key", "value"), DECLARED)
def test_every_declared_value_runs(name: str, key: str, value: object) -> None:
    x = torch.randn(1, 16, 6, 6)
    y = make_attention(name, 16, **{key: value})(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "key", "value"), DECLARED)
def test_yaml_args_rebuild_the_same_module(name: str, key: str, value: object) -> None:
    args = yaml_args(name, 24, **{key: value})
    t = ATTENTION[name]
    assert args == [24, *(value if k == key else vs[0] for k, vs in t.params.items())]
    a, b = t.module(*args), make_attention(name, 24, **{key: value})
    assert type(a) is type(b) and repr(a) == repr(b)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_declared_params(name: str) -> None:
    t = ATTENTION[name]
    assert t.name == name and t.paper and t.module.__doc__
    first, *rest = inspect.signature(t.module).parameters.values()
    assert first.name == "c1"
    assert [p.name for p in rest] == list(t.params)
    for p in rest:
        assert p.kind is p.POSITIONAL_OR_KEYWORD and p.default == t.params[p.name][0]
        assert type(p.default) in (int, float, bool) and len(set(t.params[p.name])) == len(t.params[p.name])
    assert yaml_args(name, 8) == [8, *(vs[0] for vs in t.params.values())]


def test_names_do_not_collide_with_ultralytics() -> None:
    """Checked against a fresh interpreter's `ultralytics.nn.tasks`: importing `spaces` registers our classes there."""
    fresh = subprocess.run(
        [sys.executable, "-c", "import json, ultralytics.nn.tasks as t; print(json.dumps(sorted(vars(t))))"],
        capture_output=True, text=True, check=True,
    )
    ultralytics_names = set(json.loads(fresh.stdout.splitlines()[-1]))
    assert ATTENTION["cbam"].module is CBAM
    assert len({t.module.__name__ for t in ATTENTION.values()}) == len(ATTENTION)
    for t in ATTENTION.values():
        assert t.module.__name__ not in ultralytics_names or t.module is CBAM, t.module.__name__
        assert vars(tasks).get(t.module.__name__) in (None, t.module), t.module.__name__


@pytest.mark.parametrize("call", [attention_type, lambda n: make_attention(n, 8), lambda n: yaml_args(n, 8)])
def test_unknown_name_rejected(call) -> None:
    with pytest.raises(ValueError, match=r"unknown attention type 'nope'; known: se, eca, cbam"):
        call("nope")


@pytest.mark.parametrize("build", [make_attention, yaml_args])
def test_bad_params_rejected(build) -> None:
    with pytest.raises(ValueError, match=r"'se' has no parameter 'ratio'; parameters: reduction"):
        build("se", 8, ratio=4)
    with pytest.raises(ValueError, match=r"'simam' has no parameter 'x'; parameters: e_lambda"):
        build("simam", 8, x=1)
    with pytest.raises(ValueError, match=r"'ese' has no parameter 'reduction'; parameters: none"):
        build("ese", 8, reduction=4)
    for value in (3, 8.0, True, "8", None):
        with pytest.raises(ValueError, match=r"'se' parameter reduction=.* is not one of \(16, 8, 4\)"):
            build("se", 8, reduction=value)
    for channels in (0, -1, 3.0, True, "8"):
        with pytest.raises(ValueError, match=r"'se' needs a positive int channel count"):
            build("se", channels)


def test_simam_is_parameter_free_and_follows_the_paper() -> None:
    m = make_attention("simam", 4)
    assert not list(m.parameters())
    x = torch.randn(2, 4, 3, 5)
    d = (x - x.mean((2, 3), keepdim=True)) ** 2
    expected = x * torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / 14 + 1e-4)) + 0.5)
    assert torch.allclose(m(x), expected)
    x1 = torch.randn(1, 4, 1, 1)
    assert torch.allclose(m(x1), x1 * torch.sigmoid(torch.tensor(0.5)))


@pytest.mark.parametrize(
    ("c", "groups", "used", "split", "shuffled"),
    [(64, 8, 8, (4, 4), True), (16, 16, 8, (1, 1), True), (6, 4, 3, (1, 1), True), (12, 8, 6, (1, 1), True),
     (3, 8, 1, (1, 2), False), (7, 8, 1, (3, 4), False), (1, 8, 1, (0, 1), False), (15, 4, 3, (2, 3), False)],
)
def test_shuffle_groups(c: int, groups: int, used: int, split: tuple, shuffled: bool) -> None:
    m = make_attention("shuffle", c, groups=groups)
    assert (m.groups, m.split, m.shuffle) == (used, split, shuffled)


def test_shuffle_matches_reference_layout_for_even_groups() -> None:
    """With the paper's even group width, the output equals the SA-Net reference computation."""
    torch.manual_seed(0)
    m = make_attention("shuffle", 16, groups=4)
    _perturb(m)
    x = torch.randn(2, 16, 5, 4)
    g = x.reshape(8, 4, 5, 4)
    x0, x1 = g.chunk(2, dim=1)
    xn = x0 * torch.sigmoid(m.cweight * x0.mean((2, 3), keepdim=True) + m.cbias)
    xs = x1 * torch.sigmoid(m.sweight * torch.nn.functional.group_norm(x1, 2, m.gn.weight, m.gn.bias) + m.sbias)
    ref = torch.cat([xn, xs], 1).reshape(2, 16, 5, 4).reshape(2, 2, 8, 5, 4).permute(0, 2, 1, 3, 4).reshape(2, 16, 5, 4)
    assert torch.allclose(m(x), ref, atol=1e-6)


def test_eca_kernel_sizes() -> None:
    assert make_attention("eca", 64).conv.kernel_size == (3,)  # timm: |log2(64) + 1| / 2 = 3
    assert make_attention("eca", 256).conv.kernel_size == (5,)  # (8 + 1) / 2 = 4 -> next odd 5
    for k in (3, 5, 7):
        assert make_attention("eca", 64, k=k).conv.kernel_size == (k,)


def test_gam_hidden_width() -> None:
    assert make_attention("gam", 3).channel[0].out_features == 1
    assert make_attention("gam", 64, rate=2).channel[0].out_features == 32


def test_gc_hidden_width_at_least_two() -> None:
    assert make_attention("gc", 3).mlp_scale.fc1.out_channels == 2
    assert make_attention("gc", 64, reduction=4).mlp_scale.fc1.out_channels == 16


def test_sk_splits_input_only_for_even_channels() -> None:
    assert make_attention("sk", 16).split_input and not make_attention("sk", 3).split_input


def test_sk_attention_bn_at_training_batch_one() -> None:
    m = make_attention("sk", 16).train()
    bn = m.attn.bn
    m(torch.randn(1, 16, 6, 6))  # batch 1: running statistics normalise, and stay as they are
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) and int(bn.num_batches_tracked) == 0
    m(torch.randn(2, 16, 6, 6))  # batch 2: ordinary batch statistics
    assert int(bn.num_batches_tracked) == 1


def test_ese_gate_is_per_channel_in_unit_interval() -> None:
    x = torch.rand(2, 8, 4, 5) + 0.5
    gate = make_attention("ese", 8)(x) / x
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate)) and (gate >= 0).all() and (gate <= 1).all()


def test_ela_uses_plain_sigmoid_of_groupnorm() -> None:
    m = make_attention("ela", 8, kernel_size=5)
    assert isinstance(m.act, torch.nn.Identity) and m.conv_h.kernel_size == (5, 1) and m.conv_w.kernel_size == (1, 5)
