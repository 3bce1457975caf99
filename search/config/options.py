"""The options of a search as declared: every `RunOptions` field with its default, help and choices (`option`),
the choice lists the options are checked against, and which options time candidates (`times_candidates`).

`search.cli` builds the options of `run` from these declarations; `search.config.run_config.RunConfig` adds
what a run does with them (resolve, validate, save).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field

from search.config.objectives import CHOICES, SCORE
from trainers.recipes import PROXY_RECIPES, SHORT_FINETUNE_EPOCHS

IMGSZ_STRIDE = 32  # Ultralytics rounds image sizes up to a multiple of the models' largest stride
SAMPLERS = ("tpe", "random")
LATENCY_DEVICES = ("cpu", "cuda")  # trainers.latency.DEVICES (tested equal), repeated so options are checked without torch
PRUNERS = ("median", "sha", "none")
METRICS_SEARCHED = ("task", "box")  # spaces.tasks.METRICS_SEARCHED (tested equal), as INSERTIONS below
INSERTIONS = ("gated", "plain")  # spaces.gate.INSERTIONS (tested equal), repeated so options are checked without torch
SCREENS = ("standalone", "supernet")  # how trials are evaluated (search.study.screen)


def times_candidates(options: dict) -> bool:
    """Whether a run with ``options`` (`RunConfig`'s fields, e.g. a study's recorded ones) times candidates
    before they train: latency is an objective or has a limit."""
    limits = options.get("max_slowdown") is not None or options.get("max_latency_ms") is not None
    return str(options.get("objective")).endswith("+latency") or limits


def option(default=None, help: str = "", *, shown: str | None = None, choices: tuple = (), flag: str | None = None,
           metavar: str | None = None, executor: str | None = None):
    """A `RunConfig` field with its command-line option (`search.cli` builds the option from it): the one
    place an option's default, help and choices are written. ``shown`` replaces the default in the help
    text; ``choices`` are listed there and are the only values `RunConfig.validate` accepts (one line names them);
    ``flag`` names the option when it is not ``--<field-name>``; ``executor`` names the only executor that
    reads it."""
    metadata = {"help": help, "shown": shown, "choices": choices, "flag": flag, "metavar": metavar, "executor": executor}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunOptions:
    """The options of ``python -m search run`` as declared, with their defaults (a field left None takes its
    regime's default once resolved: `search.config.regime`). `RunConfig` is what a run uses."""

    data: str = option(MISSING, "Ultralytics data.yaml of your dataset")
    model: str = option("yolov8n.yaml", "base model: an Ultralytics YAML name or path, or a checkpoint (.pt) whose "
                        "architecture is the base and whose weights are the start")
    space: str | None = option(help="search-space YAML restricting positions, types, counts and budget", shown="all")
    weights: str | None = option(help="base checkpoint (.pt) every candidate starts from", shown="from scratch")
    study: str | None = option(help="study name", shown="<dataset>-<model>")
    out: str = option("results", "output root; the study lives in <out>/<study>")
    storage: str | None = option(help="Optuna storage URL", shown="sqlite:///<out>/<study>/study.db")
    trials: int = option(100, "trials to evaluate, baseline included")
    insertion: str | None = option(help="gated: each module behind a learnable gate that starts at 0, so the model "
                                   "computes what the base computes until training opens it; plain: the modules as "
                                   "published", shown="gated from weights, plain from scratch", choices=INSERTIONS)
    proxy_epochs: int | None = option(help="epochs of each proxy training", shown="from --weights 30 on a GPU, 10 on the CPU; "
                                      "from scratch 30")
    proxy_imgsz: int | None = option(help="image size of proxy trainings, px", shown="from --weights 224 on the CPU, "
                                     "else 320")
    proxy_fraction: float = option(1.0, "share of training images proxies use")
    proxy_batch: int = option(16, "batch size, proxy and final")
    proxy_recipe: str | None = option(help="training recipe of proxy runs only (trainers/recipes.py): short-warmup (1 "
                                      "warm-up epoch) or ultralytics (its defaults: 3)", shown="short-warmup for "
                                      f"fine-tunes of at most {SHORT_FINETUNE_EPOCHS} epochs, else ultralytics",
                                      choices=tuple(PROXY_RECIPES))
    final_epochs: int = option(100, "epochs of the winner's full retraining")
    final_imgsz: int = option(640, "image size of the full retraining, px")
    final: bool = option(True, "skip confirmation, full retraining and export", flag="--no-final")
    # The race: its contenders and its proxy runs, the baseline's included (search.select.racing). Simulated searches of
    # 100 placements with one 0.01 mAP50-95 better (results/benchmarks/selection_power.py, the product's own rules):
    # at the 30-epoch GPU proxy's noise (sd 0.0045, same-seed correlation 0.3), the top 4 within 30 runs export it
    # in 80% of searches (false "improves" 3%; 122 runs in all on average), the only one of 72 settings within 130 runs
    # to reach 80% (the top 3 within 16: 54%; selection_power_intensify.md). At the old 5-epoch CPU proxy's noise
    # (sd 0.0143) no setting comes near (selection_power.md); at the 10-epoch 224-px one's (sd 0.0059, correlation
    # 0.42 over four placements) these defaults reach 61-67%, and 80% needs about 190 runs (200 trials, 8 leaders
    # intensified to 3 seeds: 88%; selection_power_small_long*.md).
    confirm_top: int = option(4, "best candidates that race the baseline on fresh seeds; 0: none")
    confirm_budget: int = option(30, "proxy runs of that race, the baseline's included; it stops earlier once the verdict "
                                 "is settled")
    prior: bool = option(True, "do not queue the usual placements (SE, CBAM, ECA, CoordAtt before SPPF, after the backbone "
                         "stages, fused, on the neck paths: spaces/prior.py) right after the baseline; leave them to the "
                         "sampler", flag="--no-prior")
    # Repeat seeds inside the search (search.select.intensify). Off by default: at the GPU proxy's noise and the same
    # runs in all, its best setting exported the winner in 79% of simulated searches against the wider race's
    # 80% (selection_power_intensify.md): repeats are trials, so fewer placements are visited. It finds a
    # winner among the first placements (the usual ones) more often (89% against 81%), one visited late less.
    intensify: int = option(0, "leaders whose lead is checked on more seeds while the search runs (each repeat seed is a "
                            "trial, the baseline gets the same seeds); 0: none")
    intensify_seeds: int = option(2, "seeds each leader gets in all, the study's seed included")
    metric: str = option("task", "the score searched: the task's own (mask mAP50-95 for segment, pose mAP50-95 for pose) "
                         "or box (box mAP50-95)", choices=METRICS_SEARCHED)
    objective: str = option(SCORE, "the task's score, or it and a second objective for a Pareto search", choices=CHOICES)
    max_slowdown: float | None = option(help="latency limit as a multiple of the baseline's, e.g. 1.10: a candidate "
                                        "whose 95% interval lies wholly above it is infeasible and never trains (one "
                                        "across it is measured again, then admitted)", shown="none")
    max_latency_ms: float | None = option(help="latency limit in milliseconds (batch 1 at --final-imgsz)", shown="none")
    latency_device: str = option("cpu", "where latency is measured: cpu (ONNX Runtime, 1 thread) or cuda (PyTorch FP16 on "
                                 "this machine's first GPU, CUDA events)", choices=LATENCY_DEVICES)
    screen: str = option("standalone", "how each trial is evaluated: standalone (a proxy training of its own) or supernet "
                         "(one shared model trained once, each trial a validation of its path; the race still trains "
                         "standalone seeds; its measured fidelity: search/study/screen.py)", choices=SCREENS)
    sampler: str = option("tpe", "Optuna sampler", choices=SAMPLERS)
    pruner: str | None = option(help="pruner of losing proxy trainings (sha: successive halving)", shown="none from "
                                "--weights, median from scratch", choices=PRUNERS)  # DEFAULT_PRUNER
    seed: int = option(0, "seed of sampler, data subset and training")
    device: str | None = option(help="cpu, 0, 0,1 ...", shown="the first GPU, else the CPU")
    loader_workers: int = option(2, "dataloader workers per training")
    timeout: float | None = option(help="stop starting new trials after this many seconds", shown="none")
    train_args: dict = option({}, "further Ultralytics training argument for proxy and final runs, e.g. lr0=0.005; "
                              "repeatable", flag="--set", metavar="KEY=VALUE")
    executor: str = option("inprocess", "inprocess: one trial at a time; ray: trials side by side on Ray Tune, on this "
                           "machine or a cluster (search/study/ray_executor.py)")
    workers: int = option(1, "trials training at the same time", executor="ray")
    gpus_per_trial: float | None = option(help="GPU share of one trial, e.g. 0.25", shown="the GPUs split among the "
                                          "workers, at most 1", executor="ray")
    cpus_per_trial: float | None = option(help="CPUs of one trial", shown="the cluster's CPUs split among the workers",
                                          executor="ray")
    ray_address: str | None = option(help="existing Ray cluster, e.g. 10.0.0.1:6379; the study folder must be on a "
                                     "filesystem all nodes share at the same path", shown="start a local cluster",
                                     executor="ray")
    trial_retries: int = option(1, "re-runs of a trial whose Ray worker died", executor="ray")
