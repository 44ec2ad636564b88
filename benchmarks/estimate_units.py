"""Which profiled kernels does the 'profile' estimate mis-scale? Unit by unit, against a profile.

Calibrates the 'profile' estimator on the original network (ORT, in-context kernel entries),
estimates a pruning of it (every group at ``--keep`` of its channels) unit by unit
(``calibration.estimate_parts``), then profiles the pruning and lists the units whose estimate
is furthest from their profiled time, and the sums by kind (filter-layer units, other nodes,
runtime-internal nodes). Profiles are per-kernel medians, so this reads even on a busy machine
where whole-network timings do not.

    python -m benchmarks.estimate_units resnet50:nhwc --keep 0.3

Each row also carries, for a unit of filter layers, their in-context kernel entries before and
after pruning, their weight elements and their input and output activation elements, so other
scalings can be tried on a saved ``--json`` without measuring again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.fidelity_layouts import load_case, parse_cases
from benchmarks.latency_fidelity import LAYER, WHOLE
from benchmarks.latency_fidelity import ROUNDS as WHOLE_ROUNDS
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.graph.save import save_json
from onnx_netadapt.measure.calibration import (
    INTERNAL,
    UNPLACED,
    estimate_parts,
    node_elements,
    weight_bytes,
    with_overhead,
)
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.interleave import round_ratios
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.signature import LayerSignature, model_signatures
from onnx_netadapt.measure.table import LatencyTable

ROUNDS = 3  # profiles of the pruning, per-node medians


def weight_elements(sig: LayerSignature) -> int:
    """Elements of a filter layer's weight."""
    n = sig.out_channels * (sig.in_channels // max(1, sig.groups))
    for k in sig.kernel:
        n *= k
    return n


def activation_elements(sig: LayerSignature) -> tuple[int, int]:
    """Elements of a filter layer's input and output activations."""
    rows = max(1, sig.rows)
    inputs = sig.in_channels * rows * int(np.prod(sig.input_hw or (1,)))
    outputs = sig.out_channels * rows * int(np.prod(sig.output_hw() or (1,)))
    return inputs, outputs


def compare(runner, table: LatencyTable, arch: str, layout: str, keeps: list[float]) -> list[dict]:
    """Per keep, per unit: calibration time, estimate and profiled time of the pruning (ms),
    and for filter units their kernel entries before and after, their weight elements and
    their activation elements."""
    loaded = load_case(arch, layout)
    runner.settings = LAYER
    estimator = Estimator(runner, table, mode="profile")
    profile = estimator.calibrate(loaded).base.profile
    analysis = analyse(loaded)
    before_sigs = model_signatures(loaded)
    before_ms = estimator.kernel_entries(before_sigs)
    return [
        _compare_keep(runner, estimator, profile, loaded, analysis, (before_sigs, before_ms), keep)
        | {"arch": arch, "layout": layout}
        for keep in keeps
    ]


def _compare_keep(runner, estimator, profile, loaded, analysis, before, keep: float) -> dict:
    """``compare`` for one keep; ``before`` holds the original's signatures and entries.

    Besides the units: the estimate's ratio to the calibration's measurement, the ratio
    measured side by side, and the ratio of the pruning's profile total to the original's,
    the two profiled in the same rounds."""
    before_sigs, before_ms = before
    pruned = load_model(prune(analysis, ratio=keep).model, fold=False)
    signatures = model_signatures(pruned)
    layer_ms = estimator.kernel_entries(signatures)
    parts = estimate_parts(profile, pruned.model, pruned.shapes, layer_ms)
    profiles, originals = [], []
    for _ in range(ROUNDS):
        originals.append(runner.profile_layers(loaded.model))
        profiles.append(runner.profile_layers(pruned.model))
    runner.settings = WHOLE
    ratios, _ = round_ratios(runner, pruned.model, loaded.model, WHOLE_ROUNDS)
    runner.settings = LAYER
    network = {
        "calibration_ms": profile.measured_ms,
        "weight_bytes": [profile.weights, weight_bytes(pruned.model)],
        "activation_elements": [
            profile.elements,
            sum(node_elements(pruned.model, pruned.shapes).values()),
        ],
        "overhead_ms": profile.overhead_ms,
        "model_overhead_ms": profile.model_overhead_ms,
        "estimated_ratio": with_overhead(profile, sum(parts.values())) / profile.measured_ms,
        "measured_ratio": float(np.median(ratios)),
        "round_ratios": ratios,
        "profile_ratio": float(
            np.median(
                [
                    sum(p.values()) / sum(o.values())
                    for p, o in zip(profiles, originals, strict=True)
                ]
            )
        ),
    }
    names = {n.name for n in pruned.model.graph.node}
    measured: dict[str, float] = {}
    for name in set().union(*profiles):
        ms = float(np.median([p.get(name, 0.0) for p in profiles]))
        key = name if name in names else INTERNAL
        measured[key] = measured.get(key, 0.0) + ms
    before = {u.name: u.ms for u in profile.units}
    before[INTERNAL] = profile.internal_ms
    kinds = {u.name: ("filters" if u.filters else "other") for u in profile.units}
    filters = {u.name: u.filters for u in profile.units if u.filters}
    rows = []
    for name in sorted(set(parts) | set(measured) - {UNPLACED}):
        row = {
            "unit": name,
            "kind": kinds.get(name, "internal"),
            "before_ms": before.get(name, 0.0),
            "estimated_ms": parts.get(name, 0.0),
            "profiled_ms": measured.get(name, 0.0),
        }
        members = [f for f in filters.get(name, []) if f in signatures]
        if members:
            row["kernel_before_ms"] = sum(before_ms[f] for f in members)
            row["kernel_after_ms"] = sum(layer_ms[f] for f in members)
            row["weights_before"] = sum(weight_elements(before_sigs[f]) for f in members)
            row["weights_after"] = sum(weight_elements(signatures[f]) for f in members)
            row["output_hw"] = list(signatures[members[0]].output_hw())
            for when, sigs in (("before", before_sigs), ("after", signatures)):
                ins, outs = zip(*(activation_elements(sigs[f]) for f in members), strict=True)
                row[f"inputs_{when}"], row[f"outputs_{when}"] = sum(ins), sum(outs)
        rows.append(row)
    return {"keep": keep, "network": network, "rows": rows}


def show(result: dict, top: int) -> None:
    """Print the sums by kind and the ``top`` units furthest off."""
    rows = result["rows"]
    net = result["network"]
    print(
        f"{result['arch']}:{result['layout']} keep {result['keep']}: ratio estimated "
        f"{net['estimated_ratio']:.3f}, measured {net['measured_ratio']:.3f} "
        f"({100 * (net['estimated_ratio'] / net['measured_ratio'] - 1):+.1f} %), profiles "
        f"{net['profile_ratio']:.3f}; overhead {net['overhead_ms']:+.3f} of "
        f"{net['calibration_ms']:.2f} ms"
    )
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", help="arch:layout,... (benchmarks/layouts.py)")
    parser.add_argument("--keep", type=float, nargs="+", default=[0.3])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--table", type=Path, default=None, help="latency table file")
    parser.add_argument("--json", type=Path, default=None, help="write every row here")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if bad := [k for k in args.keep if not 0.0 < k <= 1.0]:
        parser.error(f"--keep {bad[0]} is outside (0, 1]: the share of each group's channels kept")
    results = []
    with make_runner("ort", threads=1) as runner:
        table = LatencyTable(runner.fingerprint(), args.table)
        for arch, layout in parse_cases(args.cases):
            for result in compare(runner, table, arch, layout, args.keep):
                show(result, args.top)
                results.append(result)
    if args.json is not None:
        command = "python -m benchmarks.estimate_units " + " ".join(argv)
        save_json({"command": command, "results": results}, args.json)


if __name__ == "__main__":
    main()
