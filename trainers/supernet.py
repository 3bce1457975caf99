"""Train a search space's supernet once, then score any placement by a validation (one-shot NAS, SPOS).

`train_supernet` trains the supernet (`spaces.supernet`) with Ultralytics' own trainer; before every training
batch a freshly sampled placement is activated (single-path uniform sampling, Guo et al. 2020), the baseline
included. Each epoch's validation (and so best.pt's choice) scores the baseline path of the EMA weights (every
`Gated` closed); the saved checkpoints hold the whole supernet with every module computing (no activation is
saved). Gradients reach only the sampled path; an optimizer skips parameters without a gradient, so an inactive
module's weights and moments stay as they were (with ``nbs`` above ``batch`` one step accumulates several paths).

A killed training resumes from its unfinished last.pt (Ultralytics' own resume); the paths are drawn from the seed
and the epoch, so the resumed epochs draw the paths they would have drawn.

`score_placement` loads a supernet checkpoint, activates one placement, recalibrates every BatchNorm's running
statistics on a few training batches (the shared statistics mix every path's), and validates with Ultralytics'
validator: a validation instead of a training.

`gate_gradients` is the zero-cost screen: at every gate 0 the supernet computes the base, and one backward pass
(`loss_gradient`) gives every gate's loss gradient at once; `gradient_score` sums a placement's.
"""

from __future__ import annotations

import logging
import random
import shutil
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


def _supernet(space, base: dict, head: dict, folder: Path, weights: str | Path | None, seed: int):
    """A `YOLO` holding the supernet of ``space`` (written to ``folder``/supernet.yaml, head ``head``), its base layers
    from ``weights`` or, without them, the base as initialised from ``seed``, its attention initialised from ``seed``
    (every gate 0: every path computes the base)."""
    from ultralytics import YOLO

    from spaces import transfer_weights, write_yaml
    from spaces.supernet import supernet_placement, supernet_yaml
    from spaces.tasks import task_of

    if base is not space.base and base != space.base:
        raise ValueError("the space was loaded for another base model; load_space(base, ...) with this base")
    task = task_of(base)
    model_yaml = write_yaml({**supernet_yaml(space), **head}, folder / "supernet.yaml",
                            comment=f"supernet of {len(space.insert_positions)} positions x {len(space.choices)} choices")
    with seeded(seed):  # the seed alone fixes the attention's initial weights
        model = YOLO(str(model_yaml), task=task.name)
    transfer = transfer_weights(weights or seeded_base({**base, **head}, task, seed), model.model, supernet_placement(space))
    if not weights and transfer.transferred != transfer.total:  # a checkpoint's class head may differ, as for a candidate
        raise ValueError(f"the base weights do not fit the supernet: {transfer}")
    if weights:
        logging.getLogger("ultralytics").info(str(transfer))  # in the supernet's log, as a candidate's is in its own
    model.load(model.model)  # train() then starts from these weights, not a fresh init
    return model


def training_state(checkpoint: Path) -> str:
    """What Ultralytics' last.pt ``checkpoint`` holds: ``"resumable"`` (a training stopped before its last epoch, its
    optimizer kept), ``"done"`` (every epoch trained: stripped at the end, or killed just before that), or ``"none"``
    (no file, or one that does not load: a kill while it was written)."""
    import torch

    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception:  # no file, or a truncated one: nothing to go on from
        return "none"
    epoch, epochs = saved.get("epoch", -1), (saved.get("train_args") or {}).get("epochs", 0)
    return "resumable" if 0 <= epoch < epochs - 1 and saved.get("optimizer") is not None else "done"


def train_supernet(space, base: dict, data: str | Path, budget: Budget, workdir: str | Path, weights: str | Path | None = None,
                   seed: int = 0) -> Path:
    """Train the supernet of ``space`` (whose base is ``base``) on ``data`` (a data.yaml, as `train_candidate`
    takes) with ``budget``; Ultralytics' files go to ``workdir`` (supernet.yaml, log, results.csv, weights/).

    ``weights``: a base checkpoint whose tensors start the supernet (without it, the base as initialised from
    ``budget.seed``, as `train_candidate` starts a candidate). ``seed`` seeds the sampled paths, afresh each epoch, so
    a training resumed from ``workdir``'s unfinished last.pt (a killed one, `training_state`) draws the paths it would
    have drawn (its data order differs: Ultralytics seeds its loader again on resume); a last.pt that trained every
    epoch is returned as it is. ``budget.seed`` seeds the training's own randomness. Returns the path of
    weights/last.pt."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import unwrap_model

    from spaces import Placement
    from spaces.supernet import activate, deactivate, sample_placement
    from trainers.data import ultralytics_data

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    last = workdir / "weights" / CHECKPOINT
    rng = random.Random()  # seeded at each epoch's start
    check = _memoised(space.check)
    state = training_state(last)
    if state == "done":
        return last
    with log_to(workdir / "log"):
        resume = state == "resumable"
        if not resume:  # killed before its first epoch's end (or while writing last.pt): start afresh
            shutil.rmtree(workdir / "weights", ignore_errors=True)
        model = YOLO(str(last)) if resume else _supernet(space, base, head_args(data), workdir, weights, budget.seed)

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

        def on_train_epoch_start(trainer) -> None:
            rng.seed(f"{seed}/{trainer.epoch}")  # the paths of an epoch depend on the seed and the epoch alone

        def on_train_batch_start(trainer) -> None:
            activate(unwrap_model(trainer.model), sample_placement(space, rng, check))

        def on_train_end(trainer) -> None:
            deactivate(unwrap_model(trainer.model))

        for event, callback in (("on_train_start", on_train_start), ("on_train_epoch_start", on_train_epoch_start),
                                ("on_train_batch_start", on_train_batch_start), ("on_train_end", on_train_end)):
            model.add_callback(event, callback)
        place = {"data": ultralytics_data(data), "save_dir": str(workdir)}  # where the study is now, if it moved
        if resume:
            model.train(resume=True, **place, workers=budget.workers, device=budget.device)
        else:
            model.train(**place, **budget.train_args())
    return last


def _calibration_loader(data: str | Path, net, imgsz: int, batch: int, seed: int):
    """Training images of ``data`` in a seeded order, without augmentation (the validation's resizing at model ``net``'s
    stride), as a loader."""
    import torch
    from ultralytics.cfg import get_cfg

    from spaces.tasks import task_of
    from trainers.data import ultralytics_data

    task = task_of(net.yaml)
    stride = max(int(net.stride.max()), 32) if hasattr(net, "stride") else 32

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


def _model_input(images, device: str):
    """A loader's images as the model takes them: on ``device``, floats in [0, 1] (a detection loader's are bytes)."""
    import torch

    images = images.to(device)
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


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
                model(_model_input(batch["img"], device))
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
            with seeded(seed):
                recalibrate_batchnorm(net, _calibration_loader(data, net, imgsz, batch, seed), bn_batches, device)
        metrics = yolo.val(data=ultralytics_data(data), imgsz=imgsz, batch=batch, device=device, workers=0, plots=False,
                           verbose=False, project=folder, name="val", exist_ok=True)
    results = metrics.results_dict
    return {m.name: float(results[m.key]) for m in task.metrics}


def loss_gradient(net, data: str | Path, imgsz: int, batch: int, batches: int, seed: int = 0, device: str = "cpu") -> None:
    """Set the ``.grad`` of every parameter of Ultralytics model ``net`` to the gradient of its training loss (the
    loss gains a training uses) summed over ``batches`` un-augmented training batches of ``data`` at ``imgsz``, in an
    order fixed by ``seed``; BatchNorm keeps its statistics, so a supernet at every gate 0 computes the base exactly."""
    import torch
    from torch import nn
    from ultralytics.cfg import get_cfg

    from spaces.tasks import task_of

    task = task_of(net.yaml)
    net.args = get_cfg(overrides={"imgsz": imgsz, "task": task.name})
    net.criterion = None  # built again from these arguments
    net.to(device).train()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    for p in net.parameters():
        p.requires_grad_(True)  # a checkpoint's tensors load frozen
    net.zero_grad(set_to_none=True)
    with seeded(seed):
        for _, data_batch in zip(range(batches), _calibration_loader(data, net, imgsz, batch, seed)):
            data_batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in data_batch.items()}
            data_batch["img"] = _model_input(data_batch["img"], device)
            net.loss(data_batch)[0].sum().backward()


def gate_gradients(space, base: dict, data: str | Path, imgsz: int, batch: int, batches: int = 8,
                   weights: str | Path | None = None, seed: int = 0, device: str = "cpu") -> dict[tuple[str, str], float]:
    """The zero-cost screen: with every gate at 0 the supernet of ``space`` computes the base (``weights``, or the base
    initialised from ``seed``, which also initialises the attention), and one backward pass (`loss_gradient`) gives
    the loss gradient of every gate at once. Returns (position, spec) -> |dL/dgate| summed over the spec's modules
    (one per bottleneck at a fused position). `gradient_score` scores a placement from it."""
    from spaces.supernet import supernet_modules
    from trainers.offline import ultralytics_logs_above

    with ultralytics_logs_above(logging.WARNING), tempfile.TemporaryDirectory(prefix="supernet-gradients-") as folder:
        net = _supernet(space, base, head_args(data), Path(folder), weights, seed).model
        loss_gradient(net, data, imgsz, batch, batches, seed, device)
    return {key: sum(abs(float(m.gate.grad)) for m in gated) for key, gated in supernet_modules(net).items()}


def gradient_score(placement, gradients: dict[tuple[str, str], float]) -> float:
    """A placement's first-order score from `gate_gradients`: the sum of its modules' |dL/dgate|, how fast the loss
    falls as its gates open from 0 (each by the same step, as an Adam update's first steps do); 0 for the baseline.
    `PlacementError` for a placement the supernet does not hold (`spaces.supernet.held_modules`)."""
    from spaces.supernet import held_modules

    return sum(gradients[key] for key in held_modules(placement, gradients))
