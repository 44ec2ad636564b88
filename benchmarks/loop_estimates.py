"""Estimates the way the adaptation loop uses them: one iteration ahead, along real runs.

Each iteration the loop measures the current network N and calibrates on it, then estimates
prunings of N that are a few percent faster; the chosen one is measured next iteration. This
replays recorded runs (their ``iterations/net_NNN.onnx``): for every step N -> N', each
estimator is calibrated on N (measured) and estimates N', which is then measured. Measurements
are anchored to the run's original network (median ratio over interleaved rounds). Reported:
the error of the estimated latency and of the estimated *change* (what decides how many
channels a proposal removes), per estimator.

    python -m benchmarks.loop_estimates [RUN_DIR ...] [--out benchmarks/results/loop_estimates]
    python -m benchmarks.loop_estimates --chain resnet50:nhwc --steps 6 --modes profile

Default run: /tmp/adapt_default/run (``python -m benchmarks.adapt_default`` writes it).
``--chain ARCH:LAYOUT`` replays a synthetic run instead (``chain_run``): the architecture in a
layout of ``benchmarks/layouts.py`` (e.g. NHWC as TensorFlow converters write it), each step
pruning one random prunable group by a quarter of its channels, as a loop iteration prunes one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from benchmarks.latency_fidelity import LAYER, ROUNDS, WHOLE
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_json, save_text
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.interleave import alternating_stats, round_stats, stats_ratios
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.stats import STATISTICS
from onnx_netadapt.measure.table import LatencyTable

MODES = ("constant", "split", "profile")
RESULTS = Path(__file__).parent / "results" / "loop_estimates"


def chain_run(arch: str, layout: str, steps: int, directory: Path, seed: int = 0) -> Path:
    """A synthetic run directory (``history.json`` and ``iterations/net_NNN.onnx``): ``arch``
    in ``layout`` (``benchmarks/layouts.py``), then ``chain`` of it."""
    from benchmarks.fidelity_layouts import load_case

    loaded = load_case(arch, layout)
    (directory / "iterations").mkdir(parents=True, exist_ok=True)
    history = []
    for step, network in enumerate(chain(loaded.model, steps, seed)):
        path = f"iterations/net_{step:03d}.onnx"
        onnx.save(network, directory / path)
        history.append({"iteration": step, "network": path})
    config = {"input_shapes": {}, "synthetic": f"{arch}:{layout}", "seed": seed}
    save_json({"config": config, "history": history}, directory / "history.json")
    return directory


def chain(model: onnx.ModelProto, steps: int, seed: int = 0) -> list[onnx.ModelProto]:
    """``model`` (static shapes) and ``steps`` networks after it, each pruning one random
    prunable group of the one before by a quarter of its channels (multiples of 8, at least 8
    kept), as one loop iteration prunes one group."""
    from onnx_netadapt import analyse, prune

    rng = np.random.default_rng(seed)
    out = [model]
    for _ in range(steps):
        analysis = analyse(load_model(out[-1]))
        groups = [g for g in analysis.groups if g.prunable and g.units * g.class_width > 8]
        if not groups:
            break
        group = groups[int(rng.integers(len(groups)))]
        unit = max(1, 8 // group.class_width)
        keep = max(unit, int(0.75 * group.units / unit) * unit)  # below the current count
        out.append(prune(analysis, {group.id: int(keep)}).model)
    return out


def replay(
    run: Path,
    runner,
    table: LatencyTable,
    modes: tuple[str, ...] = MODES,
    truth: str = "median",
    alternate: bool = False,
) -> list[dict]:
    """One row per step of ``run``: measured and estimated latency of the next network.
    ``truth`` and ``alternate`` as ``latency_fidelity``'s (``--truth p10 --alternate``: each
    network run by turns with the original, its ratio read by the 10th percentile)."""
    history = json.loads((run / "history.json").read_text())
    shapes = {k: tuple(v) for k, v in (history["config"].get("input_shapes") or {}).items()}
    nets = [load_model(run / r["network"], shapes, fold=False) for r in history["history"]]
    original = nets[0].model
    runner.settings = WHOLE
    reference_ms = float(np.median([runner.measure(original).statistic(truth) for _ in range(7)]))
    timing = alternating_stats if alternate else round_stats
    measured = [reference_ms] + [
        reference_ms
        * float(np.median(stats_ratios(timing(runner, n.model, original, ROUNDS), truth)[0]))
        for n in nets[1:]
    ]
    rows = []
    for i in range(1, len(nets)):
        estimates = {}
        for mode in modes:
            runner.settings = LAYER
            estimator = Estimator(runner, table, mode=mode)
            try:
                estimator.calibrate(nets[i - 1], measured_ms=measured[i - 1])
            except NetAdaptError:
                continue  # no in-network profile on this runner
            estimates[mode] = estimator.estimate(nets[i])
        rows.append(
            {
                "run": str(run),
                "step": i,
                "before_ms": measured[i - 1],
                "measured_ms": measured[i],
                "estimates": estimates,
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per estimator: mean/worst latency error (%), mean error of the change (points of the
    network's latency), and the correlation of estimated with measured changes."""
    out = {}
    for mode in dict.fromkeys(m for r in rows for m in r["estimates"]):
        use = [r for r in rows if mode in r["estimates"]]
        if not use:
            continue
        est = np.array([r["estimates"][mode] for r in use])
        mea = np.array([r["measured_ms"] for r in use])
        before = np.array([r["before_ms"] for r in use])
        err = (est - mea) / mea
        change_est, change_mea = (est - before) / before, (mea - before) / before
        out[mode] = {
            "steps": len(use),
            "mape_pct": float(100 * np.abs(err).mean()),
            "worst_pct": float(100 * np.abs(err).max()),
            "bias_pct": float(100 * err.mean()),
            "change_error_pts": float(100 * np.abs(change_est - change_mea).mean()),
            "change_r": float(np.corrcoef(change_est, change_mea)[0, 1]),
            "measured_change_pct": float(100 * np.abs(change_mea).mean()),
        }
    return out


def report(result: dict, out: Path, name: str = "loop_estimates") -> None:
    lines = [
        "# Estimates one iteration ahead, along recorded adaptation runs",
        "",
        f"Generated by `{result.get('command', 'python -m benchmarks.loop_estimates')}` "
        "(see its docstring). Runs: "
        + ", ".join(f"`{r}`" for r in result["runs"])
        + f". Runner `{result['runner']}`, 1 thread, {result['cpu']}. Each estimator is "
        "calibrated on the measured network N and estimates the next network of the run; "
        "'change error' is |estimated - measured| change of the latency from N, in points of "
        "N's latency. Measured: ratio to the run's original by the "
        f"{result.get('truth', 'median')} of each measurement, "
        + ("the two run by turns." if result.get("alternate") else "timed back to back."),
        "",
        "| estimator | steps | mean measured change % | MAPE % | worst % | bias % "
        "| change error (points) | r of changes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, m in result["summary"].items():
        lines.append(
            f"| {mode} | {m['steps']} | {m['measured_change_pct']:.1f} | {m['mape_pct']:.2f} | "
            f"{m['worst_pct']:.2f} | {m['bias_pct']:+.2f} | {m['change_error_pts']:.2f} | "
            f"{m['change_r']:.3f} |"
        )
    save_text("\n".join(lines) + "\n", out / f"{name}.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, default=[Path("/tmp/adapt_default/run")])
    parser.add_argument("--runner", default="ort")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--chain", action="append", default=[], help="ARCH:LAYOUT (synthetic)")
    parser.add_argument("--steps", type=int, default=6, help="steps of a --chain run")
    parser.add_argument("--modes", default=",".join(MODES), help="estimators, comma-separated")
    parser.add_argument("--name", default="loop_estimates", help="result file stem")
    parser.add_argument(
        "--truth",
        choices=STATISTICS,
        default="median",
        help="the statistic of each whole-network measurement the ratios are taken by",
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="each round runs the network and the original by turns, both loaded",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    modes = tuple(m.strip() for m in args.modes.split(","))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loop_chain_") as scratch:
        labels = [str(r) for r in args.runs]
        if args.chain:
            labels = [f"synthetic {c}" for c in args.chain]
            args.runs = [
                chain_run(arch, layout or "nchw", args.steps, Path(scratch) / f"{arch}_{layout}")
                for arch, _, layout in (c.partition(":") for c in args.chain)
            ]
        rows: list[dict] = []
        with make_runner(args.runner, threads=1) as runner:
            table = LatencyTable(runner.fingerprint(), args.out / f"table_{args.runner}.json")
            for run, label in zip(args.runs, labels, strict=True):
                for row in replay(run, runner, table, modes, args.truth, args.alternate):
                    rows.append({**row, "run": label})
                print(f"{label}: {len(rows)} steps so far", flush=True)
            table.save()
    result = {
        "runner": args.runner,
        "cpu": cpu_model_name(),
        "runs": labels,
        "truth": args.truth,
        "alternate": args.alternate,
        "rows": rows,
        "summary": summarise(rows),
        "seconds": time.perf_counter() - start,
    }
    result["command"] = "python -m benchmarks.loop_estimates " + " ".join(sys.argv[1:])
    save_json(result, args.out / f"{args.name}.json")
    report(result, args.out, args.name)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
