"""Step 0 of insertion for every task's head: does the model with attention compute what the base
computes before any training? For the segment, pose and OBB models of YOLOv8 and YOLO26, each of the 12
attention types at one position of each kind (after a backbone block, before SPPF, fused in a bottleneck
block, on a neck path into the head), the largest absolute difference of every output the model returns
(boxes, classes, masks and prototypes, keypoints, angles), gated and plain.

No task checkpoint can be downloaded here, so the base is each model initialised from seed 0 with
trained-looking BatchNorm statistics and affine terms (tests/helpers.py, as the identity tests use); every base tensor is
transferred by index. The detection table with real yolov8n.pt weights and mAP is step0_insertion.md.

Run: python results/benchmarks/step0_tasks.py   (writes step0_tasks.md)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from machine import describe_machine, publish

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from helpers import trained_looking  # noqa: E402 (the base the identity tests use)

MODELS = ("yolov8n-seg.yaml", "yolov8n-pose.yaml", "yolov8n-obb.yaml", "yolo26n-seg.yaml", "yolo26n-pose.yaml", "yolo26n-obb.yaml")
KINDS = ("backbone", "sppf", "fused", "neck")


def _flat(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out.flatten(1)
    values = out.values() if isinstance(out, dict) else out
    return torch.cat([_flat(v) for v in values if v is not None], 1)


def main() -> None:
    from trainers.offline import prepare_ultralytics

    prepare_ultralytics(Path(tempfile.mkdtemp(prefix="step0-")) / "config")
    import torch

    from spaces import ATTENTION, Placement, build_yaml, find_positions, load_base, transfer_weights
    from spaces.tasks import task_of

    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    rows = []
    for name in MODELS:
        base = load_base(name)
        task = task_of(base)
        torch.manual_seed(0)
        reference = trained_looking(task.model(base, verbose=False))
        expected = _flat(reference(x))
        positions = {}
        for p in find_positions(base):
            positions.setdefault(p.kind, p.name)
        for kind in KINDS:
            gated, plain, changed = 0.0, [], 0
            for spec in ATTENTION:
                placement = Placement.of({positions[kind]: [spec]})
                for insertion in ("gated", "plain"):
                    new = task.model(build_yaml(base, placement, insertion), verbose=False).eval()
                    report = transfer_weights(reference, new, placement)
                    assert report.transferred == report.total, f"{name} {spec} {insertion}: {report}"
                    diff = float((_flat(new(x)) - expected).abs().max())
                    if insertion == "gated":
                        gated = max(gated, diff)
                    else:
                        plain.append(diff)
                        changed += diff > 0
            rows.append(f"| {name} ({task.name}) | {kind} ({positions[kind]}) | {gated:.1e} | {changed} of {len(ATTENTION)} | "
                        f"{min(plain):.2e} to {max(plain):.2e} |")
    publish(__file__, "\n".join([
        "# Step 0 of insertion for segment, pose and OBB heads", "", describe_machine(), "",
        "Command: `python results/benchmarks/step0_tasks.py`. Largest absolute difference of every model output from "
        f"the base's, over the {len(ATTENTION)} attention types ({', '.join(ATTENTION)}) at one position of each kind.", "",
        "| model | position kind | gated: largest difference | plain: types that change the output | plain: differences |",
        "| --- | --- | --- | --- | --- |", *rows, "",
    ]))


if __name__ == "__main__":
    main()
