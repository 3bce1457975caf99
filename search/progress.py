"""Progress bars: one for the study (trials done, pruned, failed, best against baseline, elapsed and
remaining time) and one for the trial in training (epochs, current mAP50-95)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from spaces import Placement


class Progress:
    """Context manager around two tqdm bars; silent when ``enabled`` is False."""

    def __init__(self, study: optuna.Study, total: int, enabled: bool = True):
        self.study, self.total, self.enabled = study, total, enabled
        self.bar: tqdm | None = None
        self.trial_bar: tqdm | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from search.study import count_trials

            self.bar = tqdm(total=self.total, initial=count_trials(self.study), desc="study", unit="trial", position=0)
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
        self.trial_bar.set_postfix_str(f"mAP50-95 {metrics['map50_95']:.4f}")

    def update(self) -> None:
        """Refresh the study bar from storage."""
        if self.bar is None:
            return
        from search.study import baseline_trial, count_trials, scored_trials

        trials = self.study.get_trials(deepcopy=False)
        states = [t.state for t in trials if not t.user_attrs.get("infeasible")]
        base, ranked = baseline_trial(self.study), scored_trials(self.study)
        text = f"done {states.count(TrialState.COMPLETE)}, pruned {states.count(TrialState.PRUNED)}, failed {states.count(TrialState.FAIL)}"
        if ranked:
            best = ranked[0].values[0]
            text += f", best mAP50-95 {best:.4f}"
            if base is not None and base.state == TrialState.COMPLETE:
                text += f" ({best - base.values[0]:+.4f} vs baseline)"
        self.bar.n = count_trials(self.study)
        self.bar.set_postfix_str(text)
