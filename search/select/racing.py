"""Racing confirmation: contenders re-trained on fresh seeds in rounds, clear losers dropped, and the
leader tested against the baseline on seeds it was not selected on.

One proxy run ranks placements barely better than chance, and the best of K single runs is biased
upwards (the winner's curse; results/benchmarks/selection_power.md). So the search's own runs only
choose who enters the race, and every score here comes from fresh seeds: round r trains the
baseline and every contender still in with the same seed ``first_seed + r - 1`` (common random
numbers: a seed fixes data order and augmentation, so same-seed scores correlate and the paired
comparison of `search.select.verdict.compare` is less noisy). A race has two stages:

1. Selection (only with several contenders): `SELECTION_ROUNDS` rounds of every contender and the
   baseline, fewer when the budget would leave the test less than `MIN_PAIRS` rounds. After each
   round from the second on, a contender is dropped when it is clearly behind the leader (the arm
   with the highest mean, the baseline included): the two-sided `DROP_CONFIDENCE` interval of its
   difference to the leader lies below 0. The contender left with the highest mean is the leader;
   with every contender dropped, the race ends without a winner.
2. Test: further rounds of the leader and the baseline only, as many as the budget allows. Their
   scores are independent of the selection, so picking the leader among K needs no correction for
   multiplicity (Holm over K would); looking more than once does. The test looks halfway (from
   `MIN_PAIRS` rounds on) and at the end, each look at the one-sided level ``alpha / looks``
   (Bonferroni), so the whole procedure, search included, declares a false "improves" with
   probability at most ``alpha``. The leader wins at a look where the interval of its difference at
   confidence ``1 - 2 alpha / looks`` lies above 0, and loses after any round where it is clearly
   behind the baseline (the dropping rule above). The test pairs same-seed scores when the
   correlation measured on the selection rounds is positive (decided on data the test does not use,
   so the choice cannot favour a smaller variance estimate).

The race stops as soon as the verdict is settled or the budget (proxy runs, the baseline's and
failed ones included) is spent; an arm whose runs failed `MAX_FAILED` times leaves it (the baseline:
the race ends without a verdict). It takes a ``run(placement_key, seed) -> score or None`` callable
(None: the run failed), so simulated scores can drive it; `search.final.confirm` wires it to cached
trainings, so a race replayed after a kill makes the same decisions without training again.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from search.select.power import (
    RELIABLE_PAIRS,
    SD_BOUND,
    fewest_seeds,
    paired_detectable,
    paired_power,
    sd_upper_bound,
    seed_noise,
    welch_detectable,
    welch_power,
)
from search.select.verdict import MIN_PAIRS, PAIRED, WELCH, Comparison, beats_baseline, compare

ALPHA = 0.05  # one-sided: the highest rate of a false "improves" over the whole procedure
SELECTION_ROUNDS = 2  # a third round cost the test more rounds than it gained (simulated with selection_power.py)
DROP_CONFIDENCE = 0.8  # an arm whose 80% interval against the leader lies below 0 is dropped
MAX_FAILED = 2  # failed runs after which an arm leaves the race
TARGET_EFFECT = 0.01  # mAP50-95 gain the report says the seeds needed for

Run = Callable[[str, int], "float | None"]


@dataclass(frozen=True)
class Round:
    """One seed's runs: ``scores`` maps each placement key trained with ``seed`` to its score (None:
    the run failed); ``test`` is True for a round of the test stage."""

    seed: int
    test: bool
    scores: dict[str, float | None]


@dataclass(frozen=True)
class Drop:
    """Why a contender left the race: after round ``round``, clearly behind ``behind`` (a placement
    key), or ``behind`` None when its runs failed."""

    round: int
    behind: str | None


@dataclass(frozen=True)
class Race:
    """A race so far or finished (``stopped`` says why it ended; empty while it runs).

    ``leader`` is the contender with the highest mean during selection, then the one tested;
    ``winner`` the leader once it passed the test. ``comparison`` is the leader against the baseline
    on the test rounds, with the interval at the per-look confidence ``1 - 2 level``; ``test_rounds``
    the most test rounds the budget allows; ``runs`` the proxy runs spent.
    """

    baseline: str
    contenders: tuple[str, ...]
    budget: int
    alpha: float
    rounds: tuple[Round, ...] = ()
    dropped: dict[str, Drop] = field(default_factory=dict)
    leader: str | None = None
    winner: str | None = None
    comparison: Comparison | None = None
    test_rounds: int = 0
    level: float = 0.0
    stopped: str = ""

    @property
    def runs(self) -> int:
        """Proxy runs spent, failed ones included."""
        return sum(len(r.scores) for r in self.rounds)

    @property
    def alive(self) -> tuple[str, ...]:
        """Contenders not dropped (after selection: the leader, unless it lost)."""
        return tuple(c for c in self.contenders if c not in self.dropped)

    def scores(self, key: str, test: bool | None = None) -> list[float | None]:
        """One entry per round (of the stage ``test`` picks; None: both): the score of ``key``, None
        where it failed or did not run."""
        return [r.scores.get(key) for r in self.rounds if test is None or r.test == test]

    def noise(self) -> tuple[float | None, float | None]:
        """Seed sd and same-seed correlation measured over every arm and round (`seed_noise`)."""
        return seed_noise({key: self.scores(key) for key in (self.baseline, *self.contenders)})

    def measured(self) -> dict | None:
        """The spread the test faces, as this race measured it: on the test rounds, the same-seed
        differences of the tested leader and the baseline (a paired test), or the two sides' scores
        (Welch's t, when the test does not pair: `_pairing`); before the test has two of them (a race
        ended or still in selection), every contender against the baseline on every round, pooled.

        Keys: ``test`` (`PAIRED` or `WELCH`), ``measured_on`` ("test rounds" or "all rounds"),
        ``pairs`` (same-seed pairs; Welch's: the fewer runs of a side), ``difference_sd`` (the sd of
        one same-seed difference; Welch's: of a difference of two independent runs, from the sides'
        ``candidate_sd`` and ``baseline_sd``), ``difference_df`` (its degrees of freedom; Welch's:
        Welch-Satterthwaite's), ``difference_sd_upper`` (its one-sided upper bound at confidence
        ``sd_bound``: `search.select.power.sd_upper_bound`) and ``few_pairs`` (fewer than `RELIABLE_PAIRS`
        pairs: the report says the race can only see large gains). None without two pairs (two runs
        a side)."""
        paired = _pairing(self)
        tested = [r for r in self.rounds if r.test]
        for rounds, arms, where in ((tested, (self.leader,), "test rounds"), (self.rounds, self.contenders, "all rounds")):
            if any(arm is None for arm in arms):
                continue
            found = (_paired_spread if paired else _welch_spread)(rounds, arms, self.baseline)
            if found is not None:
                upper = sd_upper_bound(found["difference_sd"], found["difference_df"], SD_BOUND)
                few = found["pairs"] < RELIABLE_PAIRS
                return {"test": PAIRED if paired else WELCH, "measured_on": where, **found, "difference_sd_upper": upper,
                        "sd_bound": SD_BOUND, "few_pairs": few}
        return None

    def resolution(self, effect: float = TARGET_EFFECT) -> dict | None:
        """What this budget resolves at the spread the race measured (`measured`, whose keys it adds),
        never at a same-seed correlation estimated on a few pairs: ``detectable``, the smallest gain
        its test finds with 80% power; ``power``, the chance that its last look finds ``effect`` (a
        lower bound: the halfway look can only add); ``detectable_upper``, ``detectable`` at the sd's
        upper bound; ``seeds_needed``, the test rounds (seeds per side) that would find ``effect``,
        with ``budget_needed``, the budget giving them after this race's selection. ``sd`` and
        ``correlation`` are the seed sd and same-seed correlation over every arm and round (`noise`;
        shown, not used). None without a measured spread."""
        measured = self.measured()
        selection = sum(len(r.scores) for r in self.rounds if not r.test)
        planned = (self.budget - selection) // 2
        if measured is None or planned < 2:
            return None
        if measured["test"] == PAIRED:
            sd = measured["difference_sd"]
            detectable = lambda n, level: paired_detectable(sd, n, level)  # noqa: E731
            power = paired_power(effect, sd, planned, look_level(self.alpha, planned))
        else:
            sds = measured["candidate_sd"], measured["baseline_sd"]
            detectable = lambda n, level: welch_detectable(*sds, n, level)  # noqa: E731
            power = welch_power(effect, *sds, planned, look_level(self.alpha, planned))
        found = detectable(planned, look_level(self.alpha, planned))
        scale = measured["difference_sd_upper"] / measured["difference_sd"] if measured["difference_sd"] > 0 else 1.0
        needed = fewest_seeds(effect, lambda n: detectable(n, look_level(self.alpha, n)), least=MIN_PAIRS)
        seed_sd, correlation = self.noise()
        return {"sd": seed_sd, "correlation": correlation, "effect": effect, "test_rounds": planned, "detectable": found,
                "power": power, "seeds_needed": needed, "budget_needed": None if needed is None else selection + 2 * needed,
                **measured, "detectable_upper": found * scale}


def _pooled(groups: Sequence[Sequence[float]]) -> tuple[float | None, int]:
    """The sd pooled over ``groups`` (each around its own mean) and its degrees of freedom."""
    groups = [g for g in groups if len(g) > 1]
    df = sum(len(g) - 1 for g in groups)
    if not df:
        return None, 0
    return math.sqrt(sum(sum((x - statistics.fmean(g)) ** 2 for x in g) for g in groups) / df), df


def _paired_spread(rounds: Sequence[Round], arms: Sequence[str], baseline: str) -> dict | None:
    """`Race.measured`'s figures of a paired test: the sd of same-seed differences of ``arms`` to ``baseline``."""
    groups = [[r.scores[a] - r.scores[baseline] for r in rounds
               if r.scores.get(a) is not None and r.scores.get(baseline) is not None] for a in arms]
    sd, df = _pooled(groups)
    if sd is None:
        return None
    return {"pairs": sum(len(g) for g in groups if len(g) > 1), "difference_sd": sd, "difference_df": df}


def _welch_spread(rounds: Sequence[Round], arms: Sequence[str], baseline: str) -> dict | None:
    """`Race.measured`'s figures of Welch's test: each side's sd (the arms' pooled) and their sum's."""
    sides = [[[r.scores[a] for r in rounds if r.scores.get(a) is not None] for a in group] for group in (arms, [baseline])]
    (candidate, df_c), (base, df_b) = (_pooled(groups) for groups in sides)
    if candidate is None or base is None:
        return None
    runs = [sum(len(g) for g in groups if len(g) > 1) for groups in sides]
    variance = candidate**2 + base**2
    df = variance**2 / (candidate**4 / df_c + base**4 / df_b) if variance > 0 else df_c + df_b
    return {"pairs": min(runs), "difference_sd": math.sqrt(variance), "difference_df": df, "candidate_sd": candidate,
            "baseline_sd": base}


def looks(test_rounds: int) -> tuple[int, ...]:
    """The test rounds after which a test of at most ``test_rounds`` rounds looks: halfway (from
    `MIN_PAIRS` rounds on) and at the end."""
    halfway = max(MIN_PAIRS, -(-test_rounds // 2))
    return tuple(sorted({min(halfway, test_rounds), test_rounds}))


def look_level(alpha: float, test_rounds: int) -> float:
    """One-sided level of each look of a test of at most ``test_rounds`` rounds (Bonferroni)."""
    return alpha / len(looks(test_rounds))


def minimal_budget(contenders: int) -> int:
    """Fewest runs a race of ``contenders`` can decide with: `SELECTION_ROUNDS` rounds when there
    are several, then `MIN_PAIRS` test rounds of the leader and the baseline."""
    return (SELECTION_ROUNDS * (contenders + 1) if contenders > 1 else 0) + 2 * MIN_PAIRS


def _check(contenders: tuple[str, ...], baseline: str, budget: int, alpha: float) -> None:
    if not contenders:
        raise ValueError("a race needs at least one contender besides the baseline")
    if len(set(contenders)) != len(contenders) or baseline in contenders:
        raise ValueError(f"contenders must be distinct and differ from the baseline, got {list(contenders)} and {baseline!r}")
    if budget < minimal_budget(len(contenders)):
        raise ValueError(f"a confirmation budget of {budget} runs cannot decide among {len(contenders)} contenders; "
                         f"give at least {minimal_budget(len(contenders))}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")


def _mean(scores: list[float | None]) -> float:
    done = [s for s in scores if s is not None]
    return sum(done) / len(done) if done else float("-inf")


def _behind(race: Race, key: str, other: str, test: bool) -> bool:
    """Whether ``key`` is clearly behind ``other`` on the rounds of one stage (`DROP_CONFIDENCE`)."""
    mine, theirs = race.scores(key, test), race.scores(other, test)
    pairs = [(a, b) for a, b in zip(mine, theirs) if a is not None or b is not None]
    if not all(any(p[i] is not None for p in pairs) for i in (0, 1)):
        return False
    found = compare([a for a, _ in pairs], [b for _, b in pairs], DROP_CONFIDENCE, paired=True)
    return found.high is not None and found.high < 0


class _Racer:
    """The mutable state of one race; `Race` snapshots of it go to the caller."""

    def __init__(self, contenders: tuple[str, ...], baseline: str, run: Run, budget: int, first_seed: int,
                 alpha: float, on_round: Callable[[Race], None] | None) -> None:
        self.race = Race(baseline, contenders, budget, alpha)
        self.run, self.first_seed, self.on_round = run, first_seed, on_round

    def update(self, **changes) -> None:
        self.race = replace(self.race, **changes)

    def play(self, arms: Sequence[str], test: bool) -> bool:
        """Train the baseline and ``arms`` with the next seed; False when the baseline failed too often."""
        seed = self.first_seed + len(self.race.rounds)
        scores = {key: self.run(key, seed) for key in (self.race.baseline, *arms)}
        self.update(rounds=(*self.race.rounds, Round(seed, test, scores)))
        dropped = dict(self.race.dropped)
        for key in arms:
            if self._failed(key) >= MAX_FAILED:
                dropped[key] = Drop(len(self.race.rounds), None)
        self.update(dropped=dropped)
        return self._failed(self.race.baseline) < MAX_FAILED

    def _failed(self, key: str) -> int:
        return sum(1 for r in self.race.rounds if key in r.scores and r.scores[key] is None)

    def report(self) -> None:
        if self.on_round is not None:
            self.on_round(self.race)

    def finish(self, stopped: str, **changes) -> Race:
        self.update(stopped=stopped, **changes)
        self.report()
        return self.race


def race(
    contenders: Sequence[str], baseline: str, run: Run, budget: int, first_seed: int, alpha: float = ALPHA,
    on_round: Callable[[Race], None] | None = None,
) -> Race:
    """Race ``contenders`` (placement keys, best search score first) against ``baseline``.

    ``run(key, seed)`` returns the score of one proxy run (None: failed); ``budget`` caps the runs,
    baseline and failed runs included; round r uses seed ``first_seed + r - 1``. ``on_round`` gets
    the race after every round. Raises ``ValueError`` for a budget below `minimal_budget`.
    """
    contenders = tuple(contenders)
    _check(contenders, baseline, budget, alpha)
    racer = _Racer(contenders, baseline, run, budget, first_seed, alpha, on_round)
    selection = 0
    while len(racer.race.alive) > 1 and selection < SELECTION_ROUNDS:
        alive = racer.race.alive
        if racer.race.runs + len(alive) + 1 > budget - 2 * MIN_PAIRS:
            break
        if not racer.play(alive, test=False):
            return racer.finish("the baseline's runs failed")
        selection += 1
        _drop_losers(racer)
        racer.update(leader=max(racer.race.alive, key=lambda k: _mean(racer.race.scores(k)), default=None))
        racer.report()
    if not racer.race.alive:
        return racer.finish("every contender fell clearly behind", leader=None)
    leader = max(racer.race.alive, key=lambda k: _mean(racer.race.scores(k)))
    test_rounds = (budget - racer.race.runs) // 2
    racer.update(leader=leader, test_rounds=test_rounds, level=look_level(alpha, test_rounds))
    return _test(racer, leader)


def _drop_losers(racer: _Racer) -> None:
    """Drop every contender clearly behind the arm with the highest mean (the baseline included)."""
    race = racer.race
    arms = (race.baseline, *race.alive)
    best = max(arms, key=lambda k: _mean(race.scores(k)))
    behind = {k: Drop(len(race.rounds), best) for k in race.alive if k != best and _behind(race, k, best, test=False)}
    racer.update(dropped={**race.dropped, **behind})


def _pairing(race: Race) -> bool:
    """Whether the test pairs same-seed scores: when the correlation measured on the selection rounds
    (independent of the test's) is positive, or cannot be measured there (a single contender: the
    paired t is exact on same-seed pairs whatever the correlation)."""
    _, correlation = seed_noise({key: race.scores(key, test=False) for key in (race.baseline, *race.contenders)})
    return correlation is None or correlation > 0


def _test(racer: _Racer, leader: str) -> Race:
    """The test stage: rounds of ``leader`` and the baseline until it passes, loses or the budget ends."""
    base = racer.race.baseline
    confidence, pairing = 1 - 2 * racer.race.level, _pairing(racer.race)
    for n in range(1, racer.race.test_rounds + 1):
        if not racer.play([leader], test=True):
            return racer.finish("the baseline's runs failed")
        if leader in racer.race.dropped:
            return racer.finish("the leader's runs failed")
        mine, theirs = racer.race.scores(leader, test=True), racer.race.scores(base, test=True)
        scored = any(s is not None for s in mine) and any(s is not None for s in theirs)
        if n in looks(racer.race.test_rounds) and scored:
            racer.update(comparison=compare(mine, theirs, confidence, paired=True, pairing=pairing))
            if beats_baseline(racer.race.comparison):
                return racer.finish("the leader passed the test", winner=leader)
        if scored and _mean(mine) < _mean(theirs) and _behind(racer.race, leader, base, test=True):
            return racer.finish("the leader fell clearly behind the baseline",
                                dropped={**racer.race.dropped, leader: Drop(len(racer.race.rounds), base)})
        racer.report()
    return racer.finish("the budget is spent")
