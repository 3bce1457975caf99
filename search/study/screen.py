"""How a trial of the search is evaluated: trained alone (``--screen standalone``, the default) or scored on the
study's supernet (``--screen supernet``, issue 33).

The supernet (`spaces.supernet`, `trainers.supernet`) holds every type of the space at every position behind its own
gate; it trains once, for `SUPERNET_EPOCHS_PER_PROXY` times a proxy's epochs, and each trial then costs one
validation of its placement's path instead of a training. The race after the search trains standalone runs on fresh
seeds as always, so a supernet score never decides alone. Whether its scores rank placements as standalone trainings
do is measured in results/benchmarks/supernet_fidelity_*.md; `FIDELITY` says what was found, and the command prints it
when the supernet is chosen. On Ray the driver trains the supernet and the workers score (`score_on_supernet` takes
what a worker has). Torch and Ultralytics load inside the functions (through trainers and spaces).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from search.study.attributes import StudyView, record_supernet
from search.study.start import StudyRun
from trainers.files import replace_file
from trainers.train import train_candidate

if TYPE_CHECKING:
    from search.config.run_config import RunConfig
    from spaces import Placement, SearchSpace
    from trainers.train import Report, TrialRecord

SUPERNET_EPOCHS_PER_PROXY = 3  # the supernet trains 3x one proxy's epochs (SPOS trains its supernet longer than one path)
SUPERNET_FOLDER = "supernet"  # <study>/supernet/: train/ (Ultralytics' files) and done.json once it finished
FIDELITY = ("measured on bccd from yolov8n.pt and on bccd-cls from scratch (20 placements each, 3 standalone seeds): "
            "its gates stayed within 0.008 of 0, so every path computed almost the base, and its scores did not rank "
            "the placements as their standalone trainings did (Spearman rho +0.18 and -0.28 on bccd's two supernets, "
            "where one standalone run agreed with the other seeds' mean at +0.23 to +0.54; "
            "results/benchmarks/supernet_fidelity_*.md). Treat its scores as unproven; the race still decides on "
            "standalone seeds")

Evaluate = Callable[["Placement", int, Path, "Report"], "TrialRecord"]  # (placement, seed, trial folder, report) -> record


def evaluator(run: StudyRun) -> Evaluate:
    """How ``run``'s trials are evaluated: `train_candidate` with the proxy budget at the trial's seed, or, with
    ``--screen supernet``, `score_on_supernet` (the supernet trained first when the study has none yet)."""
    config = run.config
    if config.screen == "supernet":
        from ultralytics.utils.torch_utils import select_device

        checkpoint = prepared_supernet(run)
        device = str(select_device(config.proxy_budget.device or "", verbose=False))  # as Ultralytics picks the trainings'
        return lambda placement, seed, workdir, report: score_on_supernet(placement, config, run.space, run.proxy, checkpoint, device)
    return lambda placement, seed, workdir, report: train_candidate(
        placement, run.base, run.proxy, replace(config.proxy_budget, seed=seed), workdir, report, config.weights, config.insertion)


def prepared_supernet(run: StudyRun) -> Path:
    """The study's supernet checkpoint (`supernet_checkpoint`), after saying what its scores are worth (`FIDELITY`)."""
    print(f"note: --screen supernet: {FIDELITY}")
    return supernet_checkpoint(run)


def supernet_checkpoint(run: StudyRun) -> Path:
    """The study's supernet checkpoint: trained by the first process that needs it (a worker, or the Ray driver) while
    the others wait on its lock, and reused once finished (by a resumed run too); a supernet killed while it trained
    resumes from its last epoch. Its training time goes to the study (`record_supernet`): the finishing run's part."""
    from trainers.supernet import CHECKPOINT, train_supernet, training_state

    folder = run.config.study_dir / SUPERNET_FOLDER
    done = folder / "done.json"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".lock"):
        if not done.is_file():
            budget = replace(run.config.proxy_budget, epochs=SUPERNET_EPOCHS_PER_PROXY * run.config.proxy_epochs)
            resumed = training_state(folder / "train" / "weights" / CHECKPOINT) == "resumable"
            print(f"{'resuming' if resumed else 'training'} the supernet: {budget.epochs} epochs, every placement of the "
                  "space in one model")
            start = time.perf_counter()
            checkpoint = train_supernet(run.space, run.base, run.proxy, budget, folder / "train", run.config.weights, run.config.seed)
            replace_file(done, json.dumps({"checkpoint": str(checkpoint.relative_to(folder)), "epochs": budget.epochs,
                                           "wall_time_s": time.perf_counter() - start, "resumed": resumed}))
        finished = json.loads(done.read_text())
        if StudyView(run.study).supernet is None:  # also when a kill came between done.json and the study
            record_supernet(run.study, finished["epochs"], finished["wall_time_s"], finished.get("resumed", False))
        return folder / finished["checkpoint"]


def score_on_supernet(placement: Placement, config: RunConfig, space: SearchSpace, proxy: Path, checkpoint: Path,
                      device: str) -> TrialRecord:
    """A trial's record from its path of the supernet ``checkpoint`` of ``space``, on the ``proxy`` data and torch
    ``device`` (`trainers.supernet.score_placement`: BatchNorm recalibrated, one validation; no epochs, so nothing to
    prune); a placement the supernet does not hold (a removed block, one type twice at a position) fails with the
    reason. What a Ray worker has at hand: no study."""
    from spaces.build import PlacementError
    from trainers.supernet import score_placement
    from trainers.train import TrialRecord

    start = time.perf_counter()
    try:
        metrics = score_placement(checkpoint, placement, proxy, config.proxy_imgsz, config.proxy_batch,
                                  device=device, seed=config.seed)
    except PlacementError as e:
        return TrialRecord("failed", placement.to_dict(), reason=f"the supernet does not hold it: {e}")
    cost = space.cost(placement)
    return TrialRecord("complete", placement.to_dict(), final=metrics, wall_time_s=time.perf_counter() - start,
                       params=cost.params, gflops=cost.gflops)
