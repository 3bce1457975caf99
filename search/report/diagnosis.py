"""The diagnostics section: how the baseline fitted, object sizes against each stage's receptive field,
and where the exported placement sits (`search.report.receptive_fields` computes; this module words it).
`search.study.start` (Ultralytics) is imported inside `training_object_sizes`, after `search.report.context.ready_ultralytics`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from search.config.run_config import RunConfig
from search.final.decision import Decision
from search.report.context import BaseModel, Report, Trials, position_layer
from search.report.receptive_fields import OBJECTS_PER_STRIDE, fit_gap_line, object_sizes, size_table_markdown
from search.report.text import sentence, table
from search.study.attributes import TrialView
from trainers.data import label_path, load_dataset
from trainers.train import one_line

if TYPE_CHECKING:
    from spaces.tasks import Task


def diagnostics_section(report: Report) -> list[str]:
    """Fitting of the baseline, object sizes against receptive fields, and where the placement sits."""
    folder, config, groups, decision, base = report.folder, report.config, report.groups, report.decision, report.base
    lines = ["## Diagnostics", "", "### Fitting", "", fit_text(folder, groups, decision), ""]
    if report.task.image_folders:  # a classifier labels whole images: no object sizes to set against the stages
        sizes, why = None, ""
        lines += ["### Receptive fields", ""] + ([f"The stage table is missing: {base.missing}."] if base.missing else stage_rows(base))
        lines += ["", "Theoretical RFs overstate what a network uses.", ""]
    else:
        sizes, why = training_object_sizes(config, report.task)
        lines += ["### Object sizes and receptive fields", ""] + sizes_text(sizes, why, base, config.final_imgsz) + [""]
        lines += ["Theoretical RFs overstate what a network uses; attention that pools the whole map adds most where "
                  "objects are large against the RF of the level that detects them.", ""]
    lines += ["### Where the exported placement sits", ""] + placement_lines(decision, base, sizes, why) + [""]
    return lines


def training_object_sizes(config: RunConfig, task: Task):
    """Object sizes (px at ``final_imgsz``) of the training labels the study trained on (its resolved
    data.yaml), or None and why they are missing."""
    from search.study.start import study_data

    try:
        dataset = load_dataset(study_data(config), task)
        labels = [label_path(image) for image in dataset.train]
        shape = "keypoints" if task.keypoints else "rotated" if task.rotated else "extent"
        kpt_dim = dataset.extra.get("kpt_shape", [0, 3])[1]
        return object_sizes([p for p in labels if p.is_file()], config.final_imgsz, shape, kpt_dim), ""
    except (ValueError, OSError) as e:  # DataError is a ValueError: moved or broken dataset
        return None, f"the training labels could not be read ({one_line(e)})"


def baseline_epochs(folder: Path, groups: Trials, decision: Decision | None) -> tuple[list[dict], str]:
    """Per-epoch records of the baseline and whose they are: its full retraining if there is one, else its proxy trial."""
    if decision:
        record = folder / ("final" if decision.keeps_baseline else "final-baseline") / "record.json"
        try:
            epochs = json.loads(record.read_text()).get("epochs") or []
        except (OSError, ValueError, AttributeError):
            epochs = []
        if epochs:
            return epochs, "The baseline's full retraining"
    if groups.baseline is not None and TrialView(groups.baseline).epochs:
        return TrialView(groups.baseline).epochs, f"The baseline's proxy run (trial {groups.baseline.number})"
    return [], ""


def fit_text(folder: Path, groups: Trials, decision: Decision | None) -> str:
    epochs, name = baseline_epochs(folder, groups, decision)
    if not epochs:
        return ("Fitting cannot be judged: no per-epoch losses of the baseline are recorded "
                "(no full retraining record, no completed baseline trial with epochs).")
    return sentence(fit_gap_line(epochs, name))


def sizes_text(sizes, why: str, base: BaseModel, imgsz: int) -> list[str]:
    """The stage table with the object sizes beside it, or why it is missing."""
    if base.missing:
        return [f"The size table is missing: {base.missing}."]
    if sizes is None:
        return [f"The size table is missing: {why}; has the dataset moved? The receptive fields alone:", ""] + stage_rows(base)
    return [f"Objects at the training size ({imgsz} px) against the theoretical receptive field (RF) of each stage:", "",
            size_table_markdown(sizes, base.stages)]


def stage_rows(base: BaseModel) -> list[str]:
    rows = [[f"{s['stage']} {s['where']}", s["layer"], s["module"], s["stride"], s["rf"]] for s in base.stages]
    return table(["stage", "layer", "module", "stride (px)", "theoretical RF (px)"], rows)


def stride_share(stride: int, sizes, stages: list[dict]) -> str:
    """The share of objects the Detect level at ``stride`` is assigned (as `size_table_markdown` shares them out)."""
    if sizes.size == 0:
        return "no objects in the training labels"
    strides = sorted(s["stride"] for s in stages if s["detect"])
    if stride not in strides:
        inside = int(np.count_nonzero(sizes <= stride * OBJECTS_PER_STRIDE))
        return (f"no Detect level reads stride {stride}; {inside / sizes.size:.0%} of the objects ({inside}) "
                f"are at most {stride * OBJECTS_PER_STRIDE} px (stride × {OBJECTS_PER_STRIDE})")
    at = strides.index(stride)
    low = 0.0 if at == 0 else strides[at - 1] * OBJECTS_PER_STRIDE
    high = math.inf if at == len(strides) - 1 else stride * OBJECTS_PER_STRIDE
    inside = int(np.count_nonzero((sizes > low) & (sizes <= high)))
    span = f"over {low:g} px" if math.isinf(high) else f"{low:g}-{high:g} px" if low else f"up to {high:g} px"
    return f"{inside / sizes.size:.0%} of the objects ({inside}, {span}) go to the stride-{stride} Detect level"


def position_line(name: str, what: str, base: BaseModel, sizes, why: str) -> str:
    """Where one position of the placement sits: its layer's stride and RF, and the objects at that stride (none when
    ``sizes`` is None and ``why`` empty: a classifier)."""
    kind, index = position_layer(name)
    row = base.fields[index]
    where = {"fused": f"inside the bottlenecks of layer {index}", "drop": f"layer {index} removed"}.get(kind, f"after layer {index}")
    rf = "sees the whole map (global RF)" if row["rf"] == "global" else f"theoretical RF {row['rf']} px"
    share = stride_share(row["stride"], sizes, base.stages) if sizes is not None else f"object shares unknown: {why}" if why else ""
    return f"- `{name}` ({what}): {where} ({row['module']}), stride {row['stride']}, {rf}" + (f"; {share}." if share else ".")


def placement_lines(decision: Decision | None, base: BaseModel, sizes, why: str) -> list[str]:
    """One line per position of the exported placement, or why there are none."""
    if not decision:
        return ["No model has been exported yet, so there is no placement to place."]
    placement = decision.placement
    if decision.keeps_baseline:
        return ["The exported model is the baseline: no attention to place."]
    if base.missing:
        return [f"The placement cannot be set against the receptive fields: {base.missing}."]
    items = [(name, "+".join(specs)) for name, specs in (placement.get("modules") or {}).items()]
    items += [(name, "removed") for name in placement.get("dropped") or []]
    lines = []
    for name, what in items:
        try:
            lines.append(position_line(name, what, base, sizes, why))
        except (ValueError, IndexError):
            lines.append(f"- `{name}` ({what}): its layer is not among the base model's layers.")
    return lines
