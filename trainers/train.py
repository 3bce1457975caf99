"""Train one candidate placement with Ultralytics and return a plain `TrialRecord`.

`train_candidate` never raises for a failing candidate: an exception, a NaN loss or an
out-of-memory error becomes a record with status ``failed`` and its reason. ``report(epoch,
metrics)`` is called once per real epoch (Ultralytics' final re-validation of best.pt is recorded
apart, as ``final``) and may answer True to stop: training ends at once and the record says
``pruned`` at that epoch.
Torch, Ultralytics, spaces and trainers.data are imported inside functions: `search.cli` imports this module at start.
"""

from __future__ import annotations

import difflib
import errno
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from trainers.interrupt import raise_if_pressed

if TYPE_CHECKING:  # spaces imports Ultralytics: only once prepare_ultralytics has run
    from spaces import Placement
    from spaces.tasks import Task

Report = Callable[[int, dict], bool]

FULL_DISK_FREE_B = 16 * 2**20  # bytes: less free than this after a failed training means the disk is full

GATE_PREFIX = "gate/"  # epoch metrics holding the gate of one position's attention

RESERVED = frozenset({"data", "model", "project", "name", "resume", "epochs", "imgsz", "batch", "device", "seed"})


@dataclass(frozen=True)
class Budget:
    """Training settings of one run. ``imgsz`` in pixels.

    A proxy run (``proxy``, the default) takes one optimizer step per batch (``nbs``, the nominal batch, defaults
    to ``batch``: from scratch on small data Ultralytics' 64 learns nothing in 30 epochs, bccd_signal.md; a
    fine-tune's 10-epoch proxy with 64 scored lower and was 2.8x noisier on bccd, seed sd 0.0128 against 0.0046 over
    8 seeds each, proxy_recipes_bccd.md, so the race, which compares and does not ship, keeps it too) and leaves
    early stopping to the search's pruner. ``proxy=False`` is the model a user gets: Ultralytics' own
    recipe (its nominal batch 64, weight decay and patience), so the final model trains as plain Ultralytics
    would (final_vs_ultralytics.md); ``nbs`` and ``overrides`` still win when given."""

    epochs: int = 30
    imgsz: int = 320
    batch: int = 16
    nbs: int | None = None
    workers: int = 2
    seed: int = 0
    device: str | None = None
    amp: bool = True
    keep_weights: bool = False
    proxy: bool = True
    overrides: dict = field(default_factory=dict)  # further `YOLO.train` arguments (lr0, mosaic, ...)

    def train_args(self) -> dict:
        """Keyword arguments for `ultralytics.YOLO.train` (``overrides`` win)."""
        reserved = set(self.overrides) & RESERVED
        if reserved:
            raise ValueError(f"training argument(s) {sorted(reserved)} are set by the search itself; remove them")
        recipe = {"nbs": self.nbs or self.batch, "patience": self.epochs} if self.proxy else {}
        if self.nbs:
            recipe["nbs"] = self.nbs
        return {
            "epochs": self.epochs,
            "imgsz": self.imgsz,
            "batch": self.batch,
            "workers": self.workers,
            "seed": self.seed,
            "deterministic": True,
            "device": self.device,
            "amp": self.amp,
            **recipe,
            "plots": False,
            "val": True,
            "exist_ok": True,
            "verbose": False,
            **self.overrides,
        }


@dataclass
class TrialRecord:
    """Everything one training produced. Metrics are fractions in [0, 1], times in seconds."""

    status: str  # "complete", "pruned" or "failed"
    placement: dict
    epochs: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)  # validation of best.pt after training (complete runs)
    reason: str = ""
    pruned_at: int | None = None
    wall_time_s: float = 0.0
    params: int = 0
    gflops: float = 0.0
    transfer: str = ""
    paths: dict = field(default_factory=dict)

    @property
    def best(self) -> dict:
        """Metrics of the epoch with the highest fitness (empty if no epoch finished)."""
        return max(self.epochs, key=lambda e: e["fitness"], default={})

    @property
    def gates(self) -> dict[str, float]:
        """Position -> mean learned gate of its gated attention at the best epoch (`spaces.gate`)."""
        return {k[len(GATE_PREFIX) :]: v for k, v in self.best.items() if k.startswith(GATE_PREFIX)}

    def to_dict(self) -> dict:
        """Plain dict (JSON-safe)."""
        return asdict(self)


class _Stop(Exception):
    """Raised from a callback to end training at once; carries the record's status and reason."""

    def __init__(self, status: str, reason: str, epoch: int):
        super().__init__(reason)
        self.status, self.reason, self.epoch = status, reason, epoch


def _epoch_metrics(trainer, task: Task) -> dict:
    metrics = {m.name: float(trainer.metrics.get(m.key, 0.0)) for m in task.metrics}
    metrics["fitness"] = float(trainer.fitness or 0.0)
    metrics.update({k: float(v) for k, v in trainer.label_loss_items(trainer.tloss, prefix="train").items()})
    metrics.update({k: float(v) for k, v in trainer.metrics.items() if k.startswith("val/")})
    return metrics


class _QuietFileHandler(logging.FileHandler):
    """A trial's log file that stays silent when it cannot be written (a full disk is reported once,
    by `train_candidate`, not as a logging traceback per line)."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


@contextmanager
def log_to(path: Path):
    """Send Ultralytics' log lines to ``path`` (and not the console) while the block runs."""
    logger = logging.getLogger("ultralytics")
    handler = _QuietFileHandler(path)
    handler.setFormatter(logging.Formatter("%(message)s"))
    consoles = [h for h in logger.handlers if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in consoles]
    for h in consoles:
        h.setLevel(logging.CRITICAL + 1)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        with suppress(OSError):  # a full disk: the error raised inside the block is the one to report
            handler.close()
        for h, level in zip(consoles, levels):
            h.setLevel(level)


def head_args(data: str | Path) -> dict:
    """What a data.yaml fixes of the model's head: the class count ``nc`` and, for pose, ``kpt_shape``."""
    spec = yaml.safe_load(Path(data).read_text())
    return {"nc": len(spec["names"]), **({"kpt_shape": spec["kpt_shape"]} if "kpt_shape" in spec else {})}


def check_train_args(overrides: dict) -> None:
    """``ValueError`` in one line unless Ultralytics' own configuration check accepts every ``--set``
    argument (its name, type and range); the search's own arguments are refused by `RunConfig.validate`."""
    from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg

    for key in overrides:
        if key not in DEFAULT_CFG_DICT:
            close = difflib.get_close_matches(key, DEFAULT_CFG_DICT, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"--set {key}: not an Ultralytics training argument; {hint}(`yolo cfg` lists them)")
    if overrides.get("cache") == "disk":  # .npy files would be written beside the user's images
        raise ValueError("--set cache=disk writes beside your images; use cache=ram, or leave it out (the proxies are cached)")
    endless = next((k for k, v in overrides.items() if isinstance(v, float) and not math.isfinite(v)), None)
    if endless:  # 1e999 reads as infinity, which Ultralytics' check lets through
        raise ValueError(f"--set {endless}={overrides[endless]}: not a finite number; give one, or leave it out")
    try:
        check_cfg(dict(overrides))
    except (TypeError, ValueError) as e:
        raise ValueError(f"--set {str(e).strip().splitlines()[0]}") from None


def check_device(device: str | None) -> None:
    """``ValueError`` in one line when ``device`` (``--device``: cpu, mps, 0, 0,1 ...) names a CUDA GPU
    this machine does not have."""
    if device is None or str(device).lower() in ("cpu", "mps"):
        return
    ids = str(device).lower().removeprefix("cuda:").replace(" ", "").split(",")
    if not all(i.isdigit() or i == "-1" for i in ids):
        raise ValueError(f"--device {device}: not a device; give cpu, mps, or CUDA GPU numbers such as 0 or 0,1")
    import torch

    count = torch.cuda.device_count()
    missing = [i for i in ids if int(i) >= count or (i == "-1" and not count)]
    if missing:
        has = f"{count} CUDA GPU{'s' if count != 1 else ''} (0..{count - 1})" if count else "no CUDA GPU"
        raise ValueError(f"--device {device}: this machine has {has}; give --device cpu or a GPU it has")


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then the exception it was raised from (or during), and so on."""
    cause: BaseException | None = error
    while cause is not None:
        yield cause
        cause = cause.__cause__ or cause.__context__


def disk_full(error: BaseException, folder: str | Path | None = None) -> bool:
    """Whether ``error`` (or one it came from) is a full disk or quota, or ``folder``'s disk has less than
    `FULL_DISK_FREE_B` free (torch.save reports a full disk only as "file write failed")."""
    if any((isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or "disk is full" in str(e)
           for e in error_chain(error)):
        return True
    return folder is not None and Path(folder).exists() and shutil.disk_usage(folder).free < FULL_DISK_FREE_B


def one_line(error: BaseException) -> str:
    """``error`` as "Type: first line of its message", or "Type" when it has no message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


@contextmanager
def seeded(seed: int):
    """Torch's CPU generator set to ``seed`` inside the block (models are built on the CPU), and
    restored after it: what a block builds depends on the seed alone, not on what ran before."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def seeded_base(base: dict, task: Task, seed: int):
    """The base model (its head set for the data) as initialised from ``seed``: from scratch, every candidate
    trained with that seed starts its base layers from these weights (common random numbers; only the
    attention differs)."""
    with seeded(seed):
        return task.model(base, verbose=False)


def train_candidate(
    placement: Placement,
    base: dict,
    data: str | Path,
    budget: Budget,
    workdir: str | Path,
    report: Report | None = None,
    weights: str | Path | None = None,
    insertion: str = "gated",
) -> TrialRecord:
    """Train ``placement`` on ``base`` (a model dict) with ``budget``; files go to ``workdir``.

    ``data`` is a data.yaml (for proxies, the one `build_proxy_data` wrote); ``weights`` an
    optional base checkpoint whose tensors are transferred first (without it, the base as
    initialised from ``budget.seed``, so one seed starts every placement from the same base
    weights); ``insertion`` how attention goes in (`spaces.gate.INSERTIONS`). Each epoch's metrics
    carry the learned gates as ``gate/<position>``.
    """
    from ultralytics import YOLO

    from spaces import build_yaml, transfer_weights, write_yaml
    from spaces.build import attention_layers
    from spaces.gate import gate_values
    from spaces.space import model_cost
    from spaces.tasks import task_of
    from trainers.data import ultralytics_data

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    task = task_of(base)
    log = workdir / "log"
    record = TrialRecord("complete", placement.to_dict(), paths={"dir": str(workdir), "log": str(log)})
    full_disk: Exception | None = None
    start = time.perf_counter()
    with log_to(log):
        try:
            head = head_args(data)  # read once: the candidate and, from scratch, the seeded base share it
            model_dict = {**build_yaml(base, placement, insertion), **head}
            holders = attention_layers(base, placement)
            model_yaml = write_yaml(model_dict, workdir / "model.yaml", comment=f"placement: {placement}")
            record.paths["model_yaml"] = str(model_yaml)
            with seeded(budget.seed):  # the seed alone fixes the attention's initial weights
                model = YOLO(str(model_yaml), task=task.name)
            record.params, record.gflops = model_cost(model.model)
            transfer = transfer_weights(weights or seeded_base({**base, **head}, task, budget.seed), model.model, placement)
            if weights:
                record.transfer = str(transfer)
                logging.getLogger("ultralytics").info(record.transfer)
            model.load(model.model)  # train() then starts from these weights, not a fresh init
            real_epoch = {"pending": False}

            def on_train_epoch_end(trainer) -> None:
                real_epoch["pending"] = True

            def on_fit_epoch_end(trainer) -> None:
                raise_if_pressed()
                metrics = _epoch_metrics(trainer, task)
                if not real_epoch["pending"]:  # Ultralytics' final_eval re-validates best.pt
                    record.final = {k: metrics[k] for k in task.metric_names}
                    return
                real_epoch["pending"] = False
                epoch = trainer.epoch + 1
                net = trainer.ema.ema if trainer.ema else trainer.model  # the EMA weights are the ones validated
                gates = gate_values({p: [net.model[i] for i in idx] for p, idx in holders.items()})
                metrics |= {GATE_PREFIX + p: g for p, g in gates.items()}
                metrics = {"epoch": epoch, **metrics, "time_s": time.perf_counter() - start}
                record.epochs.append(metrics)
                losses = [v for k, v in metrics.items() if k.startswith("train/")]
                if not all(math.isfinite(v) for v in losses):
                    raise _Stop("failed", f"loss is not finite at epoch {epoch}", epoch)
                if report is not None and report(epoch, metrics):
                    raise _Stop("pruned", f"stopped by the pruner after epoch {epoch}", epoch)

            model.add_callback("on_train_epoch_end", on_train_epoch_end)
            model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
            model.train(data=ultralytics_data(data), project=str(workdir.parent), name=workdir.name, **budget.train_args())
        except _Stop as stop:
            record.status, record.reason = stop.status, stop.reason
            record.pruned_at = stop.epoch if stop.status == "pruned" else None
        except Exception as error:  # a failing candidate is a result, not a crash of the search
            if disk_full(error, workdir):  # but a full disk is not the candidate's fault: stop the search
                full_disk = error
            record.status, record.reason = "failed", one_line(error)
            logging.getLogger("ultralytics").exception("training failed")
    record.wall_time_s = time.perf_counter() - start
    results = workdir / "results.csv"
    if results.is_file():
        record.paths["results_csv"] = str(results)
    best = workdir / "weights" / "best.pt"
    if budget.keep_weights and best.is_file():
        record.paths["weights"] = str(best)
    elif not budget.keep_weights or full_disk:
        shutil.rmtree(workdir / "weights", ignore_errors=True)
    if full_disk:
        raise OSError(errno.ENOSPC, "no space left on the disk", str(workdir)) from full_disk
    return record


def full_train(
    placement: Placement,
    base: dict,
    data: str | Path,
    budget: Budget,
    out_dir: str | Path,
    weights: str | Path | None = None,
    insertion: str = "gated",
    report: Report | None = None,
) -> TrialRecord:
    """Retrain ``placement`` with the user's full settings into ``out_dir`` (the study's ``final/``):
    model.yaml, weights/best.pt, results.csv and log; ``report`` hears each epoch (for progress: it answers False)."""
    return train_candidate(placement, base, data, replace(budget, keep_weights=True), out_dir, report, weights, insertion)
