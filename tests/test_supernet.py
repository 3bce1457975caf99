"""The one-shot supernet (`spaces.supernet`, `trainers.supernet`): any path computes the base exactly while the gates are
0 and exactly its standalone placement once they are not, inactive modules are not computed, sampling covers the
space reproducibly, and a tiny supernet trains and scores a placement deterministically."""

from __future__ import annotations

import random

import pytest
import torch

from helpers import trained_looking
from spaces import Placement, PlacementError, build_yaml, load_base, load_space, transfer_weights
from spaces.build import attention_layers
from spaces.gate import Gated
from spaces.supernet import (
    SUPERNET_KEY,
    activate,
    active_placement,
    deactivate,
    sample_placement,
    supernet_modules,
    supernet_placement,
    supernet_yaml,
)
from spaces.tasks import task_of

SPACE = {"types": ["se", "eca"], "max_per_position": 2, "max_total": None}


def _flat(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.flatten(1)
    values = out.values() if isinstance(out, dict) else out
    return torch.cat([_flat(v) for v in values if v is not None], 1)


def _paths(space) -> list[Placement]:
    """The baseline, one module at one position of each kind, two at one position (reversed: the supernet's order
    applies), and one module at every position."""
    kinds = {}
    for position in space.insert_positions:
        kinds.setdefault(position.kind, position.name)
    first, second = space.choices[:2]
    return [Placement(), *(Placement.of({name: [second]}) for name in kinds.values()),
            Placement.of({next(iter(kinds.values())): [second, first]}),
            Placement.of({p.name: [first] for p in space.insert_positions})]


@pytest.mark.parametrize("model", ["yolov8n.yaml", "yolov8n-cls.yaml", "yolov8n-seg.yaml", "yolov8n-pose.yaml",
                                   "yolov8n-obb.yaml", "yolo11n.yaml", "yolo26n.yaml"])
def test_every_path_is_the_base_while_closed_and_its_own_placement_once_open(model):
    base = load_base(model)
    task = task_of(base)
    space = load_space(base, SPACE)
    torch.manual_seed(0)
    reference = trained_looking(task.model(base, verbose=False))
    torch.manual_seed(1)
    supernet = task.model(supernet_yaml(space), verbose=False).eval()
    report = transfer_weights(reference, supernet, supernet_placement(space))
    assert report.transferred == report.total, str(report)
    modules = supernet_modules(supernet)
    assert set(modules) == {(p.name, c) for p in space.insert_positions for c in space.choices}
    assert all(isinstance(m, Gated) for ms in modules.values() for m in ms)
    assert {p.kind for p in space.insert_positions} >= {"backbone", "fused"}
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = _flat(reference(x))
        paths = _paths(space)
        for placement in paths:  # gates at 0: every path is the base, to the last bit
            activate(supernet, placement)
            assert torch.equal(_flat(supernet(x)), expected), str(placement)
        for ms in modules.values():  # open every gate, and make each attention non-trivial
            for i, m in enumerate(ms):
                m.gate.fill_(0.5 + 0.1 * i)
        calls = []
        hooks = [m.attn.register_forward_hook(lambda *_, key=key: calls.append(key)) for key, ms in modules.items() for m in ms]
        for placement in paths:
            calls.clear()
            activate(supernet, placement)
            assert active_placement(supernet) == _ordered(placement, space)
            out = _flat(supernet(x))
            assert set(calls) == {(p, s) for p, specs in placement.modules for s in specs}, "an inactive module was computed"
            assert torch.equal(out, expected) is placement.is_baseline, str(placement)
            assert torch.equal(out, _flat(_standalone(reference, supernet, space, _ordered(placement, space))(x))), str(placement)
        for hook in hooks:
            hook.remove()
        deactivate(supernet)
        assert active_placement(supernet) == supernet_placement(space)


def _ordered(placement: Placement, space) -> Placement:
    order = {c: i for i, c in enumerate(space.choices)}
    return Placement.of({p: sorted(specs, key=order.__getitem__) for p, specs in placement.modules})


def _standalone(reference, supernet, space, placement: Placement):
    """``placement`` built alone (as `train_candidate` builds it), base weights from ``reference`` and each attention's
    weights and gate from the supernet's module of the same (position, spec)."""
    task = task_of(space.base)
    model = task.model(build_yaml(space.base, placement, "gated"), verbose=False).eval()
    transfer_weights(reference, model, placement)
    holders = attention_layers(space.base, placement)
    mine = supernet_modules(model, holders)
    theirs = supernet_modules(supernet)
    for key, ms in mine.items():
        assert len(ms) == len(theirs[key])
        for m, source in zip(ms, theirs[key]):
            m.load_state_dict(source.state_dict())
    return model


def test_training_state_tells_a_resumable_last_pt_from_a_finished_or_broken_one(tmp_path):
    """Killed after its last epoch's save but before the optimizer was stripped, a training is done, not resumable
    (Ultralytics would refuse to resume it); a truncated file, as a kill while writing leaves, is nothing to go on from."""
    from trainers.supernet import training_state

    cases = {"resumable": {"epoch": 0, "optimizer": {}, "train_args": {"epochs": 2}},
             "done": {"epoch": 1, "optimizer": {}, "train_args": {"epochs": 2}},
             "stripped": {"epoch": -1, "optimizer": None, "train_args": {"epochs": 2}}}
    for name, saved in cases.items():
        torch.save(saved, tmp_path / f"{name}.pt")
    (tmp_path / "truncated.pt").write_bytes((tmp_path / "done.pt").read_bytes()[:40])
    assert [training_state(tmp_path / f"{n}.pt") for n in (*cases, "truncated", "absent")] == \
        ["resumable", "done", "done", "none", "none"]


def test_one_backward_pass_gives_every_gate_the_gradient_of_its_own_placement(tmp_path):
    """At every gate 0 the supernet is the base, so each gate's loss gradient is the one its placement built alone (same
    weights) gets on the same batches: fused positions (a gate per bottleneck) and "after" ones alike. A placement's
    gradient score sums its modules', the baseline's is 0, and the screen is deterministic."""
    from trainers.data import make_toy_dataset
    from trainers.supernet import gate_gradients, gradient_score, loss_gradient

    data = make_toy_dataset(tmp_path / "toy", n_train=8, n_val=4, imgsz=64)
    base = load_base("yolov8n.yaml")
    task = task_of(base)
    space = load_space(base, SPACE)
    torch.manual_seed(0)
    reference = trained_looking(task.model(base, verbose=False))
    torch.manual_seed(1)
    supernet = task.model(supernet_yaml(space), verbose=False)
    transfer_weights(reference, supernet, supernet_placement(space))
    loss_gradient(supernet, data, imgsz=64, batch=4, batches=2)
    fused, after = (next(p.name for p in space.insert_positions if p.kind == k) for k in ("fused", "backbone"))
    for placement in (Placement.of({fused: ["eca"]}), Placement.of({after: ["se"]})):
        alone = _standalone(reference, supernet, space, placement)
        loss_gradient(alone, data, imgsz=64, batch=4, batches=2)
        (key,) = [(p, s) for p, specs in placement.modules for s in specs]
        mine = [m.gate.grad for m in supernet_modules(alone, attention_layers(space.base, placement))[key]]
        theirs = [m.gate.grad for m in supernet_modules(supernet)[key]]
        assert len(mine) == len(theirs) and all(g != 0 for g in mine), key
        assert all(torch.allclose(a, b, rtol=1e-4, atol=0) for a, b in zip(mine, theirs)), (key, mine, theirs)
    gradients = gate_gradients(space, base, data, imgsz=64, batch=4, batches=2, seed=0)
    assert gradients == gate_gradients(space, base, data, imgsz=64, batch=4, batches=2, seed=0)
    assert set(gradients) == {(p.name, c) for p in space.insert_positions for c in space.choices}
    two = Placement.of({fused: ["se", "eca"], after: ["se"]})
    assert gradient_score(Placement(), gradients) == 0
    assert gradient_score(two, gradients) == gradients[fused, "se"] + gradients[fused, "eca"] + gradients[after, "se"] > 0
    with pytest.raises(PlacementError, match="cbam"):
        gradient_score(Placement.of({after: ["cbam"]}), gradients)
    with pytest.raises(PlacementError, match="'se' twice"):
        gradient_score(Placement.of({after: ["se", "se"]}), gradients)
    checkpoint = tmp_path / "coco.pt"  # 80 classes against the data's 2: the class head starts afresh, as a candidate's
    torch.save({"model": reference}, checkpoint)
    assert gate_gradients(space, base, data, imgsz=64, batch=4, batches=2, weights=checkpoint).keys() == gradients.keys()


def test_activate_refuses_what_the_supernet_does_not_hold():
    base = load_base("yolov8n.yaml")
    space = load_space(base, {"positions": ["backbone.*"], "types": ["se", "eca"], "max_per_position": 2})
    supernet = task_of(base).model(supernet_yaml(space), verbose=False)
    for placement, reason in ((Placement.of({"neck.15": ["se"]}), "no 'se' at 'neck.15'"),
                              (Placement.of({"backbone.2": ["cbam"]}), "no 'cbam' at 'backbone.2'"),
                              (Placement.of({"backbone.2": ["se", "se"]}), "twice")):
        with pytest.raises(PlacementError, match=reason):
            activate(supernet, placement)
    with pytest.raises(ValueError, match="not a supernet"):
        activate(task_of(base).model(base, verbose=False), Placement())
    assert set(supernet.yaml[SUPERNET_KEY]) == {p.name for p in space.insert_positions}


def test_sampling_covers_the_space_reproducibly():
    base = load_base("yolov8n.yaml")
    space = load_space(base, {"positions": ["backbone.*", "sppf.*", "neck.15", "fused.2"], "types": ["se", "eca", "simam"],
                              "max_per_position": 2, "max_total": 3})
    draws = [sample_placement(space, random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(0)
    drawn = [sample_placement(space, rng) for _ in range(600)]
    assert drawn == [sample_placement(space, r) for r in [random.Random(0)] for _ in range(600)]
    assert Placement() in drawn
    order = {c: i for i, c in enumerate(space.choices)}
    seen, counts = set(), set()
    for placement in drawn:
        space.check(placement)
        counts.add(placement.count)
        for position, specs in placement.modules:
            assert len(set(specs)) == len(specs) and list(specs) == sorted(specs, key=order.__getitem__)
            seen |= {(position, s) for s in specs}
    assert seen == {(p.name, c) for p in space.insert_positions for c in space.choices}
    assert counts == {0, 1, 2, 3}


def test_a_tiny_supernet_resumes_after_a_kill_and_scores_a_placement_deterministically(tmp_path, monkeypatch):
    """Killed after its first epoch, the supernet's training goes on from its last.pt (the first epoch's paths are
    not sampled again). On toy data after 2 epochs every score is 0, so the recalibrated BatchNorm statistics are
    compared too."""
    from ultralytics.engine.trainer import BaseTrainer

    import spaces.supernet
    import trainers.supernet
    from trainers.data import make_toy_dataset
    from trainers.supernet import score_placement, train_supernet, training_state
    from trainers.train import Budget

    data = make_toy_dataset(tmp_path / "toy", n_train=8, n_val=4, imgsz=64)
    base = load_base("yolov8n.yaml")
    space = load_space(base, {"positions": ["backbone.4", "neck.15", "fused.6"], "types": ["se", "eca"]})
    budget = Budget(epochs=2, imgsz=64, batch=4, workers=0, device="cpu", amp=False,
                    overrides={"optimizer": "AdamW", "lr0": 0.005, "mosaic": 0, "warmup_epochs": 0})
    real_sample, real_save, drawn = spaces.supernet.sample_placement, BaseTrainer.save_model, []

    def counted(*args):
        drawn.append(real_sample(*args))
        return drawn[-1]

    monkeypatch.setattr(spaces.supernet, "sample_placement", counted)

    def save_then_die(trainer):
        real_save(trainer)
        raise KeyboardInterrupt  # a kill right after the first epoch's checkpoint

    monkeypatch.setattr(BaseTrainer, "save_model", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(space, base, data, budget, tmp_path / "supernet", seed=0)
    assert training_state(tmp_path / "supernet" / "weights" / "last.pt") == "resumable" and len(drawn) == 2  # 8 images, batch 4
    monkeypatch.setattr(BaseTrainer, "save_model", real_save)
    checkpoint = train_supernet(space, base, data, budget, tmp_path / "supernet", seed=0)
    assert len(drawn) == 4 and training_state(checkpoint) == "done", "the resumed training did not train the second epoch alone"
    assert train_supernet(space, base, data, budget, tmp_path / "supernet", seed=0) == checkpoint and len(drawn) == 4
    assert len((tmp_path / "supernet" / "results.csv").read_text().splitlines()) == 3  # a header and 2 epochs
    saved = torch.load(checkpoint, weights_only=False)["model"]  # the EMA, the optimizer stripped
    assert active_placement(saved) == supernet_placement(space)  # no activation is saved
    gates = [float(m.gate) for ms in supernet_modules(saved).values() for m in ms]
    assert any(g != 0 for g in gates), "no sampled path was trained"
    statistics = []

    def recalibrate(model, loader, batches, device):
        used = real(model, loader, batches, device)
        statistics.append({k: v.clone() for k, v in model.state_dict().items() if "running_" in k})
        return used

    real = trainers.supernet.recalibrate_batchnorm
    monkeypatch.setattr(trainers.supernet, "recalibrate_batchnorm", recalibrate)
    placement = Placement.of({"backbone.4": ["se"], "fused.6": ["eca"]})
    scores = [score_placement(checkpoint, placement, data, imgsz=64, batch=4, bn_batches=2) for _ in range(2)]
    assert scores[0] == scores[1]
    assert statistics[0].keys() == statistics[1].keys()
    assert all(torch.equal(v, statistics[1][k]) for k, v in statistics[0].items())
    stored = {k: v.float() for k, v in saved.state_dict().items() if "running_" in k}
    assert any(not torch.equal(v, stored[k]) for k, v in statistics[0].items()), "the statistics were not recalibrated"
    assert set(scores[0]) == set(task_of(base).metric_names) and all(0 <= v <= 1 for v in scores[0].values())


def test_a_search_screened_on_the_supernet_races_its_top_placements(toy_data, tmp_path):
    """``run --screen supernet``: the supernet trains once, each trial is one validation of its path (the study's
    objective says so), the race trains the screen's best placement standalone against the baseline, and a rerun of
    the finished command trains no supernet again; asked for more trials on Ray, its workers score them from the saved
    supernet (a real local cluster)."""
    import subprocess
    import sys

    from helpers import TRAIN, study_of
    from search.study.attributes import TrialView
    from search.study.records import ranked_by_gain
    from search.study.screen import SUPERNET_FOLDER

    args = ["run", "--data", str(toy_data), "--out", str(tmp_path), "--study", "s", "--screen", "supernet", "--trials", "4",
            "--sampler", "random", "--confirm-top", "1", "--confirm-budget", "6", "--proxy-epochs", "1", "--final-epochs", "1",
            "--final-imgsz", "64", *TRAIN]
    done = subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "note: --screen supernet:" in done.stdout
    study_dir = tmp_path / "s"
    finished = study_dir / SUPERNET_FOLDER / "done.json"
    assert finished.is_file() and not (study_dir / "trials").exists()  # no trial trained a model of its own
    study = study_of(study_dir)
    assert study.metric_names == ["mAP50-95 (supernet)"]
    baseline = next(t for t in study.trials if TrialView(t).is_baseline)
    best = ranked_by_gain(study.trials, TrialView(baseline).placement_key)[0][0]  # by supernet score over the baseline's
    raced = {p.name for p in (study_dir / "confirm").iterdir() if p.is_dir()}
    assert raced == {TrialView(baseline).placement_key, TrialView(best).placement_key}  # the screen's best raced
    report = (study_dir / "report.md").read_text()
    assert "## Leaderboard (supernet scores)" in report and "training the supernet (3 epochs), then" in report
    before = finished.stat().st_mtime_ns
    again = subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and finished.stat().st_mtime_ns == before, again.stderr[-3000:]
    more = [*args[: args.index("--trials")], "--trials", "6", *args[args.index("--trials") + 2 :], "--no-final",
            "--executor", "ray", "--workers", "2"]
    on_ray = subprocess.run([sys.executable, "-m", "search", *more], capture_output=True, text=True, timeout=900)
    assert on_ray.returncode == 0 and finished.stat().st_mtime_ns == before, on_ray.stderr[-3000:]
    scored = [t for t in study_of(study_dir).trials if t.value is not None]
    assert len(scored) >= 6 and not (study_dir / "trials").exists()  # scored by the workers, none trained
