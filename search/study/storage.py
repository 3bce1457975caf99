"""The Optuna study in its storage: created or loaded with its sampler and pruner (`open_study`, `load_study`),
the lock the workers of one study share, their heartbeats, and trials whose process died failed and queued again.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from collections.abc import Iterable

import optuna
import psutil
from filelock import FileLock
from optuna.trial import FrozenTrial, Trial, TrialState

from search.config.run_config import RunConfig
from search.config.run_file import shown
from search.study.attributes import TrialView, enqueue_retry, record_worker
from trainers.train import error_chain

# We record heartbeats ourselves (`_beat`) for trials asked with ask/tell, which Optuna warns about.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


# Liveness of a RUNNING trial (Optuna's RDB heartbeat): its process records a heartbeat every
# HEARTBEAT_S seconds; a trial silent for GRACE_S is stale, failed and queued again by any process
# that opens the study for a search. On one machine a dead owner is seen at once (its pid).
HEARTBEAT_S, GRACE_S = 10, 60
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # this process, as trials' ``worker`` attribute names it


def make_sampler(config: RunConfig, offset: int = 0) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, grouped for the conditional slots) or random, seeded with ``config.seed +
    offset`` (the trials already in the study: a second worker or a resume does not replay the
    first worker's proposals)."""
    seed = config.seed + offset
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():  # `group` is marked experimental; it is what a conditional space needs
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(  # it reads each trial's constraints (search.study.latency_probe: too slow)
            multivariate=True, group=True, seed=seed, n_startup_trials=min(10, max(2, config.trials // 5))
        )


def warmup_epochs(epochs: int) -> int:
    """The median pruner's ``n_warmup_steps`` for a proxy of ``epochs`` epochs (steps are epochs,
    counted from 1: no trial is pruned before epoch ``n_warmup_steps``). Replayed on real bccd
    fine-tune curves: for the 5-epoch proxy a longer warm-up trains more epochs for a regret lower by
    less than a tenth of the seed sd (results/benchmarks/pretrained_pruner.md); for the 30-epoch one,
    10 trains 87% of the epochs for a regret of 0.0010 mAP50-95, a fifth of its seed sd
    (pretrained_pruner_30_epochs.md, 4 arms per seed). Both replays looked at regret only; with a planted
    +0.01 winner the pruner loses it too often, so fine-tunes no longer prune by default (DEFAULT_PRUNER)."""
    return max(1, epochs // 3)


MEDIAN_STARTUP_TRIALS = 3  # trials the median pruner completes before it prunes any


def make_pruner(config: RunConfig) -> optuna.pruners.BasePruner:
    """Pruner on per-epoch fitness; multi-objective studies cannot prune (Optuna) and get none."""
    if config.pruner_name == "none" or len(config.directions) > 1:
        return optuna.pruners.NopPruner()
    if config.pruner_name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=warmup_epochs(config.proxy_epochs))
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=max(1, config.proxy_epochs // 9), reduction_factor=3, min_early_stopping_rate=0
    )


# Seconds a SQLite connection waits for another process's write lock before "database is locked".
SQLITE_TIMEOUT_S = 60


def rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage for ``url`` with heartbeats (`HEARTBEAT_S`, `GRACE_S`): a stale trial is
    queued again (`requeue`). SQLite connections wait up to `SQLITE_TIMEOUT_S` for a lock, so several
    processes (a dashboard, more search workers) can share one study.db."""
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else None
    with warnings.catch_warnings():  # heartbeat_interval is marked experimental; it is Optuna's liveness check
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S,
                                      grace_period=GRACE_S, heartbeat_stale_trial_callback=requeue)


# URL schemes the [postgres] extra serves: SQLAlchemy 2.1 reads postgresql:// with psycopg (3), 2.0 with psycopg2.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"})


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed stale trial again (``retry_of`` names it) with the placement it was training; one
    killed while its placement was still being chosen (part of its params suggested) trained nothing,
    and a fresh trial, sampled in full, takes its place.

    Not Optuna's RetryHeartbeatStaleTrialCallback: it pins half-chosen params too and writes no ``retry_of``."""
    params = trial.params if TrialView(trial).placement_key is not None else {}
    enqueue_retry(study, trial, params)  # a repeat seed on its seed; one killed before its placement: the rule queues it anew


def _read_only(error: BaseException) -> bool:
    """Whether ``error`` or an exception it came from says the database cannot be written."""
    return any(words in str(e).lower() for e in error_chain(error) for words in ("readonly database", "read-only", "read only"))


# What a worker sees while another creates the same new storage or study (SQLite creates the schema
# table by table; the loser's CREATE TABLE or INSERT fails): trying again loads what the winner made.
CREATION_RACE = ("already exists", "database is locked", "unique constraint failed", "duplicate key")


def _creation_race(error: BaseException) -> bool:
    """Whether ``error`` is another process creating the same schema or study at the same moment."""
    return type(error).__name__ in {"IntegrityError", "DuplicatedStudyError"} or any(
        words in str(e).lower() for e in error_chain(error) for words in CREATION_RACE)


def open_study(config: RunConfig, recover: bool = False) -> optuna.Study:
    """Create or load the study. With ``recover`` (a search starting), trials whose process died
    (`recover_dead_trials`) are failed and queued again; other commands change no trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar and report say what happens
    for attempt in range(5):  # workers creating one new storage or study at once: the losers load it
        try:
            storage = rdb_storage(config.storage_url)
            study = optuna.create_study(study_name=config.study, storage=storage, sampler=make_sampler(config),
                                        pruner=make_pruner(config), directions=config.directions, load_if_exists=True)
            break
        except ImportError:  # the URL's database driver is not installed (Optuna re-raises it as ImportError)
            scheme = config.storage_url.partition("://")[0]
            fix = ("pip install 'yolo-attention-search[postgres]'" if scheme in POSTGRES_SCHEMES
                   else f"install the driver that '{scheme}' names")
            raise ValueError(f"storage '{shown(config.storage_url)}' needs a database driver that is not installed; {fix}") from None
        except Exception as e:  # SQLAlchemy raises many kinds for a bad URL or an unreachable server
            if _read_only(e):
                raise ValueError(f"storage '{shown(config.storage_url)}' is read-only; make it writable or give "
                                 "another --storage") from None
            if attempt == 4 or not _creation_race(e):
                raise opening_error(config.storage_url, e) from None
            time.sleep(1)
    if recover:
        with study_lock(config):  # no other worker of this machine is between asking a trial and naming itself
            recover_dead_trials(study)
        _beat(storage, study)
        study.sampler = make_sampler(config, offset=len(study.get_trials(deepcopy=False)))
    return study


# What SQLite says of a file it cannot read as a database (random bytes, cut short, a header over garbage): the
# storage was reached, and is damaged; "unable to open database file" (a wrong path) is not among them.
DAMAGED = ("file is not a database", "database disk image is malformed", "malformed database schema")


def damaged_storage(error: BaseException) -> str | None:
    """SQLite's words when ``error`` or an exception it came from says the database file is damaged, else None."""
    return next((words for e in error_chain(error) for words in DAMAGED if words in str(e).lower()), None)


def damaged_text(url: str, words: str) -> str:
    """The one line for a storage file that was reached but cannot be read (`damaged_storage`)."""
    return (f"storage '{shown(url)}' is a damaged SQLite file ({words}), not a wrong URL: the study folder's trials are "
            "intact; restore a copy of the file, or start a new study (`run` with another --study)")


def opening_error(url: str, error: Exception) -> ValueError:
    """The one line for a storage that cannot be opened; a damaged SQLite file (`damaged_storage`) and a missing or
    wrong password are named as such, the latter with the three ways to give it (run.yaml keeps the URL without it)."""
    words = damaged_storage(error)
    if words:
        return ValueError(damaged_text(url, words))
    if any("password" in str(e).lower() for e in error_chain(error)):
        return ValueError(f"storage '{shown(url)}' needs its password: give the full URL with --storage, set PGPASSWORD, "
                          "or add it to ~/.pgpass")
    return ValueError(f"storage '{shown(url)}' cannot be opened ({type(error).__name__}); check the URL")


def load_study(config: RunConfig) -> optuna.Study:
    """The existing study of ``config`` for a command that reads it (report, dashboard): never created."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=config.study, storage=config.storage_url)
    except KeyError:
        raise ValueError(f"storage '{shown(config.storage_url)}' holds no study '{config.study}'; give the --storage the "
                         "search used") from None
    except Exception as e:  # SQLAlchemy's many kinds, as in open_study
        raise opening_error(config.storage_url, e) from None


def study_lock(config: RunConfig) -> FileLock:
    """The lock the workers of one study take, on this machine or one shared folder, to change which
    trial is whose: queue the baseline, take a trial, recover dead ones."""
    return FileLock(config.study_dir / ".study.lock")


def ask(study: optuna.Study, config: RunConfig) -> Trial:
    """A new or queued trial, named as this worker's (``worker``) before another worker can see it.

    Under `study_lock`: SQLite cannot lock the row Optuna reads before it marks a queued trial
    RUNNING, so two workers could take the same one; and a RUNNING trial with no worker yet would
    look dead to a worker starting at that moment (`recover_dead_trials`)."""
    with study_lock(config):
        trial = study.ask()
        record_worker(trial, WORKER)  # whose heartbeat keeps it alive
    return trial


def held_elsewhere(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """RUNNING trials among ``trials`` that another live worker holds (its heartbeat or pid keeps them)."""
    return [t for t in trials if t.state == TrialState.RUNNING and TrialView(t).worker != WORKER]


def running_twin(trials: Iterable[FrozenTrial], key: str, number: int) -> FrozenTrial | None:
    """Another worker's RUNNING trial, asked before trial ``number``, that trains placement ``key``
    on the study's seed now (the earlier trial trains, the later one waits for it: two workers never
    wait for each other)."""
    return next((t for t in held_elsewhere(trials) if TrialView(t).placement_key == key and t.number < number
                 and TrialView(t).repeat_seed is None), None)


def owner_dead(worker: str | None) -> bool:
    """True when ``worker`` ("host:pid") is a process of this machine that no longer runs, or unknown."""
    if worker is None:
        return True  # asked and killed before it was handed out
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return False  # another machine: its heartbeat decides
    return not psutil.pid_exists(int(pid))


def recover_dead_trials(study: optuna.Study) -> None:
    """Fail and queue again every RUNNING trial whose process is gone: stale heartbeats (Optuna's
    `fail_stale_trials`, any machine) and owners on this machine that no longer run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_dead(TrialView(trial).worker):
            try:
                study.tell(trial.number, state=TrialState.FAIL)
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):  # tell: no longer RUNNING
                continue  # another process recovered it first
            requeue(study, trial)


_BEATING: set[tuple[str, str]] = set()  # (storage URL, study name) this process already beats for


def _beat(storage: optuna.storages.RDBStorage, study: optuna.Study) -> None:
    """Record, every `HEARTBEAT_S` until the process ends, a heartbeat for each RUNNING trial of
    ``study`` that this process (`WORKER`) holds, whichever executor trains it."""
    key = (str(storage.engine.url), study.study_name)
    if key in _BEATING:
        return
    _BEATING.add(key)
    study_id = storage.get_study_id_from_name(study.study_name)

    def loop() -> None:
        while True:
            try:
                for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    if TrialView(trial).worker == WORKER:
                        # A FrozenTrial keeps its storage id private: the storage's own lookup finds it.
                        storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number))
            except Exception:  # a locked or vanished database: try again at the next beat
                pass
            threading.Event().wait(HEARTBEAT_S)

    threading.Thread(target=loop, name="optuna-heartbeat", daemon=True).start()
