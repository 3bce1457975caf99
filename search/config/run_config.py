"""`RunConfig`: the full, resolved configuration of a search, saved as ``run.yaml`` in the study folder.

It holds enough to resume or repeat a run: rerunning ``python -m search run`` with the same study
folder, or ``python -m search resume <dir>``, rebuilds everything from it. Its options are declared in
`search.config.options`, the defaults of each regime in `search.config.regime`, the file in
`search.config.run_file`.

Torch, `trainers.latency` (torch, SciPy) and `search.select.racing` (SciPy; a layer above) are imported inside the
checks that use them: ``python -m search --help`` stays fast.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from search.config.objectives import directions
from search.config.options import (
    IMGSZ_STRIDE,
    RunOptions,
    times_candidates,
)
from search.config.regime import DEFAULT_PRUNER, is_checkpoint, proxies_on_gpu, regime_defaults, regime_of
from search.config.run_file import run_file_values, without_password, write_run_file
from trainers.recipes import PROXY_RECIPES
from trainers.train import RESERVED, Budget


@dataclass(frozen=True)
class RunConfig(RunOptions):
    """Options of ``python -m search run``; paths are absolute, and defaults that depend on the regime
    are filled in, once `resolved`.

    ``model`` may be a checkpoint (``yolov8n.pt``): its architecture is the base and its weights the
    start. Left as None, ``proxy_epochs`` and ``insertion`` take the default of the regime (a
    pretrained start, on a GPU or not, or from scratch, see `PROXY_EPOCHS` and `DEFAULT_INSERTION`), and so
    does ``proxy_imgsz`` (`PROXY_IMGSZ`).
    """

    def proxies_on_gpu(self) -> bool:
        """Whether proxy trainings will run on a GPU (`search.config.regime.proxies_on_gpu`)."""
        return proxies_on_gpu(self)

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
        """Optuna directions: the task's score up, then the second objective's way (`search.config.objectives`)."""
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
        self._validate_choices()
        if is_checkpoint(self.model) and Path(self.weights or "").resolve() != Path(self.model).resolve():
            raise ValueError(f"--model {self.model} is a checkpoint and --weights {self.weights} another: give one of them")
        self.validate_budgets()
        self.validate_confirmation()
        self._validate_latency()
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        self._validate_executor()
        reserved = sorted(set(self.train_args) & RESERVED)
        if reserved:
            raise ValueError(f"--set {', '.join(reserved)}: set by the search itself; use its own option instead")
        if self.weights and not Path(self.weights).is_file():
            raise ValueError(f"--weights {self.weights}: no such checkpoint file; give a .pt on this disk")

    def _validate_choices(self) -> None:
        """A value outside its option's declared ``choices`` (`search.config.options.option`) is a one-line error that
        names them; a None takes its regime's default. The supernet screen scores a path once: it has no seeds to repeat."""
        for f in fields(self):
            choices, value = f.metadata.get("choices"), getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise ValueError(f"--{f.name.replace('_', '-')} '{value}' is not known; choose one of {', '.join(choices)}")
        if self.screen == "supernet" and self.intensify:
            raise ValueError("--intensify repeats seeds, and a supernet score has none (one validation of a shared model); "
                             "leave --intensify out with --screen supernet")

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
        """Raise ``ValueError`` in one line for repeat seeds or a confirmation that cannot decide (`search.select.racing`)."""
        if self.intensify < 0:
            raise ValueError(f"--intensify must be at least 0 (0: no repeat seeds), got {self.intensify}")
        if self.intensify_seeds < 2:
            raise ValueError(f"--intensify-seeds must be at least 2 (the study's seed and one more), got {self.intensify_seeds}")
        if self.confirm_top < 0:
            raise ValueError(f"--confirm-top must be at least 0, got {self.confirm_top}")
        from search.select.racing import minimal_budget

        if self.confirm_top and self.confirm_budget < minimal_budget(self.confirm_top):
            raise ValueError(f"--confirm-budget {self.confirm_budget} cannot race {self.confirm_top} candidates against the "
                             f"baseline; give at least {minimal_budget(self.confirm_top)} (or fewer --confirm-top)")

    def _validate_latency(self) -> None:
        """Latency options: positive limits, a known device, and the extra installed when latency is measured."""
        if self.max_slowdown is not None and self.max_slowdown <= 0:
            raise ValueError(f"--max-slowdown must be a positive multiple of the baseline's latency, e.g. 1.1, got {self.max_slowdown}")
        if self.max_latency_ms is not None and self.max_latency_ms <= 0:
            raise ValueError(f"--max-latency-ms must be positive, got {self.max_latency_ms}")
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
        """Options against the executor they need (its name is checked by `search.study.executor.check_executor`)."""
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
        """A copy with absolute paths, the study name and the regime's defaults filled in (`regime_defaults`; once:
        the proxy epochs of a pretrained start ask torch whether there is a GPU)."""
        absolute = lambda p: str(Path(p).resolve()) if p else p  # noqa: E731
        weights = self.weights or (self.model if is_checkpoint(self.model) else None)
        return replace(self, data=str(Path(self.data).resolve()), study=self.study or default_study_name(self.data, self.model),
                       model=self.model if not Path(self.model).is_file() else absolute(self.model), space=absolute(self.space),
                       weights=absolute(weights), out=absolute(self.out), **regime_defaults(self))

    @property
    def regime(self) -> str:
        """``pretrained`` (from --weights, or a checkpoint given as --model) or ``scratch`` (`regime_of`)."""
        return regime_of(self.model, self.weights)

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
        write_run_file(path, self.public())

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read ``run.yaml``; a broken file, unknown keys or values of the wrong type are one-line errors
        (`search.config.run_file.run_file_values`)."""
        return cls(**run_file_values(path, fields(cls)))


RUN_FIELDS = {f.name: f for f in fields(RunConfig)}  # in declaration order: `search.cli` builds `run`'s options from them


def default_study_name(data: str, model: str) -> str:
    """``<dataset>-<model>``; the dataset is the data.yaml's stem, or its folder for ``data.yaml``."""
    data_path = Path(data)
    dataset = data_path.parent.name if data_path.stem == "data" else data_path.stem
    return f"{dataset or 'data'}-{Path(model).stem}"
