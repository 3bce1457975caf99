"""Intensification: more seeds for the search's leaders while it runs, so contenders are chosen on means.

One proxy run ranks placements barely better than chance, and the best of many single runs is the
luckiest, not the best (results/benchmarks/selection_power.md). So, as SMAC's intensifier and irace's
racing do, the search spends part of its trials on repeat seeds: after every run, the ``leaders`` best
placements (`ranking`) that have fewer than ``seeds`` runs get the next one, ``first_seed + 1``,
``first_seed + 2``, ..., and the baseline gets every seed a leader has first, so that every comparison
is seed for seed (common random numbers: the shared part of a seed's noise cancels). A placement that
a lucky first run put on top gets a second seed, falls back when it was luck, and leaves the leaders;
one that stays ahead has its lead confirmed on several seeds before the race.

The ranking is each placement's mean gain over the baseline on the seeds both ran (`paired_gain`).
Only completed runs count; a repeat that failed is not tried again (``tried``). The functions are pure,
over plain scores, so the simulator (results/benchmarks/selection_power.py) runs the same rule as the
search (`search.study.loop`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

Scores = Mapping[str, Mapping[int, float]]  # placement key -> seed -> score of a completed run


def paired_gain(scores: Scores, key: str, baseline: str) -> tuple[float | None, int]:
    """Mean of ``key``'s score minus the baseline's over the seeds both completed, and how many seeds
    that is (None, 0 without one)."""
    mine, theirs = scores.get(key, {}), scores.get(baseline, {})
    shared = [s for s in mine if s in theirs]
    if not shared:
        return None, 0
    return sum(mine[s] - theirs[s] for s in shared) / len(shared), len(shared)


def ranking(scores: Scores, baseline: str) -> list[str]:
    """Placements other than the baseline with a paired gain, best first (ties: more seeds, then the
    order of ``scores``)."""
    gains = {key: paired_gain(scores, key, baseline) for key in scores if key != baseline}
    ranked = [key for key, (gain, _) in gains.items() if gain is not None]
    return sorted(ranked, key=lambda key: (-gains[key][0], -gains[key][1]))


def next_repeat(scores: Scores, baseline: str, leaders: int, seeds: int, first_seed: int,
                tried: Collection[tuple[str, int]] = ()) -> tuple[str, int] | None:
    """The next (placement key, seed) to run for the intensification, or None when every leader has its
    ``seeds`` seeds (or is running them). ``tried`` holds the (key, seed) runs started already: running,
    queued or failed. A leader's missing seed goes to the baseline first when the baseline lacks it."""
    if leaders < 1 or seeds < 2 or baseline not in scores:
        return None
    for key in ranking(scores, baseline)[:leaders]:
        for seed in range(first_seed + 1, first_seed + seeds):
            for runner in (baseline, key):
                if seed not in scores[runner] and (runner, seed) not in tried:
                    return runner, seed
    return None
