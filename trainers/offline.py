"""Make Ultralytics safe to run offline, in this process and in every process started from it.

After `prepare_ultralytics(config_dir)`:

- Ultralytics keeps its settings and fonts in ``<config_dir>/Ultralytics``, never under the home
  folder, whether or not it was imported before the call (matplotlib's cache goes to
  ``<config_dir>/matplotlib`` unless ``MPLCONFIGDIR`` is already set);
- it opens no network connection during training, validation or checkpoint loading: no settings
  sync or analytics, no Platform/HUB or third-party logger callbacks (Ray Tune's included), no
  PyPI version check, no auto-install of missing packages (a checkpoint naming a module that
  cannot be imported raises ``ModuleNotFoundError``), no font download, and no download of any
  kind: a missing model asset, dataset or remote file raises ``ConnectionError`` as it would on a
  machine without network. On a GPU, Ultralytics' AMP check therefore skips its yolo26n.pt
  comparison (its own offline path) and keeps AMP on; pass ``amp=False`` to train in FP32;
- this package's attention modules are registered with Ultralytics' YAML parser.

The environment variables it sets are inherited by child processes (Ray workers, dataloader
workers), which should still call it themselves: it is idempotent and cheap the second time.
Ultralytics (spaces imports it) and matplotlib are imported inside functions: the first import must read the environment set here.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from trainers.files import replace_file

__all__ = ["prepare_ultralytics", "ultralytics_logs_above"]

# Settings that make Ultralytics call out or load third-party loggers; all off. `api_key` empty keeps
# the Platform callbacks inert (they need a key), `raytune` off keeps Ultralytics' own Ray Tune
# callback from reporting into our trials.
_SETTINGS = {
    "sync": False,
    "api_key": "",
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
}
# check_font() (called by every check_det_dataset) looks for these in the config dir before it
# downloads them; matplotlib's bundled DejaVu Sans stands in for both.
_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")

_prepared: Path | None = None


def prepare_ultralytics(config_dir: str | os.PathLike[str]) -> None:
    """Configure Ultralytics for offline use with its files in ``config_dir`` (created if missing)."""
    global _prepared
    config_dir = Path(config_dir).expanduser().resolve()
    _set_environment(config_dir)
    if _prepared == config_dir:
        return
    config_dir.mkdir(parents=True, exist_ok=True)

    import ultralytics.utils as ul_utils

    _adopt_environment(ul_utils, config_dir / "Ultralytics")
    changed = {k: v for k, v in _SETTINGS.items() if ul_utils.SETTINGS.get(k) != v}
    if changed:  # write only on change: Ray workers sharing config_dir then read, not rewrite, the file
        ul_utils.SETTINGS.update(changed)
    _install_fonts(ul_utils.USER_CONFIG_DIR)
    _refuse_downloads()

    from spaces import register_modules

    register_modules()
    _prepared = config_dir


def _set_environment(config_dir: Path) -> None:
    """Ultralytics' documented switches, read when it is imported, here and in child processes."""
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "True"  # is_online() is False without a DNS lookup
    os.environ["YOLO_AUTOINSTALL"] = "False"  # check_requirements() never runs pip/uv/apt
    os.environ.pop("ULTRALYTICS_API_KEY", None)  # would switch the Platform callbacks on
    os.environ.setdefault("MPLCONFIGDIR", str(config_dir / "matplotlib"))


def _install_fonts(user_config_dir: Path) -> None:
    """Put the fonts check_font() wants where it looks first, so it never downloads them."""
    missing = [name for name in _FONTS if not (user_config_dir / name).is_file()]
    if not missing:
        return
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in missing:  # a process reading the font never sees half a file
        replace_file(user_config_dir / name, source.read_bytes())


# --- Ultralytics internals (8.4): no setting or environment variable does what follows ---------
# An Ultralytics imported before the environment was set keeps what it read then, in module
# constants and in SETTINGS; `_adopt_environment` rebinds them. Downloads have no off switch:
# `safe_download` is the one function through which every Ultralytics download goes (model assets,
# including the AMP check's yolo26n.pt on GPU and any missing *.pt named like an official one;
# `download:` URLs and scripts in dataset YAMLs; remote `data=`/`model=` files; fonts), and
# `get_github_assets` asks the GitHub API which files a release holds (attempt_download_asset for
# any other missing *.pt). `_refuse_downloads` makes them fail as they do on a machine without
# network, with a ConnectionError and no assets, so Ultralytics' own offline handling (check_amp:
# "checks skipped") applies. Local files still go through `safe_download` (a local dataset zip).
# Copies made by `from ... import` in loaded Ultralytics modules are rebound too.


def _adopt_environment(ul_utils: ModuleType, user_config_dir: Path) -> None:
    """Give an Ultralytics imported before `_set_environment` the values a fresh import now gets.

    Ultralytics reads its environment once, into module constants that its modules copy at import
    time, and builds SETTINGS from the settings file found then. Rebind those copies in every
    loaded Ultralytics module and point SETTINGS at the settings file in ``user_config_dir``.
    """
    if ul_utils.USER_CONFIG_DIR == user_config_dir and not ul_utils.ONLINE and not ul_utils.AUTOINSTALL:
        return  # imported after _set_environment: nothing to adopt
    user_config_dir.mkdir(parents=True, exist_ok=True)
    settings = ul_utils.SETTINGS
    fresh = ul_utils.SettingsManager(user_config_dir / "settings.json")  # loads or creates that file
    vars(settings).update(vars(fresh))  # file, file_path, lock, help text: persist there from now on
    dict.clear(settings)  # dict-level, so the old file is left as it was
    dict.update(settings, fresh)
    constants = {
        "USER_CONFIG_DIR": user_config_dir,
        "SETTINGS_FILE": settings.file,
        "ONLINE": False,
        "AUTOINSTALL": False,
        "DATASETS_DIR": Path(settings["datasets_dir"]),
        "WEIGHTS_DIR": Path(settings["weights_dir"]),
        "RUNS_DIR": Path(settings["runs_dir"]),
    }
    for module in _ultralytics_modules():
        for name, value in constants.items():
            if name in vars(module):
                setattr(module, name, value)
    if events := sys.modules.get("ultralytics.utils.events"):
        events.events.enabled = False  # analytics decided at import, from the ONLINE of that time


def _no_github_assets(
    repo: str = "ultralytics/assets", version: str = "latest", retry: bool = False
) -> tuple[str, list[str]]:
    """What Ultralytics' get_github_assets returns when the GitHub API cannot be reached."""
    return "", []


def _refuse_downloads() -> None:
    from ultralytics.utils import downloads

    if downloads.get_github_assets is _no_github_assets:
        return
    original_safe_download = downloads.safe_download

    @functools.wraps(original_safe_download)
    def safe_download(url: Any, *args: Any, **kwargs: Any) -> Path:
        if "://" not in str(url) and Path(str(url)).is_file():
            return original_safe_download(url, *args, **kwargs)
        raise ConnectionError(f"Offline: refusing to download {url} (see trainers/offline.py)")

    for name, new in (("safe_download", safe_download), ("get_github_assets", _no_github_assets)):
        old = getattr(downloads, name)
        for module in _ultralytics_modules():
            if vars(module).get(name) is old:
                setattr(module, name, new)


def _ultralytics_modules() -> list[ModuleType]:
    return [m for n, m in list(sys.modules.items()) if n.partition(".")[0] == "ultralytics" and m is not None]


@contextmanager
def ultralytics_logs_above(level: int) -> Iterator[None]:
    """Ultralytics' log lines below ``level`` (a `logging` level) off while the block runs, as they were after it: its
    banners and hints where we print our own lines (``logging.CRITICAL + 1`` also turns its progress bars off)."""
    logger = logging.getLogger("ultralytics")
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)
