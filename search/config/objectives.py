"""What a search optimises: the task's score first (maximised), then, for a Pareto search, one
second objective from `OBJECTIVES`, one registry row each (``--objective map+<name>``).

An `Objective` says how it is measured on a training's record, its direction, and how the report and
the dashboard name and print it. A new objective is one row here plus its tests: the study's
directions, the trial's values, the metric names in the dashboard, the report's front and the option
check read it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search.study.attributes import TrialView
    from trainers.train import TrialRecord

SCORE = "map"  # --objective's name for the task's own score (mAP50-95 for detection)


@dataclass(frozen=True)
class Objective:
    """A second objective of a Pareto search (module doc)."""

    name: str  # in --objective map+<name>
    label: str  # how the report and the dashboard name it
    direction: str  # "minimize" or "maximize"
    digits: int  # decimals the report prints
    measure: Callable[[TrialRecord, TrialView], float]  # its value for one training and what its trial keeps


OBJECTIVES = {
    "params": Objective("params", "parameters", "minimize", 0, lambda record, trial: record.params),
    "gflops": Objective("gflops", "GFLOPs", "minimize", 2, lambda record, trial: record.gflops),
    # measured before training (search.study.latency_probe), as a ratio to the baseline's time on this machine
    "latency": Objective("latency", "latency (x baseline)", "minimize", 3, lambda record, trial: trial.latency_ratio),
}

CHOICES = (SCORE, *(f"{SCORE}+{name}" for name in OBJECTIVES))  # the values --objective takes


def second_objective(objective: str) -> Objective | None:
    """The second objective that ``--objective`` names (None for the score alone); ``ValueError`` in
    one line for a name that is not known."""
    if objective not in CHOICES:
        raise ValueError(f"--objective '{objective}' is not known; choose one of {', '.join(CHOICES)}")
    _, _, name = objective.partition("+")
    return OBJECTIVES[name] if name else None


def directions(objective: str) -> list[str]:
    """Optuna's directions for ``--objective``: the score up, then the second objective's way."""
    second = second_objective(objective)
    return ["maximize"] + ([second.direction] if second else [])
