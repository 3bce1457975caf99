"""The commands of ``python -m search``, one function each (`COMMANDS`: name -> function of the parsed arguments,
returning the exit code); `search.cli` parses the arguments and runs one.

Torch, Ultralytics, Optuna and NumPy (`spaces`, the study, its final step, its report and the dashboard) are imported
inside the commands that use them: ``python -m search --help`` stays fast.
"""

from __future__ import annotations

import argparse
import ast
import os
from dataclasses import replace
from pathlib import Path

import yaml

from search.api import complete, prepare_run
from search.config.run_config import RunConfig
from search.config.study_folder import check_study_writable, check_writable, load_study_config, prepare, storage_url_of, study_config_dir
from trainers.deploy import export_checked

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad input from the user: printed as one line, exit code 2."""


def _placement(args: argparse.Namespace):
    from spaces import Placement

    modules: dict[str, list[str]] = {}
    dropped = list(args.drop)
    if args.placement:
        try:
            loaded = Placement.from_dict(yaml.safe_load(Path(args.placement).read_text()))
        except OSError as e:
            raise UsageError(f"cannot read placement file {args.placement}: {e.strerror}") from e
        modules = {p: list(s) for p, s in loaded.modules}
        dropped += list(loaded.dropped)
    for item in args.place:
        position, sep, specs = item.partition("=")
        if not sep or not specs:
            raise UsageError(f"--place {item!r}: write POSITION=SPEC, e.g. neck.15=se")
        modules.setdefault(position.strip(), []).extend(s.strip() for s in specs.split("+"))
    return Placement.of(modules, dropped)


def _search(config, quiet: bool) -> int:
    """`search.api.complete`, and what it did in a few lines."""
    outcome = complete(config, show_progress=not quiet)
    if outcome.waiting:
        print(outcome.waiting)
    decision = outcome.decision
    if decision is not None:
        print(f"verdict: {decision.verdict}")
        print(f"exported {config.study_dir / 'best.yaml'}: trial {decision.trial} ({decision.placement_str})")
    if (config.study_dir / "report.md").is_file():
        print(f"report: {config.study_dir / 'report.md'}")
    print(f"study folder: {config.study_dir}")
    return 0


def _key_values(items: list[str]) -> dict:
    """``["lr0=0.005", "mosaic=0"]`` -> ``{"lr0": 0.005, "mosaic": 0}`` (values as Python literals)."""
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: write KEY=VALUE, e.g. lr0=0.005")
        try:
            values[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            values[key.strip()] = text.strip()
    return values


def cmd_run(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k not in {"command", "quiet"}}
    options["train_args"] = _key_values(args.train_args)
    config = RunConfig(**options).resolved()
    args.study_dir = config.study_dir  # for the interrupt message
    prepare_run(config)
    return _search(config, args.quiet)


def cmd_resume(args: argparse.Namespace) -> int:
    config = load_study_config(args.study_dir, args.storage)
    check_study_writable(config.study_dir, "resume")
    if args.trials is not None:
        config = replace(config, trials=args.trials)
    prepare(config.study_dir / "config", quiet=True)
    return _search(config, args.quiet)


def cmd_export(args: argparse.Namespace) -> int:
    """Reads the study only (its storage too), so a read-only study exports to any writable ``-o``."""
    from search.final.export import FINAL_WEIGHTS, export_trial, val_images
    from search.study.records import task_of_study
    from search.study.start import load_inputs
    from search.study.storage import load_study

    config = load_study_config(args.study_dir, args.storage)
    formats = tuple(filter(None, (f.strip().lower() for f in args.formats.split(","))))
    output = Path(args.output)
    if output.is_dir():
        raise UsageError(f"-o {args.output} is a folder; give a file name, e.g. -o {output / 'best.yaml'}")
    if args.trial is not None and output.resolve() == (config.study_dir / "best.yaml").resolve() and not args.force:
        raise UsageError(f"-o {args.output} is the study's own best.yaml (its decision): write trial {args.trial} elsewhere "
                         "with -o, or add --force to replace it")
    _check_output(output)
    prepare(study_config_dir(config.study_dir))
    base, _ = load_inputs(config)
    study = load_study(config)
    path, said = export_trial(study, config, base, args.output, args.trial)
    print(f"wrote {path}: {said}")
    if args.trial is not None:
        print("a trial keeps no weights (proxy trainings are not saved): train this YAML, or export the study's decision")
        return 0
    weights = config.study_dir / FINAL_WEIGHTS
    if not weights.is_file():
        print(f"no deployment files: the final training's weights ({weights}) are missing; `python -m search resume "
              f"{config.study_dir}` trains them")
        return 0
    checks = export_checked(weights, path.with_suffix(""), config.final_imgsz, val_images(config, task_of_study(study)), formats)
    print(f"wrote {path.with_suffix('.pt')}: the decided model's weights")
    for c in checks:
        print(f"wrote {path.parent / c.file}: {c.same} of {c.images} val images detect the same, raw outputs within "
              f"{c.relative:.1e} of their scale" if c.ok else f"{c.format}: {c.reason or 'differs from the PyTorch model'}")
    return 0 if all(c.ok for c in checks) else EXIT_BAD_INPUT


def _check_output(output: Path) -> None:
    """A one-line `UsageError` when ``output``'s folder exists and cannot be written (a read-only study, say)."""
    folder = next((p for p in (output.absolute().parent, *output.absolute().parents) if p.exists()), None)
    if folder is not None and not os.access(folder, os.W_OK):
        raise UsageError(f"-o {output}: its folder {folder} is read-only here; give -o a path in a writable folder")


def cmd_validate_proxy(args: argparse.Namespace) -> int:
    from search.final.proxy_check import validate_proxy
    from search.report import write_report
    from search.study.start import load_inputs
    from search.study.storage import open_study

    if args.k < 1 or args.full_seeds < 1:
        raise UsageError(f"--k and --full-seeds must be at least 1, got {args.k} and {args.full_seeds}")
    config = load_study_config(args.study_dir, args.storage)
    check_study_writable(config.study_dir, "validate-proxy")  # it trains into the study folder and writes its report
    prepare(config.study_dir / "config", quiet=True)
    base, _ = load_inputs(config)
    changes = {k: getattr(args, k) for k in ("proxy_epochs", "proxy_imgsz", "proxy_fraction") if getattr(args, k) is not None}
    proxy = replace(config, **changes)
    proxy.validate_budgets()
    result = validate_proxy(open_study(config), config, base, args.k, proxy, args.full_seeds)
    for found in result["budgets"]:
        rho = "undefined (fewer than 3 candidates scored)" if found["spearman"] is None else f"{found['spearman']:+.3f}"
        print(f"Spearman proxy ({found['label']}) vs full over {found['n']} candidates: {rho}")
    print(f"report: {write_report(config.study_dir, config.storage_url)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from search.report import write_report

    folder = load_study_config(args.study_dir).study_dir  # one line for a folder that holds no study
    if args.out is None and not os.access(folder, os.W_OK):
        raise UsageError(f"study folder {args.study_dir} is read-only here; give the report a writable folder with --out DIR")
    if args.out is not None:
        check_writable(Path(args.out))
    print(f"wrote {write_report(args.study_dir, args.storage, out=args.out)}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from search.dashboard import serve_dashboard

    serve_dashboard(args.storage or storage_url_of(args.study_dir), host=args.host, port=args.port, study_dir=args.study_dir)
    return 0


# The demo's budget: a toy set that a from-scratch yolov8n learns in a few CPU epochs at 64 px; a race of at most
# 16 runs keeps it to minutes. nbs 4 (= the batch) for the final training too, which otherwise takes Ultralytics'
# 64: at 8 batches an epoch that would be one optimizer step every 2 epochs, and the toy model would learn nothing.
DEMO_OPTIONS = {"proxy_epochs": 6, "proxy_imgsz": 64, "proxy_batch": 4, "final_epochs": 10, "final_imgsz": 64,
                "device": "cpu", "loader_workers": 0, "pruner": "median", "confirm_top": 3, "confirm_budget": 16,
                "train_args": {"optimizer": "AdamW", "lr0": 0.005, "mosaic": 0.0, "warmup_epochs": 0, "nbs": 4}}

DEMO_MODELS = {"detect": "yolov8n.yaml", "segment": "yolov8n-seg.yaml", "pose": "yolov8n-pose.yaml", "obb": "yolov8n-obb.yaml",
               "classify": "yolov8n-cls.yaml"}


def cmd_demo(args: argparse.Namespace) -> int:
    from trainers.data import make_toy_dataset

    if args.task not in DEMO_MODELS:
        raise UsageError(f"--task '{args.task}' is not known; choose one of {', '.join(DEMO_MODELS)}")
    out = Path(args.out)
    check_writable(out)
    study = "demo" if args.task == "detect" else f"demo-{args.task}"
    prepare(out / study / "config", quiet=True)
    data = make_toy_dataset(out / f"{study}-data", n_train=32, n_val=8, imgsz=64, task=args.task)
    print(f"generated a toy {args.task} dataset (rectangles and ellipses): {data}")
    config = RunConfig(data=str(data), model=DEMO_MODELS[args.task], out=str(out), study=study, trials=args.trials,
                       **DEMO_OPTIONS).resolved()
    args.study_dir = config.study_dir  # for the interrupt message
    config.validate()
    return _search(config, args.quiet)


def cmd_space(args: argparse.Namespace) -> int:
    from spaces import load_base, load_space

    space = load_space(load_base(args.model), args.space)
    params, gflops = space.base_cost
    print(f"base model: {args.model} (scale {space.base.get('scale') or '-'}, {params:,} parameters, {gflops:.1f} GFLOPs)")
    print(f"{'position':<14}{'kind':<10}{'layer':>6}  {'module':<10}{'channels':>9}")
    for p in space.positions:
        print(f"{p.name:<14}{p.kind:<10}{p.layer:>6}  {p.module:<10}{p.channels:>9}")
    print(f"attention choices per module ({len(space.choices)}): {', '.join(space.choices)}")
    total = "no limit" if space.max_total is None else space.max_total
    print(f"up to {space.max_per_position} per position, {total} in all; budget: {space.budget or 'none'}")
    print(f"search space size: {space.size():,} placements (baseline included, before the budget)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from spaces import build_yaml, load_base, load_space, transfer_weights, write_yaml
    from spaces.layers import checkpoint_model
    from spaces.tasks import task_of
    from spaces.transfer import check_matches
    from trainers.checkpoint import save_checkpoint

    base = load_base(args.model)
    space = load_space(base, args.space)
    placement = _placement(args)
    space.check(placement)
    insertion = RunConfig(data="", model=args.model, weights=args.weights, insertion=args.insertion).resolved().insertion
    model_dict = build_yaml(base, placement, insertion)
    comment = f"built by `python -m search build` from {args.model}\nplacement: {placement}"
    path = write_yaml(model_dict, args.output, comment)
    cost = space.cost(placement)
    print(f"wrote {path}: {placement}; {cost.params:,} parameters ({cost.params_pct:+.2f}%), "
          f"{cost.gflops:.2f} GFLOPs ({cost.gflops_pct:+.2f}%)")
    if args.weights or args.save_weights:
        if not (args.weights and args.save_weights):
            raise UsageError("--weights and --save-weights go together: the base checkpoint and where to save the new one")
        check_matches(args.weights, base)
        source = checkpoint_model(args.weights)  # loaded once, for the transfer and its names and image size
        model = task_of(base).model(model_dict, verbose=False)
        report = transfer_weights(source, model, placement)
        size, note = save_checkpoint(model, task_of(base).name, source, path, args.save_weights, {"transfer": str(report)})
        if note:
            print(f"note: {note}")
        print(f"{report}; saved {args.save_weights} ({size / 1e6:.1f} MB)")
    return 0


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "export": cmd_export, "validate-proxy": cmd_validate_proxy, "report": cmd_report,
            "dashboard": cmd_dashboard, "demo": cmd_demo, "space": cmd_space, "build": cmd_build}
