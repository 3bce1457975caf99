"""`RunConfig`: the full, resolved configuration of a search, saved as ``run.yaml`` in the study folder.

It holds enough to resume or repeat a run: rerunning ``python -m search run`` with the same study
folder, or ``python -m search resume <dir>``, rebuilds everything from it.
"""

from __future__ import annotations

import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from search.objectives import CHOICES, SCORE, directions, second_objective
from trainers.files import replace_file
from trainers.recipes import PROXY_RECIPES, SHORT_FINETUNE_EPOCHS
from trainers.train import Budget

IMGSZ_STRIDE = 32  # Ultralytics rounds image sizes up to a multiple of the models' largest stride
SAMPLERS = ("tpe", "random")
LATENCY_DEVICES = ("cpu", "cuda")  # trainers.latency.DEVICES (tested equal), repeated so options are checked without torch
PRUNERS = ("median", "sha", "none")
METRICS_SEARCHED = ("task", "box")  # spaces.tasks.METRICS_SEARCHED (tested equal), as INSERTIONS below
INSERTIONS = ("gated", "plain")  # spaces.gate.INSERTIONS (tested equal), repeated so options are checked without torch

# Proxy epochs and image size (px) by regime. From scratch: 30 epochs at 320 px learn bccd (bccd_signal.md).
# A fine-tune from a checkpoint on a GPU: 30 epochs at 320 px, 3x less noisy than 5 (seed sd 0.0045 against
# 0.0143, 4 and 12 seeds on an H200) for 5x the time, so a GPU-second narrows a mean twice as much
# (gpu_concurrency.md); 100 such trials take about an hour on one H200, 8 at a time. On the CPU, where 30
# epochs would take half an hour a trial: 10 epochs at 224 px with the short warm-up (trainers/recipes.py),
# about 2 min a trial on 2 cores. Against 5 epochs at 320 px, at the same time a run (1.05x), 8 seeds each
# (proxy_recipes_bccd.md, proxy_recipes_hituav-obb.md): seed sd on bccd 0.0046 against 0.0154 (0.0081 with
# the short warm-up), on hituav-obb 0.0053 against 0.0140 (0.0116); and on bccd three placements' gains over
# the baseline agree with their 30-epoch H200 gains within noise, where the 5-epoch proxy's SE gain did not.
PROXY_EPOCHS = {"pretrained": 10, "pretrained on a GPU": 30, "scratch": 30}
PROXY_IMGSZ = {"pretrained": 224, "pretrained on a GPU": 320, "scratch": 320}
# Insertion by regime: gated keeps a pretrained model's function at insertion (step0_insertion.md) and
# fine-tunes at least as well as plain (pretrained_insertion.md). From scratch there is no function to
# keep, and gated and plain score alike (bccd, SE after the 4 backbone blocks, 20 epochs at 160 px,
# 3 seeds: gated - plain +0.007, 95% interval [-0.053, +0.066]; scratch_insertion.md): the modules go
# in as published, as every from-scratch figure in README was measured.
DEFAULT_INSERTION = {"pretrained": "gated", "scratch": "plain"}
# Pruner by regime. A fine-tune's placements all start as the base model and end within about 0.01 of it,
# so one epoch's fitness does not rank them (Spearman rho -0.15 to +0.26 up to epoch 8 of bccd's
# 10-epoch CPU proxy, 17 placements x 2 seeds) and the median pruner stops a true +0.01 winner: replayed on
# real curves it trains one to the end in 10-20% of orders (10 epochs, warm-up 3), 27-55% (30-epoch H200
# curves, warm-up 10), 36-40% (5 epochs), for 13-50% of the epochs saved (pretrained_pruner*.md). So a
# fine-tune trains every trial to the end, as selection_power.py simulates. From scratch the median pruner
# stays (76% of the epochs, regret 0.0007 on 7 bccd curves: pruner_choice.md; not replayed with a winner).
DEFAULT_PRUNER = {"pretrained": "none", "scratch": "median"}


def times_candidates(options: dict) -> bool:
    """Whether a run with ``options`` (`RunConfig`'s fields, e.g. a study's recorded ones) times candidates
    before they train: latency is an objective or has a limit."""
    limits = options.get("max_slowdown") is not None or options.get("max_latency_ms") is not None
    return str(options.get("objective")).endswith("+latency") or limits


def option(default=None, help: str = "", *, shown: str | None = None, choices: tuple = (), flag: str | None = None,
           metavar: str | None = None, executor: str | None = None):
    """A `RunConfig` field with its command-line option (`search.cli` builds the option from it): the one
    place an option's default, help and choices are written. ``shown`` replaces the default in the help
    text; ``choices`` are listed there (the value is checked by `RunConfig.validate`, in one line);
    ``flag`` names the option when it is not ``--<field-name>``; ``executor`` names the only executor that
    reads it."""
    metadata = {"help": help, "shown": shown, "choices": choices, "flag": flag, "metavar": metavar, "executor": executor}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunConfig:
    """Options of ``python -m search run``; paths are absolute, and defaults that depend on the regime
    are filled in, once `resolved`.

    ``model`` may be a checkpoint (``yolov8n.pt``): its architecture is the base and its weights the
    start. Left as None, ``proxy_epochs`` and ``insertion`` take the default of the regime (a
    pretrained start, on a GPU or not, or from scratch, see `PROXY_EPOCHS` and `DEFAULT_INSERTION`), and so
    does ``proxy_imgsz`` (`PROXY_IMGSZ`).
    """

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
    # The race: its contenders and its proxy runs, the baseline's included (search.racing). Simulated searches of
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
    # Repeat seeds inside the search (search.intensify). Off by default: at the GPU proxy's noise and the same
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
                           "machine or a cluster (search/ray_executor.py)")
    workers: int = option(1, "trials training at the same time", executor="ray")
    gpus_per_trial: float | None = option(help="GPU share of one trial, e.g. 0.25", shown="the GPUs split among the "
                                          "workers, at most 1", executor="ray")
    cpus_per_trial: float | None = option(help="CPUs of one trial", shown="the cluster's CPUs split among the workers",
                                          executor="ray")
    ray_address: str | None = option(help="existing Ray cluster, e.g. 10.0.0.1:6379; the study folder must be on a "
                                     "filesystem all nodes share at the same path", shown="start a local cluster",
                                     executor="ray")
    trial_retries: int = option(1, "re-runs of a trial whose Ray worker died", executor="ray")

    def proxies_on_gpu(self) -> bool:
        """Whether proxy trainings will run on a GPU: a share of one per Ray trial, a GPU ``--device``,
        or, without ``--device``, a GPU that torch sees on this machine."""
        if self.gpus_per_trial:
            return True
        if self.device is not None:
            return str(self.device).lower() not in ("cpu", "mps")
        import torch

        return torch.cuda.is_available()

    @property
    def study_dir(self) -> Path:
        """The study's folder, ``<out>/<study>``."""
        return Path(self.out) / str(self.study)

    @property
    def storage_url(self) -> str:
        """The Optuna storage URL: ``--storage`` or the study folder's SQLite file."""
        return self.storage or f"sqlite:///{(self.study_dir / 'study.db').resolve()}"

    @property
    def proxy_budget(self) -> Budget:
        """What every proxy training of the study gets: trials, confirmation runs, proxy validation; its
        recipe's training arguments under ``--set``'s."""
        budget = self._budget(self.proxy_epochs, self.proxy_imgsz)
        return replace(budget, overrides={**PROXY_RECIPES[self.proxy_recipe or "ultralytics"], **budget.overrides})

    @property
    def final_budget(self) -> Budget:
        """The full training: ``--final-epochs`` at ``--final-imgsz`` under Ultralytics' own recipe (`Budget.proxy`
        False: its nominal batch and schedule; ``--set`` still wins), weights kept."""
        return replace(self._budget(self.final_epochs, self.final_imgsz), keep_weights=True, proxy=False)

    def _budget(self, epochs: int, imgsz: int) -> Budget:
        return Budget(epochs=epochs, imgsz=imgsz, batch=self.proxy_batch, workers=self.loader_workers, seed=self.seed,
                      device=self.device, overrides=dict(self.train_args))

    @property
    def search_seeds(self) -> range:
        """The seeds the search's trials train with: the study's, then the intensification's repeat seeds."""
        return range(self.seed, self.seed + (self.intensify_seeds if self.intensify else 1))

    @property
    def measures_latency(self) -> bool:
        """Whether candidates are timed before they train (`times_candidates`)."""
        return times_candidates(vars(self))

    @property
    def directions(self) -> list[str]:
        """Optuna directions: the task's score up, then the second objective's way (`search.objectives`)."""
        return directions(self.objective)

    def validate_budgets(self) -> None:
        """Raise ``ValueError`` with a one-line message for a proxy or final budget that cannot train."""
        for name in ("proxy_epochs", "proxy_imgsz", "proxy_batch", "final_epochs", "final_imgsz"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("proxy_imgsz", "final_imgsz"):
            if getattr(self, name) % IMGSZ_STRIDE:
                size = getattr(self, name)
                up = -(-size // IMGSZ_STRIDE) * IMGSZ_STRIDE
                raise ValueError(f"--{name.replace('_', '-')} {size} is not a multiple of {IMGSZ_STRIDE} "
                                 f"(Ultralytics would train at {up}); give {up}")
        if not 0 < self.proxy_fraction <= 1:
            raise ValueError(f"--proxy-fraction must be in (0, 1], got {self.proxy_fraction}")

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message for options that cannot work."""
        self._validate_finite()
        if self.study is not None and (self.study in ("", ".", "..") or any(c in self.study for c in "/\\")):
            raise ValueError(f"--study '{self.study}' is a name, not a path: give a name without '/' (the study goes to "
                             "<--out>/<name>; --out chooses the folder)")
        if self.loader_workers < 0:
            raise ValueError(f"--loader-workers must be at least 0 (0: images load in the training process), got {self.loader_workers}")
        if self.trials < 1:
            raise ValueError(f"--trials must be at least 1, got {self.trials}")
        if self.seed < 0:
            raise ValueError(f"--seed must be at least 0 (Ultralytics and numpy take non-negative seeds), got {self.seed}")
        second_objective(self.objective)  # a one-line error for a name not in search.objectives
        if self.metric not in METRICS_SEARCHED:
            raise ValueError(f"--metric '{self.metric}' is not known; choose one of {', '.join(METRICS_SEARCHED)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"--sampler '{self.sampler}' is not known; choose one of {', '.join(SAMPLERS)}")
        if self.insertion not in INSERTIONS:
            raise ValueError(f"--insertion '{self.insertion}' is not known; choose one of {', '.join(INSERTIONS)}")
        if is_checkpoint(self.model) and Path(self.weights or "").resolve() != Path(self.model).resolve():
            raise ValueError(f"--model {self.model} is a checkpoint and --weights {self.weights} another: give one of them")
        if self.proxy_recipe is not None and self.proxy_recipe not in PROXY_RECIPES:
            raise ValueError(f"--proxy-recipe '{self.proxy_recipe}' is not known; choose one of {', '.join(PROXY_RECIPES)}")
        if self.pruner is not None and self.pruner not in PRUNERS:
            raise ValueError(f"--pruner '{self.pruner}' is not known; choose one of {', '.join(PRUNERS)}")
        self.validate_budgets()
        self.validate_confirmation()
        self._validate_latency()
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        self._validate_executor()
        from trainers.train import RESERVED

        reserved = sorted(set(self.train_args) & RESERVED)
        if reserved:
            raise ValueError(f"--set {', '.join(reserved)}: set by the search itself; use its own option instead")
        if self.weights and not Path(self.weights).is_file():
            raise ValueError(f"--weights {self.weights}: no such checkpoint file; give a .pt on this disk")

    def _validate_finite(self) -> None:
        """NaN and infinity in a number option are one-line errors: no option means them (a limit that is left out is
        none, its default)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type.startswith("float") and isinstance(value, float) and not math.isfinite(value):
                default = f.metadata.get("shown") or f.default
                raise ValueError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}; leave it out for the "
                                 f"default ({default})")

    def validate_confirmation(self) -> None:
        """Raise ``ValueError`` in one line for repeat seeds or a confirmation that cannot decide (`search.racing`)."""
        if self.intensify < 0:
            raise ValueError(f"--intensify must be at least 0 (0: no repeat seeds), got {self.intensify}")
        if self.intensify_seeds < 2:
            raise ValueError(f"--intensify-seeds must be at least 2 (the study's seed and one more), got {self.intensify_seeds}")
        if self.confirm_top < 0:
            raise ValueError(f"--confirm-top must be at least 0, got {self.confirm_top}")
        from search.racing import minimal_budget

        if self.confirm_top and self.confirm_budget < minimal_budget(self.confirm_top):
            raise ValueError(f"--confirm-budget {self.confirm_budget} cannot race {self.confirm_top} candidates against the "
                             f"baseline; give at least {minimal_budget(self.confirm_top)} (or fewer --confirm-top)")

    def _validate_latency(self) -> None:
        """Latency options: positive limits, a known device, and the extra installed when latency is measured."""
        if self.max_slowdown is not None and self.max_slowdown <= 0:
            raise ValueError(f"--max-slowdown must be a positive multiple of the baseline's latency, e.g. 1.1, got {self.max_slowdown}")
        if self.max_latency_ms is not None and self.max_latency_ms <= 0:
            raise ValueError(f"--max-latency-ms must be positive, got {self.max_latency_ms}")
        if self.latency_device not in LATENCY_DEVICES:
            raise ValueError(f"--latency-device '{self.latency_device}' is not known; choose one of {', '.join(LATENCY_DEVICES)}")
        if self.measures_latency and self.latency_device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("--latency-device cuda: torch sees no CUDA GPU on this machine; measure on the GPU you deploy "
                                 "to, or give --latency-device cpu")
        elif self.measures_latency:
            from trainers.latency import missing_extra

            missing = missing_extra()
            if missing:
                raise ValueError(missing)

    def _validate_executor(self) -> None:
        """Options against the executor they need (its name is checked by `search.executor.check_executor`)."""
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        foreign = [f for f in fields(self) if f.metadata.get("executor") not in (None, self.executor)
                   and getattr(self, f.name) != f.default]
        if foreign:
            owner = foreign[0].metadata["executor"]
            flags = ", ".join("--" + f.name.replace("_", "-") for f in foreign)
            raise ValueError(f"{flags}: options of the {owner} executor; add --executor {owner} (the {self.executor} executor "
                             "reads none of them)")
        if self.gpus_per_trial is not None and not 0 <= self.gpus_per_trial <= 1:
            raise ValueError(f"--gpus-per-trial must be in [0, 1] (a trial trains on one GPU or a share of one), got {self.gpus_per_trial}")
        if self.cpus_per_trial is not None and self.cpus_per_trial <= 0:
            raise ValueError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.trial_retries < 0:
            raise ValueError(f"--trial-retries must be at least 0, got {self.trial_retries}")

    def resolved(self) -> RunConfig:
        """A copy with absolute paths, the study name and the regime's defaults filled in (once: the
        proxy epochs of a pretrained start ask torch whether there is a GPU)."""
        absolute = lambda p: str(Path(p).resolve()) if p else p  # noqa: E731
        weights = self.weights or (self.model if is_checkpoint(self.model) else None)
        regime = self.regime
        budget = regime  # the key of PROXY_EPOCHS and PROXY_IMGSZ; torch is asked for a GPU only when one is unset
        if regime == "pretrained" and None in (self.proxy_epochs, self.proxy_imgsz) and self.proxies_on_gpu():
            budget = "pretrained on a GPU"
        proxy_epochs = PROXY_EPOCHS[budget] if self.proxy_epochs is None else self.proxy_epochs
        proxy_imgsz = PROXY_IMGSZ[budget] if self.proxy_imgsz is None else self.proxy_imgsz
        short = regime == "pretrained" and proxy_epochs <= SHORT_FINETUNE_EPOCHS  # proxy_recipes_*.md
        recipe = self.proxy_recipe or ("short-warmup" if short else "ultralytics")
        return replace(self, data=str(Path(self.data).resolve()), study=self.study or default_study_name(self.data, self.model),
                       model=self.model if not Path(self.model).is_file() else absolute(self.model), space=absolute(self.space),
                       weights=absolute(weights), out=absolute(self.out), proxy_epochs=proxy_epochs, proxy_imgsz=proxy_imgsz,
                       proxy_recipe=recipe, insertion=self.insertion or DEFAULT_INSERTION[regime],
                       pruner=self.pruner_name)

    @property
    def regime(self) -> str:
        """``pretrained`` (from --weights, or a checkpoint given as --model) or ``scratch``: the key of the
        regime's defaults (`PROXY_EPOCHS`, `DEFAULT_INSERTION`, `DEFAULT_PRUNER`)."""
        return "pretrained" if self.weights or is_checkpoint(self.model) else "scratch"

    @property
    def pruner_name(self) -> str:
        """--pruner, or where none was given (a config not `resolved`) the regime's `DEFAULT_PRUNER`."""
        return self.pruner or DEFAULT_PRUNER[self.regime]

    def public(self) -> dict:
        """The options as a plain dict with the storage URL's password removed: what run.yaml and the
        study's ``config`` attribute keep, and what two runs compare."""
        return {**asdict(self), "storage": without_password(self.storage)}

    def save(self, path: str | Path) -> None:
        """Write as YAML (``run.yaml``), without the storage password (`public`)."""
        replace_file(path, yaml.safe_dump(self.public(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read ``run.yaml``; a broken file, unknown keys or values of the wrong type are one-line errors."""
        try:
            values = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]}); restore the file the search wrote") from None
        if not isinstance(values, dict) or "data" not in values:
            raise ValueError(f"{path}: not a run configuration (a mapping with at least 'data'); restore the file the search wrote")
        values.setdefault("insertion", "plain")  # studies from before gated insertion inserted plainly
        values.setdefault("proxy_recipe", "ultralytics")  # and those from before recipes trained with its defaults
        values.setdefault("proxy_imgsz", 320)  # every run.yaml holds it; one without it meant the old fixed default
        values.setdefault("prior", False)  # nor did they queue the usual placements: a resume does not start now
        # Studies from before the racing confirmation gave seeds per candidate (confirm_seeds); a budget
        # replaces it (below), and the race reuses their saved seed runs (same folders, same seeds).
        seeds_era = values.pop("confirm_seeds", None) is not None and "confirm_budget" not in values
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; was it written by another version?")
        defaults = cls(data=values["data"])
        for key, value in values.items():
            declared = known[key].type.split(" | ")[0]  # "int | None" -> "int" (annotations are strings here)
            if value is not None and not same_kind(value, declared):
                raise ValueError(f"{path}: '{key}: {value!r}' should be of type {declared}; restore the file the search wrote")
        if seeds_era:  # the default budget, or the least that races its --confirm-top (resume cannot change it)
            from search.racing import minimal_budget

            values["confirm_budget"] = max(defaults.confirm_budget, minimal_budget(values.get("confirm_top", defaults.confirm_top)))
        return cls(**values)


RUN_FIELDS = {f.name: f for f in fields(RunConfig)}  # in declaration order: `search.cli` builds `run`'s options from them


def _parsed(url: str | None):
    """``url`` as a SQLAlchemy URL when it holds credentials; None otherwise (or when SQLAlchemy cannot read it)."""
    if not url or "@" not in url:
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: open_study reports it
        return None


def without_password(url: str | None) -> str | None:
    """Storage ``url`` with its password removed (the database driver then reads it from its own
    environment: PGPASSWORD or ~/.pgpass, MYSQL_PWD; or give the full URL again with `resume --storage`)."""
    parsed = _parsed(url)
    return parsed._replace(password=None).render_as_string(hide_password=False) if parsed and parsed.password else url


def shown(url: str | None) -> str | None:
    """Storage ``url`` as printed in messages: the password replaced by ``***``."""
    parsed = _parsed(url)
    return parsed.render_as_string(hide_password=True) if parsed else url


def is_checkpoint(model: str) -> bool:
    """True when ``model`` names a checkpoint (``.pt``) rather than a model YAML."""
    return str(model).endswith(".pt")


def default_study_name(data: str, model: str) -> str:
    """``<dataset>-<model>``; the dataset is the data.yaml's stem, or its folder for ``data.yaml``."""
    data_path = Path(data)
    dataset = data_path.parent.name if data_path.stem == "data" else data_path.stem
    return f"{dataset or 'data'}-{Path(model).stem}"


def check_writable(folder: Path) -> None:
    """Raise ``ValueError`` if ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"output folder {folder} cannot be created ({e.strerror}); choose another --out") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"output folder {folder} is not writable; choose another --out")


def study_config_dir(study_dir: str | Path) -> Path | None:
    """Where a command on an existing study keeps Ultralytics' files: the study's ``config`` folder, or None (a
    per-user temporary folder, `search.api.prepare`) where the study folder cannot be written (a read-only copy)."""
    return Path(study_dir) / "config" if os.access(study_dir, os.W_OK) else None


def check_study_writable(study_dir: str | Path, command: str) -> None:
    """Raise ``ValueError`` in one line when ``command``, which writes into the study folder, finds it read-only."""
    if not os.access(study_dir, os.W_OK):
        raise ValueError(f"study folder {study_dir} is read-only here (a read-only mount, or its permissions) and `{command}` "
                         f"writes into it; make it writable, or copy the folder to a writable place and {command} the copy")


def same_kind(value, declared: str) -> bool:
    """True when a run.yaml value has its field's declared type (``"int"``, ...; an int passes for a float)."""
    kind = {"bool": bool, "int": int, "float": (int, float), "str": str, "dict": dict}[declared]
    return isinstance(value, kind) and (declared == "bool" or not isinstance(value, bool))


def load_study_config(study_dir: str | Path, storage: str | None = None) -> RunConfig:
    """The ``run.yaml`` of a study folder (one-line ValueError if there is none), pointing at that
    folder even when it was moved or copied since the search wrote it; ``storage`` (a command's
    ``--storage``: the URL with the password run.yaml does not keep) replaces the saved URL."""
    folder = Path(study_dir).resolve()
    path = folder / "run.yaml"
    if not path.is_file():
        raise ValueError(f"{study_dir} holds no study (no run.yaml); give the folder `run` created")
    config = RunConfig.load(path)
    if config.study_dir.resolve() != folder:
        if folder.name != config.study:
            raise ValueError(f"{study_dir} holds study '{config.study}' under another folder name; "
                             f"rename the folder back to '{config.study}'")
        config = replace(config, out=str(folder.parent))
    return replace(config, storage=storage) if storage else config


def storage_url_of(study_dir: str | Path) -> str:
    """The storage URL of the study in ``study_dir``: its ``--storage``, else its study.db.

    The SQLite file is looked for in ``study_dir`` itself, so a moved or copied folder still works.
    """
    config = load_study_config(study_dir)
    if config.storage:
        return config.storage
    db = Path(study_dir) / "study.db"
    if not db.is_file():
        raise ValueError(f"{study_dir} has no study.db; was the search started in this folder?")
    return f"sqlite:///{db.resolve()}"
