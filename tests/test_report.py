"""`search.report.write_report` on a hand-made study, and `search.dashboard.serve_dashboard`
serving that study over HTTP on a loopback port."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pandas
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from search.config import RunConfig
from search.report import write_report

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {"modules": IntDistribution(0, 2), "m1.position": CategoricalDistribution(["neck.15", "backbone.4"])}

# trial number -> (state, value, placement_str, params, precision, recall, map50, extra attrs)
TRIALS = {
    0: (TrialState.COMPLETE, 0.30, "baseline (no attention)", 3_000_000, 0.60, 0.50, 0.45, {"baseline": True}),
    1: (TrialState.COMPLETE, 0.28, "neck.15: se", 3_010_000, 0.58, 0.49, 0.44, {}),
    2: (TrialState.COMPLETE, 0.33, "backbone.4: cbam", 3_030_000, 0.64, 0.52, 0.48, {}),
    3: (TrialState.PRUNED, None, "neck.15: eca", 3_001_000, None, None, None, {"pruned_at": 2}),
    4: (TrialState.FAIL, None, "backbone.4: sk", 3_200_000, None, None, None, {"reason": "CUDA out of memory"}),
    5: (TrialState.PRUNED, None, "neck.15: sk+sk", None, None, None, None, {"infeasible": "over the params budget"}),
}
FINAL = {
    "trial": 2,
    "placement": {"modules": {"backbone.4": ["cbam"]}, "dropped": []},
    "placement_str": "backbone.4: cbam",
    "final": {"precision": 0.61, "recall": 0.50, "map50": 0.47, "map50_95": 0.2900, "status": "complete", "reason": "",
              "params": 3_030_000, "gflops": 8.3, "wall_time_s": 100.0, "weights": "w.pt", "epochs": 10},
    "baseline": {"precision": 0.62, "recall": 0.51, "map50": 0.49, "map50_95": 0.3100, "status": "complete", "reason": "",
                 "params": 3_000_000, "gflops": 8.2, "wall_time_s": 90.0, "weights": "b.pt", "epochs": 10},
}
BASELINE_RUN = {"precision": 0.62, "recall": 0.51, "map50": 0.49, "map50_95": 0.3100, "status": "complete", "reason": "",
                "params": 3_000_000, "gflops": 8.2, "wall_time_s": 90.0, "weights": "b.pt", "epochs": 10}
SEEDS = {"baseline": [0.30, 0.31, 0.29], "candidate": [0.33, 0.30, 0.31]}  # mAP50-95 per seed
PROXY_VALIDATION = {
    "k": 2, "full_budget": {"epochs": 100, "imgsz": 640},
    "rows": [{"trial": 2, "placement_str": "backbone.4: cbam", "proxy": {"30 ep at 320 px": 0.33, "60 ep at 320 px": 0.35},
              "full": 0.40, "status": "complete"},
             {"trial": 0, "placement_str": "baseline (no attention)", "proxy": {"30 ep at 320 px": 0.30, "60 ep at 320 px": 0.37},
              "full": 0.41, "status": "complete"},
             {"trial": 1, "placement_str": "neck.15: se", "proxy": {"30 ep at 320 px": 0.28, "60 ep at 320 px": None},
              "full": 0.36, "status": "complete"},
             {"trial": 3, "placement_str": "neck.15: eca", "proxy": {"30 ep at 320 px": 0.25, "60 ep at 320 px": 0.31},
              "full": 0.30, "status": "complete"}],
    "budgets": [{"label": "30 ep at 320 px", "budget": {"epochs": 30, "imgsz": 320, "fraction": 1.0}, "searched": True,
                 "spearman": 0.8, "interval": [-0.70, 0.99], "n": 4, "p_value": 0.167},
                {"label": "60 ep at 320 px", "budget": {"epochs": 60, "imgsz": 320, "fraction": 1.0}, "searched": False,
                 "spearman": 1.0, "interval": None, "n": 3, "p_value": 0.167}],
}


NOISE = {"sd": 0.0125, "correlation": -0.2, "effect": 0.01, "test_rounds": 3, "detectable": 0.0421, "seeds_needed": 22,
         "budget_needed": 44}


def confirmed_final() -> dict:
    """A `finalize` summary after a racing confirmation of one candidate that kept the baseline (winner None)."""
    from search.select.verdict import compare, tradeoff_line, verdict_line

    comparison = compare(SEEDS["candidate"], SEEDS["baseline"], 0.9, paired=True)
    baseline = {"trial": 0, "placement_str": "baseline (no attention)", "failed_runs": 0, "map50_95": SEEDS["baseline"],
                "seeds": [1, 2, 3], "precision": [0.60, 0.61, 0.59], "recall": [0.50, 0.50, 0.50], "map50": [0.45, 0.46, 0.44]}
    candidate = {"trial": 2, "placement_str": "backbone.4: cbam", "failed_runs": 0, "map50_95": SEEDS["candidate"],
                 "seeds": [1, 2, 3], "precision": [0.64, 0.63, 0.65], "recall": [0.48, 0.47, 0.49], "map50": [0.48, 0.47, 0.49],
                 "race": "tested: not better beyond noise",
                 "comparison": {"difference": comparison.difference, "low": comparison.low, "high": comparison.high,
                                "p_value": comparison.p_value, "method": comparison.method, "line": verdict_line(comparison)},
                 "tradeoff": tradeoff_line({"precision": 0.64, "recall": 0.48}, {"precision": 0.60, "recall": 0.50})}
    verdict = f"no placement beat the baseline beyond noise: keep the base model (best candidate, trial 2: {verdict_line(comparison)})"
    confirmation = {"budget": 6, "alpha": 0.05, "runs": 6, "stopped": "the budget is spent", "noise": NOISE,
                    "baseline": baseline, "candidates": [candidate], "winner": None, "verdict": verdict}
    return {"trial": 0, "placement": {"modules": {}, "dropped": []}, "placement_str": "baseline (no attention)",
            "verdict": verdict, "confirmation": confirmation, "final": BASELINE_RUN, "baseline": BASELINE_RUN}


def loss_epochs(n: int = 9) -> list[dict]:
    """Per-epoch records whose val loss still falls at the end (an under-fitted run)."""
    return [{"epoch": e, "train/box_loss": 1.0, "train/cls_loss": 1.0, "train/dfl_loss": 1.0,
             "val/box_loss": 2.0 - 0.1 * e, "val/cls_loss": 1.0, "val/dfl_loss": 1.0} for e in range(n)]


def make_trial(number: int) -> optuna.trial.FrozenTrial:
    state, value, text, params, p, r, m50, extra = TRIALS[number]
    modules = 0 if extra.get("baseline") else 1
    placement = {"modules": {} if not modules else {text.split(":")[0]: text.split(": ")[1].split("+")}, "dropped": []}
    attrs = {
        "placement": placement, "placement_str": text, "placement_key": f"k{number}", "baseline": bool(extra.get("baseline")),
        "precision": p, "recall": r, "map50": m50, "map50_95": value, "params": params, "gflops": 8.2 if params else None,
        "wall_time_s": 60.0 + number, "dir": f"trials/{number}", "status": state.name.lower(), "reason": "", "pruned_at": None,
        "epochs": [], **extra,
    }
    params_ = {"modules": modules} if not modules else {"modules": modules, "m1.position": text.split(":")[0]}
    steps = {1: 0.10, 2: 0.12} if number == 3 else ({1: value / 2, 2: value} if value is not None else {})
    told = steps[max(steps)] if state == TrialState.PRUNED and steps else value  # Optuna's value of a pruned trial: its last step
    return create_trial(
        state=state, value=told, params=params_, distributions={k: DISTRIBUTIONS[k] for k in params_},
        user_attrs=attrs, intermediate_values=steps,
    )


def make_study(tmp_path: Path, numbers=tuple(TRIALS), final: dict | None = FINAL, data: Path | None = None,
               proxy_validation: dict | None = None) -> Path:
    """A study folder ``tmp_path/s`` as `python -m search run` leaves it (no trainings)."""
    config = RunConfig(data=str(data or tmp_path / "data.yaml"), model="yolov8n.yaml", study="s", out=str(tmp_path)).resolved()
    config.study_dir.mkdir(parents=True)
    config.save(config.study_dir / "run.yaml")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=config.storage_url, directions=config.directions)
    for number in numbers:
        study.add_trial(make_trial(number))
    if final:
        study.set_user_attr("final", final)
    if proxy_validation:
        study.set_user_attr("proxy_validation", proxy_validation)
    return config.study_dir


def make_confirmed_study(tmp_path: Path, data: Path) -> Path:
    """A finished study: seed confirmation kept the baseline, proxy validated, full retraining recorded."""
    study_dir = make_study(tmp_path, final=confirmed_final(), data=data, proxy_validation=PROXY_VALIDATION)
    (study_dir / "final").mkdir()
    (study_dir / "final" / "record.json").write_text(json.dumps({"status": "complete", "epochs": loss_epochs()}))
    return study_dir


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section of a report."""
    return text.split(f"## {title}")[1].split("\n## ")[0]


def table_rows(text: str) -> list[list[str]]:
    """Body rows of the first Markdown table in ``text``, as lists of cells."""
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    return [[c.strip() for c in row.strip().strip("|").split(" | ")] for row in rows]


def leaderboard_rows(text: str) -> list[list[str]]:
    """The body rows of the leaderboard table, as lists of cells."""
    return table_rows(section(text, "Leaderboard"))


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    return make_study(tmp_path)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """data.yaml of a 4+2 image toy set, for the object-size diagnostics."""
    from trainers.data import make_toy_dataset

    return make_toy_dataset(tmp_path / "toy", n_train=4, n_val=2)


def test_report_leaderboard_and_verdict(study_dir: Path):
    path = write_report(study_dir)
    assert path == study_dir / "report.md" and path.is_file()
    text = path.read_text()
    assert text.startswith("# Attention placement search s: Decided: trial 2 (backbone.4: cbam), not raced\n")
    assert "3 complete, 1 pruned, 1 failed, 1 infeasible (not trained), 0 interrupted" in text

    rows = leaderboard_rows(text)
    assert [row[0] for row in rows] == ["baseline", "1", "2"]
    assert [int(row[1]) for row in rows] == [0, 2, 1]  # baseline first, then by mAP50-95
    scores = [float(row[6]) for row in rows[1:]]
    assert scores == sorted(scores, reverse=True)
    assert rows[1][6] == "0.3300" and rows[1][7] == "+0.0300"  # Δ of trial 2 against the baseline's 0.3000
    assert rows[2][7] == "-0.0200"
    assert "(+1.00%)" in rows[1][8]  # 3,030,000 params against 3,000,000

    assert re.search(r"trial 3, neck\.15: eca: pruned at epoch 2", text)
    assert "trial 4, backbone.4: sk: CUDA out of memory" in text
    assert "trial 5, neck.15: sk+sk: over the params budget" in text

    final = text.split("## Full retraining")[1].split("\n## ")[0]
    assert "| mAP50-95 | 0.3100 | 0.2900 | -0.0200 |" in final
    assert "Attention lost" in final and "keep the baseline" in final and "Attention won" not in final

    for name in ("map_by_trial.png", "precision_recall.png", "importance.png", "placement.png"):
        assert (study_dir / name).read_bytes()[:8] == PNG, name
        assert f"]({name})" in text
    rows = [(-float(v), k) for k, v in table_rows(section(text, "Parameter importances"))]
    assert rows and rows == sorted(rows)  # most important first, ties by name: the same report run after run

    trials = pandas.read_csv(study_dir / "trials.csv")  # every trial, as Optuna's trials_dataframe has it
    assert "[trials.csv](trials.csv)" in text and list(trials.columns[:3]) == ["number", "state", "value"]
    assert trials["number"].tolist() == sorted(TRIALS) and trials["state"].tolist() == [TRIALS[n][0].name for n in sorted(TRIALS)]
    assert trials["map50_95"].tolist()[:3] == [TRIALS[n][1] for n in range(3)] and trials["params_m1.position"][2] == "backbone.4"
    assert trials["infeasible"][5] == "over the params budget" and "epochs" not in trials  # no per-epoch lists in cells
    assert pandas.isna(trials["value"][3]) and trials["last_epoch_fitness"][3] == 0.12  # one measure a column
    assert trials["value"][0] == TRIALS[0][1] and trials["last_epoch_fitness"][0] == TRIALS[0][1]

    # a summary from before the seed confirmation: said plainly, and the placement set against the model
    assert "was not confirmed with more seeds" in section(text, "Confirmation with more seeds")
    assert "- `backbone.4` (cbam): after layer 4 (C2f), stride 8, theoretical RF 95 px; object shares unknown" in text
    assert "Fitting cannot be judged: no per-epoch losses" in text  # no full-retraining record, no epochs


def test_report_when_attention_wins(tmp_path: Path, toy: Path):
    won = {**FINAL, "final": {**FINAL["final"], "map50_95": 0.3500}}
    text = write_report(make_study(tmp_path, final=won, data=toy)).read_text()
    assert "Attention won" in text and "(+0.0400)" in text
    share = r"\d+% of the objects \(\d+, up to 64 px\) go to the stride-8 Detect level"
    assert re.search(r"`backbone\.4` \(cbam\): after layer 4 \(C2f\), stride 8, theoretical RF 95 px; " + share, text)


def test_confirmation_of_an_older_study_is_still_described():
    from search.final.decision import Confirmation
    from search.report.outcome import race_text, resolution_text
    from spaces.tasks import TASKS

    side = {"trial": 0, "placement": {}, "placement_str": "baseline (no attention)", "map50_95": [0.5, 0.51, 0.49]}
    older = Confirmation.from_dict({"seeds": 3, "candidates": [{**side, "trial": 2}], "baseline": side, "winner": None,
                                    "verdict": "keep the base model"}, TASKS["detect"].metric_names)
    assert older.budget is None and older.baseline.scores("map50_95") == side["map50_95"]
    assert "repeated with 3 seeds" in race_text(older)
    assert resolution_text(None, 16, "mAP50-95") is None
    assert "no practical number of seeds would resolve 0.01" in resolution_text({**NOISE, "seeds_needed": None}, 6, "mAP50-95")


def test_seed_noise_line_says_when_candidates_are_within_noise():
    from search.final.decision import Confirmation
    from search.report.fidelity import seed_noise_text
    from spaces.tasks import TASKS

    confirmation = Confirmation.from_dict(confirmed_final()["confirmation"], TASKS["detect"].metric_names)  # seeds differ by up to 0.03
    narrow = {**PROXY_VALIDATION, "rows": [{"proxy": {"30 ep at 320 px": v}} for v in (0.30, 0.31, 0.32)]}
    text = seed_noise_text(narrow, confirmation, TASKS["detect"])
    assert "span 0.0200" in text and "up to 0.0300" in text and "differ by less than seed noise" in text
    assert seed_noise_text(narrow, None, TASKS["detect"]) is None  # nothing to compare with without seed confirmation
    unsearched = {**narrow, "budgets": [{**b, "searched": False} for b in PROXY_VALIDATION["budgets"]]}
    assert seed_noise_text(unsearched, confirmation, TASKS["detect"]) is None


def test_proxy_section_with_several_full_seeds(tmp_path: Path):
    rows = [{**row, "full_seeds": [row["full"] - 0.01, row["full"] + 0.01]} for row in PROXY_VALIDATION["rows"]]
    validation = {**PROXY_VALIDATION, "rows": rows, "full_budget": {"epochs": 100, "imgsz": 640, "seeds": 2}}
    study_dir = make_study(tmp_path, proxy_validation=validation)
    proxy = section(write_report(study_dir).read_text(), "Does the proxy predict full training?")
    assert "| full mAP50-95 (mean of 2 seeds) | full per seed | full training |" in proxy
    assert ["2", "backbone.4: cbam", "0.3300", "0.3500", "0.4000", "0.3900, 0.4100", "complete"] in table_rows(proxy)
    assert "(100 epochs at 640 px, 2 seeds, scored on their mean)" in proxy
    assert "mean scores span 0.1100 mAP50-95; one placement's full-training seeds differed by up to 0.0200" in proxy


def test_report_of_a_confirmed_study(tmp_path: Path, toy: Path):
    study_dir = make_confirmed_study(tmp_path, toy)
    text = write_report(study_dir).read_text()

    confirmation = section(text, "Confirmation with more seeds")
    baseline, candidate = table_rows(confirmation)
    assert baseline[:7] == ["baseline", "0", "baseline (no attention)", "3", "0.3000 ± 0.0100", "0.6000", "0.5000"]
    mean, sd = statistics.fmean(SEEDS["candidate"]), statistics.stdev(SEEDS["candidate"])
    assert candidate[:5] == ["candidate 1", "2", "backbone.4: cbam", "3", f"{mean:.4f} ± {sd:.4f}"]
    assert candidate[7] == "tested: not better beyond noise"
    assert "no difference beyond seed noise" in candidate[8] and "trades recall for precision" in candidate[9]
    assert "within a budget of 6 proxy runs: 6 spent (the budget is spent)" in confirmation
    assert "The best placement of the search was tested against the baseline on seeds the search never used" in confirmation
    assert "a false improvement at most 5% of the time" in confirmation
    assert ("With this budget (6 runs, 3 test rounds) and the noise measured in this confirmation (seed sd 0.0125 "
            "mAP50-95, same-seed correlation -0.20), a gain below 0.0421 mAP50-95 cannot be told from noise (80% power); "
            "22 seeds per side (a --confirm-budget of about 44) would be needed for 0.01.") in confirmation
    assert "**Verdict: No placement beat the baseline beyond noise: keep the base model" in confirmation
    assert text.count("No placement beat the baseline") == 1 and text.count("Verdict:") == 1  # stated once
    assert "The baseline retrained in full reached 0.3100 mAP50-95." in section(text, "Full retraining")

    proxy = section(text, "Does the proxy predict full training?")
    assert "- proxy 30 ep at 320 px: Spearman ρ = +0.80 (95% interval [-0.70, +0.99], 4 candidates, p=0.167" in proxy
    assert "- proxy 60 ep at 320 px: Spearman ρ = +1.00 (3 candidates, p=0.167" in proxy
    assert "| trial | placement | proxy 30 ep at 320 px (searched) | proxy 60 ep at 320 px | full mAP50-95 |" in proxy
    assert ["2", "backbone.4: cbam", "0.3300", "0.3500", "0.4000", "complete"] in table_rows(proxy)
    assert ["1", "neck.15: se", "0.2800", "–", "0.3600", "complete"] in table_rows(proxy)
    assert "proxy scores span 0.0800 mAP50-95; one placement's seeds differed by up to 0.0300" in proxy
    assert "differ by more than seed noise" in proxy

    diagnostics = section(text, "Diagnostics")
    for row in ("| P3/8 Detect input | 15 | C2f | 8 |", "| P4/16 Detect input | 18 | C2f | 16 |", "| P5/32 Detect input | 21 | C2f | 32 |"):
        assert row in diagnostics
    assert "Objects at the training size (640 px)" in diagnostics and "(7 objects)." in diagnostics
    assert "The baseline's full retraining ends with val loss" in diagnostics and "under-fitted" in diagnostics
    assert "The exported model is the baseline: no attention to place." in diagnostics

    assert (study_dir / "placement.png").read_bytes()[:8] == PNG
    page = (study_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from the network
    sources = re.findall(r'<img[^>]*\bsrc="([^"]*)"', page)
    assert len(sources) == text.count("![") and all(s.startswith("data:image/png;base64,") for s in sources)
    board = page.split("Leaderboard (proxy trainings)</h2>")[1].split("<h2")[0]
    assert "<table>" in board and "<th>rank</th>" in board and "<td>baseline</td>" in board


def test_a_fluke_that_lost_its_race_is_in_no_headline(tmp_path: Path, toy: Path, capsys):
    """Trial 2 led the search by one run (+0.0300 over the baseline's run) and then lost its race: report.md's first
    line, the dashboard note's first line and the final progress bar's last line name the decision (keep the base
    model) with the raced gain, never the single run's lead; the note shows the race before the single runs."""
    from optuna_dashboard import get_note

    from search.config import storage_url_of
    from search.dashboard import publish_outcome
    from search.final.decision import Decision
    from search.study.progress import FinalProgress
    from spaces.tasks import TASKS

    study_dir = make_confirmed_study(tmp_path, toy)
    raced = f"{statistics.fmean(SEEDS['candidate']) - statistics.fmean(SEEDS['baseline']):+.4f} mAP50-95"
    decided = "Decided: keep the base model, no placement beat it beyond noise; best raced, trial 2 (backbone.4: cbam): " + raced
    first = write_report(study_dir).read_text().splitlines()[0]
    assert first.startswith(f"# Attention placement search s: {decided} [") and "+0.0300" not in first
    study = optuna.load_study(study_name="s", storage=storage_url_of(study_dir))
    publish_outcome(study, study_dir)
    note = get_note(study)
    assert note.splitlines()[0].startswith(f"## {decided} [") and "+0.0300" not in note.splitlines()[0]
    assert note.index("## Race on fresh seeds") < note.index("## Leaderboard") and "(single run)" in note
    detect = TASKS["detect"]
    decision = Decision.of_study(study, detect.metric_names)
    with FinalProgress(1, 3, detect) as progress:
        progress.start("full training of the baseline")
        progress.report(1, {"map50_95": 0.3300})
        progress.finish_run()
        progress.done(decision.headline(detect.score_label))
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert decided in last and "+0.0300" not in last


def test_a_final_training_that_fell_after_its_best_epoch_is_flagged(tmp_path: Path, toy: Path):
    """The report names best.pt's epoch, and warns when the score then fell by more than the race's seed sd
    (0.0125 here): 0.3966 at epoch 1 of 10, 0.2830 at the last, as a user's real study did."""
    final = confirmed_final()
    final["baseline"] = final["final"] = {**BASELINE_RUN, "best_epoch": 1, "best_score": 0.3966, "last_score": 0.2830}
    study_dir = make_study(tmp_path, final=final, data=toy)
    retraining = section(write_report(study_dir).read_text(), "Full retraining")
    assert ["best epoch (best.pt)", "1 of 10", "1 of 10", ""] in table_rows(retraining)
    assert ("**The exported model's full training fell after its best epoch**: 0.3966 mAP50-95 at epoch 1, 0.2830 at the "
            "last (-0.1136; more than the seed sd of 0.0125 measured in the race)") in retraining
    final["baseline"] = final["final"] = {**BASELINE_RUN, "best_epoch": 9, "best_score": 0.3100, "last_score": 0.3050}
    study_dir = make_study(tmp_path / "within", final=final, data=toy)
    assert "fell after its best epoch" not in write_report(study_dir).read_text()  # 0.005: within the seed sd


def test_the_final_training_shows_progress_in_the_dashboard_note(study_dir: Path):
    """While the full trainings run, the study's note says which, at what epoch and score, and the time left."""
    from optuna_dashboard import get_note

    from search.config import storage_url_of
    from search.study.progress import FinalProgress, progress_note
    from spaces.tasks import TASKS

    study = optuna.load_study(study_name="s", storage=storage_url_of(study_dir))
    with FinalProgress(2, 10, TASKS["detect"], enabled=False, note=progress_note(study)) as progress:
        progress.start("full training of trial 2 (backbone.4: cbam)")
        progress.report(3, {"map50_95": 0.4123})
        note = get_note(study)
    assert note.startswith("## Full training in progress")
    assert "trial 2 (backbone.4: cbam): epoch 3/10, mAP50-95 0.4123, about " in note and " left" in note


def test_report_when_the_dataset_moved(tmp_path: Path, toy: Path):
    study_dir = make_confirmed_study(tmp_path, toy)
    shutil.rmtree(toy.parent)
    text = write_report(study_dir).read_text()
    diagnostics = section(text, "Diagnostics")
    assert "The size table is missing: the training labels could not be read" in diagnostics
    assert "data file not found" in diagnostics
    assert "| P3/8 Detect input | 15 | C2f | 8 | 879 |" in diagnostics  # the receptive fields still shown
    assert (study_dir / "report.html").is_file()


def test_report_of_a_study_just_started(tmp_path: Path):
    study_dir = make_study(tmp_path, numbers=(0,), final=None)
    text = write_report(study_dir).read_text()
    assert [row[0] for row in leaderboard_rows(text)] == ["baseline"]
    assert "No final retraining yet" in text
    assert "need at least 2 complete trials" in text
    assert not (study_dir / "importance.png").exists()
    assert (study_dir / "map_by_trial.png").read_bytes()[:8] == PNG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


def stop(proc: subprocess.Popen) -> None:
    """End a server started for a test: SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def dashboard_studies(proc: subprocess.Popen, port: int, seconds: float) -> list[dict]:
    """The study summaries a dashboard started as ``proc`` serves on ``port``, once it answers (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else proc.returncode
        try:
            return get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        except OSError:
            assert time.monotonic() < deadline, f"the dashboard did not answer within {seconds:g} s"
            time.sleep(0.3)


def test_dashboard_serves_the_study_with_its_outcome(study_dir: Path):
    """Through optuna-dashboard's own HTTP API: the study, its note (verdict and leaderboard) and
    its artifacts (best.yaml, the final weights, report.html), each downloadable as it was."""
    from search.config import storage_url_of
    from search.dashboard import publish_outcome

    (study_dir / "best.yaml").write_text("nc: 2\n")
    (study_dir / "final" / "weights").mkdir(parents=True)
    (study_dir / "final" / "weights" / "best.pt").write_bytes(b"weights")
    write_report(study_dir)
    study = optuna.load_study(study_name="s", storage=storage_url_of(study_dir))
    publish_outcome(study, study_dir)
    publish_outcome(study, study_dir)  # again, nothing changed: no second copy of any file
    port = free_port()
    code = (f"from search.dashboard import serve_dashboard; "
            f"serve_dashboard({storage_url_of(study_dir)!r}, port={port}, study_dir={str(study_dir)!r})")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        studies = dashboard_studies(proc, port, 30)
        assert [s["study_name"] for s in studies] == ["s"]
        detail = get_json(f"{base}/api/studies/{studies[0]['study_id']}")
        assert detail["name"] == "s"
        assert len(detail["trials"]) == len(TRIALS)
        note = detail["note"]["body"]
        assert note.startswith("## Decided: trial 2 (backbone.4: cbam), not raced") and "## Leaderboard" in note
        assert sorted(a["filename"] for a in detail["artifacts"]) == ["best.pt", "best.yaml", "report.html"]  # once each
        pt = next(a for a in detail["artifacts"] if a["filename"] == "best.pt")
        with urllib.request.urlopen(f"{base}/artifacts/{studies[0]['study_id']}/{pt['artifact_id']}", timeout=5) as r:
            assert r.read() == b"weights"
    finally:
        stop(proc)
        proc.stdout.close()


def test_repeats_fold_into_their_trial_and_lists_stay_lists(study_dir: Path):
    """A later trial that drew trial 2's placement is no row of its own; `- trial 5, ...` stays a list
    item in report.html (`- #5 ...` was read as a heading)."""
    study = optuna.load_study(study_name="s", storage=RunConfig.load(study_dir / "run.yaml").storage_url)
    repeat = make_trial(2)
    study.add_trial(create_trial(state=repeat.state, value=repeat.value, params=repeat.params, distributions=repeat.distributions,
                                 user_attrs={**repeat.user_attrs, "duplicate_of": 2}, intermediate_values=repeat.intermediate_values))
    text = write_report(study_dir).read_text()
    rows = leaderboard_rows(text)
    assert [row[1] for row in rows] == ["0", "2 (also #6)", "1"]
    html = (study_dir / "report.html").read_text()
    assert "<li>trial 5, neck.15: sk+sk: over the params budget</li>" in html and not re.search(r"<h\d[^>]*>\s*5 ", html)
