"""The default executor: one trial at a time, in this process (`search.executor`)."""

from __future__ import annotations

import shutil
import time

from optuna.trial import Trial

from search.config import RunConfig
from search.executor import Executor
from search.progress import Progress
from search.study import STALL_LIMIT, ask, count_trials, finished_by_key, held_elsewhere, running_twin, stalled
from search.trials import StudyRun, finish_trial, prepare_trial, report_epoch, start_search, tell_duplicate, trial_dir
from trainers.interrupt import raise_if_pressed
from trainers.train import train_candidate

TWIN_POLL_S = 5  # how often a worker looks whether another worker finished the placement it waits for


class InProcess(Executor):
    """Ask, train, tell, repeat; other workers on the same storage share the count (`held_elsewhere`)."""

    def run(self, config: RunConfig, show_progress: bool = True) -> StudyRun:
        run = start_search(config)
        study = run.study
        start = time.monotonic()
        with Progress(study, config.trials, enabled=show_progress) as progress:
            while count_trials(study) + len(held_elsewhere(study)) < config.trials:  # other workers' trials will count
                raise_if_pressed()
                if config.timeout is not None and time.monotonic() - start > config.timeout:
                    break
                if stalled(study):
                    print(f"stopping early: the last {STALL_LIMIT} proposals were all evaluated already or outside the space")
                    break
                trial = ask(study, config)
                evaluate(trial, run, progress)
                progress.update()
        return run


def evaluate(trial: Trial, run: StudyRun, progress: Progress) -> None:
    """Train one asked trial (or reuse an identical finished one) and tell Optuna the outcome."""
    study, config = run.study, run.config
    placement = prepare_trial(trial, study, run.space)
    if placement is None:
        return
    while running_twin(study, placement.key, trial.number) is not None:  # another worker trains it now
        time.sleep(TWIN_POLL_S)
    twin = finished_by_key(study).get(placement.key)
    if twin is not None:
        tell_duplicate(trial, study, twin)
        return
    progress.start_trial(trial.number, placement)

    def report(epoch: int, metrics: dict) -> bool:
        progress.epoch(epoch, config.proxy_epochs, metrics)
        return report_epoch(trial, epoch, metrics, config)

    workdir = trial_dir(config, trial.number)
    shutil.rmtree(workdir, ignore_errors=True)  # a retried trial starts clean
    record = train_candidate(placement, run.base, run.proxy, config.proxy_budget, workdir, report, config.weights, config.insertion)
    finish_trial(trial, study, record, config)
