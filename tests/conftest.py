"""Shared test set-up: Ultralytics configured before its first import, the slow marker."""

from __future__ import annotations

import os
import tempfile

# Ultralytics writes a settings file at import time; keep it out of the user's home.
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-config-"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """data.yaml of a generated 16+8 image, 2-class detection set (96 px)."""
    from trainers.data import make_toy_dataset

    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_train=16, n_val=8, imgsz=96)


@pytest.fixture(scope="session")
def toy_proxy(toy_data, tmp_path_factory):
    """The toy set as proxy data at 64 px."""
    from trainers.data import build_proxy_data, load_dataset

    return build_proxy_data(load_dataset(toy_data), tmp_path_factory.mktemp("proxy"), imgsz=64)


@pytest.fixture(scope="session")
def learnable_data(tmp_path_factory):
    """data.yaml of a generated 32+8 image set (64 px) that a from-scratch yolov8n learns in a few epochs."""
    from trainers.data import make_toy_dataset

    return make_toy_dataset(tmp_path_factory.mktemp("data"), n_train=32, n_val=8, imgsz=64)
