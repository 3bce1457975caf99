"""The extension point for running a search: an `Executor` asks Optuna for placements, trains them
and tells Optuna, until ``--trials`` trials count.

Every executor shares one trial loop (`search.study.loop.TrialLoop`: ask, prepare, report epochs, finish,
the stop rule), so baseline, infeasible, duplicate, pruned and failed trials are treated alike whichever
runs them; an executor only trains what the loop hands out. `EXECUTORS` is the registry: a new executor
is a subclass and one row, named there by module and class so that an executor's own dependencies
(Ray) load only when it is chosen.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search.config.run_config import RunConfig
    from search.study.start import StudyRun

EXECUTORS = {  # --executor name -> "module:class"
    "inprocess": "search.study.inprocess:InProcess",  # one trial at a time, in this process
    "ray": "search.study.ray_executor:RayTune",  # side by side on Ray Tune, on this machine or a cluster
}


class Executor(ABC):
    """Runs the trials of one study."""

    @abstractmethod
    def run(self, config: RunConfig, show_progress: bool = True) -> StudyRun:
        """Evaluate placements until ``config.trials`` trials count (or ``config.timeout`` passes);
        returns the run as `search.study.start.start_search` resolved it."""


def check_executor(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a registered executor."""
    if name not in EXECUTORS:
        raise ValueError(f"--executor '{name}' is not known; choose one of {', '.join(EXECUTORS)}")


def run_search(config: RunConfig, show_progress: bool = True) -> StudyRun:
    """Check ``config`` and run its search with the executor it names."""
    check_executor(config.executor)
    config.validate()
    module, _, name = EXECUTORS[config.executor].partition(":")
    executor: Executor = getattr(importlib.import_module(module), name)()
    return executor.run(config, show_progress)
