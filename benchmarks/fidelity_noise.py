"""How reproducible is the ground truth of the latency-estimate goal (issue 12.3)?

    python -m benchmarks.fidelity_noise [--folder benchmarks/results/latency_fidelity/layouts]

Reads every ``*_ort.json`` of ``latency_fidelity`` runs in ``--folder`` (quiet-machine runs,
each measuring the same fixed prunings, every group kept at 0.3 / 0.5 / 0.75 of its channels,
side by side with their original). For each such variant it reports how much its measured
ratio to the original moved between runs, and the plain ``profile`` estimator's error (the
default, except in session 10) against that run's measurement and against the mean over all
runs (the consensus); then the same errors of the canary-scaled estimator (the default in
session 10), over the runs that had it; and, from the runs that kept every round's ratio, the
noise inside one run. Writes ``noise.md`` and ``noise.json`` beside the runs. Reads results
only: it measures nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

from onnx_netadapt.graph.save import save_json, save_text

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "benchmarks" / "results" / "latency_fidelity" / "layouts"
# The column holding the plain ``profile`` estimator (the ``ort`` default, except in session 10) in
# each run (layouts/README.md: the footprint run was written while the footprint variant was the
# default, so the plain estimator is its ``profile_unit``); runs made before the excess scaled
# with power 2 are not listed.
DEFAULT_COLUMN = {
    "cold_excess_run1": "profile",
    "cold_excess": "profile",
    "twins": "profile",
    "footprint": "profile_unit",
    "footprint_run2": "profile",
    "canary_run1": "profile",
    "canary_run2": "profile",
    "canary_run3": "profile",
    "canary_run4": "profile_plain",  # made while the canary was the default (session 10)
    "canary_run5": "profile",
    "run_share_run1": "profile",
    "run_share_run2": "profile",
    # signatures with the folded epilogue; the weight rule (the default since) as "profile_cold8"
    "fold_run1": "profile_cold8",
    "fold_run2": "profile_cold8",
    "fold_run3": "profile_cold8",
    "fold_run4": "profile",
    "fold_run5": "profile",  # and profiles over 9 rounds (strategies.PROFILE_ROUNDS)
    "fold_run6": "profile",
    "fold_run7": "profile",  # the power rule as the weight rule's floor (EXCESS_FLOOR)
    "fold_run8": "profile",
    # event_run1's "profile" kept a fixed cost per node (calibration.EVENT_COST, not the default
    # until reorder_run1); its paired twin without it was the default of its time
    "event_run1": "profile_noevent_paired",
    # the constant overhead predicted from the runtime's costs (calibration.MODEL_OVERHEAD)
    "model_run1": "profile",
    "model_run2": "profile",
    "model_run3": "profile",
    "model_run4": "profile",  # and ORT's fused SiLU kernels mapped to their Mul nodes
    # EfficientNet-B0 alone, ORT's fused SiLU kernels mapped to their Mul nodes
    "silu_run1": "profile",
    "silu_run2": "profile",
    "silu_run3": "profile",
    # layout reorders apart (runtime-internal) and the fixed cost per node (EVENT_COST) on
    "reorder_run1": "profile",
    "reorder_run2": "profile",
    "reorder_run3": "profile",
    "reorder_run4": "profile",
    "reorder_run5": "profile",
    "reorder_run6": "profile",
}
GOAL_ROUNDS = 3  # interleaved rounds per variant in the runs scored against the goal
# The column of the canary-scaled estimator (``Estimator(canary_kernels=True)``, the default
# in session 10 only), in the runs that had it.
CANARY_COLUMN = {
    "canary_run1": "profile_canary",
    "canary_run2": "profile_canary",
    "canary_run3": "profile_canary",
    "canary_run4": "profile",
    "canary_run5": "profile_canary",
}


def fixed_variants(
    folder: Path, columns: dict[str, str] | None = None
) -> dict[tuple[str, str], list[dict]]:
    """{(case, variant): [one dict per run]} of the fixed prunings ("keep ..."), with the
    estimate of the column ``columns`` names for that run (default DEFAULT_COLUMN)."""
    columns = DEFAULT_COLUMN if columns is None else columns
    out: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(folder.glob("*_ort.json")):
        data = json.loads(path.read_text())
        run = path.name.removesuffix("_ort.json")
        for case in data.get("cases", []):
            if "original_ms" not in case:  # not a latency_fidelity run (estimate_drift's)
                continue
            name = f"{case['arch']}:{case['layout']}"
            for v in case["variants"]:
                if not v["variant"].startswith("keep"):
                    continue
                column = columns.get(run)
                estimate = v["estimates"].get(column) if column else None
                out.setdefault((name, v["variant"]), []).append(
                    {
                        "run": run,
                        "measured": v["ratio"],
                        "estimated": None if estimate is None else estimate / case["original_ms"],
                        "round_ratios": v.get("round_ratios"),
                    }
                )
    return out


def within_run(runs: list[dict]) -> dict | None:
    """The noise inside one run, from the runs that kept every round's ratio: the sd (% of the
    median) of one round's ratio, and of the median of 3 rounds (what the goal's runs measured)
    over every 3 of a run's rounds; medians over such runs. None: no run
    kept enough rounds."""
    single, medians = [], []
    for run in runs:
        ratios = run.get("round_ratios") or []
        if len(ratios) <= GOAL_ROUNDS:
            continue
        centre = statistics.median(ratios)
        single.append(100 * statistics.stdev(ratios) / centre)
        subsets = [statistics.median(c) for c in itertools.combinations(ratios, GOAL_ROUNDS)]
        medians.append(100 * statistics.pstdev(subsets) / centre)
    if not single:
        return None
    return {
        "runs": len(single),
        "round_sd_pct": statistics.median(single),
        "median_of_3_sd_pct": statistics.median(medians),
    }


def summarise(variants: dict[tuple[str, str], list[dict]]) -> list[dict]:
    """Per variant: the measured ratio's spread over runs; the default estimate's errors (%)
    against its own run's measurement and against the mean measurement of all runs."""
    rows = []
    for (case, variant), runs in sorted(variants.items()):
        measured = [r["measured"] for r in runs]
        consensus = statistics.fmean(measured)
        scored = [r for r in runs if r["estimated"] is not None]
        own = [100 * (r["estimated"] / r["measured"] - 1) for r in scored]
        against = [100 * (r["estimated"] / consensus - 1) for r in scored]
        estimates = [r["estimated"] for r in scored]
        rows.append(
            {
                "case": case,
                "variant": variant,
                "runs": len(runs),
                "measured_mean": consensus,
                "measured_sd_pct": 100 * statistics.stdev(measured) / consensus
                if len(measured) > 1
                else 0.0,
                "measured_range_pct": 100 * (max(measured) - min(measured)) / consensus,
                "estimated_runs": len(scored),
                "estimated_sd_pct": 100 * statistics.stdev(estimates) / consensus
                if len(estimates) > 1
                else 0.0,
                "bias_consensus_pct": statistics.fmean(against) if against else None,
                "estimated_in": [r["run"] for r in scored],
                "error_own_pct": own,
                "error_consensus_pct": against,
                "within_run": within_run(runs),
            }
        )
    return rows


def _mean_abs(values: list[float]) -> float:
    return statistics.fmean(abs(v) for v in values)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def report(rows: list[dict], command: str, folder: Path, canary: list[dict] | None = None) -> str:
    """noise.md and noise.json in ``folder`` (``canary``: the same rows scored with the
    canary-scaled estimator); the markdown."""

    def worst(values: list[float]) -> str:
        return f"{max(values, key=abs):+.1f}" if values else "-"

    def within(values: list[float]) -> str:
        return f"{sum(abs(v) <= 10 for v in values)}/{len(values)}" if values else "-"

    lines = [
        "# The measured ratio of the same network, run after run",
        "",
        f"Command: `{command}` (reads the committed runs; measures nothing). Each row: one fixed "
        "pruning, measured side by side with its original in every quiet run of this folder "
        "(`runs`); the spread of that measured ratio over runs; then the `ort` default "
        "`profile` estimator of each run's time (`DEFAULT_COLUMN`: the plain one, except in "
        "session 10; from the `fold_run*` runs of session 13 on, signatures with the folded "
        "epilogue and the weight rule for the excess; calibrated on the original "
        "alone) in the runs that had it, its error (%) "
        "against that run's own measurement (what the goal scores) and against the mean "
        "measurement over all runs (the consensus).",
        "",
        "| case | variant | runs | measured ratio (mean) | sd % | range % | estimated in | "
        "estimate's sd % | worst error vs own run % | within 10 % | mean error vs consensus % | "
        "worst | within 10 % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['variant']} | {r['runs']} | {r['measured_mean']:.3f} | "
            f"{r['measured_sd_pct']:.1f} | {r['measured_range_pct']:.1f} | "
            f"{r['estimated_runs']} | {r['estimated_sd_pct']:.1f} | {worst(r['error_own_pct'])} | "
            f"{within(r['error_own_pct'])} | {_signed(r['bias_consensus_pct'])} | "
            f"{worst(r['error_consensus_pct'])} | {within(r['error_consensus_pct'])} |"
        )
    own = [v for r in rows for v in r["error_own_pct"]]
    consensus = [v for r in rows for v in r["error_consensus_pct"]]
    sds = [r["measured_sd_pct"] for r in rows if r["runs"] > 1]
    est_sds = [r["estimated_sd_pct"] for r in rows if r["estimated_runs"] > 1]
    lines += [
        "",
        f"All fixed variants: the measured ratio's sd over runs is {statistics.median(sds):.1f} % "
        f"(median; largest {max(sds):.1f} %), the plain estimate's "
        f"{statistics.median(est_sds):.1f} % (largest {max(est_sds):.1f} %). It is within 10 % "
        f"of its own run's measurement in {within(own)} and of the consensus in "
        f"{within(consensus)}; mean |error| {_mean_abs(own):.1f} % against its own run, "
        f"{_mean_abs(consensus):.1f} % against the consensus.",
        "",
    ]
    if canary:
        own = [v for r in canary for v in r["error_own_pct"]]
        consensus = [v for r in canary for v in r["error_consensus_pct"]]
        plain = [
            v
            for r in rows
            for v, run in zip(r["error_own_pct"], r["estimated_in"], strict=True)
            if run in CANARY_COLUMN
        ]
        lines += [
            f"The canary-scaled estimator (the default in session 10), in the "
            f"{len(CANARY_COLUMN)} runs that had it: within 10 % of its own run's measurement in "
            f"{within(own)} (the plain one in the same runs: {within(plain)}) and of the "
            f"consensus in {within(consensus)}; mean |error| {_mean_abs(own):.1f} % against its "
            f"own run (plain: {_mean_abs(plain):.1f} %), {_mean_abs(consensus):.1f} % against "
            "the consensus.",
            "",
        ]
    lines += _within_run_lines(rows)
    text = "\n".join(lines)
    save_text(text, folder / "noise.md")
    save_json(
        {"command": command, "rows": rows, "canary_rows": canary or []}, folder / "noise.json"
    )
    return text


def _within_run_lines(rows: list[dict]) -> list[str]:
    """The within-run noise against the between-run spread (rows whose runs kept every round)."""
    kept = [r for r in rows if r.get("within_run")]
    if not kept:
        return []
    lines = [
        "Inside one run (the runs that kept every round's ratio): how much a variant's ratio "
        "moves from round to round, and how much the median of 3 rounds (what the goal's runs "
        "measured) moves over every 3 of that run's rounds, against its spread between runs.",
        "",
        "| case | variant | runs with rounds | one round's sd % | 3-round median's sd % | "
        "between runs sd % |",
        "|---|---|---|---|---|---|",
    ]
    for r in kept:
        w = r["within_run"]
        lines.append(
            f"| {r['case']} | {r['variant']} | {w['runs']} | {w['round_sd_pct']:.1f} | "
            f"{w['median_of_3_sd_pct']:.1f} | {r['measured_sd_pct']:.1f} |"
        )
    within = statistics.median(r["within_run"]["median_of_3_sd_pct"] for r in kept)
    between = statistics.median(r["measured_sd_pct"] for r in kept)
    lines += [
        "",
        f"Median over these variants: a 3-round median moves by {within:.1f} % inside a run, "
        f"{between:.1f} % between runs.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=FOLDER)
    args = parser.parse_args(argv)
    command = "python -m benchmarks.fidelity_noise" + (
        f" --folder {args.folder}" if args.folder != FOLDER else ""
    )
    rows = summarise(fixed_variants(args.folder))
    if not rows:
        raise SystemExit(
            f"no latency_fidelity runs (*_ort.json with fixed prunings) in {args.folder}"
        )
    canary = summarise(fixed_variants(args.folder, CANARY_COLUMN))
    print(report(rows, command, args.folder, canary))


if __name__ == "__main__":
    main()
