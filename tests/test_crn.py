"""Common random numbers: with one seed, every placement trains on the same images, in the same order, with
the same augmentations, whatever modules it inserts (their initialisation draws from torch's generator,
and must not shift the data stream).

Real Ultralytics training (1 epoch, the toy set at 64 px, mosaic on so that augmentation draws many
random numbers); the spy records each training batch's image files and a hash of its augmented pixels
(the uint8 batch before Ultralytics normalises it), so equal records mean equal images, order and
augmentation parameters.
"""

from __future__ import annotations

import hashlib

import pytest

from spaces import Placement, load_base
from trainers.train import Budget, train_candidate

BATCHES = 3  # training batches compared per run (the toy set has 4 at batch 4)


@pytest.mark.parametrize("workers", [0, 2], ids=["main-process", "2-workers"])
def test_every_placement_sees_the_same_batches_for_a_seed(toy_proxy, tmp_path, monkeypatch, workers):
    from ultralytics.models.yolo.detect import DetectionTrainer

    streams: list[list[tuple]] = []
    original = DetectionTrainer.preprocess_batch

    def spy(self, batch):
        if self.model.training and len(streams[-1]) < BATCHES:
            streams[-1].append((tuple(batch["im_file"]), hashlib.sha1(batch["img"].numpy().tobytes()).hexdigest()))
        return original(self, batch)

    monkeypatch.setattr(DetectionTrainer, "preprocess_batch", spy)
    base = load_base("yolov8n.yaml")
    placements = [Placement(), Placement.of({"neck.15": ["se"]}), Placement.of({"backbone.2": ["cbam"], "fused.6": ["eca"]})]
    runs = [(p, 5) for p in placements] + [(Placement(), 6)]  # the last run, on another seed, shows the spy can tell
    for n, (placement, seed) in enumerate(runs):
        streams.append([])
        budget = Budget(epochs=1, imgsz=64, batch=4, workers=workers, seed=seed, device="cpu", overrides={"mosaic": 1.0, "close_mosaic": 0})
        record = train_candidate(placement, base, toy_proxy, budget, tmp_path / str(n), insertion="plain")
        assert record.status == "complete", record.reason
    assert len(streams[0]) == BATCHES
    assert streams[0] == streams[1] == streams[2], "a placement changed the images, their order or their augmentation"
    assert streams[3] != streams[0], "another seed must change the data stream"
