"""Latency fidelity on networks in other converters' layouts, calibrated on the original alone.

Each case is an architecture in a layout (``benchmarks/layouts.py``: ``nhwc`` as TensorFlow
converters write it, ``nhwc_muladd`` with batch norm as Mul/Add, ``paddle``, or ``nchw``). The
estimators are calibrated on the original network only, as the adaptation loop's first
iteration is (no refinement anchors), then estimate the networks with every prunable group at
0.3, 0.5 and 0.75 of its channels and random prunings (``latency_fidelity.DESIGNS``), each
measured side by side with the original (median ratio over interleaved rounds).
Reported per variant: estimate, measurement, error; per case: mean and worst error.

    python -m benchmarks.latency_fidelity --calibration original \
        --cases resnet50:nhwc,mobilenet_v2:nhwc_muladd,mobilenet_v2:paddle --variants 3
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from benchmarks.latency_fidelity import (
    ESTIMATORS,
    LAYER,
    ROUNDS,
    WHOLE,
    calibrate_all,
    describe,
    export,
    variants,
)
from benchmarks.layouts import LAYOUTS, in_layout, input_shape
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.host import cpu_identity
from onnx_netadapt.measure.interleave import (
    alternating_stats,
    round_stats,
    stats_ratios,
    with_more_rounds,
)
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.stats import STATISTICS
from onnx_netadapt.measure.table import LatencyTable

FIXED_KEEP = (0.3, 0.5, 0.75)  # every prunable group at this share of its channels
INPUT = (1, 3, 224, 224)
DEFAULT_CASES = "resnet50:nhwc,mobilenet_v2:nhwc_muladd,mobilenet_v2:paddle"
# A variant whose first rounds' ratios spread by more than this (``interleave.ratio_spread``)
# gets ``Truth.more_rounds`` more.
TRUTH_SPREAD = 0.04


@dataclass(frozen=True)
class Truth:
    """How a variant's ground truth is measured against the original.

    Attributes:
        rounds: interleaved rounds of the variant and the original.
        statistic: of each measurement (``LatencyStats.statistic``) that the ratios and the
            original's time are taken by.
        alternate: each round runs the two by turns (``interleave.alternating_stats``).
        more_rounds: rounds added where the first ``rounds`` spread by more than ``spread``
            (``interleave.with_more_rounds``; 0: none, as before 30 Nov 2026).
        spread: that limit, as (largest - smallest) / median of the rounds' ratios.
    """

    rounds: int = ROUNDS
    statistic: str = "median"
    alternate: bool = False
    more_rounds: int = 0
    spread: float = TRUTH_SPREAD

    def stats(self, runner, network: onnx.ModelProto, original: onnx.ModelProto) -> dict:
        """Per-round statistics of ``network`` ("model") and ``original`` ("reference")."""
        pairs = alternating_stats if self.alternate else round_stats
        return with_more_rounds(
            lambda n: pairs(runner, network, original, n),
            self.rounds,
            self.more_rounds,
            self.spread,
            self.statistic,
        )


def load_case(arch: str, layout: str) -> LoadedModel:
    """The network ``arch`` in ``layout`` (``layouts.in_layout``), loaded at ``INPUT``."""
    model = in_layout(export(arch), layout)
    return load_model(model, input_shape(model, INPUT, layout))


def case_networks(loaded: LoadedModel, count: int, design: str) -> dict[str, onnx.ModelProto]:
    """A case's prunings by label: every prunable group at each ``FIXED_KEEP`` share of its
    channels ("keep 0.3"...) and ``count`` random ones of seed 1 ("random 0"...)."""
    analysis = analyse(loaded)
    networks = {f"keep {r}": prune(analysis, ratio=r).model for r in FIXED_KEEP}
    for i, variant in enumerate(variants(loaded.model, count, seed=1, design=design)):
        networks[f"random {i}"] = variant
    return networks


def parse_cases(spec: str) -> list[tuple[str, str]]:
    """``arch:layout,...`` -> [(arch, layout)]."""
    cases = []
    for item in spec.split(","):
        arch, _, layout = item.strip().partition(":")
        layout = layout or "nchw"
        if layout not in LAYOUTS:
            raise SystemExit(f"unknown layout {layout!r} in {item!r}; layouts: {LAYOUTS}")
        cases.append((arch, layout))
    return cases


def run_case(
    runner,
    table: LatencyTable,
    arch: str,
    layout: str,
    count: int,
    design: str,
    estimators: list[str],
    truth: Truth = Truth(),
) -> dict:
    """One case: calibrate on the original, estimate and measure the fixed and random
    prunings against the original as ``truth`` says; each row also keeps the ratios by the
    other statistics."""
    loaded = load_case(arch, layout)
    original = loaded.model
    runner.settings = WHOLE
    noise_stats = [runner.measure(original) for _ in range(5)]
    noise = [s.statistic(truth.statistic) for s in noise_stats]
    measured = float(np.median(noise))
    runner.settings = LAYER
    start = table.measure_seconds
    chosen = {n: ESTIMATORS[n] for n in estimators}
    calibrated = calibrate_all(runner, table, loaded, measured, chosen)
    networks = case_networks(loaded, count, design)
    case = f"{arch}:{layout}"
    rows = [
        _row(runner, calibrated, label, network, original, measured, case, truth)
        for label, network in networks.items()
    ]
    kernels = next((e.kernels_table for e in calibrated.values() if e.kernels_table), None)
    return {
        "arch": arch,
        "layout": layout,
        "original_ms": measured,
        "noise_ms": noise,
        "truth": truth.statistic,
        "noise_stats": [s.to_dict() for s in noise_stats],
        "calibrations": {n: describe(e) for n, e in calibrated.items()},
        "variants": rows,
        "summary": summary(rows),
        "table_fill_seconds": table.measure_seconds - start,
        "kernel_fill_seconds": kernels.measure_seconds if kernels else 0.0,
    }


def _row(
    runner,
    calibrated: dict,
    label: str,
    network: onnx.ModelProto,
    original: onnx.ModelProto,
    measured: float,
    case: str,
    truth: Truth = Truth(),
) -> dict:
    """One pruned network: every estimate against its measurement (its median ratio to the
    original over the rounds ``truth`` takes, times the original's ``measured`` ms; the
    ratio of every round is kept, so a run shows its own noise; ratios by ``truth``'s
    statistic, and by every statistic under ``round_ratios_by``); printed as it comes."""
    runner.settings = LAYER
    pruned = load_model(network)
    estimates = {name: e.estimate(pruned) for name, e in calibrated.items()}
    runner.settings = WHOLE
    stats = truth.stats(runner, network, original)
    ratios, times = stats_ratios(stats, truth.statistic)
    value = measured * float(np.median(ratios))
    row = {
        "variant": label,
        "measured_ms": value,
        "measured_raw_ms": float(np.median(times)),
        "ratio": value / measured,
        "round_ratios": ratios,
        "round_ratios_by": {s: stats_ratios(stats, s)[0] for s in STATISTICS},
        "estimates": estimates,
        "errors_pct": {n: 100 * (e - value) / value for n, e in estimates.items()},
    }
    print(
        f"  {case} {label}: measured {value:.2f} ms, "
        + ", ".join(f"{n} {e:.2f} ({row['errors_pct'][n]:+.1f} %)" for n, e in estimates.items()),
        flush=True,
    )
    return row


def summary(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per estimator: mean and worst absolute error (%), bias (%), variants within 10 %."""
    out = {}
    for name in rows[0]["estimates"]:
        err = np.array([r["errors_pct"][name] for r in rows])
        out[name] = {
            "mean_abs_pct": float(np.abs(err).mean()),
            "worst_abs_pct": float(np.abs(err).max()),
            "bias_pct": float(err.mean()),
            "within_10pct": int((np.abs(err) <= 10).sum()),
            "n": len(rows),
        }
    return out


def run(
    runner_name: str,
    out: Path,
    cases: list[tuple[str, str]],
    count: int,
    design: str,
    estimators: list[str],
    threads: int,
    command: str,
    name: str = "layouts",
    truth: Truth = Truth(),
) -> dict:
    """Every case on one runner; results in ``out/<name>_<runner>.json`` and ``.md``."""
    start = time.perf_counter()
    results = {
        "command": command,
        "runner": runner_name,
        "threads": threads,
        "cpu": cpu_identity(),
        "calibration": "original",
        "design": design,
        "rounds": truth.rounds,
        "truth": truth.statistic,
        "alternate": truth.alternate,
        "more_rounds": truth.more_rounds,
        "truth_spread": truth.spread,
        "cases": [],
    }
    with make_runner(runner_name, threads=threads) as runner:
        results["fingerprint"] = runner.fingerprint()
        table = LatencyTable(runner.fingerprint(), out / f"layouts_table_{runner_name}.json")
        stem = out / f"{name}_{runner_name}"
        for arch, layout in cases:  # results written after every case
            results["cases"].append(
                run_case(runner, table, arch, layout, count, design, estimators, truth)
            )
            table.save()
            results["seconds"] = time.perf_counter() - start
            save_json(results, stem.with_suffix(".json"))
            save_text(report(results), stem.with_suffix(".md"))
    return results


def report(results: dict) -> str:
    """Markdown: per-variant errors and per-case mean/worst."""
    lines = [
        "# Latency estimates of NHWC and Paddle-style networks, calibrated on the original alone",
        "",
        f"`{results['command']}` ({results['runner']}, {results['threads']} thread(s), "
        f"{results['cpu']}, {results['seconds']:.0f} s). Networks: `benchmarks/layouts.py`; "
        "design: `benchmarks/fidelity_layouts.py`. Goal (issue 12.3): every variant within "
        "10 %, mean within 5 %. Measured times and ratios by each measurement's "
        f"{results.get('truth', 'median')}"
        + (", each round running the two by turns" if results.get("alternate") else "")
        + _more_rounds_text(results)
        + ".",
        "",
        "| case | variant | measured / original | its rounds' sd % | "
        + " | ".join(f"{n} error %" for n in results["cases"][0]["summary"])
        + " |",
        "|---|---|---|---|" + "---|" * len(results["cases"][0]["summary"]),
    ]
    for case in results["cases"]:
        for row in case["variants"]:
            lines.append(
                f"| {case['arch']}:{case['layout']} | {row['variant']} | {row['ratio']:.3f} | "
                f"{_round_spread(row, results.get('rounds'))} | "
                + " | ".join(f"{row['errors_pct'][n]:+.1f}" for n in case["summary"])
                + " |"
            )
    lines += [
        "",
        "| case | estimator | mean % | worst % | bias % | within 10 % |",
        "|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        for name, s in case["summary"].items():
            lines.append(
                f"| {case['arch']}:{case['layout']} | {name} | {s['mean_abs_pct']:.1f} | "
                f"{s['worst_abs_pct']:.1f} | {s['bias_pct']:+.1f} | {s['within_10pct']}/{s['n']} |"
            )
    return "\n".join(lines + more_rounds_lines(results)) + "\n"


def more_rounds_lines(results: dict) -> list[str]:
    """Markdown on the variants that got ``Truth.more_rounds``: how far the median of their
    first ``rounds`` ratios was from all of theirs, and the default estimator's errors against
    each ([]: none got more)."""
    first = results.get("rounds", ROUNDS)
    moved, errors = [], []
    for case in results["cases"]:
        name = next(iter(case["summary"]))
        for row in case["variants"]:
            ratios = row.get("round_ratios") or []
            if len(ratios) <= first:
                continue
            early = float(np.median(ratios[:first]))
            moved.append(100 * (early / row["ratio"] - 1))
            estimate = row["estimates"][name] / case["original_ms"]
            errors.append((100 * (estimate / early - 1), row["errors_pct"][name]))
    if not moved:
        return []
    apart = np.abs(moved)
    early_worst, all_worst = (max(abs(e[i]) for e in errors) for i in (0, 1))
    return [
        "",
        f"{len(moved)} variants got more rounds. The median of their first {first} rounds was "
        f"{np.median(apart):.1f} % from all of theirs (median; largest {apart.max():.1f} %). "
        f"Against their first {first} rounds alone, the {name} estimate's largest error among "
        f"them would have been {early_worst:.1f} %; against all, it was {all_worst:.1f} %.",
    ]


def _more_rounds_text(results: dict) -> str:
    """The report's words for ``Truth.more_rounds`` ("": none)."""
    more = results.get("more_rounds", 0)
    if not more:
        return ""
    return (
        f"; {more} more rounds for a variant whose first {results['rounds']} spread by more "
        f"than {100 * results['truth_spread']:.0f} % (largest - smallest over median)"
    )


def _round_spread(row: dict, rounds: int | None = None) -> str:
    """The sd of a variant's per-round ratios, in % of their median ("-": not kept, as in
    the runs before session 11), and how many rounds where that is not ``rounds``."""
    ratios = row.get("round_ratios")
    if not ratios or len(ratios) < 2:
        return "-"
    sd = f"{100 * float(np.std(ratios, ddof=1)) / float(np.median(ratios)):.1f}"
    return sd if rounds is None or len(ratios) == rounds else f"{sd} ({len(ratios)} rounds)"
