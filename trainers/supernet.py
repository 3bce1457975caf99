"""Train a search space's supernet once, then score any placement by a validation (one-shot NAS, SPOS).

`train_supernet` trains the supernet (`spaces.supernet`) with Ultralytics' own trainer; before every training
batch a freshly sampled placement is activated (single-path uniform sampling, Guo et al. 2020), the baseline
included. Each epoch's validation (and so best.pt's choice) scores the baseline path of the EMA weights (every
`Gated` closed); the saved checkpoints hold the whole supernet with every module computing (no activation is
saved). Gradients reach only the sampled path; an optimizer skips parameters without a gradient, so an inactive
module's weights and moments stay as they were (with ``nbs`` above ``batch`` one step accumulates several paths).

`score_placement` loads a supernet checkpoint, activates one placement, recalibrates every BatchNorm's running
statistics on a few training batches (the shared statistics mix every path's), and validates with Ultralytics'
validator: a validation instead of a training.
"""

from __future__ import annotations

import logging
import random
import tempfile
from pathlib import Path

from trainers.train import Budget, head_args, log_to, seeded, seeded_base

CHECKPOINT = "last.pt"  # the supernet after its last epoch (best.pt is chosen on the baseline path alone)


def _memoised(check):
    """``check`` (raises `PlacementError` or not) remembered per placement: a budget check builds the model."""
    seen: dict = {}

    def checked(placement) -> None:
        if placement not in seen:
            try:
                check(placement)
                seen[placement] = None
            except ValueError as e:
                seen[placement] = e
        if seen[placement] is not None:
            raise seen[placement]

    return checked


def train_supernet(space, base: dict, data: str | Path, budget: Budget, workdir: str | Path, weights: str | Path | None = None,
                   seed: int = 0) -> Path:
    """Train the supernet of ``space`` (whose base is ``base``) on ``data`` (a data.yaml, as `train_candidate`
    takes) with ``budget``; Ultralytics' files go to ``workdir`` (supernet.yaml, log, results.csv, weights/).

    ``weights``: a base checkpoint whose tensors start the supernet (without it, the base as initialised from
    ``budget.seed``, as `train_candidate` starts a candidate). ``seed`` seeds the sampled paths (``budget.seed``
    the training's own randomness). Returns the path of weights/last.pt."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import unwrap_model

    from spaces import Placement, transfer_weights, write_yaml
    from spaces.supernet import activate, deactivate, sample_placement, supernet_placement, supernet_yaml
    from spaces.tasks import task_of
    from trainers.data import ultralytics_data

    if base is not space.base and base != space.base:
        raise ValueError("the space was loaded for another base model; load_space(base, ...) with this base")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    task = task_of(base)
    head = head_args(data)
    placement = supernet_placement(space)
    model_yaml = write_yaml({**supernet_yaml(space), **head}, workdir / "supernet.yaml",
                            comment=f"supernet of {len(space.insert_positions)} positions x {len(space.choices)} choices")
    rng = random.Random(seed)
    check = _memoised(space.check)
    with log_to(workdir / "log"):
        with seeded(budget.seed):  # the seed alone fixes the attention's initial weights
            model = YOLO(str(model_yaml), task=task.name)
        transfer = transfer_weights(weights or seeded_base({**base, **head}, task, budget.seed), model.model, placement)
        if transfer.transferred != transfer.total:
            raise ValueError(f"the base weights do not fit the supernet: {transfer}")
        model.load(model.model)  # train() then starts from these weights, not a fresh init

        def on_train_start(trainer) -> None:
            validate = trainer.validate

            def validate_baseline():  # the EMA weights are the ones validated
                net = trainer.ema.ema
                activate(net, Placement())
                try:
                    return validate()
                finally:
                    deactivate(net)  # saved checkpoints hold the whole supernet

            trainer.validate = validate_baseline

        def on_train_batch_start(trainer) -> None:
            activate(unwrap_model(trainer.model), sample_placement(space, rng, check))

        def on_train_end(trainer) -> None:
            deactivate(unwrap_model(trainer.model))

        model.add_callback("on_train_start", on_train_start)
        model.add_callback("on_train_batch_start", on_train_batch_start)
        model.add_callback("on_train_end", on_train_end)
        model.train(data=ultralytics_data(data), project=str(workdir.parent), name=workdir.name, **budget.train_args())
    return workdir / "weights" / CHECKPOINT


def _calibration_loader(data: str | Path, task, imgsz: int, batch: int, stride: int, seed: int):
    """Training images of ``data`` in a seeded order, without augmentation (the validation's resizing), as a loader."""
    import torch
    from ultralytics.cfg import get_cfg

    from trainers.data import ultralytics_data

    cfg = get_cfg(overrides={"imgsz": imgsz, "task": task.name, "cache": False, "fraction": 1.0})
    if task.image_folders:
        from ultralytics.data.dataset import ClassificationDataset

        dataset = ClassificationDataset(str(Path(ultralytics_data(data)) / "train"), cfg, augment=False, prefix="calibration")
        collate = None
    else:
        from ultralytics.data import build_yolo_dataset
        from ultralytics.data.utils import check_det_dataset

        info = check_det_dataset(str(data))
        dataset = build_yolo_dataset(cfg, info["train"], batch, info, mode="val", rect=False, stride=stride)
        collate = dataset.collate_fn
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0, collate_fn=collate,
                                       generator=torch.Generator().manual_seed(seed))


def recalibrate_batchnorm(model, loader, batches: int, device="cpu") -> int:
    """Reset every BatchNorm's running statistics of ``model`` and set them to the cumulative average over the first
    ``batches`` batches of ``loader`` (train mode, no gradients); the model ends in eval mode. Returns the batches used."""
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts alike
    used = 0
    model.train()
    try:
        with torch.no_grad():
            for _, batch in zip(range(batches), loader):
                images = batch["img"].to(device)
                model(images.float() / 255 if images.dtype == torch.uint8 else images.float())
                used += 1
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()
    return used


def score_placement(checkpoint: str | Path, placement, data: str | Path, imgsz: int, batch: int, bn_batches: int = 8,
                    device: str = "cpu", seed: int = 0) -> dict:
    """The task's metrics (`spaces.tasks.Task.metrics` names, e.g. map50_95 or top1) of ``placement``'s path of a
    supernet ``checkpoint`` on ``data``'s val split: the path activated, BatchNorm recalibrated on ``bn_batches``
    training batches (un-augmented, in an order fixed by ``seed``; 0 keeps the checkpoint's statistics), then
    Ultralytics' validator at ``imgsz`` and ``batch``. Deterministic."""
    from ultralytics import YOLO

    from spaces.supernet import activate
    from spaces.tasks import task_of
    from trainers.data import ultralytics_data
    from trainers.offline import ultralytics_logs_above

    with ultralytics_logs_above(logging.WARNING), tempfile.TemporaryDirectory(prefix="supernet-val-") as folder:
        yolo = YOLO(str(checkpoint))
        net = yolo.model
        task = task_of(net.yaml)
        net.to(device)
        activate(net, placement)
        if bn_batches:
            stride = max(int(net.stride.max()), 32) if hasattr(net, "stride") else 32
            with seeded(seed):
                recalibrate_batchnorm(net, _calibration_loader(data, task, imgsz, batch, stride, seed), bn_batches, device)
        metrics = yolo.val(data=ultralytics_data(data), imgsz=imgsz, batch=batch, device=device, workers=0, plots=False,
                           verbose=False, project=folder, name="val", exist_ok=True)
    results = metrics.results_dict
    return {m.name: float(results[m.key]) for m in task.metrics}
