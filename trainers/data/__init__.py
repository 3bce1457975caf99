"""Datasets of every task: validation of a user's data, the study's view and cached proxy subset, a generated toy set."""

from trainers.data.dataset import DataError, label_path
from trainers.data.load import load_dataset
from trainers.data.study_view import build_proxy_data, ultralytics_data, write_label_caches, write_resolved_yaml
from trainers.data.toy import make_toy_dataset

__all__ = [
    "DataError",
    "build_proxy_data",
    "label_path",
    "load_dataset",
    "make_toy_dataset",
    "ultralytics_data",
    "write_label_caches",
    "write_resolved_yaml",
]
