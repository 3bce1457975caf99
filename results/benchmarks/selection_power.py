"""Selection under noise: the whole decision procedure on simulated scores, no training.

A search of ``--trials`` proxy runs (the baseline's included) draws placements one by one from a pool of
``--pool`` (in random order: the sampler is not modelled, so every placement is as likely to come early)
and scores each with one run on the study's seed. With ``--leaders K --leader-seeds S`` it intensifies
as the product does (`search.select.intensify`: after every run, the K best placements by their paired gain
over the baseline get seeds up to S, the baseline every seed they have), and those repeat runs are
trials too, so fewer placements are visited. The best ``--top`` by paired gain enter the product's own
race (`search.select.racing.race`, with `search.select.verdict.compare`) against the baseline, on fresh seeds, within
``--budget`` runs. A run's score is its placement's true mean plus seed noise of sd ``--sd``, whose part
``sqrt(--corr) * sd`` is shared by every placement trained with the same seed (common random numbers);
``--winners`` placements of the pool are truly better than the baseline by ``--effect``, the rest equal
to it. The null case (no winner) is always run too. Power is also split by where the first winner came
in the order: among the first ``--prior`` placements visited (where the product queues the usual
placements, `spaces.prior`) or later. The last line printed is ``false-improves F power P runs R``: F
the rate of "improves" with no true winner, P the rate of exporting a truly better placement, R the
mean runs in all (search and race, with the winners). With several values of an option, one row per
combination (budgets too small for a top, and combinations over ``--total`` runs, are left out); the
last line holds the highest F, the lowest P and the highest R among them.

A screen (``--screen-noise Q ...``, issue 33) replaces the search's runs: it scores every placement of the pool
at once, for ``--screen-cost`` standalone runs' compute (a supernet trained once, then one validation each), with an
error of sd ``Q`` x ``--sd`` of its own per placement that no seed removes (``inf``: it ranks at random, as a
supernet whose paths all score the same does); its best ``--top`` by screen score race the baseline within each
``--screen-budget`` (the runs the screen freed). One standalone run ranks the placements with an error of
``sqrt(1 - corr)`` x ``--sd`` each (the part a seed shares cancels), so a screen with ``Q < sqrt(1 - corr)`` ranks
better than one run does. A screen sees every placement at once: its rows have no early/late split of power.

Run: python results/benchmarks/selection_power.py --sd 0.0045 --corr 0.3 --effect 0.01 --winners 1 \
    --trials 100 [--pool P] [--budget B ...] [--top T ...] [--leaders K ...] [--leader-seeds S ...] [--total N] \
    [--screen-noise Q ... --screen-cost C --screen-budget B ...] [--reps R] [--seed S] [--out selection_power.md]
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from machine import describe_machine, publish
from search.config import RunConfig
from search.select.intensify import next_repeat, ranking
from search.select.racing import ALPHA, minimal_budget, race

BASELINE = "0"  # placement key of the baseline; the winners are "1".."K"
DEFAULTS = RunConfig(data="")  # the product's defaults
GOAL_FALSE, GOAL_POWER, GOAL_RUNS = 0.05, 0.8, 130  # at most 5% false "improves"; 80% power; 100 search + 30 race runs


@dataclass(frozen=True)
class Design:
    """How a search spends its runs: ``trials`` search runs, the baseline's and repeat seeds included;
    ``leaders`` placements intensified to ``seeds`` seeds (0: none); the ``top`` race within ``budget``. With
    ``screen_noise`` (its error sd in seed sds; inf: none of the truth) a screen of ``screen_cost`` runs' compute
    scores every placement of the pool instead of the ``trials``."""

    trials: int
    top: int
    budget: int
    leaders: int = 0
    seeds: int = 1
    screen_noise: float | None = None
    screen_cost: float = 0.0

    @property
    def label(self) -> str:
        if self.screen_noise is not None:
            return f"screen, error {self.screen_noise:g} sd, {self.screen_cost:g} runs"
        return f"{self.leaders} x {self.seeds} seeds" if self.leaders else "none"

    @property
    def planned(self) -> float:
        """Runs planned: the search's (or the screen's compute) and the race's budget."""
        return (self.screen_cost if self.screen_noise is not None else self.trials) + self.budget


@dataclass(frozen=True)
class Outcome:
    """Rates over the simulated searches of one setting."""

    improves: float  # "improves" declared (a false one when there is no winner)
    found: float  # a truly better placement exported
    entered: float  # a truly better placement among the top T of the search
    visited: float  # a truly better placement visited by the search
    repeats: float  # mean repeat runs of the search (intensification)
    runs: float  # mean runs in all: the search's trials and the race's runs
    found_early: float | None = None  # power when the first winner came among the first --prior visited
    found_late: float | None = None  # power when it came later or was never visited


def simulate(design: Design, sd: float, corr: float, effect: float, winners: int, pool: int, reps: int,
             rng: np.random.Generator, prior: int = 0) -> Outcome:
    """Run ``reps`` searches of ``design`` and their confirmations (module docstring)."""
    improves = found = entered = visited = repeats = runs = 0
    early = [0, 0]  # [searches, found] whose first winner came among the first ``prior`` placements
    means = np.zeros(pool + 1)
    means[1 : 1 + winners] = effect
    for _ in range(reps):
        order = rng.permutation(pool) + 1
        shared = rng.standard_normal(design.seeds + design.budget + 1)
        own = rng.standard_normal((pool + 1, shared.size))
        noise = sd * (np.sqrt(corr) * shared[None, :] + np.sqrt(1 - corr) * own)

        def score(key: str, seed: int) -> float:
            return float(means[int(key)] + noise[int(key), seed])  # noqa: B023 (called within this search)

        scores, seen, spent = {BASELINE: {0: score(BASELINE, 0)}}, 0, 1
        if design.screen_noise is not None:  # every placement screened at once, with an error of its own
            error = rng.standard_normal(pool) * (design.screen_noise * sd if np.isfinite(design.screen_noise) else 1.0)
            screened = (means[1:] if np.isfinite(design.screen_noise) else 0.0) + error
            scores, seen, spent = {str(k + 1): {0: float(screened[k])} for k in range(pool)}, pool, design.screen_cost
            scores[BASELINE] = {0: 0.0}
        while design.screen_noise is None and spent < design.trials:
            repeat = next_repeat(scores, BASELINE, design.leaders, design.seeds, 0)
            if repeat is not None:
                scores[repeat[0]][repeat[1]] = score(*repeat)
            elif seen < pool:
                scores[str(order[seen])] = {0: score(str(order[seen]), 0)}
                seen += 1
            else:
                break
            spent += 1
        top = ranking(scores, BASELINE)[: design.top]
        result = race(top, BASELINE, score, design.budget, first_seed=design.seeds) if top else None
        first = int(np.argmax(order <= winners)) if winners else pool
        win = result is not None and result.winner is not None and int(result.winner) <= winners
        improves += result is not None and result.winner is not None
        found += win
        entered += any(int(k) <= winners for k in top)
        visited += first < seen
        repeats += 0 if design.screen_noise is not None else spent - 1 - seen
        runs += spent + (result.runs if result else 0)
        if first < prior and design.screen_noise is None:  # a screen sees every placement at once
            early[0] += 1
            early[1] += win
    late = reps - early[0] if design.screen_noise is None else 0  # a screen has no order of visits
    return Outcome(improves / reps, found / reps, entered / reps, visited / reps, repeats / reps, runs / reps,
                   early[1] / early[0] if early[0] else None, (found - early[1]) / late if late else None)


def meets_goals(null: Outcome, real: Outcome, design: Design, winners: int) -> bool:
    """Whether one setting meets the goals (`GOAL_FALSE`, `GOAL_POWER` unless there is no winner, at
    most `GOAL_RUNS` runs in all at most)."""
    return (null.improves <= GOAL_FALSE and (winners == 0 or real.found >= GOAL_POWER)
            and design.planned <= GOAL_RUNS)


def conclusions(outcomes: dict[tuple[float, Design], tuple[Outcome, Outcome]], winners: int) -> list[str]:
    """Per correlation, the cheapest setting that meets the goals, or plainly that none does, with the numbers."""
    lines = []
    for corr in dict.fromkeys(c for c, _ in outcomes):
        mine = {d: o for (c, d), o in outcomes.items() if c == corr}
        met = sorted((d for d, (null, real) in mine.items() if meets_goals(null, real, d, winners)),
                     key=lambda d: (mine[d][1].runs, -mine[d][1].found))
        if met:
            best = max(met, key=lambda d: mine[d][1].found)
            lines.append(f"correlation {corr:g}: goals met by {len(met)} setting(s); the most power: {_named(best)} (false "
                         f"improves {mine[best][0].improves:.3f}, power {mine[best][1].found:.3f}, "
                         f"{mine[best][1].runs:.1f} runs on average)")
            continue
        design, (null, real) = max(mine.items(), key=lambda item: item[1][1].found)
        lines.append(f"correlation {corr:g}: goals NOT reached by any setting run here; best power {real.found:.3f} "
                     f"({_named(design)}, false improves {null.improves:.3f}), where a true winner entered the top "
                     f"{design.top} in {real.entered:.3f} of the searches, the most any confirmation of them could find")
    return lines


def _named(design: Design) -> str:
    if design.screen_noise is not None:
        return f"{design.label} for {design.trials} placements, top {design.top}, budget {design.budget}"
    return f"{design.trials} trials, intensification {design.label}, top {design.top}, budget {design.budget}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sd", type=float, required=True, help="seed sd of one proxy run, mAP50-95")
    parser.add_argument("--corr", type=float, nargs="+", required=True, help="correlation of same-seed runs of two placements")
    parser.add_argument("--effect", type=float, required=True, help="gain of a truly better placement, mAP50-95")
    parser.add_argument("--winners", type=int, required=True, help="truly better placements (K) in the pool")
    parser.add_argument("--trials", type=int, nargs="+", required=True, help="search runs, the baseline's and repeats included")
    parser.add_argument("--pool", type=int, help="placements the search draws from (default: the fewest --trials - 1)")
    parser.add_argument("--budget", type=int, nargs="+", default=[DEFAULTS.confirm_budget],
                        help=f"race runs, baseline included (default: {DEFAULTS.confirm_budget})")
    parser.add_argument("--top", type=int, nargs="+", default=[DEFAULTS.confirm_top],
                        help=f"contenders entering the race (default: {DEFAULTS.confirm_top})")
    parser.add_argument("--leaders", type=int, nargs="+", default=[0], help="placements intensified; 0: none (default: 0)")
    parser.add_argument("--leader-seeds", type=int, nargs="+", default=[3], help="seeds an intensified placement gets (default: 3)")
    parser.add_argument("--total", type=int, help="leave out combinations of more trials + budget than this")
    parser.add_argument("--prior", type=int, default=16, help="placements queued first, for the power split (default: 16)")
    parser.add_argument("--screen-noise", type=float, nargs="+", default=[],
                        help="screens to simulate: each one's error sd on a placement, in --sd units (inf: at random)")
    parser.add_argument("--screen-cost", type=float, default=0.0, help="a screen's compute, in standalone proxy runs")
    parser.add_argument("--screen-budget", type=int, nargs="+", default=[], help="race runs after a screen (default: --budget)")
    parser.add_argument("--reps", type=int, default=1000, help="simulated searches per setting and case (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation (default: 0)")
    parser.add_argument("--out", default="selection_power.md", help="report file beside this script (default: selection_power.md)")
    args = parser.parse_args()
    pool = args.pool or min(args.trials) - 1
    if not (args.sd > 0 and all(0 <= c < 1 for c in args.corr) and args.effect > 0 and 0 <= args.winners < pool
            and all(1 <= t < pool for t in args.top) and args.reps > 0 and min(args.leader_seeds) >= 2):
        parser.error("need sd > 0, 0 <= corr < 1, effect > 0, 0 <= winners < pool, 1 <= top < pool, leader seeds >= 2, reps > 0")
    intensify = sorted({(k, s if k else 1) for k, s in itertools.product(args.leaders, args.leader_seeds)})
    designs = [Design(n, t, b, k, s) for n, t, b, (k, s) in itertools.product(args.trials, args.top, args.budget, intensify)
               if b >= minimal_budget(t) and (args.total is None or n + b <= args.total)]
    designs += [Design(pool, t, b, screen_noise=q, screen_cost=args.screen_cost)
                for q, t, b in itertools.product(args.screen_noise, args.top, args.screen_budget or args.budget)
                if b >= minimal_budget(t) and (args.total is None or args.screen_cost + b <= args.total)]
    if not designs:
        parser.error("no combination left: every budget is below what its top can race with, or over --total")
    rng = np.random.default_rng(args.seed)
    rows, outcomes = [], {}
    for corr, design in itertools.product(args.corr, designs):
        null = simulate(design, args.sd, corr, args.effect, 0, pool, args.reps, rng)
        real = simulate(design, args.sd, corr, args.effect, args.winners, pool, args.reps, rng, args.prior)
        outcomes[corr, design] = null, real
        split = " | ".join("-" if x is None else f"{x:.3f}" for x in (real.found_early, real.found_late))
        rows.append(f"| {corr:g} | {design.trials} | {design.label} | {design.top} | {design.budget} | {null.improves:.3f} | "
                    f"{real.found:.3f} | {split} | {real.visited:.3f} | {real.entered:.3f} | {real.improves - real.found:.3f} "
                    f"| {real.repeats:.1f} | {real.runs:.1f} | {'yes' if meets_goals(null, real, design, args.winners) else 'no'} |")
    nulls, reals = [n for n, _ in outcomes.values()], [r for _, r in outcomes.values()]
    worst = (max(n.improves for n in nulls), min(r.found for r in reals), max(r.runs for r in reals))
    command = "python results/benchmarks/selection_power.py " + shlex.join(sys.argv[1:])
    text = "\n".join([
        "# Selection under noise: search, intensification, racing confirmation and verdict on simulated scores", "",
        describe_machine() + f", scipy {version('scipy')}", f"- command: `{command}`",
        *([f"- screen rows: every placement of the pool scored at once for {args.screen_cost:g} runs' compute, with an "
           "error of its own of the stated seed sds per placement (inf: at random); the top T by screen score race as "
           "below"] if args.screen_noise else []),
        f"- a pool of {pool} placements besides the baseline, visited in random order, one proxy run each on the study's "
        f"seed, seed sd {args.sd:g} mAP50-95; intensification (`search.select.intensify`) as the column says; the top T by "
        f"paired gain race the baseline on fresh seeds (`search.select.racing`, one-sided alpha {ALPHA:g}); {args.winners} "
        f"placement(s) truly better by {args.effect:g}, the rest equal to the baseline; {args.reps} simulated searches "
        "per setting and case, numpy seed " + str(args.seed),
        f"- goals: false improves <= {GOAL_FALSE:g}, power >= {GOAL_POWER:g} at this effect, trials + budget <= {GOAL_RUNS} runs", "",
        "| same-seed correlation | trials | intensification (leaders x seeds) | top T | budget (runs) | false improves (no "
        f"winner) | power: a true winner exported | power, winner among the first {args.prior} visited | power, winner "
        "later | a true winner visited | a true winner in the top T | a wrong placement exported | repeat runs | runs in "
        "all (search + race) | goals met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        "Power cannot exceed the share of searches that put a true winner among the top T, nor the share that visit "
        "it at all (repeat seeds are trials, so an intensified search visits fewer placements). False improves at "
        "about 0.05 are expected where the test looks once (budget - selection < 8 runs): there the level is exactly 0.05.", "",
        *(f"- {line}" for line in conclusions(outcomes, args.winners)),
        f"- product defaults: --confirm-top {DEFAULTS.confirm_top}, --confirm-budget {DEFAULTS.confirm_budget}", "",
        f"false-improves {worst[0]:.3f} power {worst[1]:.3f} runs {worst[2]:.1f}",
    ])
    publish(__file__, text + "\n", name=Path(args.out).stem)


if __name__ == "__main__":
    main()
