"""The same fidelity run repeated: how much does each estimator's error move between runs?

Reads committed ``latency_fidelity`` results (no measuring) of the same cases and variants (the
variants are seeded, so each run prunes the same networks) and reports, per estimator, the
cases that met the goal in each run, the variants within 10 %, and how far one variant's error
moved from run to run (the sd of its errors over the runs, the median over variants): an
estimate whose inputs carry the host's noise moves between runs even where it is right on
average, while a steady bias stays put.

    python -m benchmarks.fidelity_repeat RUN1.json RUN2.json [...] --out results/x.md

With ``--median-overhead``, the default estimator's errors are also recomputed with each case's
constant model overhead (``calibrations.profile.model_overhead_ms``) replaced by its median over
the runs (``profile_median_overhead``): does that constant's movement between runs carry the
errors' movement?
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from onnx_netadapt.graph.save import save_text

GOAL_WORST, GOAL_MEAN = 10.0, 5.0
MEDIAN_OVERHEAD = "profile_median_overhead"


def case_name(case: dict) -> str:
    """A fidelity case's name, ``ARCH:LAYOUT``."""
    return f"{case['arch']}:{case['layout']}"


def load_errors(path: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(case, variant) -> {estimator: error %} of one run's file."""
    return errors_of(json.loads(path.read_text()))


def errors_of(data: dict) -> dict[tuple[str, str], dict[str, float]]:
    """(case, variant) -> {estimator: error %} of one run's result."""
    return {
        (case_name(case), variant["variant"]): dict(variant["errors_pct"])
        for case in data["cases"]
        for variant in case["variants"]
    }


def with_median_overhead(
    datas: list[dict], runs: list[dict[tuple[str, str], dict[str, float]]]
) -> None:
    """Add to each of ``runs`` (``errors_of`` of ``datas``) the "profile" estimator's errors
    recomputed with its case's median model overhead over the runs. An estimate is
    ``model + parts * (measured - model) / profiled`` (``calibration.with_overhead``): the
    parts are recovered from the run's own overhead, then put back with the median."""
    overheads: dict[str, list[float]] = {}
    for data in datas:
        for case in data["cases"]:
            cal = case["calibrations"]["profile"]
            overheads.setdefault(case_name(case), []).append(cal["model_overhead_ms"])
    for data, run in zip(datas, runs, strict=True):
        for case in data["cases"]:
            name = case_name(case)
            cal = case["calibrations"]["profile"]
            own, median = cal["model_overhead_ms"], float(np.median(overheads[name]))
            profiled = cal["profiled_ms"]
            measured = profiled + cal["overhead_ms"]
            for variant in case["variants"]:
                parts = (variant["estimates"]["profile"] - own) * profiled / (measured - own)
                estimate = median + parts * (measured - median) / profiled
                error = 100.0 * (estimate / variant["measured_ms"] - 1.0)
                run[(name, variant["variant"])][MEDIAN_OVERHEAD] = error


def case_met(errors: list[float]) -> bool:
    """Every variant within GOAL_WORST % and the mean within GOAL_MEAN %."""
    magnitudes = np.abs(errors)
    return bool(magnitudes.max() <= GOAL_WORST and magnitudes.mean() <= GOAL_MEAN)


def summary(runs: list[dict[tuple[str, str], dict[str, float]]]) -> dict[str, dict]:
    """Per estimator in every run: cases met and variants within 10 % per run, and the
    median and largest run-to-run sd of a variant's error."""
    keys = sorted(set.intersection(*(set(r) for r in runs)))
    estimators = sorted(set.intersection(*(set(r[k]) for r in runs for k in keys)))
    cases = sorted({case for case, _ in keys})
    out = {}
    for est in estimators:
        met, within = [], []
        for run in runs:
            per_case = {c: [run[k][est] for k in keys if k[0] == c] for c in cases}
            met.append(sum(case_met(v) for v in per_case.values()))
            within.append(sum(abs(run[k][est]) <= GOAL_WORST for k in keys))
        spread = [float(np.std([run[k][est] for run in runs], ddof=1)) for k in keys]
        out[est] = {
            "cases": len(cases),
            "variants": len(keys),
            "cases_met": met,
            "within_10": within,
            "mean_abs_pct": [float(np.mean([abs(run[k][est]) for k in keys])) for run in runs],
            "median_run_sd_pct": float(np.median(spread)),
            "max_run_sd_pct": float(np.max(spread)),
        }
    return out


def report(paths: list[Path], rows: dict[str, dict], options: str = "") -> str:
    """Markdown table of ``summary`` (``options``: the command's flags after the runs)."""
    lines = [
        "# The same fidelity cases measured again: each estimator's error, run to run",
        "",
        "`python -m benchmarks.fidelity_repeat "
        + " ".join([*(str(p) for p in paths), *options.split()])
        + "`",
        "",
        "| estimator | cases met, per run | variants within 10 %, per run | mean abs. error, "
        "per run | a variant's error between runs: median sd | largest sd |",
        "|---|---|---|---|---|---|",
    ]
    for est, row in rows.items():
        met = ", ".join(f"{m}/{row['cases']}" for m in row["cases_met"])
        within = ", ".join(f"{w}/{row['variants']}" for w in row["within_10"])
        means = ", ".join(f"{m:.1f} %" for m in row["mean_abs_pct"])
        lines.append(
            f"| {est} | {met} | {within} | {means} | "
            f"{row['median_run_sd_pct']:.1f} % | {row['max_run_sd_pct']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="latency_fidelity result JSON files")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here")
    parser.add_argument(
        "--median-overhead",
        action="store_true",
        help="also the default estimator with each case's median model overhead over the runs",
    )
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs")
    datas, runs = [], []
    for path in args.runs:
        try:
            datas.append(json.loads(path.read_text()))
            runs.append(errors_of(datas[-1]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            parser.error(f"{path} is not a latency_fidelity result JSON ({exc!r})")
    if args.median_overhead:
        try:
            with_median_overhead(datas, runs)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            parser.error(
                "--median-overhead needs each run's 'profile' estimates and their calibration's "
                f"model overhead ({exc!r}): give latency_fidelity results of the 'profile' "
                "estimator on a runner that times plain runs, or leave the option out"
            )
    rows = summary(runs)
    if not rows:
        parser.error("the runs share no estimator on the same variants")
    text = report(args.runs, rows, "--median-overhead" if args.median_overhead else "")
    if args.out is not None:
        save_text(text, args.out)
    print(text)


if __name__ == "__main__":
    main()
