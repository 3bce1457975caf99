"""`search.final.decision`: the study's decision read back as it was stored, and `export` writing that decision
(not the best single proxy run) on a hand-made study."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import FINAL, confirmed_final, make_confirmed_study, make_study

from helpers import one_line_error
from search.cli import main
from search.final.decision import Decision
from spaces.tasks import TASKS


def _holds(stored: object, original: object) -> bool:
    """Whether ``stored`` keeps every key and value of ``original`` (new keys may be added)."""
    if isinstance(original, dict):
        return isinstance(stored, dict) and all(k in stored and _holds(stored[k], v) for k, v in original.items())
    if isinstance(original, list):
        return isinstance(stored, list) and len(stored) == len(original) and all(map(_holds, stored, original))
    return stored == original


@pytest.mark.parametrize("stored", [FINAL, confirmed_final()], ids=["before the race", "raced"])
def test_a_stored_decision_reads_back_unchanged(stored):
    decision = Decision.from_dict(stored, TASKS["detect"].metric_names)
    assert _holds(decision.to_dict(), stored)
    assert Decision.from_dict(decision.to_dict(), TASKS["detect"].metric_names) == decision


def test_export_writes_what_the_study_decided(tmp_path: Path, capsys):
    from trainers.data import make_toy_dataset

    toy = make_toy_dataset(tmp_path / "toy", n_train=4, n_val=2)
    study_dir = make_confirmed_study(tmp_path, toy)  # the race kept the baseline; trial 2 had the best single proxy run
    assert main(["export", str(study_dir), "-o", str(tmp_path / "best.yaml")]) == 0
    assert "placement: baseline" in (tmp_path / "best.yaml").read_text()
    said = capsys.readouterr().out
    assert "the study's decision, trial 0" in said and "keep the base model" in said
    assert main(["export", str(study_dir), "--trial", "2", "-o", str(tmp_path / "t2.yaml")]) == 0  # an explicit choice
    assert "placement: backbone.4: cbam" in (tmp_path / "t2.yaml").read_text()
    capsys.readouterr()
    (study_dir / "best.yaml").write_text("the decision\n")
    line = one_line_error(["export", str(study_dir), "--trial", "2", "-o", str(study_dir / "best.yaml")], capsys)
    assert "is the study's own best.yaml" in line and "--force" in line
    assert (study_dir / "best.yaml").read_text() == "the decision\n"  # nothing overwritten
    assert main(["export", str(study_dir), "--trial", "2", "-o", str(study_dir / "best.yaml"), "--force"]) == 0
    assert "is a folder" in one_line_error(["export", str(study_dir), "--trial", "2", "-o", str(tmp_path)], capsys)


def test_export_of_a_study_that_has_not_decided_is_one_line(tmp_path: Path, capsys):
    study_dir = make_study(tmp_path, final=None)
    line = one_line_error(["export", str(study_dir), "-o", str(tmp_path / "best.yaml")], capsys)
    assert "has not decided yet" in line and "resume" in line and "--trial 2" in line
