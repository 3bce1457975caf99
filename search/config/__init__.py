"""The configuration of a search: its options, the regime rules, run.yaml and the study folder; the public names
are handed on here (``from search.config import RunConfig``)."""

from search.config.objectives import CHOICES, OBJECTIVES, SCORE, Objective, directions, second_objective
from search.config.options import (
    IMGSZ_STRIDE,
    INSERTIONS,
    LATENCY_DEVICES,
    METRICS_SEARCHED,
    PRUNERS,
    SAMPLERS,
    RunOptions,
    option,
    times_candidates,
)
from search.config.regime import DEFAULT_INSERTION, DEFAULT_PRUNER, PROXY_EPOCHS, PROXY_IMGSZ, is_checkpoint
from search.config.run_config import RUN_FIELDS, RunConfig, default_study_name
from search.config.run_file import same_kind, shown, without_password
from search.config.study_folder import check_study_writable, check_writable, load_study_config, storage_url_of, study_config_dir

__all__ = ["CHOICES", "DEFAULT_INSERTION", "DEFAULT_PRUNER", "IMGSZ_STRIDE", "INSERTIONS", "LATENCY_DEVICES", "METRICS_SEARCHED",
           "OBJECTIVES", "PROXY_EPOCHS", "PROXY_IMGSZ", "PRUNERS", "RUN_FIELDS", "SAMPLERS", "SCORE", "Objective", "RunConfig",
           "RunOptions", "check_study_writable", "check_writable", "default_study_name", "directions", "is_checkpoint",
           "load_study_config", "option", "same_kind", "second_objective", "shown", "storage_url_of", "study_config_dir",
           "times_candidates", "without_password"]
