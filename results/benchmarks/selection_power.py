"""Selection under noise: the whole decision procedure on simulated scores, no training.

A search of ``--trials`` placements (the baseline included) scores each with one proxy run on the
study's seed; the best ``--top`` by that score enter the product's own race (`search.racing.race`,
with `search.verdict.compare`) against the baseline, on fresh seeds, within ``--budget`` runs. A
run's score is its placement's true mean plus seed noise of sd ``--sd``, whose part
``sqrt(--corr) * sd`` is shared by every placement trained with the same seed (common random
numbers); ``--winners`` placements are truly better than the baseline by ``--effect``, the rest equal
to it. The null case (no winner) is always run too. The last line printed is
``false-improves F power P runs R``: F the rate of "improves" with no true winner, P the rate of
exporting a truly better placement, R the mean proxy runs the confirmation spent (with the winners).
With several ``--corr``, ``--top`` or ``--budget`` values, one row each (budgets too small for a top
are left out), and the last line holds the highest F, the lowest P and the highest R among them.

Run: python results/benchmarks/selection_power.py --sd 0.004 --corr 0 0.5 0.8 --effect 0.01 --winners 1 \
    --trials 100 [--budget B ...] [--top T ...] [--reps R] [--seed S] [--out selection_power.md]
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
from search.racing import ALPHA, minimal_budget, race

BASELINE = 0  # placement index of the baseline; the winners are 1..K
CONFIRM_BUDGET, CONFIRM_TOP = RunConfig(data="").confirm_budget, RunConfig(data="").confirm_top  # the product's defaults
GOAL_FALSE, GOAL_POWER, GOAL_RUNS = 0.05, 0.8, 30  # at most 5% false "improves"; 80% power with at most 30 runs


@dataclass(frozen=True)
class Outcome:
    """Rates over the simulated searches of one setting."""

    improves: float  # "improves" declared (a false one when there is no winner)
    found: float  # a truly better placement exported
    entered: float  # a truly better placement among the top T of the search
    runs: float  # mean proxy runs of the confirmation


def simulate(sd: float, corr: float, effect: float, winners: int, trials: int, budget: int, top: int, reps: int,
             rng: np.random.Generator) -> Outcome:  # fmt: skip
    """Run ``reps`` searches and their confirmations (module docstring)."""
    improves = found = entered = runs = 0
    means = np.zeros(trials)
    means[1 : 1 + winners] = effect
    for _ in range(reps):
        seeds = budget + 1  # seed 0 is the search's, then at most one new seed per confirmation run
        shared = rng.standard_normal(seeds)
        own = rng.standard_normal((trials, seeds))
        scores = means[:, None] + sd * (np.sqrt(corr) * shared[None, :] + np.sqrt(1 - corr) * own)
        ranked = [int(i) for i in np.argsort(-scores[1:, 0], kind="stable") + 1][:top]

        def run(key: str, seed: int) -> float:
            return float(scores[int(key), seed])

        result = race([str(i) for i in ranked], str(BASELINE), run, budget, first_seed=1)
        runs += result.runs
        entered += any(i <= winners for i in ranked)
        if result.winner is not None:
            improves += 1
            found += int(result.winner) <= winners
    return Outcome(improves / reps, found / reps, entered / reps, runs / reps)


def meets_goals(null: Outcome, real: Outcome, budget: int, winners: int) -> bool:
    """Whether one setting meets the goals (`GOAL_FALSE`, `GOAL_POWER` unless there is no winner, `GOAL_RUNS`)."""
    return null.improves <= GOAL_FALSE and (winners == 0 or real.found >= GOAL_POWER) and budget <= GOAL_RUNS


def conclusions(outcomes: dict[tuple[float, int, int], tuple[Outcome, Outcome]], winners: int) -> list[str]:
    """Per correlation, the cheapest setting that meets the goals, or plainly that none does, with the numbers."""
    lines = []
    for corr in dict.fromkeys(c for c, _, _ in outcomes):
        mine = {(t, b): o for (c, t, b), o in outcomes.items() if c == corr}
        met = sorted((b, t) for (t, b), (null, real) in mine.items() if meets_goals(null, real, b, winners))
        if met:
            budget, top = met[0]
            null, real = mine[top, budget]
            lines.append(f"correlation {corr:g}: goals met from top {top}, budget {budget} (false improves {null.improves:.3f}, "
                         f"power {real.found:.3f}, {real.runs:.1f} runs on average)")  # fmt: skip
            continue
        (top, budget), (null, real) = max(mine.items(), key=lambda item: item[1][1].found)
        lines.append(f"correlation {corr:g}: goals NOT reached by any setting run here; best power {real.found:.3f} (top {top}, "
                     f"budget {budget}, false improves {null.improves:.3f}), where a true winner entered the top {top} "
                     f"in {real.entered:.3f} of the searches, the most any confirmation of them could find")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sd", type=float, required=True, help="seed sd of one proxy run, mAP50-95")
    parser.add_argument("--corr", type=float, nargs="+", required=True, help="correlation of same-seed runs of two placements")
    parser.add_argument("--effect", type=float, required=True, help="gain of a truly better placement, mAP50-95")
    parser.add_argument("--winners", type=int, required=True, help="truly better placements (K)")
    parser.add_argument("--trials", type=int, required=True, help="placements searched, the baseline included (N)")
    parser.add_argument("--budget", type=int, nargs="+", default=[CONFIRM_BUDGET],
                        help=f"confirmation runs, baseline included (default: {CONFIRM_BUDGET})")
    parser.add_argument("--top", type=int, nargs="+", default=[CONFIRM_TOP],
                        help=f"contenders entering the race (default: {CONFIRM_TOP})")
    parser.add_argument("--reps", type=int, default=1000, help="simulated searches per setting and case (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation (default: 0)")
    parser.add_argument("--out", default="selection_power.md", help="report file beside this script (default: selection_power.md)")
    args = parser.parse_args()
    if not (args.sd > 0 and all(0 <= c < 1 for c in args.corr) and args.effect > 0 and 0 <= args.winners < args.trials - 1
            and all(1 <= t < args.trials for t in args.top) and args.reps > 0):  # fmt: skip
        parser.error("need sd > 0, 0 <= corr < 1, effect > 0, 0 <= winners < trials - 1, 1 <= top < trials, reps > 0")
    settings = [(c, t, b) for c, t, b in itertools.product(args.corr, args.top, args.budget) if b >= minimal_budget(t)]
    if not settings:
        parser.error(f"every budget is below what the top can race with (top {args.top[0]}: {minimal_budget(args.top[0])} runs)")
    rng = np.random.default_rng(args.seed)
    rows, outcomes = [], {}
    for corr, top, budget in settings:
        null = simulate(args.sd, corr, args.effect, 0, args.trials, budget, top, args.reps, rng)
        real = simulate(args.sd, corr, args.effect, args.winners, args.trials, budget, top, args.reps, rng)
        outcomes[corr, top, budget] = null, real
        met = meets_goals(null, real, budget, args.winners)
        rows.append(f"| {corr:g} | {top} | {budget} | {null.improves:.3f} | {null.runs:.1f} | {real.found:.3f} | "
                    f"{real.entered:.3f} | {real.improves - real.found:.3f} | {real.runs:.1f} | "
                    f"{'yes' if met else 'no'} |")  # fmt: skip
    nulls, reals = [n for n, _ in outcomes.values()], [r for _, r in outcomes.values()]
    worst = (max(n.improves for n in nulls), min(r.found for r in reals), max(r.runs for r in reals))
    command = "python results/benchmarks/selection_power.py " + shlex.join(sys.argv[1:])
    text = "\n".join([
        "# Selection under noise: search, racing confirmation and verdict on simulated scores", "",
        describe_machine() + f", scipy {version('scipy')}", f"- command: `{command}`",
        f"- {args.trials} placements searched (baseline included), one proxy run each on the study's seed, seed sd "
        f"{args.sd:g} mAP50-95; the top T race the baseline on fresh seeds (`search.racing`, one-sided alpha "
        f"{ALPHA:g}); {args.winners} placement(s) truly better by {args.effect:g}, the rest equal to the baseline; "
        f"{args.reps} simulated searches per setting and case, numpy seed {args.seed}",
        f"- goals: false improves <= {GOAL_FALSE:g}, power >= {GOAL_POWER:g} at this effect, budget <= {GOAL_RUNS} runs", "",
        "| same-seed correlation | top T | budget (runs) | false improves (no winner) | runs (no winner) | power: a true "
        "winner exported | a true winner in the top T | a wrong placement exported | runs (with winners) | goals met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        "Power cannot exceed the share of searches that put a true winner among the top T (the search's single runs "
        "decide who races), and more contenders cost more runs before the test. False improves at about 0.05 are "
        "expected where the test looks once (budget - selection < 8 runs): there the level is exactly 0.05.", "",
        *(f"- {line}" for line in conclusions(outcomes, args.winners)),
        f"- product defaults: --confirm-top {CONFIRM_TOP}, --confirm-budget {CONFIRM_BUDGET}", "",
        f"false-improves {worst[0]:.3f} power {worst[1]:.3f} runs {worst[2]:.1f}",
    ])  # fmt: skip
    publish(__file__, text + "\n", name=Path(args.out).stem)


if __name__ == "__main__":
    main()
