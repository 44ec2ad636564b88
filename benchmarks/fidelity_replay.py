"""Committed fidelity runs replayed under other rules of the 'profile' estimate (issue 12.3).

    python -m benchmarks.fidelity_replay RUN.json [RUN.json ...] [--rules as_run,fastest]

A ``latency_fidelity`` run made since 30 Nov 2026 (session 21) keeps, per case, the whole
calibration record of its default estimator (``ProfileCalibration.to_dict``: every unit with
its in-network time and, round by round, its in-network and in-context kernel times), and its
kernel table is committed beside it (``tables/NAME_table.json.gz``). That is all an estimate
reads: this rebuilds each case's prunings (the fixed ones and the random ones of seed 1, as the
run made them), looks their layers' entries up in the table, and estimates each under every
rule of ``RULES`` (fields of the record set otherwise), against the run's measured time.
``as_run`` must give the run's own estimates (the report says how far it is from them).

Scored against the goal of issue 12.3 (every variant within 10 %, mean within 5 %;
``overhead_replay.score``). Reads results only: it measures nothing, so it may run beside
anything. A rule chosen on runs must be scored on runs it was not chosen on.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx

from benchmarks.fidelity_layouts import case_networks, load_case
from benchmarks.overhead_replay import GOAL_MEAN, GOAL_WORST, score
from onnx_netadapt import load_model
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.calibration import ProfileCalibration, estimate_profiled
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.measure.stats import LatencyStats

COLUMN = "profile"  # the run's default estimator, whose record is replayed
KERNEL_ENTRY = "kernel-in-context"


# rule name -> the fields of the record it changes (``ProfileCalibration``)
RULES: dict[str, dict] = {
    "as_run": {},
    # a unit's in-context share read as its fastest kernel time over its fastest in-network
    # time, not as the median of the rounds' shares (``calibration.kernel_share``)
    "fastest": {"excess_share": "fastest"},
    # the excess read off the table's entries of the original, not off the rounds
    "excess_apart": {"excess_by_turns": False},
    # the excess scaled with the entry's change to the power 1.5 / 1 instead of 2
    "power_1.5": {"excess_power": 1.5},
    "linear": {"excess_power": 1.0},
    # the excess as weights a cache of 4 / 8 / 16 MiB does not hold (a record keeps the size
    # its run had: 8 MiB until session 22, 4 MiB since)
    "cache_4MiB": {"excess_cache_bytes": 4 << 20},
    "cache_8MiB": {"excess_cache_bytes": 8 << 20},
    "cache_16MiB": {"excess_cache_bytes": 16 << 20},
    # the constant overhead as measured (measured minus the profile's sum), not predicted
    "measured_overhead": {"model_overhead_ms": None},
    # every part of the units without filter layers scales (no fixed cost per profiled node)
    "no_event_cost": {"event_cost": False},
}


def with_rule(record: ProfileCalibration, fields: Mapping[str, object]) -> ProfileCalibration:
    """A copy of ``record`` with ``fields`` set."""
    out = copy.deepcopy(record)
    for name, value in fields.items():
        if not hasattr(out, name):
            raise ValueError(f"the calibration record has no field {name!r}")
        setattr(out, name, value)
    return out


def kernel_entries(table_file: Path) -> dict[str, LatencyStats]:
    """The in-context kernel entries of a committed table file (gzip or plain JSON)."""
    raw = table_file.read_bytes()
    data = json.loads(gzip.decompress(raw) if table_file.suffix == ".gz" else raw)
    out: dict[str, LatencyStats] = {}
    for section in data["tables"].values():
        if section["fingerprint"].get("entry") == KERNEL_ENTRY:
            out.update({k: LatencyStats.from_dict(v) for k, v in section["entries"].items()})
    return out


def layer_entries(loaded: LoadedModel, entries: Mapping[str, LatencyStats]) -> dict[str, float]:
    """The table's entry (ms) of each filter layer of ``loaded``, by node name."""
    signatures = model_signatures(loaded)
    missing = [n for n, s in signatures.items() if s.key() not in entries]
    if missing:
        raise SystemExit(f"the table has no entry for {missing[:3]}...: not the run's table?")
    return {name: entries[sig.key()].median_ms for name, sig in signatures.items()}


def estimate_with(
    record: ProfileCalibration, network: onnx.ModelProto, entries: Mapping[str, LatencyStats]
) -> float:
    """The 'profile' estimate (ms) of ``network`` from ``record`` and the table's entries."""
    loaded = load_model(network)
    return estimate_profiled(record, loaded.model, loaded.shapes, layer_entries(loaded, entries))


def replay_case(
    case: dict,
    networks: Mapping[str, onnx.ModelProto],
    entries: Mapping[str, LatencyStats],
    rules: Mapping[str, Mapping[str, object]],
) -> dict:
    """Every rule's error (%) per variant of one case, and the as-run check."""
    record = ProfileCalibration.from_dict(case["calibrations"][COLUMN]["record"])
    records = {name: with_rule(record, rule) for name, rule in rules.items()}
    rows = []
    for variant in case["variants"]:
        loaded = load_model(networks[variant["variant"]])  # shapes and entries once per variant
        layer_ms = layer_entries(loaded, entries)
        truth = variant["measured_ms"]
        errors = {
            name: 100
            * (estimate_profiled(r, loaded.model, loaded.shapes, layer_ms) - truth)
            / truth
            for name, r in records.items()
        }
        rows.append(
            {
                "variant": variant["variant"],
                "run_error_pct": variant["errors_pct"][COLUMN],
                "errors_pct": errors,
            }
        )
    return {"case": f"{case['arch']}:{case['layout']}", "rows": rows}


def table_of(run_file: Path) -> Path:
    """The committed kernel table of a run: ``tables/NAME_table.json.gz`` beside it (NAME: the
    run file's stem without ``_ort``), else ``NAME_table.json`` or, in the run's own output
    folder, ``layouts_table_ort.json``."""
    name = run_file.stem.removesuffix("_ort")
    for path in (
        run_file.parent / "tables" / f"{name}_table.json.gz",
        run_file.parent / f"{name}_table.json",
        run_file.parent / "layouts_table_ort.json",
    ):
        if path.exists():
            return path
    raise SystemExit(f"no kernel table for {run_file} (looked for tables/{name}_table.json.gz)")


def replay_run(run_file: Path, rules: Mapping[str, Mapping[str, object]]) -> dict:
    """Every case of one run under every rule."""
    run = json.loads(run_file.read_text())
    entries = kernel_entries(table_of(run_file))
    cases = []
    for case in run["cases"]:
        if "record" not in case["calibrations"].get(COLUMN, {}):
            raise SystemExit(f"{run_file}: no calibration record (a run before session 21)")
        count = sum(v["variant"].startswith("random") for v in case["variants"])
        loaded = load_case(case["arch"], case["layout"])
        networks = case_networks(loaded, count, run["design"])
        cases.append(replay_case(case, networks, entries, rules))
        print(f"  {run_file.stem} {cases[-1]['case']}: replayed", flush=True)
    return {"run": run_file.stem, "cases": cases}


def report(runs: list[dict], rules: list[str], command: str) -> str:
    """Markdown: per rule, per run, the goal's score; the as-run check."""
    lines = [
        "# Fidelity runs replayed under other rules (issue 12.3)",
        "",
        f"Command: `{command}`. Each cell: case-runs that met the goal (every variant within "
        f"{GOAL_WORST:g} %, mean within {GOAL_MEAN:g} %), variants within {GOAL_WORST:g} %, "
        "mean absolute error, worst error.",
        "",
        "| rule | " + " | ".join(r["run"] for r in runs) + " | all |",
        "|---|" + "---|" * (len(runs) + 1),
    ]
    for rule in rules:
        cells, every = [], []
        for run in runs:
            cases = [[row["errors_pct"][rule] for row in c["rows"]] for c in run["cases"]]
            every.append(cases)
            cells.append(_cell(cases))
        cells.append(_cell([case for run_cases in every for case in run_cases]))
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    drift = [
        abs(row["errors_pct"]["as_run"] - row["run_error_pct"])
        for run in runs
        for case in run["cases"]
        for row in case["rows"]
        if "as_run" in row["errors_pct"]
    ]
    if drift:
        lines += [
            "",
            f"As run against the run's own estimates: largest difference "
            f"{max(drift):.3f} points (0: the replay reads what the run read).",
        ]
    lines += ["", "## Keep 0.3 by case (error %, per run)", ""]
    lines += ["| case | rule | " + " | ".join(r["run"] for r in runs) + " |"]
    lines += ["|---|---|" + "---|" * len(runs)]
    names = [c["case"] for c in runs[0]["cases"]] if runs else []
    for name in names:
        for rule in rules:
            cells = []
            for run in runs:
                row = next(
                    (
                        r
                        for c in run["cases"]
                        if c["case"] == name
                        for r in c["rows"]
                        if r["variant"] == "keep 0.3"
                    ),
                    None,
                )
                cells.append("" if row is None else f"{row['errors_pct'][rule]:+.1f}")
            lines.append(f"| {name} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(cases: list[list[float]]) -> str:
    """Case-runs that met the goal, variants within it, mean of the cases' mean absolute
    errors, and the worst error (signed) over ``cases`` (each a case's errors, %)."""
    scores = [score(errors) for errors in cases]
    met = sum(s["met"] for s in scores)
    within = sum(s["within"] for s in scores)
    count = sum(s["n"] for s in scores)
    mean = float(np.mean([s["mean"] for s in scores]))
    worst = max((e for errors in cases for e in errors), key=abs)
    return f"{met}/{len(scores)}, {within}/{count}, {mean:.1f} %, {worst:+.1f} %"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="latency_fidelity result JSONs")
    parser.add_argument("--rules", default=",".join(RULES), help=f"of {', '.join(RULES)}")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: the first run's)")
    parser.add_argument("--name", default="replay")
    args = parser.parse_args(argv)
    rules = [r for r in args.rules.split(",") if r]
    if unknown := sorted(set(rules) - set(RULES)):
        raise SystemExit(f"unknown rules {unknown}; known: {', '.join(RULES)}")
    chosen = {name: RULES[name] for name in rules}
    runs = [replay_run(path, chosen) for path in args.runs]
    out = args.out or args.runs[0].parent
    command = "python -m benchmarks.fidelity_replay " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    save_json({"command": command, "rules": rules, "runs": runs}, out / f"{args.name}.json")
    text = report(runs, rules, command)
    save_text(text, out / f"{args.name}.md")
    print(text)


if __name__ == "__main__":
    main()
