"""Epoch time with and without the proxy data cache on ../shared/datasets/coco128 at 160 px (CPU):
the same 3-epoch training reads the original JPEGs, then the pre-resized proxy copy.

Run: python results/benchmarks/proxy_cache.py   (writes proxy_cache.md)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from machine import describe_machine, publish
from trainers.offline import prepare_ultralytics

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "coco128" / "data.yaml"


def epoch_times(record) -> list[float]:
    """Seconds per epoch after the first (start-up excluded)."""
    stamps = [e["time_s"] for e in record.epochs]
    return [b - a for a, b in zip(stamps, stamps[1:])]


def decode_seconds(images: list[Path], imgsz: int) -> float:
    """Time to read and resize every image to ``imgsz`` (long side), as Ultralytics' loader does per epoch."""
    import cv2

    start = time.perf_counter()
    for image in images:
        pixels = cv2.imread(str(image))
        h, w = pixels.shape[:2]
        ratio = imgsz / max(h, w)
        if ratio != 1:
            cv2.resize(pixels, (round(w * ratio), round(h * ratio)), interpolation=cv2.INTER_LINEAR)
    return time.perf_counter() - start


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="proxy-cache-"))
    prepare_ultralytics(work / "config")
    from spaces import Placement, load_base
    from trainers.data import build_proxy_data, load_dataset
    from trainers.train import Budget, train_candidate

    budget = Budget(epochs=3, imgsz=160, batch=16, workers=2, device="cpu", amp=False)
    base = load_base("yolov8n.yaml")
    start = time.perf_counter()
    proxy = build_proxy_data(load_dataset(DATA), work / "proxy", imgsz=160)
    build_s = time.perf_counter() - start
    results = {}
    for label, data in (("original JPEGs", DATA), ("proxy cache", proxy)):
        record = train_candidate(Placement(), base, data, budget, work / label.replace(" ", "_"))
        assert record.status == "complete", record.reason
        results[label] = epoch_times(record)
    before, after = (statistics.mean(results[k]) for k in ("original JPEGs", "proxy cache"))
    sources = (("original JPEGs", DATA), ("proxy cache", proxy))
    decode = {label: decode_seconds(list(load_dataset(data).train), 160) for label, data in sources}
    text = "\n".join([
        "# Proxy data cache: epoch time on coco128 at 160 px", "", describe_machine(),
        "- command: `python results/benchmarks/proxy_cache.py`",
        f"- setup: yolov8n.yaml, {budget.epochs} epochs, batch {budget.batch}, {budget.workers} dataloader workers, CPU; "
        "epoch time = time between the ends of consecutive epochs (training and validation, start-up excluded)", "",
        "| data | epoch times s | mean s |", "| --- | --- | --- |",
        *[f"| {k} | {', '.join(f'{t:.1f}' for t in v)} | {statistics.mean(v):.1f} |" for k, v in results.items()], "",
        f"ratio cached / original: **{after / before:.3f}**; building the cache once took {build_s:.1f} s", "",
        "Reading and resizing the 128 training images once (the decode work an epoch repeats, one process): "
        f"original {decode['original JPEGs']:.2f} s, cached {decode['proxy cache']:.2f} s, ratio "
        f"**{decode['proxy cache'] / decode['original JPEGs']:.3f}**. On 2 CPU cores the training step dominates "
        "an epoch, so the cache saves little here; it matters where the data pipeline is the bottleneck (a GPU).", "",
    ])
    publish(__file__, text)


if __name__ == "__main__":
    main()
