"""The pretrained regime: `--model x.pt` / `--weights x.pt`, its defaults, and checkpoints that
cannot serve as the start (a self-made checkpoint stands in for yolov8n.pt)."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest
import torch
import yaml
from ultralytics.nn.tasks import DetectionModel

from search.cli import main
from search.config import PROXY_EPOCHS, RunConfig
from search.study.storage import make_pruner
from spaces import load_base


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "yolov8n.pt"
    torch.save({"model": DetectionModel(load_base("yolov8n.yaml"), verbose=False)}, path)
    return path


def test_regime_sets_proxy_epochs_and_insertion(checkpoint):
    scratch = RunConfig(data="d.yaml").resolved()
    assert (scratch.weights, scratch.proxy_epochs, scratch.insertion) == (None, PROXY_EPOCHS["scratch"], "plain")
    named = RunConfig(data="d.yaml", model=str(checkpoint), device="cpu").resolved()  # on a GPU: test below
    assert named.weights == str(checkpoint) and named.proxy_epochs == PROXY_EPOCHS["pretrained"]
    given = RunConfig(data="d.yaml", weights=str(checkpoint), proxy_epochs=7, insertion="plain").resolved()
    assert (given.proxy_epochs, given.insertion) == (7, "plain")


def test_a_fine_tune_trains_every_trial_to_the_end_unless_a_pruner_is_given(checkpoint):
    """results/benchmarks/pretrained_pruner_10_epochs.md: the median pruner stops a true +0.01 winner of a fine-tune
    in most orders, so a fine-tune does not prune by default; from scratch the median pruner stays."""
    pretrained = RunConfig(data="d.yaml", weights=str(checkpoint), device="cpu")
    assert pretrained.resolved().pruner == pretrained.pruner_name == "none"
    assert isinstance(make_pruner(pretrained.resolved()), optuna.pruners.NopPruner)
    scratch = RunConfig(data="d.yaml")
    assert scratch.resolved().pruner == scratch.pruner_name == "median"
    assert isinstance(make_pruner(scratch.resolved()), optuna.pruners.MedianPruner)
    assert RunConfig(data="d.yaml", weights=str(checkpoint), pruner="median", device="cpu").resolved().pruner == "median"


def test_a_short_fine_tune_takes_the_short_warmup_recipe_for_its_proxies_only(checkpoint, tmp_path):
    """Pretrained with at most 10 proxy epochs: short warm-up; from scratch or longer: Ultralytics' defaults. The
    recipe reaches proxy runs, not the final training, and --set wins over it; a run.yaml from before recipes
    reads as Ultralytics' defaults."""
    resolved = lambda **options: RunConfig(data="d.yaml", device="cpu", **options).resolved()  # noqa: E731
    short = resolved(weights=str(checkpoint))
    assert short.proxy_recipe == "short-warmup" and short.proxy_budget.overrides["warmup_epochs"] == 1
    assert "warmup_epochs" not in short.final_budget.overrides
    assert resolved(weights=str(checkpoint), proxy_epochs=30).proxy_recipe == "ultralytics"
    assert resolved().proxy_recipe == "ultralytics" and resolved().proxy_budget.overrides == {}
    mine = resolved(weights=str(checkpoint), train_args={"warmup_epochs": 2})
    assert mine.proxy_budget.overrides["warmup_epochs"] == 2 and mine.final_budget.overrides == {"warmup_epochs": 2}
    assert resolved(weights=str(checkpoint), proxy_recipe="ultralytics").proxy_budget.overrides == {}
    (tmp_path / "run.yaml").write_text("data: d.yaml\nproxy_epochs: 5\n")
    assert RunConfig.load(tmp_path / "run.yaml").proxy_recipe == "ultralytics"
    with pytest.raises(ValueError, match="--proxy-recipe 'long' is not known"):
        RunConfig(data="d.yaml", proxy_recipe="long").resolved().validate()


def test_the_final_training_is_ultralytics_recipe_and_proxies_keep_theirs(checkpoint):
    """final_vs_ultralytics_*.md: the model handed back trains as plain Ultralytics would (its nominal batch 64 and
    patience, left to Ultralytics), whatever the regime; proxies, the race's included, take one optimizer step per
    batch, the measured choice (proxy_recipes_bccd.md: nbs 64 gave a fine-tune's proxy seed sd 0.0128 against 0.0046),
    and leave stopping to the pruner; --set still wins over both."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    for options in ({"weights": str(checkpoint)}, {}):
        config = RunConfig(data="d.yaml", device="cpu", proxy_batch=8, **options).resolved()
        final = config.final_budget.train_args()
        assert "nbs" not in final and "patience" not in final and DEFAULT_CFG_DICT["nbs"] == 64
        assert final["batch"] == 8 and final["epochs"] == config.final_epochs and final["imgsz"] == config.final_imgsz
        proxy = config.proxy_budget.train_args()
        assert proxy["nbs"] == 8 and proxy["patience"] == config.proxy_epochs
    mine = RunConfig(data="d.yaml", device="cpu", train_args={"nbs": 16}).resolved()
    assert mine.final_budget.train_args()["nbs"] == mine.proxy_budget.train_args()["nbs"] == 16


def test_the_gpu_is_asked_once_when_the_run_is_resolved(checkpoint, monkeypatch):
    """torch.cuda.is_available is counted, not faked: construction, copies and loading never ask it."""
    import torch

    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: asked.append(1) or False)
    config = RunConfig(data="d.yaml", weights=str(checkpoint))
    assert config.proxy_epochs is None and not asked  # unresolved: the regime's default is not chosen yet
    resolved = config.resolved()
    assert len(asked) == 1 and resolved.proxy_epochs == PROXY_EPOCHS["pretrained"]
    replace(resolved, trials=3).resolved()  # copies and a second resolution keep the choice
    assert len(asked) == 1


def test_a_pretrained_proxy_is_longer_on_a_gpu(checkpoint, monkeypatch):
    """torch.cuda.is_available is mocked: this machine has no GPU, and the choice is what is tested."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    epochs = lambda **options: RunConfig(data="d.yaml", **options).resolved().proxy_epochs  # noqa: E731
    assert epochs(weights=str(checkpoint)) == PROXY_EPOCHS["pretrained on a GPU"] == 30
    assert epochs(weights=str(checkpoint), device="cpu") == PROXY_EPOCHS["pretrained"]
    assert epochs() == PROXY_EPOCHS["scratch"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert epochs(weights=str(checkpoint)) == PROXY_EPOCHS["pretrained"] == 10
    assert epochs(weights=str(checkpoint), device="0") == 30
    assert epochs(weights=str(checkpoint), executor="ray", gpus_per_trial=0.25) == 30


def test_a_pretrained_proxy_on_the_cpu_trains_longer_at_a_smaller_size(checkpoint, monkeypatch):
    """10 epochs at 224 px with the short warm-up (proxy_recipes_*.md); a GPU keeps 320 px, as does a scratch
    start, and a given size or epoch count is kept. torch.cuda.is_available is mocked, as above."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def budget(**options) -> tuple[int, int, str]:
        config = RunConfig(data="d.yaml", **options).resolved()
        return config.proxy_epochs, config.proxy_imgsz, config.proxy_recipe

    assert budget(weights=str(checkpoint)) == (10, 224, "short-warmup")
    assert budget(weights=str(checkpoint), proxy_imgsz=320) == (10, 320, "short-warmup")
    assert budget(weights=str(checkpoint), proxy_epochs=5) == (5, 224, "short-warmup")
    assert budget() == (30, 320, "ultralytics")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert budget(weights=str(checkpoint)) == (30, 320, "ultralytics")
    assert budget(weights=str(checkpoint), proxy_epochs=10) == (10, 320, "short-warmup")  # the size follows the device


def test_checkpoint_as_model_is_its_own_architecture(checkpoint):
    base = load_base(checkpoint)
    assert [row[2] for row in base["backbone"]] == [row[2] for row in load_base("yolov8n.yaml")["backbone"]]


def test_old_run_yaml_keeps_plain_insertion(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"data": "d.yaml", "proxy_epochs": 30}))
    assert RunConfig.load(path).insertion == "plain"


def _error(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    return err


def test_unusable_checkpoints_are_one_line_errors(checkpoint, toy_data, tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    out = ["--out", str(tmp_path), "--quiet", "--no-final"]
    assert "is not a loadable Ultralytics checkpoint" in _error(["run", "--data", str(toy_data), "--weights", str(text), *out], capsys)
    assert "does not match the base model" in _error(
        ["run", "--data", str(toy_data), "--model", "yolov8s.yaml", "--weights", str(checkpoint), *out], capsys
    )
    assert "give one of them" in _error(
        ["run", "--data", str(toy_data), "--model", str(checkpoint), "--weights", str(text), *out], capsys
    )
    assert "does not match the base model" in _error(
        ["build", "--model", "yolov8s.yaml", "--place", "backbone.2=se", "-o", str(tmp_path / "m.yaml"),
         "--weights", str(checkpoint), "--save-weights", str(tmp_path / "m.pt")], capsys,
    )
    assert not (tmp_path / "m.pt").exists() and not list(tmp_path.glob("*/study.db"))


def test_build_from_a_checkpoint_is_gated_and_keeps_the_function(checkpoint, tmp_path, capsys):
    assert main(["build", "--model", str(checkpoint), "--place", "backbone.2=cbam", "-o", str(tmp_path / "m.yaml"),
                 "--weights", str(checkpoint), "--save-weights", str(tmp_path / "m.pt")]) == 0
    assert "Gated" in (tmp_path / "m.yaml").read_text()
    new = torch.load(tmp_path / "m.pt", weights_only=False)["model"].float().eval()
    base = torch.load(checkpoint, weights_only=False)["model"].half().float().eval()  # saved in half, as Ultralytics saves
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(new(x)[0], base(x)[0], rtol=0, atol=0)
