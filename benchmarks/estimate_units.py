"""Which profiled kernels does the 'profile' estimate mis-scale? Unit by unit, against a profile.

Calibrates the 'profile' estimator on the original network (ORT, in-context kernel entries),
estimates a pruning of it (every group at ``--keep`` of its channels) unit by unit
(``calibration.estimate_parts``), then profiles the pruning and lists the units whose estimate
is furthest from their profiled time, and the sums by kind (filter-layer units, other nodes,
runtime-internal nodes). Profiles are per-kernel medians, so this reads even on a busy machine
where whole-network timings do not.

    python -m benchmarks.estimate_units resnet50:nhwc --keep 0.3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.fidelity_layouts import INPUT, parse_cases
from benchmarks.latency_fidelity import LAYER, export
from benchmarks.layouts import in_layout, input_shape
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.measure.calibration import INTERNAL, UNPLACED, estimate_parts
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.measure.table import LatencyTable

ROUNDS = 3  # profiles of the pruning, per-node medians


def compare(runner, table: LatencyTable, arch: str, layout: str, keep: float) -> dict:
    """Per unit: calibration time, estimate and profiled time of the pruning (ms)."""
    model = in_layout(export(arch), layout)
    loaded = load_model(model, input_shape(model, INPUT, layout))
    runner.settings = LAYER
    estimator = Estimator(runner, table, mode="profile")
    profile = estimator.calibrate(loaded).base.profile
    pruned = load_model(prune(analyse(loaded), ratio=keep).model, fold=False)
    layer_ms = estimator.kernel_entries(model_signatures(pruned))
    parts = estimate_parts(profile, pruned.model, pruned.shapes, layer_ms)
    profiles = [runner.profile_layers(pruned.model) for _ in range(ROUNDS)]
    names = {n.name for n in pruned.model.graph.node}
    measured: dict[str, float] = {}
    for name in set().union(*profiles):
        ms = float(np.median([p.get(name, 0.0) for p in profiles]))
        key = name if name in names else INTERNAL
        measured[key] = measured.get(key, 0.0) + ms
    before = {u.name: u.ms for u in profile.units}
    before[INTERNAL] = profile.internal_ms
    kinds = {u.name: ("filters" if u.filters else "other") for u in profile.units}
    rows = [
        {
            "unit": name,
            "kind": kinds.get(name, "internal"),
            "before_ms": before.get(name, 0.0),
            "estimated_ms": parts.get(name, 0.0),
            "profiled_ms": measured.get(name, 0.0),
        }
        for name in sorted(set(parts) | set(measured) - {UNPLACED})
    ]
    return {"arch": arch, "layout": layout, "keep": keep, "rows": rows}


def show(result: dict, top: int) -> None:
    """Print the sums by kind and the ``top`` units furthest off."""
    rows = result["rows"]
    print(f"{result['arch']}:{result['layout']} keep {result['keep']}")
    for kind in ("filters", "other", "internal"):
        use = [r for r in rows if r["kind"] == kind]
        b, e, p = (sum(r[k] for r in use) for k in ("before_ms", "estimated_ms", "profiled_ms"))
        print(f"  {kind:8s} before {b:8.3f}  estimated {e:8.3f}  profiled {p:8.3f} ms")
    rows = sorted(rows, key=lambda r: -abs(r["estimated_ms"] - r["profiled_ms"]))
    for r in rows[:top]:
        print(
            f"  {r['estimated_ms'] - r['profiled_ms']:+7.3f} ms  {r['kind']:8s} {r['unit']} "
            f"(before {r['before_ms']:.3f}, estimated {r['estimated_ms']:.3f}, "
            f"profiled {r['profiled_ms']:.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", help="arch:layout,... (benchmarks/layouts.py)")
    parser.add_argument("--keep", type=float, default=0.3)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--table", type=Path, default=None, help="latency table file")
    args = parser.parse_args()
    with make_runner("ort", threads=1) as runner:
        table = LatencyTable(runner.fingerprint(), args.table)
        for arch, layout in parse_cases(args.cases):
            show(compare(runner, table, arch, layout, args.keep), args.top)


if __name__ == "__main__":
    main()
