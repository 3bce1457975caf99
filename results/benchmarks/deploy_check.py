"""Deployment files of a trained attention model on real data: does each export compute what best.pt computes?

A placement with attention (gated SE after backbone block 6, CBAM fused into block 4, ECA on the first neck path)
is fine-tuned from ``--weights`` on ``--data`` for a few epochs (the search's `trainers.train.train_candidate` with
Ultralytics' own recipe, as a final training), so that its gates open; then `trainers.deploy.export_checked` exports
its best.pt to ONNX and TorchScript and checks each on every val image at the training size, as the end of a search
does on its study's val images: the largest raw-output difference relative to the outputs' scale, and the images
whose detections at conf 0.25 are the same (count, classes, boxes within 1 px).

Run: python results/benchmarks/deploy_check.py --data ../shared/datasets/bccd/data.yaml --model yolov8n.yaml \\
       --weights ../shared/weights/yolov8n.pt --epochs 3 --imgsz 320
(writes deploy_check_<dataset>.md)
"""

from __future__ import annotations

from pathlib import Path

from machine import describe_machine, prepared_work, publish, training_parser

PLACEMENT = {"backbone.6": ["se"], "fused.4": ["cbam"], "neck.15": ["eca"]}


def main() -> None:
    args = training_parser(__doc__, epochs=3, imgsz=320).parse_args()
    dataset_name, work = prepared_work("deploy-check", args.data)
    from spaces import Placement, load_base
    from spaces.tasks import task_of
    from trainers.data import load_dataset
    from trainers.deploy import BOX_TOLERANCE_PX, CONF, RELATIVE_TOLERANCE, export_checked
    from trainers.train import Budget, train_candidate

    base = load_base(args.model)
    budget = Budget(epochs=args.epochs, imgsz=args.imgsz, batch=16, workers=2, device="cpu", keep_weights=True, proxy=False)
    record = train_candidate(Placement.of(PLACEMENT), base, Path(args.data).resolve(), budget, work / "train", weights=args.weights)
    if record.status != "complete":
        raise SystemExit(f"training failed: {record.reason}")
    images = list(load_dataset(args.data, task_of(base)).val)  # every val image, not the search's first 8
    checks = export_checked(record.paths["weights"], work / "export" / "best", args.imgsz, images)
    rows = [f"| {c.format} | {c.ok} | {c.same} of {c.images} | {c.max_abs:.3g} | {c.relative:.2e} | {c.max_box_px:.3g} |"
            if c.file else f"| {c.format} | failed: {c.reason} | | | | |" for c in checks]
    publish(__file__, "\n".join([
        f"# Deployment files of an attention model on {dataset_name}: exports against best.pt", "", describe_machine(), "",
        f"Command: `python results/benchmarks/deploy_check.py --data {args.data} --model {args.model} --weights "
        f"{args.weights} --epochs {args.epochs} --imgsz {args.imgsz}`. Placement {Placement.of(PLACEMENT)} (gated), "
        f"fine-tuned {args.epochs} epochs at {args.imgsz} px on the CPU; learned gates {record.gates}. Each export is "
        f"checked on all {len(images)} val images at {args.imgsz} px: ok means every image's detections at conf {CONF} "
        f"match (count, classes, boxes within {BOX_TOLERANCE_PX:g} px) and the raw outputs differ by at most "
        f"{RELATIVE_TOLERANCE:g} of their largest magnitude.", "",
        "| format | ok | images with the same detections | largest raw difference | relative to the outputs' scale | "
        "largest box difference, px |", "| --- | --- | --- | --- | --- | --- |", *rows, "",
    ]) + "\n", f"deploy_check_{dataset_name}")


if __name__ == "__main__":
    main()
