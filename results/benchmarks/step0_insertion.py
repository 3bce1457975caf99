"""Does the pretrained model survive insertion? mAP50-95 of the genuine yolov8n.pt on coco128 val at
320 px before any training, with each attention type at each position kind, inserted plainly (as
published) and gated (`spaces.gate`, the default from weights). Every base tensor is transferred
by index (`spaces.transfer_weights`); only the inserted modules are new.

Position kinds on yolov8n: after the backbone blocks (backbone.2/4/6), before SPPF (sppf.8), fused
inside every bottleneck of the 4 backbone C2f blocks (fused.2/4/6/8) and on the 3 neck paths into
Detect (neck.15/18/21). Cells are cached under --work, so an interrupted run resumes.

Run: python results/benchmarks/step0_insertion.py [--imgsz 320] [--work /tmp/step0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from machine import describe_machine, publish
from trainers.offline import prepare_ultralytics

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATA = SHARED / "datasets" / "coco128" / "data.yaml"
WEIGHTS = SHARED / "weights" / "yolov8n.pt"
KINDS = {"backbone": ["backbone.2", "backbone.4", "backbone.6"], "sppf": ["sppf.8"],
         "fused": ["fused.2", "fused.4", "fused.6", "fused.8"], "neck": ["neck.15", "neck.18", "neck.21"]}


def score(modules: dict, insertion: str, imgsz: int, folder: Path) -> float:
    """mAP50-95 on coco128 val of yolov8n.pt with ``modules`` inserted, cached in ``folder``."""
    saved = folder / "map.json"
    if saved.is_file():
        return json.loads(saved.read_text())["map50_95"]
    from ultralytics import YOLO

    from spaces import Placement, build_yaml, load_base, transfer_weights, write_yaml

    placement = Placement.of(modules)
    path = write_yaml(build_yaml(load_base(WEIGHTS), placement, insertion), folder / "model.yaml")
    model = YOLO(str(path))
    report = transfer_weights(WEIGHTS, model.model, placement)
    assert report.transferred == report.total, str(report)
    metrics = model.val(data=str(DATA), imgsz=imgsz, batch=16, device="cpu", plots=False, verbose=False,
                        project=str(folder), name="val", exist_ok=True)
    value = float(metrics.box.map)
    saved.write_text(json.dumps({"map50_95": value, "transfer": str(report)}))
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--work", default="/tmp/step0")
    args = parser.parse_args()
    work = Path(args.work)
    prepare_ultralytics(work / "config")
    from spaces import ATTENTION

    base = score({}, "gated", args.imgsz, work / "base")
    rows, worst = [], 0.0
    for name in ATTENTION:
        cells = []
        for kind, positions in KINDS.items():
            plain = score({p: [name] for p in positions}, "plain", args.imgsz, work / f"{name}-{kind}-plain")
            gated = score({p: [name] for p in positions}, "gated", args.imgsz, work / f"{name}-{kind}-gated")
            worst = max(worst, abs(gated - base))
            cells.append(f"{plain:.4f} / {gated:.4f}")
        rows.append(f"| {name} | {' | '.join(cells)} |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# Step 0: yolov8n.pt with attention inserted, before any training (coco128 val)", "", describe_machine(),
        f"- command: `python results/benchmarks/step0_insertion.py --imgsz {args.imgsz}`",
        f"- base yolov8n.pt: mAP50-95 **{base:.4f}** at {args.imgsz} px; every base tensor transferred in every cell",
        f"- largest |gated - base| over all cells: **{worst:.4f}**", "",
        "Each cell: mAP50-95 plain (module as published) / gated (`x + g * (A(x) - x)`, g = 0 at insertion).", "",
        "| type | " + " | ".join(f"{k} ({', '.join(v)})" for k, v in KINDS.items()) + " |",
        "| --- | --- | --- | --- | --- |", *rows, "",
    ])
    publish(__file__, text)


if __name__ == "__main__":
    main()
