"""One worker's trial loop, shared by every executor: ask, check, hand out, tell, until the stop rule.

An executor (`search.study.executor`) only trains what `TrialLoop.next_trial` hands out, streams each epoch
back through `TrialLoop.report` and hands the `TrialRecord` to `TrialLoop.finish`; the loop decides
everything else, the same way for every executor:

- the stop rule (`TrialLoop.stop_reason`): ``--timeout`` passed, the baseline failed (every placement
  would), the sampler stalled, or the trials
  counted so far, those that other workers on the same storage hold and those this loop has handed out
  but not told reach ``--trials``;
- a placement that is infeasible or already trained is told at once (`search.study.trial_steps.prepare_trial`);
- once the baseline trains, the usual placements are queued (`search.study.trial_steps.queue_prior`), and with
  ``--intensify`` a leader's repeat seed before each ask (`search.study.trial_steps.queue_repeat`);
- a placement that this loop or another worker trains right now waits for it and is told its outcome
  (trained again only when that twin failed): two workers never wait for each other, the earlier
  trial trains.

The study is read once per step (`study.get_trials`), so a step costs the same whichever rule decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial, Trial

from search.study.attributes import TrialView
from search.study.records import STALL_LIMIT, count_trials, failed_baseline, finished_by_key, stalled
from search.study.start import StudyRun
from search.study.storage import ask, held_elsewhere, running_twin
from search.study.trial_steps import finish_trial, prepare_trial, queue_prior, queue_repeat, report_epoch, tell_duplicate
from trainers.interrupt import raise_if_pressed

if TYPE_CHECKING:
    from spaces import Placement
    from trainers.train import TrialRecord


@dataclass(frozen=True)
class Asked:
    """A trial this loop asked and handed out for training, with the placement it trains."""

    trial: Trial
    placement: Placement
    seed: int  # the training seed: the study's, or a repeat seed of the intensification (`search.select.intensify`)

    @property
    def number(self) -> int:
        return self.trial.number


class TrialLoop:
    """The trials of one worker: `next_trial` to train, `report` per epoch, `finish` with the record."""

    def __init__(self, run: StudyRun, on_told: Callable[[], None] = lambda: None):
        self.run = run
        self.on_told = on_told  # called after each tell (a progress bar)
        self.handed_out: dict[int, Asked] = {}  # trial number -> trial in training
        self.ready: list[Asked] = []  # asked, to train next (their twin failed)
        self.waiting: dict[str, list[Asked]] = {}  # placement key -> asked twins of a trial in training
        self.deadline = None if run.config.timeout is None else time.monotonic() + run.config.timeout
        self.stopped = ""  # why the loop stopped asking, once it did

    @property
    def outstanding(self) -> int:
        """Asked trials not told yet: each will count towards ``--trials`` when it ends."""
        return len(self.handed_out) + len(self.ready) + sum(len(w) for w in self.waiting.values())

    def stop_reason(self, trials: list[FrozenTrial]) -> str | None:
        """Why no more trials may be asked now ("" when the count is reached: the normal end), or None
        while they may (the module doc)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return f"--timeout {self.run.config.timeout:g} s passed"
        if failed_baseline(trials):
            return "the baseline failed"
        if stalled(trials):
            return f"the last {STALL_LIMIT} proposals were all evaluated already or outside the space"
        if count_trials(trials) + len(held_elsewhere(trials)) + self.outstanding >= self.run.config.trials:
            return ""  # the count is reached: the normal end, nothing to say
        return None

    def next_trial(self) -> Asked | None:
        """The next trial to train, or None when none may be asked now (`stopped` says why, `waiting`
        whether twins still wait for a trial in training)."""
        raise_if_pressed()  # a Ctrl-C that a garbage-collector callback swallowed stops the loop too
        study, config = self.run.study, self.run.config
        trials = study.get_trials(deepcopy=False)
        self._release(trials)
        while not self.ready:
            reason = self.stop_reason(trials)
            if reason is not None:
                self.stopped = reason
                return None
            if config.prior:
                queue_prior(study, config, self.run.space)
            if config.intensify:
                queue_repeat(study, config, self.run.space)
            trial = ask(study, config)
            placement = prepare_trial(trial, study, self.run.space, trials)
            if placement is not None and self.run.latency and not self.run.latency.admit(trial, placement):
                placement = None  # over the latency limit: told infeasible, never trained
            trials = study.get_trials(deepcopy=False)
            if placement is None:  # infeasible or already trained: told without training
                self.on_told()
            elif TrialView(trial).repeat_seed is None and (placement.key in self._keys_in_training()
                                                           or running_twin(trials, placement.key, trial.number)):
                self.waiting.setdefault(placement.key, []).append(Asked(trial, placement, config.seed))
            else:  # a repeat seed never waits: its twins train other seeds
                seed = TrialView(trial).repeat_seed
                self.ready.append(Asked(trial, placement, config.seed if seed is None else seed))
        asked = self.ready.pop(0)
        self.handed_out[asked.number] = asked
        return asked

    def report(self, asked: Asked, epoch: int, metrics: dict) -> bool:
        """Give Optuna one epoch of ``asked``; True when its pruner says stop."""
        return report_epoch(asked.trial, epoch, metrics, self.run.config)

    def finish(self, asked: Asked, record: TrialRecord) -> None:
        """Record ``asked``'s training, tell Optuna, and tell the twins that waited for it."""
        self.handed_out.pop(asked.number, None)
        finish_trial(asked.trial, self.run, record)
        self.on_told()
        if self.waiting:  # the study is read again only when twins wait for a trial
            self._release(self.run.study.get_trials(deepcopy=False))

    def abandon(self, asked: Asked) -> None:
        """Forget ``asked`` untold (its training was stopped from outside): it stays RUNNING, and the
        next search on the study queues it again (`search.study.storage.recover_dead_trials`)."""
        self.handed_out.pop(asked.number, None)

    def _keys_in_training(self) -> set[str]:
        """Placements trained now on the study's seed (a repeat seed is no twin of them)."""
        return {a.placement.key for a in (*self.handed_out.values(), *self.ready) if TrialView(a.trial).repeat_seed is None}

    def _release(self, trials: list[FrozenTrial]) -> None:
        """Tell waiting twins whose trial in training has finished its outcome; when that trial failed, the
        first twin trains next and the others wait for it."""
        training = self._keys_in_training()
        finished = finished_by_key(trials)
        for key in [k for k in self.waiting if k not in training]:
            twins = self.waiting[key]
            if running_twin(trials, key, twins[0].number) is not None:
                continue  # another worker still trains it
            del self.waiting[key]
            if key in finished:
                for asked in twins:
                    tell_duplicate(asked.trial, self.run.study, finished[key])
                    self.on_told()
                continue
            self.ready.append(twins.pop(0))
            if twins:
                self.waiting[key] = twins
