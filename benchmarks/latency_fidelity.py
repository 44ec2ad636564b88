"""Latency-table fidelity: estimated against measured latency of randomly pruned networks.

For MobileNetV1, MobileNetV2, ResNet-18 and EfficientNet-B0 (random weights, 224x224) and 20
random prunings of each (``--design``: every group keeps a random 25-100% of its channels, or
networks drawn across 30-100% of the original; grid 8),
on each runner: measure the original 10 times (noise floor; the median calibrates), calibrate
every estimator of ``ESTIMATORS`` on it (the new one: in-network profile where the runner has
one, else the residual split over the layers; the old one: a constant residual), then compare
each estimate of a variant with its measurement. Also: table entries measured, the time it
took, and the full grid of table entries against what was measured (``table_grid.py``).

    python -m benchmarks.latency_fidelity --runner ort --out benchmarks/results/latency_fidelity
    python -m benchmarks.latency_fidelity --runner tflite --onnx2tf /work/venvs/onnx2tf/bin/onnx2tf
    (each with --design independent and --design wide: how the random prunings are drawn)
    python -m benchmarks.latency_fidelity --report-only
    python -m benchmarks.latency_fidelity --calibration original --cases resnet50:nhwc ...
    (NHWC and Paddle-style networks calibrated on the original alone: fidelity_layouts.py)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

from benchmarks.table_grid import adaptation_vs_grid, full_grid
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.interleave import ratio_to_reference
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.stats import STATISTICS, MeasureSettings
from onnx_netadapt.measure.strategies import ProfileStrategy
from onnx_netadapt.measure.table import LatencyTable

ARCHS = ("mobilenet_v1", "mobilenet_v2", "resnet18", "efficientnet_b0")
WHOLE = MeasureSettings(warmup=5, min_runs=20, max_runs=200, max_seconds=3.0, target_spread=0.03)
LAYER = MeasureSettings(warmup=3, min_runs=10, max_runs=100, max_seconds=0.5, target_spread=0.05)


def export(arch: str) -> onnx.ModelProto:
    """The architecture with random weights as ONNX (legacy exporter, opset 17)."""
    import torch

    from benchmarks.nets import MobileNetV1
    from benchmarks.zoo import import_torchvision

    torch.manual_seed(0)
    if arch == "mobilenet_v1":
        model = MobileNetV1()
    else:
        model = getattr(import_torchvision().models, arch)()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            torch.randn(1, 3, 224, 224),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    return onnx.load_from_string(buffer.getvalue())


# How the random prunings are drawn. "independent": every group keeps U(0.25, 1) of its channels
# on its own, so the network's latency averages out near 60 % of the original (spread 8-20 %).
# "wide": a level L ~ U(0.3, 1) per network, and every group keeps L * U(0.85, 1.15): networks
# from the original down to a third of it, the range an adaptation walks through.
DESIGNS = ("independent", "wide")


def keep_fraction(rng: np.random.Generator, design: str, level: float) -> float:
    """The fraction of a group's channels one random pruning keeps."""
    if design == "independent":
        return float(rng.uniform(0.25, 1.0))
    return level * float(rng.uniform(0.85, 1.15))


def variants(
    model: onnx.ModelProto, count: int, seed: int, design: str = "independent"
) -> list[onnx.ModelProto]:
    """``count`` random prunings of ``model`` (``design``: see ``DESIGNS``)."""
    analysis = analyse(load_model(model))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        level = float(rng.uniform(0.3, 1.0)) if design == "wide" else 1.0
        keep = {}
        for g in analysis.groups:
            if g.prunable:
                step = max(1, 8 // g.class_width)
                n = round(keep_fraction(rng, design, level) * g.units / step) * step
                keep[g.id] = int(min(g.units, max(step, n)))
        out.append(prune(analysis, keep).model)
    return out


# Estimators compared on the same measurements (see onnx_netadapt.measure.estimate). "new" is
# what ``Estimator(mode="auto")`` picks: "profile" where the runner profiles inside a network
# with ONNX node names, else "split". "constant" is the first version (issue 3's baseline).
ESTIMATORS = {
    # the default: plain kernel entries (in canary_run4, made while the canary was the default
    # for a session, this estimator's column is "profile_plain")
    "profile": {"mode": "profile"},
    "split": {"mode": "split"},
    "constant": {"mode": "constant"},
    "proportional": {"mode": "proportional"},
    "profile_table": {"mode": "profile", "kernels": False},
    "profile_cold": {"mode": "profile", "cold_kernels": True},
    # kernel entries scaled to a canary layer's speed in the same rounds (kernels.CANARY); the
    # column "profile" of canary_run4
    "profile_canary": {"mode": "profile", "canary_kernels": True},
    # a pruned layer's kernel entry timed apart from its original's (before 30 Nov 2026: the
    # default, "profile", in every run before noisy_turns_run1); "profile" times them by turns
    "profile_apart": {"mode": "profile", "reference_kernels": False},
    # "profile" reads a unit's in-network excess off kernel times profiled in the same rounds
    # as the network (calibration.EXCESS_BY_TURNS, since 30 Nov 2026); this, on the same
    # calibration, off the table's entries of the calibrated network, measured at another
    # moment (as before)
    "profile_excess_apart": {"paired": "profile", "excess_by_turns": False},
    # "profile" scales a unit's in-network excess over its kernel entry with the entry's change
    # to the power EXCESS_POWER (calibration.scale_kernel_unit); these, to the power 1 (the whole
    # unit with its entry, as before 29 Nov 2026) and 1.5
    "profile_linear": {"mode": ProfileStrategy(excess_power=1.0)},
    "profile_p1.5": {"mode": ProfileStrategy(excess_power=1.5)},
    # beyond the first power, the excess follows the network's activation footprint instead
    # of the unit's own entry change (tried 29 Nov 2026: no better, off by default)
    "profile_footprint": {"mode": ProfileStrategy(excess_footprint=True)},
    "split_gross": {"mode": "split", "session_overhead": False},
    # the constant overhead read off the profiled session's own run time instead of a
    # whole-network measurement in another session (ProfileStrategy(run_share=True))
    "profile_run": {"mode": ProfileStrategy(run_share=True)},
    # the excess as weights a cache of 4 / 8 / 16 MiB does not hold (calibration.cold_share;
    # 4-8 MiB fitted the units of units_folded_run1 in layouts/ on the first host; 8 MiB was
    # the default ("profile") from 29 Nov 2026 to session 22, 4 MiB since; in fold_run1-3 it
    # was "profile_cold8" and "profile" the power rule). With the power rule as their floor
    # (EXCESS_FLOOR) since fold_run7; without it before.
    "profile_cold4": {"mode": ProfileStrategy(excess_cache_bytes=4 << 20)},
    "profile_cold8": {"mode": ProfileStrategy(excess_cache_bytes=8 << 20)},
    "profile_cold16": {"mode": ProfileStrategy(excess_cache_bytes=16 << 20)},
    # profiles over 3 rounds, as before 29 Nov 2026 (strategies.PROFILE_ROUNDS: 9 since)
    "profile_r3": {"mode": "profile", "rounds": 3},
    # the power rule only (calibration.EXCESS_POWER), as before 29 Nov 2026
    "profile_power": {"mode": ProfileStrategy(excess_cache_bytes=0)},
    # the power rule on "profile"'s own calibration (its profile, overhead and entries), so the
    # difference between the two columns is the rule's alone, not two calibrations' noise
    "profile_power_paired": {"paired": "profile", "excess_cache_bytes": 0},
    # the weight rule without the power rule as its floor (the default of fold_run4-6)
    "profile_weights_paired": {"paired": "profile", "excess_floor": False},
    # On "profile"'s own calibration: each profiled node of the units without filter layers
    # keeping a fixed cost when pruned, or not (calibration.EVENT_COST: the default since
    # reorder_run1; in event_run1 "profile" kept it and "profile_noevent_paired" did not, in
    # model_run1-2 "profile_event_paired" kept it) ...
    "profile_event_paired": {"paired": "profile", "event_cost": True},
    "profile_noevent_paired": {"paired": "profile", "event_cost": False},
    # ... and the constant overhead as measured (before 29 Nov 2026 evening), not predicted
    # from the runtime's costs per node and per run (calibration.MODEL_OVERHEAD)
    "profile_measured_paired": {"paired": "profile", "model_overhead_ms": None},
}
OLD = "constant"
NEW, NEW_FALLBACK = "profile+curve", "split+curve"
# Also refined on a second network (every group at half its channels, measured): "+2pt"; on
# three (every group at 3/4, 1/2 and 1/4 of its channels): "+curve". Result files of the first
# runs hold "+2pt" only and name it as their "new".
TWO_POINT = ("profile", "split", "constant")
CURVE_RATIOS = (0.75, 0.5, 0.25)
ROUNDS = 3  # interleaved rounds of a variant against the original


def anchored(runner, model: onnx.ModelProto, reference: onnx.ModelProto, reference_ms: float):
    """``model``'s latency as ``reference_ms`` times its median ratio to ``reference``, timed
    back to back in interleaved rounds (a machine whose speed drifts by a few percent within
    minutes hits both alike); also the raw medians."""
    ratio, raw = ratio_to_reference(runner, model, reference, ROUNDS)
    return reference_ms * ratio, raw


def calibrate_all(
    runner, table: LatencyTable, loaded, measured: float, estimators: dict | None = None
) -> dict[str, Estimator]:
    """Every estimator the runner supports (of ``estimators``, default ``ESTIMATORS``),
    calibrated on ``loaded`` measured at ``measured``."""
    out = {}
    for name, kwargs in (ESTIMATORS if estimators is None else estimators).items():
        if "paired" in kwargs:
            if kwargs["paired"] in out:
                out[name] = paired(out[kwargs["paired"]], kwargs)
            else:
                print(f"  {name}: skipped (needs {kwargs['paired']!r} before it)")
            continue
        estimator = Estimator(runner, table, **kwargs)
        try:
            estimator.calibrate(loaded, measured_ms=measured)
        except NetAdaptError as exc:  # no in-network profile on this runner
            print(f"  {name}: skipped ({exc})")
            continue
        out[name] = estimator
    return out


def paired(estimator: Estimator, spec: dict) -> Estimator:
    """A copy of a calibrated profile ``estimator`` whose calibration record takes the fields
    of ``spec`` (other than "paired"): the same profile, overhead and entries."""
    twin = copy.copy(estimator)
    twin.calibration = copy.deepcopy(estimator.calibration)
    profile = twin.calibration.base.profile
    for field, value in spec.items():
        if field != "paired":
            setattr(profile, field, value)
    return twin


def describe(estimator: Estimator) -> dict:
    """What the calibration kept (JSON-ready)."""
    cal = estimator.calibration
    prof = getattr(cal.base, "profile", None)
    session = prof.session_ms if prof is not None else getattr(cal.base, "session_ms", 0.0)
    data = {
        "mode": cal.mode,
        "layers_ms": cal.layers_ms,
        "session_ms": session,
        "residual_ms": cal.residual_ms,
        "anchors": [list(a) for a in cal.anchors],
    }
    if prof is not None:
        data.update(
            overhead_ms=prof.overhead_ms,
            internal_ms=prof.internal_ms,
            event_ms=prof.event_ms,
            event_cost=prof.event_cost,
            internal_events=prof.internal_events,
            model_overhead_ms=prof.model_overhead_ms,
            profiled_ms=sum(u.ms for u in prof.units),
            units=len(prof.units),
            unplaced_filters=sorted(prof.unplaced),
            # the whole record, each unit's rounds included: what a replay of other rules reads
            # (``benchmarks/fidelity_replay.py``)
            record=prof.to_dict(),
        )
    return data


def result_path(out: Path, runner_name: str, design: str) -> Path:
    """Where one run's results go (the first design kept its original file name)."""
    suffix = "" if design == "independent" else f"_{design}"
    return out / f"fidelity_{runner_name}{suffix}.json"


def run(runner_name: str, out: Path, count: int, options: dict, design: str) -> dict:
    """Fidelity of every estimator on one runner over every architecture."""
    results = {"runner": runner_name, "design": design, "architectures": {}}
    with make_runner(runner_name, threads=1, **options) as runner:
        runner.settings = LAYER
        table_file = result_path(out, runner_name, design).name.replace("fidelity_", "table_")
        table = LatencyTable(runner.fingerprint(), out / table_file)
        results["fingerprint"] = runner.fingerprint()
        for arch in ARCHS:
            results["architectures"][arch] = fidelity_of(arch, runner, table, count, design)
    result_path(out, runner_name, design).write_text(json.dumps(results, indent=1) + "\n")
    return results


def fidelity_of(arch: str, runner, table: LatencyTable, count: int, design: str) -> dict:
    """One architecture: its noise floor, every estimator's calibration, and each random
    variant's estimates against its measurement (JSON-ready)."""
    original = export(arch)
    loaded = load_model(original)
    start_measurements, start_time = table.measurements, table.measure_seconds
    runner.settings = WHOLE
    noise = [runner.measure(loaded.model).median_ms for _ in range(10)]
    measured = float(np.median(noise))
    self_ratio = [anchored(runner, loaded.model, loaded.model, 1.0)[0] for _ in range(3)]
    runner.settings = LAYER
    estimators = calibrate_all(runner, table, loaded, measured)
    anchors = curve_anchors(runner, loaded, measured)
    add_refined(estimators, anchors)
    new = NEW if NEW in estimators else NEW_FALLBACK
    rows, seconds = variant_rows(
        runner, original, loaded.model, measured, estimators, new, count, design
    )
    kernels = estimators[new].kernels_table if new in estimators else None
    record = {
        "original_ms": measured,
        "layers_sum_ms": estimators[OLD].calibration.layers_ms,
        "noise_ms": noise,
        "anchored_self_ratio": self_ratio,
        "new": new,
        "calibrations": {n: describe(e) for n, e in estimators.items()},
        "variants": rows,
        "estimate_seconds": float(np.median(seconds)),
        "half_ms": anchors[0.5][1],
        "anchor_ms": {str(r): ms for r, (_, ms) in anchors.items()},
        "slopes": {n: e.calibration.slope for n, e in estimators.items()},
        "table_measurements": table.measurements - start_measurements,
        "table_fill_seconds": table.measure_seconds - start_time,
        "kernel_measurements": kernels.measurements if kernels else 0,
        "kernel_fill_seconds": kernels.measure_seconds if kernels else 0.0,
        "full_grid_entries": len(full_grid(loaded)),
    }
    print(f"{arch}: {metrics(rows, noise, new)}", flush=True)
    return record


def curve_anchors(runner, loaded, measured: float) -> dict[float, tuple]:
    """{ratio: (network, measured ms)}: every group at each share of CURVE_RATIOS."""
    anchors = {}
    for ratio in CURVE_RATIOS:
        network = load_model(prune(analyse(loaded), ratio=ratio).model)
        runner.settings = WHOLE
        ms, _ = anchored(runner, network.model, loaded.model, measured)
        anchors[ratio] = (network, ms)
    runner.settings = LAYER
    return anchors


def add_refined(estimators: dict[str, Estimator], anchors: dict[float, tuple]) -> None:
    """Add the TWO_POINT estimators refined on the half-width anchor (``+2pt``) and on every
    anchor of the curve (``+curve``)."""
    for name in TWO_POINT:
        if name in estimators:
            for suffix, ratios in (("+2pt", (0.5,)), ("+curve", CURVE_RATIOS)):
                twin = copy.copy(estimators[name])
                twin.calibration = dataclasses.replace(estimators[name].calibration)
                for ratio in ratios:
                    twin.refine(*anchors[ratio])
                estimators[name + suffix] = twin


def variant_rows(
    runner,
    original: onnx.ModelProto,
    reference: onnx.ModelProto,
    measured: float,
    estimators: dict[str, Estimator],
    new: str,
    count: int,
    design: str,
) -> tuple[list[dict], list[float]]:
    """Each random variant's estimates and measurement (anchored to ``reference``), and the
    seconds the ``new`` estimator took per variant with its entries known."""
    rows, seconds = [], []
    for i, variant in enumerate(variants(original, count, seed=1, design=design)):
        runner.settings = LAYER
        pruned = load_model(variant)
        estimates = {}
        for name, estimator in estimators.items():
            estimates[name] = estimator.estimate(pruned)
        start = time.perf_counter()
        estimators[new].estimate(pruned)  # entries known now: the loop's cost
        seconds.append(time.perf_counter() - start)
        runner.settings = WHOLE
        value, raw = anchored(runner, variant, reference, measured)
        rows.append(
            {
                "variant": i,
                "measured_ms": value,
                "measured_raw_ms": raw,
                "estimated_ms": estimates[new],
                "estimates": estimates,
            }
        )
    return rows, seconds


def estimates_of(rows: list[dict], name: str) -> list[float] | None:
    """The ``name`` estimates of ``rows`` (older result files hold the constant one only)."""
    if all("estimates" in r for r in rows):
        if not all(name in r["estimates"] for r in rows):
            return None
        return [r["estimates"][name] for r in rows]
    return [r["estimated_ms"] for r in rows] if name == OLD else None


def metrics(rows: list[dict], noise: list[float], name: str = OLD) -> dict:
    """Pearson r, mean and worst absolute percentage error, bias, the noise floor, and the
    spread of the measured latencies (their standard deviation over their mean: r means little
    where it is not well above the noise floor)."""
    est = np.array(estimates_of(rows, name))
    mea = np.array([r["measured_ms"] for r in rows])
    err = (est - mea) / mea
    noise = np.asarray(noise)
    deviation = np.abs(noise - np.median(noise)) / np.median(noise)
    return {
        "n": len(rows),
        "pearson_r": float(np.corrcoef(est, mea)[0, 1]) if len(rows) > 1 else float("nan"),
        "mape_pct": float(100 * np.abs(err).mean()),
        "worst_pct": float(100 * np.abs(err).max()),
        "bias_pct": float(100 * err.mean()),
        "noise_floor_pct": float(100 * deviation.mean()),
        "noise_worst_pct": float(100 * deviation.max()),
        "spread_pct": float(100 * mea.std() / mea.mean()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", default="ort")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latency_fidelity"))
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--onnx2tf", help="onnx2tf executable (tflite runner)")
    parser.add_argument("--design", choices=DESIGNS, default="wide", help="random prunings")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--calibration",
        choices=("curve", "original"),
        default="curve",
        help="curve: the estimators refined on measured prunings (the tables above); "
        "original: calibrated on the original alone, over --cases (fidelity_layouts.py)",
    )
    parser.add_argument("--cases", default=None, help="original: arch:layout,... (layouts.py)")
    parser.add_argument("--estimators", default="profile", help="original: names of ESTIMATORS")
    parser.add_argument("--threads", type=int, default=1, help="original: runner threads")
    parser.add_argument("--name", default="layouts", help="original: result file stem")
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help="original: interleaved rounds of each variant against the original",
    )
    parser.add_argument(
        "--truth",
        choices=STATISTICS,
        default="median",
        help="original: the statistic of each whole-network measurement that the ratios are "
        "taken by (p10, min: steadier on a machine shared with other work)",
    )
    parser.add_argument(
        "--more-rounds",
        type=int,
        default=0,
        help="original: rounds added for a variant whose first --rounds spread by more than "
        "--truth-spread (fidelity_layouts.Truth)",
    )
    parser.add_argument(
        "--truth-spread",
        type=float,
        default=None,
        help="original: that limit, (largest - smallest) / median of the rounds' ratios "
        "(default fidelity_layouts.TRUTH_SPREAD)",
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="original: each round runs the pruning and the original by turns, both loaded "
        "(steadier on a shared machine; interleave.alternating_stats)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1 (got {args.rounds})")
    if args.more_rounds < 0:
        parser.error(f"--more-rounds must be 0 or more (got {args.more_rounds})")
    if args.truth_spread is not None and args.truth_spread < 0:
        parser.error(f"--truth-spread must be 0 or more (got {args.truth_spread})")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.calibration == "original":
        from benchmarks import fidelity_layouts

        names = [n.strip() for n in args.estimators.split(",")]
        if unknown := sorted(set(names) - set(ESTIMATORS)):
            raise SystemExit(f"unknown estimators {unknown}; known: {', '.join(ESTIMATORS)}")
        cases = fidelity_layouts.parse_cases(args.cases or fidelity_layouts.DEFAULT_CASES)
        fidelity_layouts.run(
            args.runner,
            args.out,
            cases,
            args.variants,
            args.design,
            names,
            args.threads,
            "python -m benchmarks.latency_fidelity "
            + " ".join(sys.argv[1:] if argv is None else argv),
            args.name,
            fidelity_layouts.Truth(
                args.rounds,
                args.truth,
                args.alternate,
                args.more_rounds,
                fidelity_layouts.TRUTH_SPREAD if args.truth_spread is None else args.truth_spread,
            ),
        )
        return
    if not args.report_only:
        options = {"onnx2tf": args.onnx2tf} if args.onnx2tf else {}
        start = time.perf_counter()
        run(args.runner, args.out, args.variants, options, args.design)
        print(f"{args.runner}: done in {time.perf_counter() - start:.0f} s")
    grid_path = args.out / "grid.json"  # python -m benchmarks.table_grid --fill --out it
    if not grid_path.exists():
        grid_path.write_text(json.dumps(adaptation_vs_grid(), indent=1) + "\n")
    from benchmarks.fidelity_report import report  # it imports this module's names

    report(args.out, json.loads(grid_path.read_text()))


if __name__ == "__main__":
    main()
