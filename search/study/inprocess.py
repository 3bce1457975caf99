"""The default executor: one trial at a time, in this process (`search.study.executor`)."""

from __future__ import annotations

import shutil
import time

from search.config.run_config import RunConfig
from search.study.executor import Executor
from search.study.loop import TrialLoop
from search.study.progress import Progress
from search.study.screen import evaluator
from search.study.start import StudyRun, start_search
from search.study.trial_steps import trial_dir

TWIN_POLL_S = 5  # how often a worker looks whether another worker finished the placement it waits for


class InProcess(Executor):
    """Evaluates each trial the loop hands out here and now (`search.study.loop.TrialLoop`; `search.study.screen`)."""

    def run(self, config: RunConfig, show_progress: bool = True) -> StudyRun:
        run = start_search(config)
        evaluate = evaluator(run)  # trains each trial, or scores it on the study's supernet (trained here first if need be)
        with Progress(run.study, config.trials, run.task, enabled=show_progress) as progress:
            loop = TrialLoop(run, on_told=progress.update)
            while True:
                asked = loop.next_trial()
                if asked is None and loop.waiting:  # another worker trains the placement asked here
                    time.sleep(TWIN_POLL_S)
                    continue
                if asked is None:
                    break
                progress.start_trial(asked.number, asked.placement)

                def report(epoch: int, metrics: dict) -> bool:
                    progress.epoch(epoch, config.proxy_epochs, metrics)
                    return loop.report(asked, epoch, metrics)  # noqa: B023 (called before the next trial)

                workdir = trial_dir(config, asked.number)
                shutil.rmtree(workdir, ignore_errors=True)  # a retried trial starts clean
                loop.finish(asked, evaluate(asked.placement, asked.seed, workdir, report))  # asked.seed: a repeat's, or the study's
        if loop.stopped:
            print(f"stopping early: {loop.stopped}")
        return run
