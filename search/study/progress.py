"""Progress bars: one for the study (trials done, pruned, failed, the best single run against the
baseline's, elapsed and remaining time) and one for the trial in training (epochs, current score); one for
the seed confirmation (runs of the budget, the run in training, the running verdict); one for the full
trainings after it (epochs, score, time left), whose last line is the decision, also shown in the study's
note on optuna-dashboard while they run (`progress_note`). optuna-dashboard, an optional extra, is imported there."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from search.study.attributes import TrialView
from search.study.records import count_trials, first_baseline, rank_key
from spaces import Placement

if TYPE_CHECKING:
    from search.select.racing import Race
    from spaces.tasks import Task


class Progress:
    """Context manager around two tqdm bars; silent when ``enabled`` is False."""

    def __init__(self, study: optuna.Study, total: int, task: Task, enabled: bool = True):
        self.study, self.total, self.task, self.enabled = study, total, task, enabled
        self.bar: tqdm | None = None
        self.trial_bar: tqdm | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            done = count_trials(self.study.get_trials(deepcopy=False))  # a resume's rate counts only its own trials
            self.bar = tqdm(total=self.total, initial=done, desc="study", unit="trial", position=0)
            self.update()
        return self

    def __exit__(self, *exc) -> None:
        for bar in (self.trial_bar, self.bar):
            if bar is not None:
                bar.close()

    def start_trial(self, number: int, placement: Placement) -> None:
        """A new trial starts training."""
        if not self.enabled:
            return
        if self.trial_bar is not None:
            self.trial_bar.close()
        self.trial_bar = tqdm(desc=f"trial {number}: {placement}"[:70], unit="epoch", position=1, leave=False)

    def epoch(self, epoch: int, epochs: int, metrics: dict) -> None:
        """The trial in training finished ``epoch`` of ``epochs``."""
        if self.trial_bar is None:
            return
        self.trial_bar.total = epochs
        self.trial_bar.n = epoch
        self.trial_bar.set_postfix_str(f"{self.task.score_label} {metrics[self.task.score]:.4f}")

    def update(self) -> None:
        """Refresh the study bar from storage."""
        if self.bar is None:
            return
        trials = self.study.get_trials(deepcopy=False)  # read once per refresh
        states = [t.state for t in trials if not TrialView(t).infeasible]
        base, ranked = first_baseline(trials), sorted((t for t in trials if t.state == TrialState.COMPLETE), key=rank_key)
        text = f"done {states.count(TrialState.COMPLETE)}, pruned {states.count(TrialState.PRUNED)}, failed {states.count(TrialState.FAIL)}"
        if ranked:  # one run each: a lead here is often seed noise, which the race after the search checks
            best = ranked[0].values[0]
            text += f", best single run {self.task.score_label} {best:.4f}"
            if base is not None and base.state == TrialState.COMPLETE:
                text += f" ({best - base.values[0]:+.4f} vs the baseline's run)"
        self.bar.n = count_trials(trials)
        self.bar.set_postfix_str(text)


class RaceProgress:
    """One tqdm bar for the seed confirmation (`search.select.racing`): proxy runs spent of the budget, the
    run in training (candidate, round, seed) and the running verdict; silent when ``enabled`` is False.

    ``labels`` names each placement key as the bar shows it (``trial 12``).
    """

    def __init__(self, budget: int, labels: dict[str, str], enabled: bool = True):
        self.labels, self.enabled = labels, enabled
        self.bar: tqdm | None = None
        self.budget, self.state = budget, ""

    def __enter__(self) -> RaceProgress:
        if self.enabled:
            self.bar = tqdm(total=self.budget, desc="confirm", unit="run", position=0)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def start_run(self, key: str, seed: int, round_number: int) -> None:
        """A proxy run of placement ``key`` with ``seed`` (round ``round_number``) starts."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"round {round_number}, seed {seed}: {self.labels[key]}; {self.state}"[:120])

    def round(self, race: Race) -> None:
        """A round ended (``race`` is the `search.select.racing.Race` so far): show the runs and the verdict so far."""
        if self.bar is None:
            return
        self.bar.n = race.runs
        self.state = race_state(race, self.labels)
        self.bar.set_postfix_str(self.state[:120])


def race_state(race: Race, labels: dict[str, str]) -> str:
    """The running verdict of a race in a few words: who leads by how much, or how it ended."""
    if race.stopped:
        return race.stopped
    if race.leader is None:
        return f"{len(race.alive)} of {len(race.contenders)} contenders in"
    testing = race.test_rounds > 0
    leader, base = race.scores(race.leader, testing), race.scores(race.baseline, testing)
    pairs = [(a, b) for a, b in zip(leader, base) if a is not None and b is not None]
    lead = f"{labels[race.leader]} {sum(a - b for a, b in pairs) / len(pairs):+.4f} vs baseline" if pairs else labels[race.leader]
    stage = "testing" if testing else f"{len(race.alive)} of {len(race.contenders)} in, leading"
    found = race.comparison
    interval = f", last look [{found.low:+.4f}, {found.high:+.4f}]" if found is not None and found.low is not None else ""
    return f"{stage}: {lead}{interval}"


class FinalProgress:
    """One tqdm bar for the full trainings after the race (`search.final.training`): epochs done of all of them, the run
    in training with its last score and the time left, the same line handed to ``note`` (the dashboard's note,
    or None); `done` leaves the decision as its last line. Silent on the console when ``enabled`` is False."""

    def __init__(self, runs: int, epochs: int, task: Task, enabled: bool = True, note: Callable[[str], None] | None = None):
        self.epochs, self.task, self.enabled, self.note = epochs, task, enabled, note
        self.total, self.done_epochs, self.offset, self.name = runs * epochs, 0, 0, ""
        self.trained = 0  # epochs trained by this process (a run found finished on disk costs none)
        self.bar: tqdm | None = None
        self.start_s = time.monotonic()

    def __enter__(self) -> FinalProgress:
        if self.enabled:
            self.bar = tqdm(total=self.total, desc="final", unit="epoch", position=0)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def start(self, name: str) -> None:
        """The full training of ``name`` (e.g. ``trial 6 (SE at backbone.6)``) starts."""
        self.name, self.offset = name, self.done_epochs
        self._show(f"{name}: starting")

    def report(self, epoch: int, metrics: dict) -> bool:
        """`trainers.train.Report`: ``epoch`` of the run in training ended; never asks it to stop."""
        self.done_epochs, self.trained = self.offset + epoch, self.trained + 1
        score = metrics.get(self.task.score)
        scored = f", {self.task.score_label} {score:.4f}" if score is not None else ""
        self._show(f"{self.name}: epoch {epoch}/{self.epochs}{scored}, {self.time_left()}")
        return False

    def finish_run(self) -> None:
        """The run in training ended (or was found finished on disk, or stopped early by Ultralytics' patience)."""
        self.done_epochs = self.offset + self.epochs
        self._show(f"{self.name}: done")

    def done(self, line: str) -> None:
        """Leave ``line`` (the decision) as the bar's last line and the note's."""
        self._show(line)

    def time_left(self) -> str:
        """``about 4 min left`` at the pace of the epochs trained so far (of this bar's life)."""
        if not self.trained:
            return "time left unknown"
        seconds = (time.monotonic() - self.start_s) / self.trained * (self.total - self.done_epochs)
        return f"about {seconds / 60:.0f} min left" if seconds >= 90 else f"about {seconds:.0f} s left"

    def _show(self, line: str) -> None:
        if self.bar is not None:
            self.bar.n = self.done_epochs
            self.bar.set_postfix_str(line[:160])
        if self.note is not None:
            self.note(line)


def progress_note(study: optuna.Study):
    """A function that puts one line of the full trainings' progress into the study's note (so the dashboard shows it
    while they run; `publish_outcome` replaces it), or None without optuna-dashboard."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return None
    return lambda line: save_note(study, f"## Full training in progress\n\n{line}")
