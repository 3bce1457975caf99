"""Proxy recipes: the Ultralytics training arguments a proxy run adds to its budget, one row per recipe.

A 5-epoch fine-tune under Ultralytics' defaults spends 3 epochs warming up (`warmup_epochs` 3, capped at
epochs - 1), so its score still climbs steeply at its last epoch and moves with the seed. A shorter
warm-up ends the climb sooner. `--proxy-recipe` picks a row for proxy runs only (trials, confirmation,
proxy validation); the final training keeps Ultralytics' defaults, and ``--set`` wins over a recipe.
Measured in results/benchmarks/proxy_recipes_<dataset>.md.
"""

from __future__ import annotations

PROXY_RECIPES: dict[str, dict] = {
    "ultralytics": {},  # Ultralytics' own defaults (the only recipe of studies from before recipes)
    "short-warmup": {"warmup_epochs": 1, "warmup_bias_lr": 0.0},  # 1 warm-up epoch, bias warm-up from 0
}
SHORT_FINETUNE_EPOCHS = 10  # a fine-tune of at most this many proxy epochs takes the short warm-up by default
