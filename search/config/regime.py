"""The regime rules: a search fine-tunes a checkpoint (``pretrained``) or trains ``scratch``, on a GPU or not, and
the proxy epochs, image size, recipe, insertion and pruner an option left out takes in each (`regime_defaults`).

Torch is imported only where it is asked for a GPU (`proxies_on_gpu`): ``python -m search --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainers.recipes import SHORT_FINETUNE_EPOCHS

if TYPE_CHECKING:
    from search.config.options import RunOptions


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


def is_checkpoint(model: str) -> bool:
    """True when ``model`` names a checkpoint (``.pt``) rather than a model YAML."""
    return str(model).endswith(".pt")


def regime_of(model: str, weights: str | None) -> str:
    """``pretrained`` (from ``weights``, or a checkpoint given as ``model``) or ``scratch``: the key of the
    regime's defaults (`PROXY_EPOCHS`, `DEFAULT_INSERTION`, `DEFAULT_PRUNER`)."""
    return "pretrained" if weights or is_checkpoint(model) else "scratch"


def proxies_on_gpu(options: RunOptions) -> bool:
    """Whether proxy trainings will run on a GPU: a share of one per Ray trial, a GPU ``--device``,
    or, without ``--device``, a GPU that torch sees on this machine."""
    if options.gpus_per_trial:
        return True
    if options.device is not None:
        return str(options.device).lower() not in ("cpu", "mps")
    import torch

    return torch.cuda.is_available()


def regime_defaults(options: RunOptions) -> dict:
    """``proxy_epochs``, ``proxy_imgsz``, ``proxy_recipe``, ``insertion`` and ``pruner`` of ``options``, each the
    given value or, left None, its regime's default (once: the proxy epochs of a pretrained start ask torch
    whether there is a GPU)."""
    regime = regime_of(options.model, options.weights)
    budget = regime  # the key of PROXY_EPOCHS and PROXY_IMGSZ; torch is asked for a GPU only when one is unset
    if regime == "pretrained" and None in (options.proxy_epochs, options.proxy_imgsz) and proxies_on_gpu(options):
        budget = "pretrained on a GPU"
    proxy_epochs = PROXY_EPOCHS[budget] if options.proxy_epochs is None else options.proxy_epochs
    proxy_imgsz = PROXY_IMGSZ[budget] if options.proxy_imgsz is None else options.proxy_imgsz
    short = regime == "pretrained" and proxy_epochs <= SHORT_FINETUNE_EPOCHS  # proxy_recipes_*.md
    return {"proxy_epochs": proxy_epochs, "proxy_imgsz": proxy_imgsz,
            "proxy_recipe": options.proxy_recipe or ("short-warmup" if short else "ultralytics"),
            "insertion": options.insertion or DEFAULT_INSERTION[regime], "pruner": options.pruner or DEFAULT_PRUNER[regime]}
