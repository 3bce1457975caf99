"""What a study decided, as typed values: the confirmation race (`Confirmation`, one `SeedRuns` per
placement), the full retrainings (`FullRun`) and the exported placement with its verdict (`Decision`).

The study keeps a `Decision` as its user attribute ``final`` (`Decision.to_dict`, plain JSON), and every
reader, the report, the dashboard and ``export``, reads it back with `Decision.of_study`; studies written
before a field existed read with that field's default. Every sentence of the verdict is worded here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import optuna

from search.study.attributes import StudyView

TIE = 5e-5  # score differences below this print as +0.0000: a tie, not a win or a loss


def _known(cls, values: dict) -> dict:
    """The entries of ``values`` that are fields of dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


@dataclass(frozen=True)
class SeedRuns:
    """One placement's proxy runs in the confirmation: per-seed scores of each metric (fractions in
    [0, 1]), its fate in the race and, for the tested candidate, its comparison with the baseline."""

    trial: int
    placement_str: str
    placement: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    failed_runs: int = 0
    metrics: dict[str, list[float]] = field(default_factory=dict)  # metric -> one score per seed in ``seeds``
    race: str | None = None
    comparison: dict | None = None  # the tested candidate's `search.select.verdict.Comparison` fields and its ``line``
    tradeoff: str | None = None

    def scores(self, metric: str) -> list[float]:
        return self.metrics.get(metric) or []

    def to_dict(self) -> dict:
        values = asdict(self)
        values.update(values.pop("metrics"))
        if self.race is None:  # the baseline has no fate in the race, no comparison and no trade-off
            for key in ("race", "comparison", "tradeoff"):
                values.pop(key)
        return values

    @classmethod
    def from_dict(cls, values: dict, metric_names: tuple[str, ...]) -> SeedRuns:
        metrics = {k: values[k] for k in metric_names if k in values}
        return cls(**{**_known(cls, values), "metrics": metrics})


@dataclass(frozen=True)
class Confirmation:
    """The race of the best placements against the baseline on fresh seeds (`search.final.confirm`).
    ``winner`` indexes ``candidates``; None when no candidate beat the baseline beyond noise."""

    baseline: SeedRuns
    candidates: list[SeedRuns]
    winner: int | None
    verdict: str
    budget: int | None = None  # None: a study from before the race (fixed ``seeds`` per placement)
    alpha: float = 0.05
    runs: int = 0
    stopped: str = ""
    noise: dict | None = None  # `search.select.racing.Race.resolution`
    seeds: int | None = None  # studies from before the race

    @property
    def chosen(self) -> SeedRuns:
        """The placement the race exports: its winner, else the baseline."""
        return self.baseline if self.winner is None else self.candidates[self.winner]

    def to_dict(self) -> dict:
        values = {**asdict(self), "baseline": self.baseline.to_dict(), "candidates": [c.to_dict() for c in self.candidates]}
        if self.seeds is None:
            values.pop("seeds")
        return values

    @classmethod
    def from_dict(cls, values: dict, metric_names: tuple[str, ...]) -> Confirmation:
        runs = lambda v: SeedRuns.from_dict(v, metric_names)  # noqa: E731
        return cls(**{**_known(cls, values), "baseline": runs(values["baseline"]),
                      "candidates": [runs(c) for c in values.get("candidates") or []]})


@dataclass(frozen=True)
class FullRun:
    """What the study keeps of one full training: scored metrics, size, time (s) and weights."""

    status: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    reason: str = ""
    params: int | None = None
    gflops: float | None = None
    wall_time_s: float | None = None
    weights: str | None = None  # inside the study folder: final/weights/best.pt
    epochs: int | None = None
    gates: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None  # the epoch whose weights are best.pt (highest fitness); None in older studies
    best_score: float | None = None  # the score searched at that epoch, and at the last one
    last_score: float | None = None

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def fall(self) -> float | None:
        """How far the score searched fell from the best epoch to the last (>= 0), None when unknown."""
        if self.best_score is None or self.last_score is None:
            return None
        return max(0.0, self.best_score - self.last_score)

    def to_dict(self) -> dict:
        values = asdict(self)
        return {**values.pop("metrics"), **values}

    @classmethod
    def from_dict(cls, values: dict | None, metric_names: tuple[str, ...]) -> FullRun | None:
        if not values:
            return None
        return cls(**{**_known(cls, values), "metrics": {k: values.get(k) for k in metric_names}})


@dataclass(frozen=True)
class Decision:
    """The study's answer: the exported placement (trial ``trial``; the baseline when attention lost),
    the verdict in one sentence, the race behind it and the full retrainings of both sides."""

    trial: int
    placement: dict
    placement_str: str
    verdict: str = ""
    confirmation: Confirmation | None = None
    unconfirmed: bool = False  # chosen on one proxy run (--confirm-top 0), not raced
    final: FullRun | None = None
    baseline: FullRun | None = None

    @property
    def keeps_baseline(self) -> bool:
        return not self.placement.get("modules") and not self.placement.get("dropped")

    def to_dict(self) -> dict:
        values = asdict(self)
        values["confirmation"] = self.confirmation.to_dict() if self.confirmation else None
        for key in ("final", "baseline"):
            values[key] = getattr(self, key).to_dict() if getattr(self, key) else None
        return values

    @classmethod
    def from_dict(cls, values: dict, metric_names: tuple[str, ...]) -> Decision:
        found = values.get("confirmation")
        return cls(**{**_known(cls, values), "placement": values.get("placement") or {},
                      "confirmation": Confirmation.from_dict(found, metric_names) if found else None,
                      "unconfirmed": values.get("unconfirmed", "confirmation" in values and not found),
                      "final": FullRun.from_dict(values.get("final"), metric_names),
                      "baseline": FullRun.from_dict(values.get("baseline"), metric_names)})

    @classmethod
    def of_study(cls, study: optuna.Study, metric_names: tuple[str, ...]) -> Decision | None:
        """The decision ``study`` recorded, or None before its final step ran."""
        values = StudyView(study).decision
        return cls.from_dict(values, metric_names) if values else None

    def sentence(self, score: str, label: str) -> str:
        """The verdict; decisions recorded before it was stored get the full retrainings' `retraining_verdict`."""
        return self.verdict or retraining_verdict(self, score, label)

    def headline(self, label: str) -> str:
        """The decision in one line with its raced gain over the baseline (``label``: the score's name): what the
        progress bar's last line, the dashboard note's and report.md's first lines say, never a single run's lead."""
        chosen = f"trial {self.trial} ({self.placement_str})"
        found = self.confirmation
        if found is None:
            how = "chosen on one proxy run, not raced (--confirm-top 0)" if self.unconfirmed else "not raced"
            return f"Decided: {'the base model' if self.keeps_baseline else chosen}, {how}"
        tested = found.chosen if found.winner is not None else next((c for c in found.candidates if c.comparison), None)
        raced = raced_gain(tested.comparison, label) if tested is not None and tested.comparison else None
        if found.winner is not None:
            return f"Decided: {chosen}, raced gain over the baseline {raced}"
        best = f"; best raced, trial {tested.trial} ({tested.placement_str}): {raced}" if raced else ""
        return f"Decided: keep the base model, no placement beat it beyond noise{best}"


def raced_gain(comparison: dict, label: str) -> str:
    """``+0.0120 mAP50-95 [90% +0.0030, +0.0210], 6 seeds``: a race's mean gain (a `search.select.verdict.Comparison`'s
    fields) with its interval when it has one."""
    text = f"{comparison['difference']:+.4f} {label}"
    if comparison.get("low") is not None and comparison.get("high") is not None:
        level = f"{comparison['confidence']:.0%} " if comparison.get("confidence") else ""  # older studies lack it
        text += f" [{level}{comparison['low']:+.4f}, {comparison['high']:+.4f}]"
    seeds = comparison.get("n_pairs") or comparison.get("n_candidate")
    return text + (f", {seeds} seeds" if seeds else "")


def race_verdict(winner: str | None, leader: str | None, comparison_line: str | None, stopped: str) -> str:
    """The race's outcome in one sentence; ``winner`` and ``leader`` name a trial and its placement."""
    if winner is not None:
        return f"{winner} {comparison_line}"
    keep = "no placement beat the baseline beyond noise: keep the base model"
    if comparison_line is not None:
        return f"{keep} (best candidate, {leader}: {comparison_line})"
    return f"{keep} ({stopped})"


NOTHING_RACED = "no candidate besides the baseline completed: keep the base model"


def unconfirmed_verdict(trial: int, placement: str) -> str:
    """The verdict of a search without a race (--confirm-top 0)."""
    return (f"trial {trial} ({placement}) had the best single proxy run; not confirmed with more seeds "
            "(--confirm-top 0), so a difference to the baseline may be seed noise")


def retraining_verdict(decision: Decision, score: str, label: str) -> str:
    """One plain sentence from one full retraining per side (decisions recorded before the race)."""
    win, base = decision.final, decision.baseline
    who = f"trial {decision.trial} ({decision.placement_str})"
    for name, record in (("winner", win), ("baseline", base)):
        if record is None or not record.complete:
            reason = (record.reason if record else "") or "no reason recorded"
            return f"No verdict: the {name}'s full retraining did not complete ({reason})."
    if decision.keeps_baseline:
        return "Attention lost: no placement beat the un-modified base model in the search, so the baseline is kept."
    ours, theirs = win.metrics.get(score), base.metrics.get(score)
    if ours is None or theirs is None:
        return f"No verdict: {label} is missing from a full retraining."
    diff = ours - theirs
    scores = f"{ours:.4f} {label} against the baseline's {theirs:.4f}"
    if diff >= TIE:
        return f"Attention won: {who} reached {scores} after full retraining ({diff:+.4f})."
    if diff <= -TIE:
        return f"Attention lost: {who} reached {scores} after full retraining ({diff:+.4f}); keep the baseline."
    return f"Attention made no difference: {who} reached {scores} after full retraining, a tie; the baseline is as good."
