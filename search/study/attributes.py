"""The record boundary: what a trial and a study keep in Optuna's user attributes, each key named once here,
read through the typed read-only views `TrialView` and `StudyView` and written by the functions below (``record_...``,
``mark_...``, ``enqueue_...``). No other module reads or writes a user attribute by its key.

Keys and value formats are those of every study written so far: older studies lack some keys, which a view
reads as None (or as what those versions did). run.yaml and the defaults of older options: `search.config.run_file`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial, Trial

    from spaces import Placement
    from trainers.train import TrialRecord

# Trial attributes.
PLACEMENT, PLACEMENT_KEY, PLACEMENT_STR = "placement", "placement_key", "placement_str"
BASELINE, PRIOR = "baseline", "prior"
SEED, REPEAT_OF, RETRY_OF, DUPLICATE_OF = "seed", "repeat_of", "retry_of", "duplicate_of"
INFEASIBLE, WORKER = "infeasible", "worker"
REASON, PRUNED_AT, PARAMS, GFLOPS, WALL_TIME_S, EPOCHS = "reason", "pruned_at", "params", "gflops", "wall_time_s", "epochs"
STATUS, DIR, TRANSFER, GATES = "status", "dir", "transfer", "gates"  # kept for the dashboard; not read back
LATENCY_RATIO, LATENCY_INTERVAL, LATENCY_MS, LATENCY_DECISION = "latency_ratio", "latency_interval", "latency_ms", "latency_decision"
NOT_COPIED = {RETRY_OF, DUPLICATE_OF}  # what a duplicate does not take from its twin
# trials.csv's attribute columns, after the task's metrics
CSV_ATTRIBUTES = (PLACEMENT_STR, BASELINE, PRIOR, SEED, DUPLICATE_OF, PARAMS, GFLOPS, LATENCY_MS, LATENCY_RATIO, WALL_TIME_S,
                  PRUNED_AT, REASON, INFEASIBLE)

# Study attributes.
CONFIG, TASK, DATA_CONTENT, UNUSABLE_IMAGES, ENVIRONMENT = "config", "task", "data_content", "unusable_images", "environment"
PRIOR_QUEUED, LATENCY_BASELINE, LATENCY_CACHE = "prior_queued", "latency_baseline", "latency"
PROXY_VALIDATION, DECISION, DIGESTS = "proxy_validation", "final", "artifact_digests"
SUPERNET = "supernet"


class TrialView:
    """What a trial (a `FrozenTrial` or a live `Trial`) keeps, read-only; None for what it does not hold."""

    __slots__ = ("trial",)

    def __init__(self, trial: FrozenTrial | Trial):
        self.trial = trial

    def _get(self, key: str) -> Any:
        return self.trial.user_attrs.get(key)

    @property
    def placement_dict(self) -> dict | None:
        """The placement it evaluated (`Placement.to_dict`); None before one was chosen."""
        return self._get(PLACEMENT)

    @property
    def placement_key(self) -> str | None:
        """Its placement's `Placement.key`."""
        return self._get(PLACEMENT_KEY)

    @property
    def placement_str(self) -> str | None:
        """Its placement as printed."""
        return self._get(PLACEMENT_STR)

    @property
    def is_baseline(self) -> bool:
        """Whether it trains the un-modified base model (queued as the baseline, or chosen so)."""
        return bool(self._get(BASELINE))

    @property
    def usual_family(self) -> str | None:
        """The usual placement family it was queued as (`spaces.prior`), None for a sampled one."""
        return self._get(PRIOR)

    @property
    def repeat_seed(self) -> int | None:
        """The seed of a repeat run of the intensification (`search.select.intensify`), None on the study's seed."""
        return self._get(SEED)

    @property
    def repeat_of(self) -> str | None:
        """The placement key a queued repeat seed trains (its ``placement_key`` comes when asked)."""
        return self._get(REPEAT_OF)

    @property
    def retry_of(self) -> int | None:
        """The number of the trial whose process died and that this one retries."""
        return self._get(RETRY_OF)

    @property
    def duplicate_of(self) -> int | None:
        """The number of the finished trial of the same placement whose result it reused (not trained)."""
        return self._get(DUPLICATE_OF)

    @property
    def infeasible(self) -> str | None:
        """Why it was told without training (outside the space's limits, too slow), in one line."""
        return self._get(INFEASIBLE)

    @property
    def worker(self) -> str | None:
        """The process that asked it, ``"host:pid"``."""
        return self._get(WORKER)

    def metric(self, name: str) -> float | None:
        """Its proxy training's metric ``name`` (a task's, `spaces.tasks`; a fraction)."""
        return self._get(name)

    @property
    def reason(self) -> str | None:
        """Why its training failed."""
        return self._get(REASON)

    @property
    def pruned_at(self) -> int | None:
        """The epoch its training was pruned at."""
        return self._get(PRUNED_AT)

    @property
    def parameter_count(self) -> int | None:
        """Its model's parameters."""
        return self._get(PARAMS)

    @property
    def gflops(self) -> float | None:
        """Its model's GFLOPs at the proxy image size."""
        return self._get(GFLOPS)

    @property
    def wall_time_s(self) -> float | None:
        """Its proxy training's wall time, seconds."""
        return self._get(WALL_TIME_S)

    @property
    def epochs(self) -> list[dict] | None:
        """Its proxy training's per-epoch metrics."""
        return self._get(EPOCHS)

    @property
    def latency_ratio(self) -> float | None:
        """Its latency over the baseline's (median of interleaved rounds, `search.study.latency_probe`)."""
        return self._get(LATENCY_RATIO)

    @property
    def latency_interval(self) -> list[float] | None:
        """The 95% interval of `latency_ratio`, ``[low, high]``."""
        return self._get(LATENCY_INTERVAL)

    @property
    def latency_ms(self) -> float | None:
        """Its latency, ms (`latency_ratio` times the baseline's)."""
        return self._get(LATENCY_MS)


def record_placement(trial: Trial, placement: Placement) -> None:
    """Keep the placement an asked trial evaluates: as a dict, its key, printed, and whether it is the baseline."""
    for key, value in ((PLACEMENT, placement.to_dict()), (PLACEMENT_KEY, placement.key), (PLACEMENT_STR, str(placement)),
                       (BASELINE, placement.is_baseline)):
        trial.set_user_attr(key, value)


def mark_infeasible(trial: Trial, why: str) -> None:
    """Keep why ``trial`` is told without training (`TrialView.infeasible`)."""
    trial.set_user_attr(INFEASIBLE, why)


def copy_outcome(trial: Trial, twin: FrozenTrial) -> None:
    """Give ``trial`` everything ``twin``, a finished trial of its placement, keeps, and name it as the twin's duplicate."""
    for key, value in twin.user_attrs.items():
        if key not in NOT_COPIED:
            trial.set_user_attr(key, value)
    trial.set_user_attr(DUPLICATE_OF, twin.number)


def record_worker(trial: Trial, worker: str) -> None:
    """Name the process (``"host:pid"``) whose heartbeat keeps ``trial`` alive."""
    trial.set_user_attr(WORKER, worker)


def record_training(trial: Trial, record: TrialRecord, metrics: dict) -> None:
    """Keep a proxy training's scored ``metrics`` (the task's), then its status, reason, sizes, time and folder
    (``trials/<number>``, inside the study wherever it moves), transfer, epochs and gates."""
    attrs = {**metrics, STATUS: record.status, REASON: record.reason, PRUNED_AT: record.pruned_at, PARAMS: record.params,
             GFLOPS: record.gflops, WALL_TIME_S: round(record.wall_time_s, 2), DIR: f"trials/{trial.number}",
             TRANSFER: record.transfer, EPOCHS: record.epochs, GATES: record.gates}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def record_latency(trial: Trial, timing: dict, baseline_ms: float, decision: str | None) -> None:
    """Keep a candidate's latency (a `trainers.latency.Timing` dict against the baseline, which takes
    ``baseline_ms``) and, when a limit was checked, the ``decision`` in one line."""
    trial.set_user_attr(LATENCY_RATIO, timing["ratio"])
    trial.set_user_attr(LATENCY_INTERVAL, [timing["low"], timing["high"]])
    trial.set_user_attr(LATENCY_MS, timing["ratio"] * baseline_ms)
    if decision is not None:
        trial.set_user_attr(LATENCY_DECISION, decision)


def _enqueue(study: optuna.Study, params: dict, attrs: dict) -> None:
    study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)


def enqueue_baseline(study: optuna.Study, params: dict) -> None:
    """Queue the baseline (``params``: the un-modified base model's)."""
    _enqueue(study, params, {BASELINE: True})


def enqueue_usual(study: optuna.Study, params: dict, family: str) -> None:
    """Queue a usual placement of ``family`` (`spaces.prior`)."""
    _enqueue(study, params, {PRIOR: family})


def enqueue_repeat(study: optuna.Study, params: dict, seed: int, key: str) -> None:
    """Queue a repeat run of placement ``key`` (its ``params``) on ``seed``."""
    _enqueue(study, params, {SEED: seed, REPEAT_OF: key})


def enqueue_retry(study: optuna.Study, trial: FrozenTrial, params: dict) -> None:
    """Queue ``params`` as the retry of ``trial``, whose process died; a repeat seed keeps its seed when its
    placement is retried (without params, a fresh trial takes its place)."""
    view = TrialView(trial)
    repeat = {SEED: view.repeat_seed, REPEAT_OF: view.placement_key} if params and view.repeat_seed is not None else {}
    _enqueue(study, params, {RETRY_OF: trial.number, **repeat})


def attribute_columns(metric_names: Iterable[str]) -> dict[str, str]:
    """Optuna's `trials_dataframe` column -> trials.csv's, for the task's ``metric_names`` then `CSV_ATTRIBUTES`."""
    return {f"user_attrs_{name}": name for name in (*metric_names, *CSV_ATTRIBUTES)}


class StudyView:
    """What a study keeps, read-only; None (or what older studies worked with) for what it does not hold."""

    __slots__ = ("study",)

    def __init__(self, study: optuna.Study):
        self.study = study

    def _get(self, key: str, default: Any = None) -> Any:
        return self.study.user_attrs.get(key, default)

    @property
    def config(self) -> dict | None:
        """The options it was searched with (`RunConfig.public`; older studies lack some, `search.config.run_file`)."""
        return self._get(CONFIG)

    @property
    def task_name(self) -> str:
        """The task it searched (`spaces.tasks.TASKS`; studies from before tasks: detection)."""
        return self._get(TASK, "detect")

    @property
    def data_content(self) -> str | None:
        """The digest of the dataset's files its trials were scored on (`trainers.data.Dataset.content`)."""
        return self._get(DATA_CONTENT)

    @property
    def unusable_images(self) -> str | None:
        """The warning on images its trainings cannot use, in one line."""
        return self._get(UNUSABLE_IMAGES)

    @property
    def environment(self) -> dict | None:
        """The machine and versions its first trials trained with (`search.study.provenance.environment`)."""
        return self._get(ENVIRONMENT)

    @property
    def prior_queued(self) -> bool:
        """Whether the usual placements were queued."""
        return bool(self._get(PRIOR_QUEUED))

    @property
    def latency_baseline(self) -> dict | None:
        """The baseline's latency: ``ms``, and ``self``, its `trainers.latency.Timing` dict against itself."""
        return self._get(LATENCY_BASELINE)

    @property
    def latency_cache(self) -> dict[str, dict]:
        """Placement key -> its `trainers.latency.Timing` dict against the baseline."""
        return self._get(LATENCY_CACHE) or {}

    @property
    def proxy_validation(self) -> dict | None:
        """What ``validate-proxy`` found (`search.final.proxy_check.validate_proxy`)."""
        return self._get(PROXY_VALIDATION)

    @property
    def decision(self) -> dict | None:
        """The final step's `search.final.decision.Decision`, as its dict."""
        return self._get(DECISION)

    @property
    def supernet(self) -> dict | None:
        """The ``--screen supernet`` study's supernet training: ``epochs``, ``wall_time_s`` (seconds, of the run that
        finished it) and ``resumed`` (that run went on from a killed one's last epoch, so its time is the last part's)."""
        return self._get(SUPERNET)

    @property
    def artifact_digests(self) -> dict[str, str]:
        """Outcome file -> sha1 of the content last uploaded to optuna-dashboard (a copy to update)."""
        return dict(self._get(DIGESTS) or {})


def record_identity(study: optuna.Study, config: dict, data_content: str) -> None:
    """Keep what ``study`` measures: its options (`RunConfig.public`) and its dataset's digest."""
    study.set_user_attr(CONFIG, config)
    study.set_user_attr(DATA_CONTENT, data_content)


def record_unusable_images(study: optuna.Study, warning: str) -> None:
    """Keep the warning on images the trainings cannot use (`StudyView.unusable_images`)."""
    study.set_user_attr(UNUSABLE_IMAGES, warning)


def record_task(study: optuna.Study, name: str) -> None:
    """Keep the name of the task ``study`` searches."""
    study.set_user_attr(TASK, name)


def record_environment(study: optuna.Study, environment: dict) -> None:
    """Keep the machine and versions the study's first trials train with."""
    study.set_user_attr(ENVIRONMENT, environment)


def mark_prior_queued(study: optuna.Study) -> None:
    """Note that the usual placements were queued (`StudyView.prior_queued`)."""
    study.set_user_attr(PRIOR_QUEUED, True)


def record_latency_baseline(study: optuna.Study, measured: dict) -> None:
    """Keep the baseline's latency (`StudyView.latency_baseline`)."""
    study.set_user_attr(LATENCY_BASELINE, measured)


def cache_latency(study: optuna.Study, key: str, timing: dict) -> None:
    """Add (or replace) placement ``key``'s timing in the study's latency cache (`StudyView.latency_cache`)."""
    study.set_user_attr(LATENCY_CACHE, {**StudyView(study).latency_cache, key: timing})


def record_proxy_validation(study: optuna.Study, result: dict) -> None:
    """Keep what ``validate-proxy`` found (`StudyView.proxy_validation`)."""
    study.set_user_attr(PROXY_VALIDATION, result)


def record_supernet(study: optuna.Study, epochs: int, wall_time_s: float, resumed: bool) -> None:
    """Keep how long the study's supernet trained (`StudyView.supernet`), in seconds."""
    study.set_user_attr(SUPERNET, {"epochs": epochs, "wall_time_s": wall_time_s, "resumed": resumed})


def record_decision(study: optuna.Study, decision: dict) -> None:
    """Keep the final step's decision (`search.final.decision.Decision.to_dict`)."""
    study.set_user_attr(DECISION, decision)


def record_artifact_digests(study: optuna.Study, digests: dict[str, str]) -> None:
    """Keep the digests of the outcome files uploaded (`StudyView.artifact_digests`)."""
    study.set_user_attr(DIGESTS, digests)
