"""Signal of the default proxy budget: yolov8n from scratch on ../shared/datasets/bccd, per-epoch
mAP50-95 through `train_candidate` (30 epochs, 320 px, batch 16, nbs 16: `search run`'s defaults).

Run: python results/benchmarks/bccd_signal.py [--device cpu] [--epochs 30]   (writes bccd_signal.md)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from machine import describe_machine, publish
from trainers.offline import prepare_ultralytics

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "bccd" / "data.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bccd-signal-"))
    prepare_ultralytics(work / "config")
    from search.config import RunConfig
    from spaces import Placement, load_base
    from trainers.data import build_proxy_data, load_dataset
    from trainers.train import train_candidate

    config = RunConfig(data=str(DATA), proxy_epochs=args.epochs, device=args.device)
    budget = config.proxy_budget
    proxy = build_proxy_data(load_dataset(DATA), work / "proxy", budget.imgsz, config.proxy_fraction, config.seed)
    record = train_candidate(Placement(), load_base("yolov8n.yaml"), proxy, budget, work / "baseline")
    rows = [f"| {e['epoch']} | {e['precision']:.4f} | {e['recall']:.4f} | {e['map50']:.4f} | {e['map50_95']:.4f} | {e['time_s']:.0f} |"
            for e in record.epochs]
    text = "\n".join([
        "# Signal of the default proxy budget on bccd (yolov8n from scratch)", "", describe_machine(),
        f"- command: `python results/benchmarks/bccd_signal.py --device {args.device} --epochs {args.epochs}`",
        f"- budget: {budget.epochs} epochs, {budget.imgsz} px, batch {budget.batch}, nbs {budget.nbs or budget.batch}, "
        f"seed {budget.seed}; status {record.status} {record.reason}",
        f"- final re-validation of best.pt: {record.final}", "",
        "| epoch | P | R | mAP50 | mAP50-95 | elapsed s |", "| --- | --- | --- | --- | --- | --- |", *rows, "",
    ])
    publish(__file__, text)


if __name__ == "__main__":
    main()
