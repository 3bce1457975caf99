"""Command line: ``python -m search <command>``; ``--help`` on any command lists its options.

Every expected failure (bad input, a file that is missing) ends as one line on stderr and exit
code 2, without a traceback.

Optuna (`search.study.storage`) is imported only once a command failed: ``python -m search --help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import shlex
import sys
from contextlib import nullcontext
from dataclasses import MISSING
from pathlib import Path

from search.commands import COMMANDS, DEMO_MODELS, EXIT_BAD_INPUT
from search.config.run_config import RUN_FIELDS
from search.config.study_folder import prepare
from trainers.deploy import DEFAULT_FORMATS
from trainers.interrupt import Terminated, ctrl_c_kept, handled, raise_if_pressed, terminated
from trainers.train import disk_full, error_chain

EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C
EXIT_TERMINATED = 143  # and for SIGTERM (128 + 15), what a cluster scheduler sends


def add_option(p: argparse._ActionsContainer, name: str, help: str | None = None) -> None:
    """The option of `RunConfig` field ``name``, built from the field's declaration (`search.config.options.option`):
    its flag, type, default and help are written there once. ``help`` replaces the declared help."""
    f = RUN_FIELDS[name]
    meta = f.metadata
    flag = meta["flag"] or "--" + name.replace("_", "-")
    text = (help or meta["help"]).replace("%", "%%")  # argparse formats help with %: a literal one is doubled
    if meta["choices"]:
        text += f"; one of {', '.join(meta['choices'])}"
    if f.type == "bool":  # a flag that turns the default off (--no-final)
        p.add_argument(flag, dest=name, action="store_false", help=text)
        return
    if f.type == "dict":  # KEY=VALUE, repeatable (--set)
        p.add_argument(flag, dest=name, action="append", default=[], metavar=meta["metavar"], help=text)
        return
    required = f.default is MISSING and f.default_factory is MISSING
    shown = meta["shown"] or ("%(default)s" if not required else None)
    kind = next(t for word, t in (("int", int), ("float", float), ("str", str)) if f.type.startswith(word))
    p.add_argument(flag, dest=name, type=kind, required=required, metavar=meta["metavar"],
                   default=None if required else f.default, help=text + (f" (default: {shown})" if shown else ""))


def _add_space_arguments(p: argparse.ArgumentParser) -> None:
    add_option(p, "model")
    add_option(p, "space")


def _storage_option(p: argparse.ArgumentParser) -> None:
    """``--storage`` of a command that opens an existing study: run.yaml keeps the URL without its password."""
    p.add_argument("--storage", help="the study's storage URL again, with its password (run.yaml keeps it without; "
                   "PGPASSWORD or ~/.pgpass also give it)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m search",
        description="Search where, which and how many attention modules to put into an Ultralytics YOLO model.",
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    p = commands.add_parser("run", help="search placements on a dataset, retrain the winner, export and report")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, f in RUN_FIELDS.items():  # every RunConfig field is an option, declared once (search.config.options.option)
        owner = f.metadata["executor"]
        if owner and owner not in groups:
            groups[owner] = p.add_argument_group(f"--executor {owner}", f"options only the {owner} executor reads")
        add_option(groups[owner] if owner else p, name)
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = commands.add_parser("resume", help="continue a study where it stopped (same settings as its run.yaml)")
    p.add_argument("study_dir", help="the study folder (holds run.yaml)")
    p.add_argument("--trials", type=int, help="raise the trial total (default: as before)")
    _storage_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = commands.add_parser("export", help="write the model YAML of the winner or of one trial")
    p.add_argument("study_dir", help="the study folder")
    p.add_argument("--trial", type=int, help="trial number (default: the placement the study decided on, the baseline when attention lost)")
    p.add_argument("-o", "--output", default="best.yaml", help="output YAML (default: %(default)s); the decided model's "
                   "weights and deployment files go beside it, under the same name")
    p.add_argument("--formats", default=",".join(DEFAULT_FORMATS), help="deployment files exported from the decided "
                   "model's weights, each checked against them: any of Ultralytics' export formats whose packages are "
                   "installed, comma-separated, e.g. onnx,torchscript,openvino (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="with --trial: write over the study's own best.yaml (its decision)")
    _storage_option(p)

    p = commands.add_parser("validate-proxy", help="train top K and K random candidates in full; proxy-vs-full Spearman")
    p.add_argument("study_dir", help="the study folder")
    p.add_argument("--k", type=int, default=3, help="top candidates, and as many random others (default: %(default)s)")
    p.add_argument("--full-seeds", type=int, default=1, help="full trainings per candidate, scored on their mean "
                   "(default: %(default)s; 2-3 when placements differ by about seed noise)")
    p.add_argument("--proxy-epochs", type=int, help="also score the candidates with another proxy budget: epochs "
                   "(default: the study's)")
    p.add_argument("--proxy-imgsz", type=int, help="... and image size in pixels (default: the study's)")
    p.add_argument("--proxy-fraction", type=float, help="... and share of training images (default: the study's)")
    _storage_option(p)

    p = commands.add_parser("report", help="write report.md and plots of a study (also done after run/resume)")
    p.add_argument("study_dir", help="the study folder")
    p.add_argument("--out", help="folder to write report.md, report.html, the plots and trials.csv into, e.g. for a "
                   "read-only study (default: the study folder)")
    _storage_option(p)

    p = commands.add_parser("dashboard", help="browse a study in optuna-dashboard (http://127.0.0.1:8080)")
    p.add_argument("study_dir", help="the study folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    _storage_option(p)

    p = commands.add_parser("demo", help="generate a small dataset and run a complete tiny search on it (CPU, minutes)")
    p.add_argument("--out", default="results", help="output root (default: %(default)s)")
    p.add_argument("--trials", type=int, default=8, help="trials (default: %(default)s)")
    p.add_argument("--task", default="detect", help=f"the task of the toy set and model: {', '.join(DEMO_MODELS)} "
                   "(default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = commands.add_parser("space", help="print the candidate positions and the size of the search space")
    _add_space_arguments(p)

    p = commands.add_parser("build", help="write the model YAML of one placement (and transferred weights)")
    _add_space_arguments(p)
    p.add_argument(
        "--place", action="append", default=[], metavar="POSITION=SPEC[+SPEC]",
        help="attention at a position, e.g. neck.15=se or backbone.4=cbam(kernel_size=3)+eca; repeatable",
    )
    p.add_argument("--drop", action="append", default=[], metavar="POSITION", help="remove a base attention block, e.g. drop.10")
    p.add_argument("--placement", help="placement YAML ({modules: {position: [spec, ...]}, dropped: [...]})")
    p.add_argument("-o", "--output", required=True, help="where to write the model YAML")
    add_option(p, "weights", help="base checkpoint (.pt) whose tensors are transferred into the new model")
    p.add_argument("--save-weights", help="where to save the new model with the transferred weights (.pt)")
    add_option(p, "insertion")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command in {"space", "build"}:
        prepare()
    with nullcontext() if args.command == "dashboard" else ctrl_c_kept():  # Ctrl-C is how a dashboard stops
        try:
            code = COMMANDS[args.command](args)
            raise_if_pressed()  # a Ctrl-C that a garbage-collector callback swallowed still ends as one
            return code
        except ValueError as e:  # UsageError, PlacementError and the packages' validation errors
            print(f"error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except Exception as e:
            line = _storage_or_folder_error(e, args)
            if line:
                print(f"error: {line}", file=sys.stderr)
                return EXIT_BAD_INPUT
            if not disk_full(e):
                raise
            where = next((f" ({c.filename})" for c in error_chain(e) if isinstance(c, OSError) and c.filename), "")
            print(f"error: no space left on the disk{where}; free some and run the same command again: every finished "
                  "trial is kept in the study", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Terminated; Ray Tune re-raises it as a KeyboardInterrupt)
            sigterm = isinstance(e, Terminated) or terminated()
            handled()
            print(f"\n{interrupted_text(getattr(args, 'study_dir', None), 'terminated (SIGTERM)' if sigterm else 'interrupted')}",
                  file=sys.stderr)
            return EXIT_TERMINATED if sigterm else EXIT_INTERRUPTED


def _storage_or_folder_error(error: Exception, args: argparse.Namespace) -> str | None:
    """The one line for a damaged SQLite storage found while a command reads it (one that cannot be opened at all is
    named when it is opened: `search.study.storage.opening_error`), or for a file a read-only folder refused; else None."""
    from search.study.storage import damaged_storage, damaged_text

    study_dir = getattr(args, "study_dir", None)
    words = damaged_storage(error)
    if words:
        where = getattr(args, "storage", None) or (f"sqlite:///{Path(study_dir).resolve() / 'study.db'}" if study_dir else "")
        return damaged_text(where, words)
    refused = next((c for c in error_chain(error) if isinstance(c, OSError) and c.errno in (errno.EROFS, errno.EACCES)), None)
    if refused is not None and refused.errno == errno.EROFS:
        return (f"cannot write {refused.filename or 'a file'}: its folder is on a read-only file system; give the command "
                "a writable place, or make the folder writable")
    if refused is not None:
        return f"{refused.filename or 'a file'}: {refused.strerror}; check its permissions and its folder's"
    return None


def interrupted_text(study_dir: str | Path | None, how: str = "interrupted") -> str:
    """What a Ctrl-C (``how``: "interrupted") or a SIGTERM leaves and how to go on: the same command, or `resume` on
    ``study_dir`` (the study folder the command named or created; None: it had none, or was stopped before it knew it)."""
    resume = f" (or `python -m search resume {shlex.quote(str(study_dir))}`)" if study_dir is not None else ""
    return (f"{how}: every finished trial and run is kept in the study; run the same command again{resume} to go "
            "on where it stopped")
