"""How many base tensors reach a model with attention after every backbone block:
our index-aware transfer against Ultralytics' own name matching (`intersect_dicts`).

Run: python results/benchmarks/transfer_counts.py  (writes transfer_counts.md beside it)
"""

from __future__ import annotations

import torch
from ultralytics.nn.tasks import DetectionModel

from machine import describe_machine, publish
from spaces import Placement, build_yaml, find_positions, load_base, transfer_weights
from spaces.transfer import name_matched_count


def main() -> None:
    rows = []
    for model_name in ("yolov8n.yaml", "yolo11n.yaml", "yolov5nu.yaml"):
        base_dict = load_base(model_name)
        torch.manual_seed(0)
        base = DetectionModel(base_dict, verbose=False)
        after_blocks = [p.name for p in find_positions(base_dict) if p.kind in {"backbone", "sppf"}]
        placement = Placement.of({name: ["se"] for name in after_blocks})
        new = DetectionModel(build_yaml(base_dict, placement), verbose=False)
        ours = transfer_weights(base, new, placement)
        theirs = name_matched_count(base, new)
        rows.append(f"| {model_name} | {', '.join(after_blocks)} | {ours.transferred}/{ours.total} | {theirs}/{ours.total} |")
    text = "\n".join(
        [
            "# Weight transfer after inserting SE after every backbone block",
            "",
            describe_machine(),
            "- command: `python results/benchmarks/transfer_counts.py`",
            "",
            "| base | SE inserted after | index-aware (ours) | Ultralytics name matching |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )
    publish(__file__, text)


if __name__ == "__main__":
    main()
