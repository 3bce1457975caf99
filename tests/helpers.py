"""What several test modules share: the toy training budget and small assertions on the CLI."""

from __future__ import annotations

from pathlib import Path

import optuna

# Training options at which the toy set learns in a few CPU epochs (AdamW, no mosaic, no warm-up).
TRAIN = ["--proxy-imgsz", "64", "--proxy-batch", "4", "--device", "cpu", "--loader-workers", "0", "--quiet",
         "--set", "optimizer=AdamW", "--set", "lr0=0.005", "--set", "mosaic=0", "--set", "warmup_epochs=0"]
# The end-to-end budget: 6 proxy epochs, and a 3-epoch final retraining at 64 px.
TINY = ["--proxy-epochs", "6", "--final-epochs", "3", "--final-imgsz", "64", *TRAIN]


def study_of(study_dir: Path) -> optuna.Study:
    """The Optuna study of a study folder, through its run.yaml."""
    from search.config import RunConfig

    config = RunConfig.load(study_dir / "run.yaml")
    return optuna.load_study(study_name=config.study, storage=config.storage_url)


def one_line_error(argv: list[str], capsys) -> str:
    """Run the CLI in this process; assert exit 2 with one `error:` line and no traceback; the line."""
    from search.cli import main

    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def trained_looking(model):
    """``model`` in eval mode with non-trivial BatchNorm statistics and affine terms, as a trained model has
    (drawn from torch's global generator: seed it first), so that an identity check is not trivially met."""
    import torch
    from torch import nn

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def drive_ray_searcher(config, record_of) -> None:
    """The Ray executor's searcher, driven as Tune drives it (suggest until FINISHED), each trial completing at once
    with ``record_of(suggested)``, a `trainers.train.TrialRecord` (a stand-in for Tune's driver and the training)."""
    import json

    import pytest

    from search.study.loop import TrialLoop
    from search.study.ray_executor import RECORD_KEY, OptunaSearcher
    from search.study.start import start_search

    searcher = OptunaSearcher(TrialLoop(start_search(config)))
    for n in range(100):
        suggested = searcher.suggest(f"tune-{n}")
        if suggested == OptunaSearcher.FINISHED:
            return
        assert suggested is not None, "nothing waits here, so the searcher either hands out a trial or finishes"
        searcher.on_trial_complete(f"tune-{n}", result={RECORD_KEY: json.dumps(record_of(suggested).to_dict())})
    pytest.fail("the searcher never finished")


def pickle_globals(checkpoint: Path) -> set[str]:
    """``module.name`` of every class or function a torch checkpoint's pickle names, read with pickletools: nothing
    is unpickled, so nothing it names needs to be importable."""
    import io
    import pickletools
    import zipfile

    with zipfile.ZipFile(checkpoint) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    names, pushed, memo = set(), [], {}  # pushed: the last values pushed (strings, else None); memo: pickle's memo
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(arg)))
        elif op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif op.name == "STACK_GLOBAL":
            names.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        elif op.name == "GLOBAL":
            names.add(arg.replace(" ", "."))
            pushed.append(None)
        elif op.proto is not None and op.stack_after:
            pushed.append(None)
    return names
