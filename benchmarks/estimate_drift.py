"""What moves the 'profile' estimate from one calibration to the next (issue 12.3)?

The estimate of a pruning is built from two measured parts of a run: the original network's
in-network profile (each kernel's share of its time, and the constant overhead left over) and
the in-context kernel entries (``kernels.py``) of the original's and the pruning's layers,
whose ratio scales each profiled kernel. Between quiet runs the estimate of the same pruning
moved by 2-12 points where its measured ratio did not (``layouts/README.md``, session 11).

This calibrates the same original ``--repeats`` times in one process, each time from nothing
(its whole-network time, its profile, fresh kernel entries of the original and of every fixed
pruning: every group at 0.3 / 0.5 / 0.75 of its channels), and measures each pruning side by
side with the original (its ratio over interleaved rounds). Then it crosses the parts: the
estimate from repeat i's profile with repeat j's kernel entries, for every i and j. How much the
estimate moves along i (j fixed) is the profile's share of the drift; along j, the entries'.

Each calibration is the estimator's (since 30 Nov 2026): the profile's rounds each profile every
filter layer in context too (a unit's excess is read off those, ``calibration.EXCESS_BY_TURNS``),
and a pruning's entries are timed by turns with the original's layers. The report also gives
the estimate with the excess read off the table's entries of the original, as before.

    python -m benchmarks.estimate_drift resnet50:nhwc,mobilenet_v2:nchw --repeats 4 --name drift

Writes ``NAME_ort.md`` and ``NAME_ort.json`` in ``--out``. Times latency: run it on a quiet
machine, nothing else on the cores. Run it several times (each run is one process), then

    python -m benchmarks.estimate_drift --summarise drift_run1 drift_run2 drift_run3

reads those runs' JSON in ``--out`` (it measures nothing) and writes ``NAME_runs.md``: per
pruning, how far its measured ratio and its estimate move inside one run against between runs
(the run-share estimate's columns where every run listed has it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.fidelity_layouts import FIXED_KEEP, load_case, parse_cases
from benchmarks.latency_fidelity import LAYER, WHOLE
from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.event_cost import NodeCosts
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.interleave import round_ratios
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.measure.strategies import (
    PROFILE_ROUNDS,
    Entries,
    InNetworkCalibration,
    Profile,
    ProfileStrategy,
    Pruning,
)
from onnx_netadapt.measure.table import LatencyTable

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "latency_fidelity" / "layouts"
ROUNDS = 3  # interleaved rounds of a pruning against the original, as the goal's runs


def one_calibration(
    runner,
    original: LoadedModel,
    prunings: dict[str, LoadedModel],
    rounds: int = PROFILE_ROUNDS,
) -> dict:
    """Everything one calibration measures, from nothing, and the prunings' measured ratios.

    In the order the estimator and ``latency_fidelity`` take them: the original's time (median
    of 5 whole-network medians), its profile (``rounds`` rounds, each with one in-context
    kernel profile of every filter layer: the excess by turns), the original's kernel entries
    (the median of those rounds), each pruning's kernel entries (by turns with the original's
    layers), then each pruning side by side with the original.
    """
    runner.settings = WHOLE
    measured = float(np.median([runner.measure(original.model).median_ms for _ in range(5)]))
    runner.settings = LAYER
    entries = Entries(runner, LatencyTable(runner.fingerprint()))
    signatures = model_signatures(original)
    # the run share's profile: the same node times, and the profiled sessions' run time
    strategy = ProfileStrategy(rounds=rounds, run_share=True)
    profile = strategy.profile(entries, original.model, strategy.paired_layers(original))
    original_entries = entries.kernel_ms(signatures, profile.kernel_rounds)  # a fresh table
    entries.calibrated_on(signatures)
    pruned_entries = {
        label: entries.kernel_ms(model_signatures(pruned)) for label, pruned in prunings.items()
    }
    runner.settings = WHOLE
    truth = {
        label: statistics.median(round_ratios(runner, p.model, original.model, ROUNDS)[0])
        for label, p in prunings.items()
    }
    return {
        "measured_ms": measured,
        "profile": profile.times,
        "profiled_measured_ms": profile.measured_ms,
        "profile_run_ms": profile.run_ms,
        "costs": None if profile.costs is None else list(profile.costs),
        "node_rounds": list(profile.node_rounds),
        "kernel_rounds": list(profile.kernel_rounds),
        "original_entries": original_entries,
        "pruned_entries": pruned_entries,
        "truth": truth,
    }


def calibration_of(
    original: LoadedModel,
    profile_from: dict,
    entries_from: dict,
    run_share: bool = False,
    excess_by_turns: bool = True,
) -> InNetworkCalibration:
    """The estimator's calibration from one calibration's profile (with the kernel profiles
    of its rounds) and another's kernel entries of the original
    (``ProfileStrategy.fit_entries``; with ``run_share``, the run share's; without
    ``excess_by_turns``, a unit's excess over the table's entries, as before 30 Nov 2026)."""
    profile = Profile(
        profile_from["profile"],
        profile_from["profiled_measured_ms"],
        profile_from.get("profile_run_ms"),
        # runs saved before the runtime's costs were measured: none (the measured overhead)
        NodeCosts(*profile_from["costs"]) if profile_from.get("costs") else None,
        # runs saved before the excess by turns: none (the excess over the table's entries)
        tuple(profile_from.get("node_rounds", ())),
        tuple(profile_from.get("kernel_rounds", ())),
    )
    strategy = ProfileStrategy(run_share=run_share, excess_by_turns=excess_by_turns)
    cal = strategy.fit_entries(
        original, profile, profile_from["measured_ms"], entries_from["original_entries"]
    )
    if cal is None:
        raise NetAdaptError("the profile names too few filter layers to calibrate on")
    return cal


def crossed_ratio(
    original: LoadedModel,
    pruned: LoadedModel,
    profile_from: dict,
    entries_from: dict,
    label: str,
    run_share: bool = False,
    excess_by_turns: bool = True,
) -> float:
    """The estimated ratio of ``label`` to the original from one calibration's profile and
    another's kernel entries (the same calibration twice: what ``Estimator`` estimates; with
    ``run_share``, what ``ProfileStrategy(run_share=True)`` estimates; without
    ``excess_by_turns``, the estimate with the excess over the table's entries)."""
    cal = calibration_of(original, profile_from, entries_from, run_share, excess_by_turns)
    layer_ms = entries_from["pruned_entries"][label]
    pruning = Pruning(model_signatures(pruned), layer_ms, pruned.model, pruned.shapes)
    return cal.estimate(pruning) / profile_from["measured_ms"]


def decompose(matrix: list[list[float]]) -> dict[str, float]:
    """Spread (sd, % of the mean) of a crossed estimate ``matrix[i][j]`` (i: whose profile, j:
    whose kernel entries): along the diagonal (what runs saw), with the entries held (the
    profile's part: sd over i of the row means) and with the profile held (the entries' part:
    sd over j of the column means)."""
    m = np.asarray(matrix, dtype=float)
    mean = float(m.mean())
    diagonal = np.diag(m)
    return {
        "mean": mean,
        "diagonal_sd_pct": 100 * float(diagonal.std(ddof=1)) / mean,
        "profile_sd_pct": 100 * float(m.mean(axis=1).std(ddof=1)) / mean,
        "entries_sd_pct": 100 * float(m.mean(axis=0).std(ddof=1)) / mean,
    }


def run_case(runner, arch: str, layout: str, repeats: int, rounds: int = PROFILE_ROUNDS) -> dict:
    """``repeats`` calibrations of one case (profiles over ``rounds`` rounds) and the crossed
    estimates of its fixed prunings."""
    original = load_case(arch, layout)
    analysis = analyse(original)
    prunings = {
        f"keep {k}": load_model(prune(analysis, ratio=k).model, fold=False) for k in FIXED_KEEP
    }
    calibrations = []
    for r in range(repeats):
        start = time.perf_counter()
        calibrations.append(one_calibration(runner, original, prunings, rounds))
        print(
            f"  {arch}:{layout} calibration {r + 1}/{repeats}: {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    rows = []
    for label, pruned in prunings.items():
        matrix = [
            [crossed_ratio(original, pruned, ci, cj, label) for cj in calibrations]
            for ci in calibrations
        ]
        truth = [c["truth"][label] for c in calibrations]
        run_share = [crossed_ratio(original, pruned, c, c, label, True) for c in calibrations]
        apart = [
            [
                crossed_ratio(original, pruned, ci, cj, label, excess_by_turns=False)
                for cj in calibrations
            ]
            for ci in calibrations
        ]
        rows.append(
            {
                "variant": label,
                "truth": truth,
                "truth_sd_pct": 100 * statistics.stdev(truth) / statistics.mean(truth),
                "estimates": matrix,
                "errors_pct": [100 * (matrix[i][i] / t - 1) for i, t in enumerate(truth)],
                "estimates_run_share": run_share,
                "errors_run_share_pct": [
                    100 * (e / t - 1) for e, t in zip(run_share, truth, strict=True)
                ],
                "estimates_excess_apart": apart,
                "errors_excess_apart_pct": [
                    100 * (apart[i][i] / t - 1) for i, t in enumerate(truth)
                ],
                "excess_apart": decompose(apart),
                **decompose(matrix),
            }
        )
    overheads = [calibration_of(original, c, c).profile.overhead_ms for c in calibrations]
    return {
        "arch": arch,
        "layout": layout,
        "measured_ms": [c["measured_ms"] for c in calibrations],
        "overhead_ms": overheads,
        "variants": rows,
        "calibrations": calibrations,  # what each measured, to recompute estimates offline
    }


def report(results: dict) -> str:
    """Markdown: per pruning, the measured ratio and the estimate over the calibrations, and
    the estimate's spread split into the profile's part and the kernel entries' part."""
    lines = [
        "# What moves the 'profile' estimate between calibrations (issue 12.3)",
        "",
        f"Command: `{results['command']}` ({results['cpu']}; {results['seconds']:.0f} s). "
        f"{results['repeats']} calibrations of each original in one process, each from nothing "
        "(whole-network time, profile, fresh kernel entries), and each fixed pruning measured "
        f"side by side with the original ({ROUNDS} interleaved rounds) after each. The crossed "
        "estimate takes calibration i's profile and calibration j's kernel entries; sd in % of "
        "the mean ratio. The profile includes the kernel profiles of its rounds, off which a "
        "unit's excess is read (the excess by turns); the last two columns read it off the "
        "table's entries of the original instead, as before 30 Nov 2026.",
        "",
        "| case | variant | measured ratio (mean) | its sd % | estimated ratio (mean) | "
        "estimate's sd %, as run | with the entries held: the profile's part | with the "
        "profile held: the entries' part | errors %, per calibration | the same with the "
        "overhead read off the profiled runs (run share) | excess off the table's entries: "
        "sd %, as run | its errors % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        for row in case["variants"]:
            errors = ", ".join(f"{e:+.1f}" for e in row["errors_pct"])
            shared = ", ".join(f"{e:+.1f}" for e in row.get("errors_run_share_pct", [])) or "-"
            apart = row.get("excess_apart")
            apart_sd = f"{apart['diagonal_sd_pct']:.1f}" if apart else "-"
            apart_errors = (
                ", ".join(f"{e:+.1f}" for e in row.get("errors_excess_apart_pct", [])) or "-"
            )
            lines.append(
                f"| {case['arch']}:{case['layout']} | {row['variant']} | "
                f"{statistics.mean(row['truth']):.3f} | {row['truth_sd_pct']:.1f} | "
                f"{row['mean']:.3f} | {row['diagonal_sd_pct']:.1f} | {row['profile_sd_pct']:.1f}"
                f" | {row['entries_sd_pct']:.1f} | {errors} | {shared} | {apart_sd} | "
                f"{apart_errors} |"
            )
    lines.append("")
    for case in results["cases"]:
        ms = ", ".join(f"{m:.2f}" for m in case["measured_ms"])
        over = ", ".join(f"{o:+.2f}" for o in case["overhead_ms"])
        lines.append(
            f"- {case['arch']}:{case['layout']}: original measured at {ms} ms; the constant "
            f"overhead (measured minus the profile's sum) {over} ms."
        )
    return "\n".join(lines) + "\n"


def inside_and_between(runs: dict[str, dict]) -> list[dict]:
    """Per (case, pruning) of several runs: the sd (% of the mean) of its measured ratio and of
    its estimate (the diagonal: each calibration's own entries) over one run's calibrations
    (pooled over runs), and of the runs' means between runs; and each run's mean error (%)."""
    series: dict[tuple[str, str], dict[str, list]] = {}
    for run in runs.values():
        for case in run["cases"]:
            for row in case["variants"]:
                key = (f"{case['arch']}:{case['layout']}", row["variant"])
                diagonal = [row["estimates"][i][i] for i in range(len(row["truth"]))]
                entry = series.setdefault(key, {"truth": [], "estimate": [], "run_share": []})
                entry["truth"].append(row["truth"])
                entry["estimate"].append(diagonal)
                if "estimates_run_share" in row:
                    entry["run_share"].append(row["estimates_run_share"])
    out = []
    for (case, variant), entry in series.items():
        row = {"case": case, "variant": variant, "runs": len(entry["truth"])}
        for part in ("truth", "estimate", "run_share"):
            values = entry[part]
            if len(values) != len(entry["truth"]):  # a run made before the run share
                row[f"{part}_inside_sd_pct"] = row[f"{part}_between_sd_pct"] = None
                continue
            mean = statistics.mean(v for run in values for v in run)
            inside = [statistics.variance(run) for run in values if len(run) > 1]
            row[f"{part}_inside_sd_pct"] = 100 * statistics.mean(inside) ** 0.5 / mean
            means = [statistics.mean(run) for run in values]
            between = statistics.stdev(means) if len(means) > 1 else 0.0
            row[f"{part}_between_sd_pct"] = 100 * between / mean
        for part, name in (("estimate", "run_errors_pct"), ("run_share", "run_share_errors_pct")):
            if row[f"{part}_inside_sd_pct"] is None:
                row[name] = []
                continue
            row[name] = [
                100 * (statistics.mean(e) / statistics.mean(t) - 1)
                for t, e in zip(entry["truth"], entry[part], strict=True)
            ]
        out.append(row)
    return out


def runs_report(runs: dict[str, dict], command: str) -> str:
    """Markdown of ``inside_and_between`` over ``runs`` (name: a run's JSON)."""
    lines = [
        "# The measured ratio and its estimate: inside one run against between runs",
        "",
        f"Command: `{command}` (reads the runs {', '.join(runs)}; measures nothing). Each run is "
        "one process calibrating every original from nothing several times. sd in % of the "
        "mean ratio: inside (pooled over the runs' calibrations) and between (the runs' means).",
        "",
        "| case | variant | runs | measured: sd inside % | between % | estimate: sd inside % "
        "| between % | each run's mean error % | run share: sd inside % | between % | each "
        "run's mean error % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in inside_and_between(runs):
        cells = [str(row["runs"])]
        for part, errors in (
            ("truth", None),
            ("estimate", "run_errors_pct"),
            ("run_share", "run_share_errors_pct"),
        ):
            inside, between = row[f"{part}_inside_sd_pct"], row[f"{part}_between_sd_pct"]
            cells += ["-", "-"] if inside is None else [f"{inside:.1f}", f"{between:.1f}"]
            if errors is not None:
                cells.append(", ".join(f"{e:+.1f}" for e in row[errors]) or "-")
        lines.append(f"| {row['case']} | {row['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="?", default="resnet50:nhwc,mobilenet_v2:nchw")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--rounds", type=int, default=PROFILE_ROUNDS, help="profile rounds per calibration"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--name", default="drift", help="result files: NAME_ort.md/.json")
    parser.add_argument("--summarise", nargs="+", metavar="NAME", help="runs to compare")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.summarise:
        missing = [n for n in args.summarise if not (args.out / f"{n}_ort.json").exists()]
        if missing:
            parser.error(f"no run {', '.join(missing)} in {args.out} (NAME_ort.json; see --out)")
        runs = {n: json.loads((args.out / f"{n}_ort.json").read_text()) for n in args.summarise}
        text = runs_report(runs, " ".join(["python -m benchmarks.estimate_drift", *argv]))
        save_text(text, args.out / f"{args.name}_runs.md")
        print(text)
        return
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (a spread needs two calibrations)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1 (profile rounds per calibration)")
    start = time.perf_counter()
    with make_runner("ort", threads=args.threads) as runner:
        cases = [
            run_case(runner, a, lay, args.repeats, args.rounds)
            for a, lay in parse_cases(args.cases)
        ]
    results = {
        "command": " ".join(["python -m benchmarks.estimate_drift", *argv]),
        "cpu": cpu_model_name(),
        "threads": args.threads,
        "repeats": args.repeats,
        "profile_rounds": args.rounds,
        "seconds": time.perf_counter() - start,
        "cases": cases,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_json(results, args.out / f"{args.name}_ort.json")
    text = report(results)
    save_text(text, args.out / f"{args.name}_ort.md")
    print(text)


if __name__ == "__main__":
    main()
