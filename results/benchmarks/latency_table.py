"""Measured latency against GFLOPs and parameters: every attention type at the first position of each kind.

For each base model, each attention type is placed (gated, as a pretrained search inserts it) at the first
position of each kind (backbone, sppf, fused, neck), exported to ONNX and timed interleaved with the base
model exactly as the search times a candidate (`trainers.latency.compare`: ONNX Runtime on this machine's
CPU, 1 thread, batch 1). Each row gives the latency ratio with its 95% interval, and the GFLOPs and
parameter ratios; per model, the Spearman rank correlation between latency and GFLOPs ratios says whether
FLOPs would have ranked the candidates as measurement does. Then one placement is measured `--repeat`
times (the run-to-run spread of a ratio here), and one measurement's cost is set against one CPU proxy trial
(the median wall time of pretrained_insertion.json's runs).

Run alone on the machine (other work would add noise):
python results/benchmarks/latency_table.py [--models yolov8n.yaml yolo26n.yaml] [--imgsz 640] [--repeat 10]
(writes latency_table.md and latency_table.json)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from scipy import stats

from machine import describe_machine, publish
from search.study.provenance import environment
from trainers.offline import prepare_ultralytics

HERE = Path(__file__).resolve().parent
KINDS = ("backbone", "sppf", "fused", "neck")


def _onnx(model: dict, folder: Path, imgsz: int) -> Path:
    from spaces import write_yaml
    from trainers.latency import export_onnx

    return export_onnx(write_yaml(model, folder / "model.yaml"), imgsz)


def _cost(model: dict) -> tuple[int, float]:
    from spaces.space import model_cost
    from spaces.tasks import task_of

    return model_cost(task_of(model).model(model, verbose=False))


def measure_model(name: str, imgsz: int, work: Path) -> dict:
    """Rows of every attention type at the first position of each kind of ``name``, and their rank correlation."""
    from spaces import ATTENTION, Placement, build_yaml, find_positions, load_base
    from trainers.latency import compare

    base = load_base(name)
    base_dict = build_yaml(base, Placement(), "gated")
    base_onnx = _onnx(base_dict, work / name / "baseline", imgsz)
    base_params, base_gflops = _cost(base_dict)
    positions = {}
    for position in find_positions(base):
        positions.setdefault(position.kind, position.name)
    rows = []
    for kind in KINDS:
        if kind not in positions:
            continue
        for kind_name in ATTENTION:
            placement = Placement.of({positions[kind]: [kind_name]})
            row = {"kind": kind, "position": positions[kind], "attention": kind_name}
            try:
                model = build_yaml(base, placement, "gated")
                params, gflops = _cost(model)
                start = time.perf_counter()
                timing = compare(_onnx(model, work / name / placement.key, imgsz), base_onnx)
                row |= {"latency": timing.to_dict(), "seconds": time.perf_counter() - start,
                        "params_ratio": params / base_params, "gflops_ratio": gflops / base_gflops}
            except Exception as e:  # a type that does not fit a position is a row saying so
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            rows.append(row)
            print(name, row.get("kind"), kind_name, row.get("latency", {}).get("ratio"), row.get("error", ""), flush=True)
    timed = [r for r in rows if "latency" in r]
    rho = stats.spearmanr([r["latency"]["ratio"] for r in timed], [r["gflops_ratio"] for r in timed]).statistic
    rho_params = stats.spearmanr([r["latency"]["ratio"] for r in timed], [r["params_ratio"] for r in timed]).statistic
    return {"model": name, "baseline_ms": timed[0]["latency"]["reference_ms"] if timed else None, "params": base_params,
            "gflops": base_gflops, "rows": rows, "spearman_latency_gflops": rho, "spearman_latency_params": rho_params}


def spread(name: str, attention: str, kind: str, imgsz: int, repeat: int, work: Path) -> dict:
    """One placement measured ``repeat`` times against the base model: the run-to-run spread of its ratio."""
    from spaces import Placement, build_yaml, find_positions, load_base
    from trainers.latency import compare

    base = load_base(name)
    position = next(p.name for p in find_positions(base) if p.kind == kind)
    placement = Placement.of({position: [attention]})
    candidate = _onnx(build_yaml(base, placement, "gated"), work / name / f"spread-{placement.key}", imgsz)
    reference = _onnx(build_yaml(base, Placement(), "gated"), work / name / "baseline", imgsz)
    ratios = [compare(candidate, reference).ratio for _ in range(repeat)]
    return {"model": name, "placement": str(placement), "ratios": ratios, "sd": statistics.stdev(ratios)}


def _table(result: dict) -> list[str]:
    lines = [f"### {result['model']}: baseline {result['baseline_ms']:.1f} ms, {result['params']:,} parameters, "
             f"{result['gflops']:.2f} GFLOPs", "",
             "| kind | position | attention | latency x baseline [95%] | GFLOPs x | params x |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['position']} | {r['attention']} | not built: {r['error'][:80]} | | |")
            continue
        t = r["latency"]
        lines.append(f"| {r['kind']} | {r['position']} | {r['attention']} | {t['ratio']:.3f} [{t['low']:.3f}, {t['high']:.3f}] | "
                     f"{r['gflops_ratio']:.4f} | {r['params_ratio']:.4f} |")
    lines += ["", f"Spearman rank correlation of latency with GFLOPs over these {sum('latency' in r for r in result['rows'])} "
              f"candidates: {result['spearman_latency_gflops']:+.2f}; with parameters: {result['spearman_latency_params']:+.2f}.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["yolov8n.yaml", "yolo26n.yaml"])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="latency-table-"))
    prepare_ultralytics(work / "config")
    results = [measure_model(name, args.imgsz, work) for name in args.models]
    repeated = spread(args.models[0], "cbam", "neck", args.imgsz, args.repeat, work)
    runs = json.loads((HERE / "pretrained_insertion.json").read_text())["runs"]
    proxy_s = statistics.median(r["wall_time_s"] for r in runs)
    cost = statistics.median(row["seconds"] for result in results for row in result["rows"] if "seconds" in row)
    out = {"environment": environment(), "imgsz": args.imgsz, "models": results, "spread": repeated, "proxy_trial_s": proxy_s}
    (HERE / "latency_table.json").write_text(json.dumps(out, indent=1))
    r = repeated
    publish(__file__, "\n".join([
        "# Measured CPU latency of attention placements against GFLOPs and parameters", "", describe_machine(out["environment"]),
        f"- command: `python results/benchmarks/latency_table.py --models {' '.join(args.models)} --imgsz {args.imgsz} "
        f"--repeat {args.repeat}`; raw figures in latency_table.json",
        f"- each candidate: one attention module (gated) at the first position of its kind, exported to ONNX and timed "
        f"interleaved with the base model as the search does (ONNX Runtime, CPU, 1 thread, batch 1, {args.imgsz} px, "
        "10 rounds of 5 runs each; median ratio, 95% bootstrap interval)", "",
        *[line for result in results for line in _table(result)],
        "## Run-to-run spread and cost", "",
        f"{r['placement']} on {r['model']}, measured {len(r['ratios'])} times: ratios "
        f"{', '.join(f'{x:.3f}' for x in r['ratios'])}; sd {r['sd']:.4f}, range {min(r['ratios']):.3f} to {max(r['ratios']):.3f}.",
        f"One candidate's measurement (its ONNX export and the interleaved timing) took {cost:.1f} s here (median over the "
        f"table), {cost / proxy_s:.1%} of one 5-epoch CPU proxy trial on bccd ({proxy_s:.0f} s, median of "
        "pretrained_insertion.json).", "",
    ]))


if __name__ == "__main__":
    main()
