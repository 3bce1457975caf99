"""Positions, placements, YAML surgery and the space file, on real Ultralytics model YAMLs."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

import spaces
from spaces import Placement, PlacementError, build_yaml, find_positions, load_base, load_space, write_yaml
from spaces.layers import resolve_layers

MODELS = ["yolov5nu.yaml", "yolov8n.yaml", "yolo11n.yaml", "yolo12n.yaml"]


@pytest.fixture(scope="module", params=MODELS)
def base(request):
    return load_base(request.param)


def test_resolved_channels_match_ultralytics(base):
    """Our channel arithmetic over plain data equals what Ultralytics builds, layer by layer."""
    model = DetectionModel(base, verbose=False)
    outputs = {}
    for i, layer in enumerate(model.model[:-1]):
        layer.register_forward_hook(lambda m, inp, out, i=i: outputs.__setitem__(i, out.shape[1]))
    model.eval()(torch.zeros(1, 3, 64, 64))
    resolved = resolve_layers(base)
    assert {i: resolved[i].c_out for i in outputs} == outputs


def test_positions_cover_every_kind():
    names = {m: [p.name for p in find_positions(load_base(m))] for m in MODELS}
    assert names["yolov8n.yaml"] == [
        "backbone.2", "fused.2", "backbone.4", "fused.4", "backbone.6", "fused.6", "sppf.8", "fused.8",
        "fused.12", "neck.15", "fused.15", "neck.18", "fused.18", "neck.21", "fused.21",
    ]
    assert "drop.10" in names["yolo11n.yaml"]  # C2PSA can be removed
    assert "fused.6" not in names["yolo12n.yaml"]  # A2C2f with area attention has no bottleneck
    assert "fused.11" in names["yolo12n.yaml"]  # A2C2f(a2=False) builds C3k bottlenecks


def test_every_position_builds_and_runs(base):
    for position in find_positions(base):
        if position.kind == "drop":
            placement = Placement.of(dropped=[position.name])
        else:
            placement = Placement.of({position.name: ["se", "cbam(kernel_size=3)"]})
        model = DetectionModel(build_yaml(base, placement), verbose=False)
        model.eval()(torch.zeros(1, 3, 64, 64))


def test_references_point_at_attention_output():
    base = load_base("yolov8n.yaml")
    placement = Placement.of({"backbone.6": ["se(reduction=8)"], "neck.15": ["eca", "simam"]})
    gated = build_yaml(base, placement)  # the default: each module behind a zero-initialised gate
    assert [r for r in gated["backbone"] if r[2] == "Gated"] == [[-1, 1, "Gated", [128, "se(reduction=8)"]]]
    new = build_yaml(base, placement, "plain")
    assert [r[0] for r in gated["head"]] == [r[0] for r in new["head"]]  # same wiring either way
    rows = new["backbone"] + new["head"]
    assert rows[7][2] == "SE" and rows[7][3] == [128, 8]  # yolov8n layer 6 has 128 channels
    concat_p4 = next(r for r in rows if r[2] == "Concat" and r[0][1] != -1 and r[0][1] < 10)
    assert concat_p4[0] == [-1, 7]  # the P4 concat now reads SE's output, not the C2f
    detect = rows[-1]
    assert detect[2] == "Detect" and detect[0][0] == 18  # P3 path reads the last of the two modules
    assert rows[18][2] == "SimAM" and rows[17][2] == "ECA"


def test_drop_redirects_readers_to_the_input():
    base = load_base("yolo11n.yaml")
    new = build_yaml(base, Placement.of(dropped=["drop.10"]))
    rows = new["backbone"] + new["head"]
    assert "C2PSA" not in [r[2] for r in rows]
    assert [r for r in rows if r[2] == "Concat"][-1][0] == [-1, 9]  # head P5 concat reads SPPF


def test_written_yaml_keeps_scale_and_loads_in_ultralytics(tmp_path):
    base = load_base("yolov8s.yaml")
    placement = Placement.of({"sppf.8": ["cbam"], "fused.4": ["se(reduction=8)"]})
    path = write_yaml(build_yaml(base, placement), tmp_path / "trial_12.yaml", comment=str(placement))
    written = yaml.safe_load(path.read_text())
    assert written["scales"] == {"s": [0.33, 0.5, 1024]}
    model = YOLO(str(path), task="detect")
    expected = DetectionModel(build_yaml(base, placement), verbose=False)
    assert sum(p.numel() for p in model.model.parameters()) == sum(p.numel() for p in expected.parameters())
    assert model.model.model[4].m[0].attn[0].attn.fc1.out_channels == 8  # C2f(64) bottleneck, gated SE: 64 / 8


def test_user_model_file(tmp_path):
    """A user's own YAML (no scales, explicit multipliers) gets positions and builds."""
    user = {
        "nc": 3, "depth_multiple": 0.33, "width_multiple": 0.25,
        "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 3, "C2f", [128, True]],
                     [-1, 1, "Conv", [256, 3, 2]], [-1, 3, "C2f", [256, True]], [-1, 1, "SPPF", [256, 5]]],
        "head": [[-1, 1, "nn.Upsample", [None, 2, "nearest"]], [[-1, 2], 1, "Concat", [1]],
                 [-1, 3, "C2f", [128]], [[8, 5], 1, "Detect", ["nc"]]],
    }
    path = tmp_path / "my_model.yaml"
    path.write_text(yaml.safe_dump(user))
    base = load_base(path)
    names = [p.name for p in find_positions(base)]
    assert names == ["backbone.2", "fused.2", "sppf.4", "fused.4", "neck.5", "neck.8", "fused.8"]
    placement = Placement.of({n: ["eca"] for n in names})
    DetectionModel(build_yaml(base, placement), verbose=False).eval()(torch.zeros(1, 3, 64, 64))


def test_placement_round_trip_and_hash():
    a = Placement.of({"neck.15": ["se(reduction=16)", "cbam(kernel_size=3)"], "backbone.2": "eca"})
    b = Placement.from_dict(yaml.safe_load(yaml.safe_dump(a.to_dict())))
    assert a == b and a.key == b.key and hash(a) == hash(b)
    assert dict(a.modules)["neck.15"] == ("se", "cbam(kernel_size=3)")  # default setting dropped
    assert a.key != Placement.of({"neck.15": ["cbam(kernel_size=3)", "se"], "backbone.2": "eca"}).key  # order counts
    assert Placement.of({"x": []}).is_baseline and Placement().key == Placement.of({}).key
    assert a.count == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nope", "unknown attention type 'nope'"), ("se(ratio=2)", "has no parameter 'ratio'"),
     ("se(reduction=5)", "reduction=5 is not one of"), ("se(reduction)", "key=value"), ("(se", "malformed")],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as err:
        Placement.of({"neck.15": [spec]})
    assert "\n" not in str(err.value)


def test_unknown_position_is_rejected():
    base = load_base("yolov8n.yaml")
    space = load_space(base)
    with pytest.raises(PlacementError, match="'neck.99' is not in the search space; its positions: backbone.2, ") as err:
        space.check(Placement.of({"neck.99": ["se"]}))  # what `build --place neck.99=se` says: the valid positions listed
    assert "neck.15" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(PlacementError, match="removing 'drop.3' is not in the search space; removable: none"):
        space.check(Placement.of(dropped=["drop.3"]))
    with pytest.raises(PlacementError, match="unknown attention position 'neck.99'"):
        build_yaml(base, Placement.of({"neck.99": ["se"]}))
    with pytest.raises(PlacementError, match="not a removable block"):
        build_yaml(base, Placement.of(dropped=["backbone.2"]))


def test_space_defaults_size_and_cost():
    base = load_base("yolov8n.yaml")
    space = load_space(base)
    assert len(space.choices) == len(spaces.ATTENTION)
    # 15 positions, one module or none each, at most 3 in all: sum over t of C(15, t) * V**t.
    v = len(spaces.ATTENTION)
    assert space.size() == sum(math.comb(15, t) * v**t for t in range(4))
    assert load_space(base, {"max_total": None}).size() == (v + 1) ** 15
    cost = space.cost(Placement.of({"sppf.8": ["se"]}))
    # SE on 256 channels with a hidden width of 16: 256*16 + 16 + 16*256 + 256 parameters, and its gate.
    assert cost.params - space.base_cost[0] == 256 * 16 + 16 + 16 * 256 + 256 + 1
    assert cost.params_pct > 0 and cost.gflops_pct >= 0


def test_space_file_restricts_and_counts(tmp_path):
    base = load_base("yolov8n.yaml")
    path = tmp_path / "space.yaml"
    path.write_text(
        "positions: ['backbone.*', 'sppf.*']\ntypes: [se, cbam]\nmax_per_position: 2\nmax_total: 3\n"
        "settings: {se: {reduction: [16, 8]}}\n"
    )
    space = load_space(base, path)
    assert [p.name for p in space.positions] == ["backbone.2", "backbone.4", "backbone.6", "sppf.8"]
    assert space.choices == ("se", "se(reduction=8)", "cbam")
    # 4 positions, 0..2 of 3 specs each (1 + 3 + 9 ways), at most 3 in all: count by brute force.
    import itertools

    per_position = [(0, 1), (1, 3), (2, 9)]
    expected = sum(
        a[1] * b[1] * c[1] * d[1]
        for a, b, c, d in itertools.product(per_position, repeat=4)
        if a[0] + b[0] + c[0] + d[0] <= 3
    )
    assert space.size() == expected
    space.check(Placement.of({"backbone.2": ["se", "cbam"], "sppf.8": ["se(reduction=8)"]}))
    with pytest.raises(PlacementError, match="allows 3"):
        space.check(Placement.of({"backbone.2": ["se", "cbam"], "sppf.8": ["se", "se"]}))
    with pytest.raises(PlacementError, match="not in the search space"):
        space.check(Placement.of({"neck.15": ["se"]}))
    with pytest.raises(PlacementError, match="'eca' is not in the search space"):
        space.check(Placement.of({"sppf.8": ["eca"]}))


@pytest.mark.parametrize(
    ("text", "message"),
    [("types: [se, foo]", "unknown attention type 'foo'"), ("positions: ['head.*']", "matches nothing"),
     ("max_per_position: -1", "whole number >= 0"), ("budget: {params_pct: 0.0001}\ntypes: [se, cbam]", "no placement"),
     ("budget: {flops: 3}", "'budget' takes"), ("colour: red", "unknown key"), ("types: [se", "not valid YAML"),
     ("settings: {se: {reduction: [3]}}", "reduction=3 is not one of")],
)
def test_bad_space_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_space(load_base("yolov8n.yaml"), path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_budget_limits_cost():
    base = load_base("yolov8n.yaml")
    space = load_space(base, {"budget": {"params_pct": 1.0}})
    space.check(Placement.of({"backbone.2": ["se"]}))
    with pytest.raises(PlacementError, match="over the budget"):
        space.check(Placement.of({"sppf.8": ["gam"]}))


def test_unknown_base_model_is_one_line_error():
    with pytest.raises(ValueError, match="base model 'yolov99z.yaml' not found"):
        load_base("yolov99z.yaml")


def test_bases_without_scales_write_valid_yaml_that_loads(tmp_path):
    """yolov9t and yolov3-tiny have no `scales:`; their generated file is valid YAML and builds."""
    for name in ("yolov9t.yaml", "yolov3-tiny.yaml"):
        base = load_base(name)
        position = find_positions(base)[0].name
        path = write_yaml(build_yaml(base, Placement.of({position: ["se"]})), tmp_path / f"{name}-se.yaml")
        written = yaml.safe_load(path.read_text())
        assert {"backbone", "head"} <= set(written) and "scales" not in written
        YOLO(str(path), task="detect")


def test_generated_file_loads_whatever_scale_its_name_suggests(tmp_path):
    base = load_base("yolov8s.yaml")
    path = write_yaml(build_yaml(base, Placement.of({"backbone.4": ["se"]})), tmp_path / "yolov8n-se.yaml")
    expected = DetectionModel(build_yaml(base, Placement.of({"backbone.4": ["se"]})), verbose=False)
    model = YOLO(str(path), task="detect")  # Ultralytics guesses scale "n" from the name
    assert sum(p.numel() for p in model.model.parameters()) == sum(p.numel() for p in expected.parameters())


@pytest.mark.parametrize(
    ("model", "what"),
    [("yolov8s-worldv2.yaml", "YOLO-World"), ("yoloe-v8s-seg.yaml", "YOLOE"),
     ("rtdetr-l.yaml", "RT-DETR")],
)
def test_other_tasks_and_families_are_refused_in_one_line(model, what):
    served = "detect .*segment .*pose .*obb .*classify"
    with pytest.raises(ValueError, match=f"is an? {what}.*searches YOLO models of these tasks: {served}") as err:
        load_base(model)
    assert "\n" not in str(err.value)


def test_attention_on_a_removed_block_is_rejected():
    base = load_base("yolo11n.yaml")
    base["head"][-1][0] = [16, 19, 10]  # C2PSA (layer 10) now also feeds Detect: a neck position
    assert {"neck.10", "drop.10"} <= {p.name for p in find_positions(base)}
    with pytest.raises(PlacementError, match="'neck.10' sits on a block the placement removes"):
        build_yaml(base, Placement.of({"neck.10": ["se"]}, dropped=["drop.10"]))


def test_scalar_dropped_is_one_position():
    assert Placement.from_dict({"dropped": "drop.10"}).dropped == ("drop.10",)


@pytest.mark.parametrize(("text", "message"), [("types: []", "'types' is empty"), ("positions: []", "'positions' is empty")])
def test_empty_lists_in_a_space_file_are_errors(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=message):
        load_space(load_base("yolov8n.yaml"), path)


def test_a_single_type_may_be_written_without_a_list(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("types: se\npositions: neck.*\n")
    space = load_space(load_base("yolov8n.yaml"), path)
    assert space.types == ("se",) and [p.name for p in space.positions] == ["neck.15", "neck.18", "neck.21"]


def test_block_roles_are_consistent():
    """The one block table (`spaces.blocks`): a fusable block is a backbone block of bottlenecks,
    removable blocks are global attention, heads play no other role (but Classify's channel-first arguments)."""
    from spaces.blocks import BLOCKS, ROLES, having

    assert set().union(*BLOCKS.values()) <= ROLES
    assert having("fusable") <= having("backbone") & having("bottlenecks")
    assert having("removable") <= having("global")
    assert all(BLOCKS[name] <= {"head", "channels"} for name in having("head"))  # Classify's args[0] is its class count
    with pytest.raises(ValueError, match="unknown block role"):
        having("attention")
