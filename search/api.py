"""The search from Python: ``search.run(data=..., model=..., trials=100)`` does what ``python -m search run`` does
and returns the decision as a `Result`; ``search.load(study)`` reads the same `Result` back from a finished (or
moved) study. `complete` is the one path both take: the command line's ``run``, ``resume`` and ``demo`` call it
too.

Every keyword of `run` is a `search.config.run_config.RunConfig` field, the declaration that also builds the command line's
options, with the same defaults and the same checks; bad input raises `SearchError`, whose message is the line the
command line prints after ``error:``.

The study, its final step, its report and the dashboard (Optuna, torch, Ultralytics) are imported inside the
functions that use them: ``import search`` and ``python -m search --help`` stay fast.
"""

from __future__ import annotations

import difflib
import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from search.config.run_config import RUN_FIELDS, RunConfig
from search.config.run_file import same_kind
from search.config.study_folder import check_writable, load_study_config, prepare
from search.study.attributes import TrialView
from search.study.executor import check_executor, run_search
from trainers.deploy import read_checks
from trainers.interrupt import ctrl_c_kept, raise_if_pressed

KINDS = {"int": "an int", "float": "a number", "str": "a string", "bool": "True or False", "dict": "a dict"}  # by type


class SearchError(ValueError):
    """Bad input, or a study the search cannot go on from: the message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class Outcome:
    """What one `complete` did: the study's decision (None when another worker decides, or ``final`` is off) and, in
    words, why there is none."""

    config: RunConfig
    decision: object | None  # search.final.decision.Decision
    waiting: str = ""


@dataclass(frozen=True)
class Result:
    """A finished study's answer. ``placement`` is the exported placement as the command line names it ("" for the
    baseline); ``improved`` is True only when a placement beat the baseline beyond noise in the race; paths point
    into the study folder (``best_pt`` and ``deployment`` only once the final training ran); ``leaderboard`` is the
    report's (`search.report.summary.leaderboard_frame`)."""

    study: Path
    verdict: str
    headline: str
    improved: bool
    placement: str
    best_yaml: Path
    best_pt: Path | None
    deployment: dict[str, Path]
    leaderboard: object  # pandas.DataFrame
    report: Path | None


def complete(config: RunConfig, show_progress: bool = True) -> Outcome:
    """Run ``config``'s search (the executor it names), then, as the last worker, confirm, retrain, export and write the
    report and the dashboard's outcome. Raises ``ValueError`` in one line for what cannot go on."""
    from search.final.training import final_claim, finalize
    from search.report import write_report
    from search.study.records import failed_baseline
    from search.study.storage import held_elsewhere

    run = run_search(config, show_progress=show_progress)
    trials = run.study.get_trials(deepcopy=False)
    failed = failed_baseline(trials)
    if failed:
        raise ValueError(f"the baseline (trial {failed.number}) failed: {TrialView(failed).reason}; every placement would "
                         "fail the same way: fix that, then run the same command again (the study goes on)")
    decision, waiting = None, ""
    others = held_elsewhere(trials)
    if config.final and others:
        waiting = (f"trials {', '.join(str(t.number) for t in others)} still train in other workers; the last worker to "
                   "finish confirms, retrains and exports (or run `resume` on the study folder later)")
    elif config.final:
        with final_claim(config) as mine:
            if not mine:
                return Outcome(config, None, "another worker is confirming, retraining and exporting this study; its report will follow")
            decision = finalize(run, show_progress=show_progress)
    write_report(config.study_dir, config.storage_url)  # this process's URL: with its password
    if config.final and not others and importlib.util.find_spec("optuna_dashboard"):
        from search.dashboard import publish_outcome

        publish_outcome(run.study, config.study_dir)  # the verdict, leaderboard and files inside the dashboard
    return Outcome(config, decision, waiting)


def run(data: str, *, quiet: bool = False, **options) -> Result:
    """Search attention placements for ``data`` (an Ultralytics data.yaml), as ``python -m search run`` does with the
    same options (every `RunConfig` field as a keyword: ``model="yolov8n.pt"``, ``trials=100``,
    ``train_args={"lr0": 0.005}`` for ``--set``, ...), and return the decision. ``quiet`` turns the progress bars off.
    A study that exists with the same options goes on where it stopped. Raises `SearchError`."""
    with _as_search_error():
        config = _config(data, options)
        prepare_run(config)
        with ctrl_c_kept():
            outcome = complete(config, show_progress=not quiet)
            raise_if_pressed()
        if outcome.decision is None:
            raise ValueError(outcome.waiting or "the study has not decided (run without final=False to decide)")
        return load(config.study_dir, config.storage)


def load(study: str | Path, storage: str | None = None) -> Result:
    """The `Result` of a finished study folder (wherever it was moved to); ``storage``: its URL with the password
    run.yaml does not keep. Raises `SearchError` for a folder that holds no study or one that has not decided."""
    from search.final.decision import Decision
    from search.report.context import sort_trials
    from search.report.summary import leaderboard_frame
    from search.study.records import task_of_study
    from search.study.storage import load_study

    with _as_search_error():
        config = load_study_config(study, storage)
        opened = load_study(config)  # read only: a read-only study loads too
        task = task_of_study(opened)
        decision = Decision.of_study(opened, task.metric_names)
        if decision is None:
            raise ValueError(f"study '{config.study}' has not decided yet (its final step has not run): finish it with "
                             f"`python -m search resume {config.study_dir}`")
        folder = config.study_dir
        winner = decision.confirmation.winner if decision.confirmation else None
        trained = folder / decision.final.weights if decision.final and decision.final.weights else None  # study-relative
        weights = next((w for w in (folder / "best.pt", trained) if w is not None and w.is_file()), None)
        return Result(
            study=folder, verdict=decision.sentence(task.score, task.score_label), headline=decision.headline(task.score_label),
            improved=winner is not None, placement="" if decision.keeps_baseline else decision.placement_str,
            best_yaml=folder / "best.yaml", best_pt=weights,
            deployment={c.format: folder / c.file for c in read_checks(folder) if c.file},
            leaderboard=leaderboard_frame(sort_trials(opened.get_trials(deepcopy=False)), task),
            report=folder / "report.md" if (folder / "report.md").is_file() else None,
        )


def _config(data: str, options: dict) -> RunConfig:
    """`RunConfig` of ``run``'s keywords, resolved and checked as the command line checks its options."""
    for name, value in options.items():
        if name not in RUN_FIELDS or name == "data":
            close = difflib.get_close_matches(name, RUN_FIELDS, n=1)
            raise ValueError(f"{name}: not an option of search.run{f'; did you mean {close[0]}?' if close else ''} "
                             f"(the options are RunConfig's fields: {', '.join(f.name for f in fields(RunConfig))})")
        declared = RUN_FIELDS[name].type.split(" |")[0]
        if value is not None and not same_kind(value, declared):
            raise ValueError(f"{name}={value!r}: give {KINDS[declared]}, as --{name.replace('_', '-')} takes")
    return RunConfig(data=str(data), **options).resolved()


def prepare_run(config: RunConfig) -> None:
    """What the command line checks and prepares before a search (`search.commands.cmd_run` calls it too); Ultralytics'
    own bars and logs stay off, ours show progress."""
    check_executor(config.executor)
    config.validate()
    check_writable(config.study_dir)
    prepare(config.study_dir / "config", quiet=True)


@contextmanager
def _as_search_error():
    """Re-raise a ``ValueError`` (every one-line input error of the packages) as `SearchError`, its message kept."""
    try:
        yield
    except SearchError:
        raise
    except ValueError as error:
        raise SearchError(str(error)) from None
