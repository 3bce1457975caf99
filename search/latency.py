"""Measured latency in a search: each candidate timed against the baseline before it trains, kept in the
study by placement key, and held to ``--max-slowdown`` / ``--max-latency-ms``.

`LatencyProbe` writes the baseline once per study and times it against itself (the run-to-run spread
of a ratio on this machine, for the report); each new placement is timed interleaved with the baseline
on ``--latency-device`` (`trainers.latency`: ONNX Runtime on the CPU, PyTorch FP16 on a CUDA GPU). The figures go into the trial's user attributes
(``latency_ratio``, its interval, ``latency_ms``), so the dashboard shows them and a duplicate copies
them; the study's ``latency`` attribute caches them by placement key, so a resumed study or a second
worker never measures one placement twice. A candidate over a limit is told PRUNED as infeasible
without training, with its excess over the limit as the trial's Optuna constraint (``latency`` > 0),
which TPE reads to steer away from slow placements.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from optuna.trial import TrialState

from search.study import study_lock
from spaces import Placement, build_yaml, write_yaml
from trainers.latency import Timing, compare, compare_torch, export_onnx
from trainers.train import head_args

if TYPE_CHECKING:
    import optuna
    from optuna.trial import Trial

    from search.config import RunConfig

CACHE = "latency"  # study attribute: placement key -> timing dict
BASELINE = "latency_baseline"  # study attribute: the baseline's own ms and self-ratio spread


class LatencyProbe:
    """Latency of a study's candidates against its baseline (module doc), at ``--final-imgsz``."""

    def __init__(self, study: optuna.Study, config: RunConfig, base: dict, data: Path):
        self.study, self.config, self.base, self.data = study, config, base, data
        self.folder = config.study_dir / "latency"
        self.baseline_model = self._model(Placement())
        measured = study.user_attrs.get(BASELINE)
        if not measured:
            itself = self._compare(self.baseline_model, self.baseline_model)
            measured = {"ms": itself.reference_ms, "self": itself.to_dict()}
            study.set_user_attr(BASELINE, measured)
        self.baseline_ms = measured["ms"]
        if config.max_latency_ms is not None and self.baseline_ms > config.max_latency_ms:
            raise ValueError(f"the baseline itself takes {self.baseline_ms:.1f} ms ({config.latency_device}, batch 1, "
                             f"{config.final_imgsz} px), over --max-latency-ms {config.max_latency_ms:g}: no candidate can "
                             "meet it; raise the limit or give a smaller --final-imgsz")  # fmt: skip

    def _compare(self, candidate: Path, reference: Path) -> Timing:
        if self.config.latency_device == "cuda":
            return compare_torch(candidate, reference, self.config.final_imgsz, "cuda")
        return compare(candidate, reference)

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

    def measure(self, placement: Placement) -> dict:
        """The timing of ``placement`` against the baseline: from the study's cache, or measured and cached."""
        cached = (self.study.user_attrs.get(CACHE) or {}).get(placement.key)
        if cached:
            return cached
        timing = self._compare(self._model(placement), self.baseline_model).to_dict() if not placement.is_baseline else \
            {**self.study.user_attrs[BASELINE]["self"], "ratio": 1.0}  # fmt: skip
        with study_lock(self.config):  # another worker may add its own placement at the same moment
            self.study.set_user_attr(CACHE, {**(self.study.user_attrs.get(CACHE) or {}), placement.key: timing})
        return timing

    def admit(self, trial: Trial, placement: Placement) -> bool:
        """Record ``placement``'s latency on ``trial``; False (the trial told PRUNED, infeasible, untrained)
        when it is over ``--max-slowdown`` or ``--max-latency-ms``."""
        timing = self.measure(placement)
        ms = timing["ratio"] * self.baseline_ms
        trial.set_user_attr("latency_ratio", timing["ratio"])
        trial.set_user_attr("latency_interval", [timing["low"], timing["high"]])
        trial.set_user_attr("latency_ms", ms)
        limits = []
        if self.config.max_slowdown is not None:
            limits.append((timing["ratio"] - self.config.max_slowdown, f"{timing['ratio']:.3f}x the baseline's latency, "
                           f"over --max-slowdown {self.config.max_slowdown:g}"))  # fmt: skip
        if self.config.max_latency_ms is not None:
            limits.append((ms - self.config.max_latency_ms, f"{ms:.1f} ms, over --max-latency-ms {self.config.max_latency_ms:g}"))
        excess, why = max(limits, default=(0.0, ""), key=lambda limit: limit[0])
        trial.set_constraint("latency", excess)  # TPE models infeasible trials from it
        if excess <= 0 or placement.is_baseline:  # the baseline always trains: every candidate is compared with it
            return True
        trial.set_user_attr("infeasible", why)
        self.study.tell(trial, state=TrialState.PRUNED)
        return False
