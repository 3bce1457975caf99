"""Training one candidate for real: per-epoch reports, stop, failure records, seeds, transfer, data."""

from __future__ import annotations

import pytest
import yaml

from spaces import Placement, load_base
from trainers.data import DataError, build_proxy_data, load_dataset, make_toy_dataset
from trainers.train import Budget, full_train, train_candidate

TINY = Budget(epochs=2, imgsz=64, batch=8, workers=0, device="cpu", amp=False)
SE_NECK = Placement.of({"neck.15": ["se"]})


@pytest.fixture(scope="module")
def base():
    return load_base("yolov8n.yaml")


def test_reports_each_real_epoch_once_and_records_final(base, toy_proxy, tmp_path):
    calls = []
    record = train_candidate(SE_NECK, base, toy_proxy, TINY, tmp_path / "t", lambda e, m: calls.append(e) or False)
    assert record.status == "complete", record.reason
    assert calls == [1, 2] and [e["epoch"] for e in record.epochs] == [1, 2]
    assert set(record.final) == {"precision", "recall", "map50", "map50_95"}  # from the final re-validation
    for key in ("precision", "recall", "map50", "map50_95", "fitness", "train/box_loss", "val/box_loss", "time_s"):
        assert key in record.epochs[-1]
    assert record.params > 3_000_000 and record.gflops > 8 and record.wall_time_s > 0
    assert (tmp_path / "t" / "model.yaml").is_file() and (tmp_path / "t" / "results.csv").is_file()
    assert not (tmp_path / "t" / "weights").exists()  # proxy weights are not kept by default


def test_stop_ends_training_at_once(base, toy_proxy, tmp_path):
    budget = Budget(**{**TINY.__dict__, "epochs": 4})
    record = train_candidate(SE_NECK, base, toy_proxy, budget, tmp_path / "t", lambda epoch, m: epoch >= 2)
    assert record.status == "pruned" and record.pruned_at == 2 and len(record.epochs) == 2
    assert not record.final  # no final evaluation after a stop


def test_failures_become_records(base, toy_proxy, tmp_path):
    def broken_report(epoch, metrics):
        raise RuntimeError("boom\nsecond line")

    record = train_candidate(SE_NECK, base, toy_proxy, TINY, tmp_path / "a", broken_report)
    assert record.status == "failed" and record.reason == "RuntimeError: boom"

    def silent_report(epoch, metrics):
        raise RuntimeError()  # no message: the reason is the type alone, not "RuntimeError: "

    record = train_candidate(SE_NECK, base, toy_proxy, TINY, tmp_path / "c", silent_report)
    assert record.status == "failed" and record.reason == "RuntimeError"
    record = train_candidate(SE_NECK, base, tmp_path / "missing.yaml", TINY, tmp_path / "b")
    assert record.status == "failed" and record.reason
    assert "Traceback" in (tmp_path / "b" / "log").read_text()  # the whole story stays in the trial's log


def test_same_seed_same_metrics(base, toy_proxy, tmp_path):
    one = train_candidate(SE_NECK, base, toy_proxy, TINY, tmp_path / "a")
    two = train_candidate(SE_NECK, base, toy_proxy, TINY, tmp_path / "b")
    strip = lambda epochs: [{k: v for k, v in e.items() if k != "time_s"} for e in epochs]  # noqa: E731
    assert strip(one.epochs) == strip(two.epochs) and one.final == two.final


def test_pretrained_start_transfers_every_tensor(base, toy_proxy, tmp_path):
    first = full_train(Placement(), base, toy_proxy, Budget(**{**TINY.__dict__, "epochs": 1}), tmp_path / "base")
    weights = first.paths["weights"]
    record = train_candidate(SE_NECK, base, toy_proxy, TINY, tmp_path / "t", weights=weights)
    assert record.status == "complete", record.reason
    assert record.transfer == "transferred 355/355 base tensors"
    assert "transferred 355/355" in (tmp_path / "t" / "log").read_text()


def test_gates_are_recorded_each_epoch_and_kept_in_the_weights(base, toy_proxy, tmp_path):
    """Gated insertion (the default): the gate leaves 0 in training, every epoch records it, and
    best.pt keeps the trained modules with their gates."""
    import torch
    from ultralytics import YOLO

    from spaces.gate import Gated

    placement = Placement.of({"neck.15": ["se"], "fused.4": ["eca"]})
    record = full_train(placement, base, toy_proxy, TINY, tmp_path / "g")
    assert record.status == "complete", record.reason
    assert all({"gate/neck.15", "gate/fused.4"} <= set(e) for e in record.epochs)
    assert set(record.gates) == {"neck.15", "fused.4"} and record.gates["neck.15"] != 0.0
    gates = [m for m in YOLO(record.paths["weights"]).model.modules() if isinstance(m, Gated)]
    assert len(gates) == 1 + 2 and all(torch.isfinite(g.gate) for g in gates)  # neck.15, and C2f(64)'s 2 bottlenecks
    plain = train_candidate(placement, base, toy_proxy, TINY, tmp_path / "p", insertion="plain")
    assert plain.status == "complete" and plain.gates == {}


def test_proxy_data_is_a_seeded_resized_cached_subset(toy_data, tmp_path):
    import cv2

    dataset = load_dataset(toy_data)
    data_yaml = build_proxy_data(dataset, tmp_path / "p", imgsz=48, fraction=0.5, seed=3)
    images = sorted((tmp_path / "p" / "images" / "train").iterdir())
    assert len(images) == 8 and len(list((tmp_path / "p" / "images" / "val").iterdir())) == 8
    assert max(cv2.imread(str(images[0])).shape[:2]) == 48
    assert load_dataset(data_yaml).nc == 2
    stamp = images[0].stat().st_mtime_ns
    assert build_proxy_data(dataset, tmp_path / "p", imgsz=48, fraction=0.5, seed=3) == data_yaml
    assert images[0].stat().st_mtime_ns == stamp  # reused, not rewritten
    other = build_proxy_data(dataset, tmp_path / "q", imgsz=48, fraction=0.5, seed=4)
    assert sorted(p.name[7:] for p in (other.parent / "images" / "train").iterdir()) != [p.name[7:] for p in images]


def _write(path, text):
    path.write_text(text)
    return path


def test_bad_data_is_a_one_line_error_naming_file_and_fix(tmp_path):
    good = make_toy_dataset(tmp_path / "good", n_train=2, n_val=1)
    cases = {
        tmp_path / "nope.yaml": "data file not found",
        _write(tmp_path / "no_val.yaml", "train: images\nnames: [a]\n"): "missing val",
        _write(tmp_path / "bad.yaml", "train: [a\n"): "not valid YAML",
        _write(tmp_path / "empty.yaml", f"path: {tmp_path}\ntrain: empty\nval: empty\nnames: [a]\n"): "does not exist",
    }
    (tmp_path / "hollow").mkdir()
    cases[_write(tmp_path / "hollow.yaml", f"path: {tmp_path}\ntrain: hollow\nval: hollow\nnames: [a]\n")] = "holds no images"
    spec = yaml.safe_load(good.read_text())
    spec["names"] = {0: "rectangle"}  # the labels use class 1 too
    cases[_write(tmp_path / "few_names.yaml", yaml.safe_dump(spec))] = "outside 0..0"
    for path, message in cases.items():
        with pytest.raises(DataError, match=message) as err:
            load_dataset(path)
        assert "\n" not in str(err.value) and path.name in str(err.value) or "labels" in str(err.value)


def test_one_seed_gives_every_placement_the_same_batches_and_base_weights(base, toy_proxy, tmp_path, monkeypatch):
    """Common random numbers, through real Ultralytics training with 2 dataloader worker processes:
    seed s gives the baseline and a candidate the same batches (augmentations included) and, from
    scratch, the same initial weights in every base layer; another seed gives other batches and
    weights. Ultralytics seeds its loader workers from ``seed`` only since 8.4.124 (PR #25815)."""
    import hashlib

    from ultralytics.models.yolo.detect import DetectionTrainer

    from spaces import layer_map

    seen: dict[str, dict] = {}
    original = DetectionTrainer.preprocess_batch

    def recording(self, batch):  # the trainer's own hook on every training batch, before the step
        run = seen[self.save_dir.name]
        run["batches"].append(hashlib.sha1(batch["img"].numpy().tobytes()).hexdigest())
        run.setdefault("start", {k: v.clone() for k, v in self.model.state_dict().items()})
        return original(self, batch)

    monkeypatch.setattr(DetectionTrainer, "preprocess_batch", recording)
    budget = Budget(epochs=1, imgsz=64, batch=8, workers=2, device="cpu", amp=False)
    for name, placement, seed in (("base0", Placement(), 0), ("se0", SE_NECK, 0), ("base1", Placement(), 1)):
        seen[name] = {"batches": []}
        record = train_candidate(placement, base, toy_proxy, Budget(**{**budget.__dict__, "seed": seed}), tmp_path / name)
        assert record.status == "complete", record.reason
    assert len(seen["base0"]["batches"]) == 2
    assert seen["se0"]["batches"] == seen["base0"]["batches"] != seen["base1"]["batches"]
    moved = layer_map(base, SE_NECK)
    for key, tensor in seen["base0"]["start"].items():
        prefix, layer, rest = key.split(".", 2)
        assert seen["se0"]["start"][f"{prefix}.{moved[int(layer)]}.{rest}"].equal(tensor), key
    assert not seen["base1"]["start"]["model.0.conv.weight"].equal(seen["base0"]["start"]["model.0.conv.weight"])
