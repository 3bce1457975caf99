"""Measured latency in a search: each candidate timed against the baseline before it trains, kept in the
study by placement key, and held to ``--max-slowdown`` / ``--max-latency-ms``.

`LatencyProbe` writes the baseline once per study and times it against itself (the run-to-run spread
of a ratio on this machine, for the report); each new placement is timed interleaved with the baseline
on ``--latency-device`` (`trainers.latency`: ONNX Runtime on the CPU, PyTorch FP16 on a CUDA GPU). The figures go into
the trial's user attributes
(``latency_ratio``, its interval, ``latency_ms``), so the dashboard shows them and a duplicate copies
them; the study's ``latency`` attribute caches them by placement key, so a resumed study or a second
worker never repeats a measurement of one placement. A limit is decided on the ratio's 95% interval (for
``--max-latency-ms`` the same interval times the baseline's ms), never on the point alone: a candidate
whose whole interval lies above a limit is told PRUNED as infeasible without training, with its excess
over the limit as the trial's Optuna constraint (``latency`` > 0), which TPE reads to steer away from
slow placements; one whose whole interval lies at or below every limit trains. One whose interval
straddles a limit is measured once more, in ``RECHECK_ROUNDS`` rounds (the figure cached in place of the
first), and if it still straddles it trains: it is not shown to be slower than the limit, and a
candidate wrongly excluded is lost to the search (never trained, its neighbours avoided by TPE) while
one wrongly admitted costs one training and carries its figures. The trial's ``latency_decision`` says
which case and why in one line, with the interval ("within noise of --max-slowdown ..." for the last);
an infeasible trial's ``infeasible`` is the same line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from optuna.trial import TrialState

from search.study.attributes import StudyView, cache_latency, mark_infeasible, record_latency, record_latency_baseline
from search.study.storage import study_lock
from spaces import Placement, build_yaml, write_yaml
from trainers.latency import ROUNDS, Timing, compare, compare_torch, export_onnx
from trainers.train import head_args

if TYPE_CHECKING:
    import optuna
    from optuna.trial import Trial

    from search.config.run_config import RunConfig

RECHECK_ROUNDS = 3 * ROUNDS  # a second measurement of a candidate within noise of a limit: ~1/sqrt(3) as wide
OVER, UNDER, ACROSS = "over", "under", "across"  # where a measurement's interval lies against a limit


class Check(NamedTuple):
    """One limit against one measurement, in the limit's unit: the point, its 95% interval and where that lies."""

    option: str  # "--max-slowdown 1.1"
    cap: float
    value: float
    low: float
    high: float
    unit: str  # "x" or " ms"

    @property
    def side(self) -> str:
        """OVER when the whole interval lies above the cap, UNDER when it lies at or below it, else ACROSS."""
        return OVER if self.low > self.cap else UNDER if self.high <= self.cap else ACROSS

    def figures(self) -> str:
        digits = 3 if self.unit == "x" else 2
        return f"95% interval [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def checks(timing: dict, baseline_ms: float, max_slowdown: float | None, max_latency_ms: float | None) -> list[Check]:
    """``timing`` (a `Timing`'s dict) against each limit set: the ratio and its interval for ``--max-slowdown``,
    both times ``baseline_ms`` for ``--max-latency-ms`` (the baseline's own ms taken as known)."""
    ratio, low, high = timing["ratio"], timing["low"], timing["high"]
    found = []
    if max_slowdown is not None:
        found.append(Check(f"--max-slowdown {max_slowdown:g}", max_slowdown, ratio, low, high, "x"))
    if max_latency_ms is not None:
        found.append(Check(f"--max-latency-ms {max_latency_ms:g}", max_latency_ms, ratio * baseline_ms, low * baseline_ms,
                           high * baseline_ms, " ms"))
    return found


def decide(found: list[Check], rounds: int) -> tuple[bool, float, str]:
    """(feasible, the Optuna constraint, the one-line reason) of a measurement of ``rounds`` rounds checked against
    its limits (module doc): infeasible when some interval lies wholly over its limit; else feasible, and
    "within noise" when some interval straddles its limit."""
    again = f" on a second measurement of {rounds} rounds" if rounds > ROUNDS else ""
    over = [c for c in found if c.side == OVER]
    if over:  # the largest excess names it, as TPE reads it
        c = max(over, key=lambda c: max(c.value, c.low) - c.cap)
        point = f"{c.value:.3f}x the baseline's latency" if c.unit == "x" else f"{c.value:.1f} ms"
        return False, max(c.value, c.low) - c.cap, f"{point}, over {c.option} ({c.figures()}, wholly above it{again})"
    excess = min(0.0, max((c.value - c.cap for c in found), default=0.0))  # feasible: never > 0 for TPE
    across = [c for c in found if c.side == ACROSS]
    if across:
        c = across[0]
        return True, excess, (f"within noise of {c.option}: {c.value:.3f}{c.unit} ({c.figures()}, across it{again}); "
                              "admitted, not shown slower than the limit")
    return True, excess, "; ".join(f"within {c.option}: {c.value:.3f}{c.unit} ({c.figures()}, wholly at or below it{again})"
                                   for c in found)


class LatencyProbe:
    """Latency of a study's candidates against its baseline (module doc), at ``--final-imgsz``."""

    def __init__(self, study: optuna.Study, config: RunConfig, base: dict, data: Path):
        self.study, self.config, self.base, self.data = study, config, base, data
        self.folder = config.study_dir / "latency"
        self.baseline_model = self._model(Placement())
        measured = StudyView(study).latency_baseline
        if not measured:
            itself = self._compare(self.baseline_model, self.baseline_model)
            measured = {"ms": itself.reference_ms, "self": itself.to_dict()}
            record_latency_baseline(study, measured)
        self.baseline_ms = measured["ms"]
        if config.max_latency_ms is not None and self.baseline_ms > config.max_latency_ms:
            raise ValueError(f"the baseline itself takes {self.baseline_ms:.1f} ms ({config.latency_device}, batch 1, "
                             f"{config.final_imgsz} px), over --max-latency-ms {config.max_latency_ms:g}: no candidate can "
                             "meet it; raise the limit or give a smaller --final-imgsz")

    def _compare(self, candidate: Path, reference: Path, rounds: int = ROUNDS) -> Timing:
        if self.config.latency_device == "cuda":
            return compare_torch(candidate, reference, self.config.final_imgsz, "cuda", rounds=rounds)
        return compare(candidate, reference, rounds=rounds)

    def _model(self, placement: Placement) -> Path:
        """The file timed for ``placement``: its model YAML (cuda) or that YAML exported to ONNX (cpu), kept
        in ``latency/<placement key>/``."""
        model = {**build_yaml(self.base, placement, self.config.insertion), **head_args(self.data)}
        folder = self.folder / (placement.key if not placement.is_baseline else "baseline")
        folder.mkdir(parents=True, exist_ok=True)
        if self.config.latency_device == "cuda":  # written once: another worker may be timing it
            return folder / "model.yaml" if (folder / "model.yaml").is_file() else write_yaml(model, folder / "model.yaml")
        if not (folder / "model.onnx").is_file():
            with tempfile.TemporaryDirectory(dir=folder) as scratch:  # the exporter writes beside the YAML
                onnx = export_onnx(write_yaml(model, Path(scratch) / "model.yaml"), self.config.final_imgsz)
                onnx.replace(folder / "model.onnx")
        return folder / "model.onnx"

    def measure(self, placement: Placement, rounds: int = ROUNDS) -> dict:
        """The timing of ``placement`` against the baseline in at least ``rounds`` rounds: from the study's cache,
        or measured and cached (in place of a shorter one)."""
        cached = StudyView(self.study).latency_cache.get(placement.key)
        if cached and cached["rounds"] >= rounds:
            return cached
        timing = self._compare(self._model(placement), self.baseline_model, rounds).to_dict() if not placement.is_baseline \
            else {**StudyView(self.study).latency_baseline["self"], "ratio": 1.0}
        with study_lock(self.config):  # another worker may add its own placement at the same moment
            cache_latency(self.study, placement.key, timing)
        return timing

    def admit(self, trial: Trial, placement: Placement) -> bool:
        """Record ``placement``'s latency on ``trial``; False (the trial told PRUNED, infeasible, untrained)
        when the interval of its figure lies wholly over ``--max-slowdown`` or ``--max-latency-ms``; measured a
        second time when it lies across one (module doc)."""
        timing = self.measure(placement)
        found = checks(timing, self.baseline_ms, self.config.max_slowdown, self.config.max_latency_ms)
        sides = {c.side for c in found}
        if ACROSS in sides and OVER not in sides and not placement.is_baseline:
            timing = self.measure(placement, RECHECK_ROUNDS)
            found = checks(timing, self.baseline_ms, self.config.max_slowdown, self.config.max_latency_ms)
        feasible, excess, why = decide(found, timing["rounds"])
        record_latency(trial, timing, self.baseline_ms, why if found else None)
        trial.set_constraint("latency", excess)  # TPE models infeasible trials from it
        if feasible or placement.is_baseline:  # the baseline always trains: every candidate is compared with it
            return True
        mark_infeasible(trial, why)
        self.study.tell(trial, state=TrialState.PRUNED)
        return False
