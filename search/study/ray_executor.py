"""Run a search on Ray Tune: several trials side by side, on one machine or on a cluster.

Wiring: **only the driver process talks to the Optuna storage.** One module, over 400 lines with
this text: the searcher, the scheduler and the trainable below are three sides of one protocol with
Tune, and change together.

- `OptunaSearcher` (a Tune ``Searcher``) hands Tune the trials of the study's `search.study.loop.TrialLoop`,
  the loop every executor shares (asking, infeasible and repeated placements, twins, the stop rule);
  when a trial ends it gives the loop the `TrialRecord`, which tells Optuna COMPLETE, PRUNED or FAIL.
- `PruningScheduler` (a Tune ``FIFOScheduler``) receives every epoch result, reports the fitness to
  the Optuna trial and asks Optuna's pruner; when it says prune, Tune stops the trial
  (``TrialScheduler.STOP``) and the searcher tells it PRUNED with the epochs received so far.
- `train_trial` (the Tune function trainable) runs in a Ray worker: it makes Ultralytics
  offline-safe and registers our modules there (`trainers.offline.prepare_ultralytics`), trains with
  `trainers.train.train_candidate`, reports each epoch with ``ray.tune.report`` and, last, the whole
  `TrialRecord`. With ``--screen supernet`` the driver trains the study's supernet first (once, in its own
  process and on its machine's ``--device``, `search.study.screen`), and each worker validates its placement's path
  of the checkpoint saved in ``<study>/supernet`` (on a cluster, on the filesystem the nodes share, as trials are).

Why the driver alone: Optuna stays the single source of truth, and a stopped trial is PRUNED, never
COMPLETE with a truncated score (Ray's ``OptunaSearch`` with ASHA records ASHA-stopped trials as
COMPLETE, so the sampler would learn from early-epoch values). Pruning needs the intermediate values
of all trials, which the driver has at hand. Workers need no storage URL and no database driver, and
plain SQLite serves a whole cluster, since one process writes it: no database server, and no SQLite
file locking over a network filesystem. Asks happen just in time (at most ``--workers`` trials are
live), so TPE proposes each trial knowing every result finished by then.

Stopping: the loop's rule (`search.study.loop`): trials in flight and other workers' running trials count
towards ``--trials``, so no more are asked than needed; the searcher then answers ``Searcher.FINISHED``.

Resume: as in-process. Kill the driver and rerun: trials it left RUNNING are marked FAIL
``interrupted`` and queued again by `search.study.storage.open_study`; Tune starts a fresh experiment
(``<study>/ray/search-<time>``), never restored, since Optuna's storage holds the state. A worker that
dies is re-run up to ``--trial-retries`` times (Tune's ``FailureConfig``), from its first epoch.

Resources: each trial gets ``--cpus-per-trial`` CPUs and ``--gpus-per-trial`` of one GPU (fractions
let several small trials share a GPU) and trains on that GPU share, or on the CPU when it is 0;
``--device cpu`` makes the default share 0, and ``--device`` still chooses where the final
retraining runs (in the driver, after the search).

Cluster (``--ray-address``): workers read the proxy data in ``<study>/proxy`` and ``--weights``, and
write ``<study>/trials/<n>`` and Tune's ``<study>/ray``, at the driver's absolute paths: put ``--out``
(and the weights) on a filesystem every node mounts at the same path (NFS, a cluster filesystem).
Every node needs this package and its dependencies installed in the Python environment Ray starts
workers with. The base model travels with the trials (Ray's object store), not as a file.

No files in the user's home: ``RAY_AUTH_MODE=disabled`` (unless set otherwise) for driver and
workers, so Ray writes no auth token under ``~/.ray``; Tune's storage is ``<study>/ray``; a local
cluster keeps its temp dir in ``<study>/ray/tmp``, or in ``/tmp/ray-<8 hex of the study path>`` when
that path is too long for the unix sockets Ray puts under it (107 bytes at most); workers get
Ultralytics' config dir ``<study>/config``; Ultralytics' own Ray Tune callback stays off
(``prepare_ultralytics`` sets ``SETTINGS['raytune']`` False).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
import yaml
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from search.config.run_config import RunConfig
from search.study.executor import Executor
from search.study.screen import prepared_supernet, score_on_supernet
from trainers.interrupt import sigterm_kept
from trainers.offline import prepare_ultralytics
from trainers.train import TrialRecord, train_candidate

# The rest of search.study, and spaces, import Ultralytics, which must not load in a worker before
# prepare_ultralytics has set its environment; torch is asked only for a local cluster's GPUs: they are imported where used.
if TYPE_CHECKING:
    from search.study.loop import Asked, TrialLoop
    from search.study.start import StudyRun
    from spaces import SearchSpace

# Result keys (JSON strings, so Tune's result flattening leaves them whole).
EPOCH_KEY = "epoch_metrics"
RECORD_KEY = "trial_record"
# Seconds to wait for an existing cluster at --ray-address to answer (ray.init alone may hang).
PROBE_TIMEOUT_S = 30.0
# Ray puts unix sockets at <temp dir>/session_<date>_<time>_<pid>/sockets/<name>; Linux allows 107 bytes.
SOCKET_PATH_MAX, SOCKET_SUFFIX = 107, 70


@dataclass
class Running:
    """A trial that Tune runs: the loop's trial, its folder and what the worker reported so far."""

    asked: Asked
    workdir: Path
    epochs: list[dict] = field(default_factory=list)
    pruned_at: int | None = None

    def partial_record(self, status: str, reason: str) -> TrialRecord:
        """The record of a trial whose worker sent no record (pruned, or its worker died)."""
        paths = {"dir": str(self.workdir), "log": str(self.workdir / "log")}
        for key, name in (("model_yaml", "model.yaml"), ("results_csv", "results.csv")):
            if (self.workdir / name).is_file():
                paths[key] = str(self.workdir / name)
        params, gflops = model_size(self.workdir / "model.yaml")
        return TrialRecord(
            status, self.asked.placement.to_dict(), epochs=list(self.epochs), reason=reason,
            pruned_at=self.pruned_at if status == "pruned" else None,
            wall_time_s=self.epochs[-1]["time_s"] if self.epochs else 0.0, params=params, gflops=gflops, paths=paths,
        )


class OptunaSearcher(Searcher):
    """Tune's searcher over the study's `search.study.loop.TrialLoop`: `suggest` hands out its next trial,
    `on_trial_complete` finishes it (driver only)."""

    def __init__(self, loop: TrialLoop):
        super().__init__(metric="fitness", mode="max")
        self.loop = loop
        self.running: dict[str, Running] = {}  # Tune trial id -> trial in training

    def suggest(self, trial_id: str) -> dict | str | None:
        from search.study.trial_steps import trial_dir

        asked = self.loop.next_trial()  # Tune's driver loop asks here often: a dropped Ctrl-C stops it too
        if asked is None:
            return None if self.loop.waiting else Searcher.FINISHED  # waiting twins may still need a worker
        self.running[trial_id] = Running(asked, trial_dir(self.loop.run.config, asked.number))
        return {"number": asked.number, "placement": asked.placement.to_dict(), "seed": asked.seed}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        run = self.running.pop(trial_id, None)
        if run is None:
            return
        if error:
            where = f"error.txt of trial-{run.asked.number} under {self.loop.run.config.study_dir / 'ray'}"
            record = run.partial_record("failed", f"the Ray worker failed; see {where}")
        elif run.pruned_at is not None:
            record = run.partial_record("pruned", f"stopped by the pruner after epoch {run.pruned_at}")
            shutil.rmtree(run.workdir / "weights", ignore_errors=True)  # proxies keep no weights
        elif result and RECORD_KEY in result:
            record = TrialRecord(**json.loads(result[RECORD_KEY]))
        else:  # stopped from outside (Tune shutting down): left RUNNING, the next run queues it again
            logging.getLogger(__name__).warning("trial %d ended without a result; it is retried on resume", run.asked.number)
            self.loop.abandon(run.asked)
            return
        self.loop.finish(run.asked, record)

    # The searcher's state is the Optuna study; Tune's experiment is never restored.
    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass

    def __getstate__(self) -> dict:  # Tune pickles its configuration into tuner.pkl, for Tuner.restore only
        return {}


class PruningScheduler(FIFOScheduler):
    """Reports each epoch's fitness to the Optuna trial and stops the trials Optuna's pruner prunes."""

    def __init__(self, searcher: OptunaSearcher):
        super().__init__()
        self.searcher = searcher

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        run = self.searcher.running.get(trial.trial_id)
        if run is None or EPOCH_KEY not in result:
            return TrialScheduler.CONTINUE
        metrics = json.loads(result[EPOCH_KEY])
        if run.epochs and metrics["epoch"] <= run.epochs[-1]["epoch"]:
            run.epochs.clear()  # a re-run after a worker failure starts from epoch 1
        run.epochs.append(metrics)
        if self.searcher.loop.report(run.asked, metrics["epoch"], metrics):
            run.pruned_at = metrics["epoch"]
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def __getstate__(self) -> dict:
        return {}


def train_trial(trial_config: dict, run: dict, base: dict, proxy: str, space: SearchSpace | None = None,
                supernet: str | None = None) -> None:
    """Tune function trainable, run in a Ray worker: one proxy training of a placement, or with ``supernet`` (the
    study's supernet checkpoint, and its ``space``) one validation of the placement's path (`score_on_supernet`).

    Reports each epoch to Tune (the fitness, and the epoch's metrics as JSON) and, last, the whole
    `TrialRecord`. The trial trains on the GPU share Ray gave it, else on the CPU. When the driver
    stops the trial, Tune ends the report call with ``SystemExit``: training stops at once, and the
    worker cleans up and exits without reporting more (the driver records the pruned trial).
    """
    config = RunConfig(**run)
    prepare_ultralytics(config.study_dir / "config")
    from search.study.trial_steps import trial_dir
    from spaces import Placement

    placement = Placement.from_dict(trial_config["placement"])
    workdir = trial_dir(config, trial_config["number"])
    shutil.rmtree(workdir, ignore_errors=True)  # a retried trial starts clean
    device = "0" if ray.get_gpu_ids() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES
    budget = replace(config.proxy_budget, seed=trial_config["seed"], device=device)
    stopped = False

    def report(epoch: int, metrics: dict) -> bool:
        nonlocal stopped
        try:
            tune.report({"epoch": epoch, "fitness": metrics["fitness"], EPOCH_KEY: json.dumps(metrics)})
        except SystemExit:  # Tune stopped the trial: Optuna pruned it
            stopped = True
            return True
        return False

    if supernet:
        record = score_on_supernet(placement, config, space, Path(proxy), Path(supernet), device)
    else:
        record = train_candidate(placement, base, proxy, budget, workdir, report, config.weights, config.insertion)
    if stopped:
        raise SystemExit(0)  # how Tune ends a stopped trial's thread quietly
    tune.report({"fitness": record.best.get("fitness", 0.0), RECORD_KEY: json.dumps(record.to_dict())})


def model_size(model_yaml: Path) -> tuple[int, float]:
    """(parameters, GFLOPs) of a trial's model.yaml, as `train_candidate` measures them; (0, 0.0) if absent."""
    if not model_yaml.is_file():
        return 0, 0.0
    from spaces.space import model_cost
    from spaces.tasks import task_of

    model_dict = yaml.safe_load(model_yaml.read_text())
    return model_cost(task_of(model_dict).model(model_dict, verbose=False))


def ray_temp_dir(study_dir: Path) -> Path:
    """Temp dir of a local cluster: ``<study>/ray/tmp``, or ``/tmp/ray-<8 hex>`` if that is too long
    for the unix socket paths Ray creates under it."""
    preferred = Path(study_dir).resolve() / "ray" / "tmp"
    if len(str(preferred)) + SOCKET_SUFFIX <= SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha1(str(Path(study_dir).resolve()).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"ray-{digest}"


def worker_env(config: RunConfig) -> dict[str, str]:
    """Environment of every worker: no Ray auth token, Ultralytics offline with its files in the study."""
    env = {
        "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled"),
        "YOLO_CONFIG_DIR": str(config.study_dir / "config"),
        "YOLO_OFFLINE": "True",
        "YOLO_AUTOINSTALL": "False",
        "MPLCONFIGDIR": str(config.study_dir / "config" / "matplotlib"),
    }
    if "YOLO_VERBOSE" in os.environ:
        env["YOLO_VERBOSE"] = os.environ["YOLO_VERBOSE"]
    return env


_PROBE = "import json, sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); print(json.dumps(ray.cluster_resources()))"


def probe_cluster(address: str, timeout: float | None = None) -> dict:
    """Resources of the Ray cluster at ``address``; one-line ValueError if none answers in time.

    ``ray.init`` to an address where no cluster answers can wait for minutes, so a plain TCP
    connection is tried first and ``ray.init`` then runs in a child process with a time limit.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    hint = "start one with `ray start --head` there, or leave --ray-address out to start a local one"
    if address.startswith("ray://"):  # Tune would run the driver, Optuna storage included, on the head node
        raise ValueError(f"--ray-address {address}: Ray Client is not supported; run the search on a cluster node "
                         "with the cluster's HOST:PORT (ray start --head prints it) or auto")
    host, _, port = address.rpartition(":")
    if address != "auto":  # auto: the cluster `ray start` left this machine's address file for
        if not host or not port.isdigit():
            raise ValueError(f"--ray-address {address!r}: write HOST:PORT, e.g. 10.0.0.1:6379, or auto")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=min(5.0, timeout)).close()
        except OSError as e:
            raise ValueError(f"--ray-address {address}: cannot be reached ({e.strerror or type(e).__name__}); {hint}") from None
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ValueError(f"--ray-address {address}: no Ray cluster answered within {timeout:.0f} s; {hint}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ValueError(f"--ray-address {address}: no Ray cluster answers there ({last}); {hint}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def trial_resources(config: RunConfig, cluster: dict, where: str) -> tuple[float, float]:
    """(CPUs, GPUs) of one trial; ValueError when the cluster ``cluster`` (Ray resources) lacks them.

    Defaults: the cluster's CPUs split among ``--workers`` (at least 1 each); one GPU per trial,
    or an equal share of the GPUs when there are fewer GPUs than workers (0 on a CPU-only cluster
    or with ``--device cpu``).
    """
    cpus_total, gpus_total = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    gpus = config.gpus_per_trial
    if gpus is None:
        gpus = 0.0 if gpus_total == 0 or config.device == "cpu" else min(1.0, gpus_total / config.workers)
    if gpus > gpus_total:
        raise ValueError(f"--gpus-per-trial {gpus:g}: {where} has {gpus_total:g} GPUs; give 0 to train on CPUs")
    cpus = config.cpus_per_trial or max(1.0, math.floor(cpus_total / config.workers))
    if cpus > cpus_total:
        raise ValueError(f"--cpus-per-trial {cpus:g}: {where} has {cpus_total:g} CPUs")
    fits = min(math.floor(cpus_total / cpus), math.floor(gpus_total / gpus) if gpus else config.workers)
    if fits < config.workers:
        logging.getLogger(__name__).warning("%s fits %d trials at a time, not --workers %d", where, fits, config.workers)
    return cpus, gpus


def _local_resources() -> dict:
    """The resources of a local cluster (given to ``ray.init``): this process's CPUs, every CUDA GPU."""
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"CPU": cpus, "GPU": torch.cuda.device_count()}


class RayTune(Executor):
    """Trials side by side on Ray Tune (the module doc)."""

    def run(self, config: RunConfig, show_progress: bool = True) -> StudyRun:
        return run_ray(config, show_progress)


def run_ray(config: RunConfig, show_progress: bool = True) -> StudyRun:
    """Evaluate placements on Ray Tune until ``config.trials`` trials count (see the module doc).

    Uses the Ray runtime this process is already connected to, else the cluster at
    ``config.ray_address``, else a local cluster it starts and shuts down again.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # before Ray starts: no token in ~/.ray
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C stops the driver as in-process
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no Tune tables beside our progress bars
    from search.study.loop import TrialLoop
    from search.study.progress import Progress
    from search.study.start import start_search

    if ray.is_initialized():
        cluster, where = ray.cluster_resources(), "the connected Ray cluster"
    elif config.ray_address:
        cluster, where = probe_cluster(config.ray_address), f"the cluster at {config.ray_address}"
    else:
        cluster, where = _local_resources(), "this machine"
    cpus, gpus = trial_resources(config, cluster, where)  # bad input fails before anything is written
    run = start_search(config)
    study = run.study
    supernet = prepared_supernet(run) if config.screen == "supernet" else None  # trained here once; workers validate
    owns_runtime = not ray.is_initialized()
    if owns_runtime:
        local = {} if config.ray_address else {"_temp_dir": str(ray_temp_dir(config.study_dir)),
                                               "num_cpus": cluster["CPU"], "num_gpus": cluster["GPU"]}
        ray.init(address=config.ray_address, runtime_env={"env_vars": worker_env(config)}, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING, **local)
        sigterm_kept()  # SIGTERM ends the search as Ctrl-C does, not by ray.init's silent exit
    try:
        with Progress(study, config.trials, run.task, enabled=show_progress) as progress:
            searcher = OptunaSearcher(TrialLoop(run, on_told=progress.update))
            trainable = tune.with_parameters(train_trial, run=asdict(config), base=run.base, proxy=str(run.proxy),
                                             space=run.space if supernet else None, supernet=supernet and str(supernet))
            name = lambda trial: f"trial-{trial.config['number']}"  # noqa: E731
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus}),
                tune_config=tune.TuneConfig(
                    search_alg=searcher, scheduler=PruningScheduler(searcher), num_samples=-1,
                    max_concurrent_trials=config.workers, reuse_actors=True,
                    trial_name_creator=name, trial_dirname_creator=name,
                ),
                run_config=tune.RunConfig(
                    name=f"search-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(config.study_dir / "ray"),
                    failure_config=tune.FailureConfig(max_failures=config.trial_retries), verbose=0,
                ),
            )
            tuner.fit()
    finally:
        if owns_runtime:
            ray.shutdown()
    return run
