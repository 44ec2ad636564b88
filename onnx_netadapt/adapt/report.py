"""The run report: report.md with the figures a user checks first, and two PNG plots.

- accuracy_vs_latency.png: the task's holdout score (accuracy for classifiers) against measured
  latency, one point per iteration (the family of networks the run produced);
- channels.png: output channels per filter layer, original against adapted.
"""

from __future__ import annotations

import io
import logging

import onnx

from onnx_netadapt.adapt.rundir import RunDir
from onnx_netadapt.adapt.state import IterationRecord, RunState
from onnx_netadapt.graph.ops import attr
from onnx_netadapt.graph.save import save_bytes, save_text
from onnx_netadapt.tasks.base import format_score

logger = logging.getLogger(__name__)


def layer_channels(model: onnx.ModelProto) -> dict[str, int]:
    """Output channels of every Conv/ConvTranspose/Gemm/MatMul-with-constant, by node name."""
    dims = {i.name: list(i.dims) for i in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        w = dims.get(node.input[1]) if len(node.input) > 1 else None
        if w is None or len(w) < 2:
            continue
        if node.op_type == "Conv":
            out[node.name] = w[0]
        elif node.op_type == "ConvTranspose":
            out[node.name] = w[1] * int(attr(node, "group", 1))
        elif node.op_type == "Gemm":
            out[node.name] = w[0] if int(attr(node, "transB", 0)) else w[1]
        elif node.op_type == "MatMul" and len(w) == 2:
            out[node.name] = w[1]
    return out


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _plots(rundir: RunDir, state: RunState, before: dict, after: dict) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: the report has no plots")
        return []
    history = state.history
    unit = state.units["latency"]
    fig, ax = plt.subplots(figsize=(6, 4))
    lat = [r.measured["latency"] for r in history]
    scale = 100 if state.task["unit"] == "%" else 1
    acc = [scale * r.holdout_accuracy for r in history]
    ax.plot(lat, acc, "o-", label="after each iteration (short fine-tune)")
    summary = state.summary
    if summary:
        ax.plot(
            [summary.final["latency"]],
            [scale * summary.val_accuracy["adapted"]],
            "r*",
            markersize=12,
            label="adapted (long fine-tune, validation)",
        )
    if "latency" in state.limits:
        ax.axvline(state.limits["latency"], color="gray", ls="--", label="budget")
    ax.set_xlabel(f"measured latency ({unit})")
    ax.set_ylabel(f"holdout {state.task['score']}" + (" (%)" if scale == 100 else ""))
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_bytes(_png(fig), rundir.path / "accuracy_vs_latency.png")
    plt.close(fig)

    names = list(before)
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(names)), 4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [before[n] for n in names], width=0.4, label="original")
    ax.bar([i + 0.2 for i in x], [after.get(n, 0) for n in names], width=0.4, label="adapted")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel("output channels")
    ax.legend()
    save_bytes(_png(fig), rundir.path / "channels.png")
    plt.close(fig)
    return ["accuracy_vs_latency.png", "channels.png"]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def render_markdown(state: RunState, before: dict, after: dict, plots: list[str]) -> str:
    """report.md text (of a finished run)."""
    assert state.summary is not None
    s = state.summary
    lines = _header(state) + _resources(state) + _validation_and_time(state)
    lines += _iterations(state)
    lines += ["", "## Channels per layer", "", "| layer | original | adapted |", "|---|---|---|"]
    lines += [f"| {n} | {c} | {after.get(n, '-')} |" for n, c in before.items()]
    if s.unreachable:
        lines += ["", "## Why the budget was not reached", ""]
        lines += [
            f"- group {u['group']} ({', '.join(u['producers'][:3])}): {u['reason']}"
            for u in s.unreachable
        ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _header(state: RunState) -> list[str]:
    """Title, model, target, data, task and status."""
    s, cfg, task = state.summary, state.config, state.task
    return [
        "# onnx-netadapt report",
        "",
        f"Model: `{state.model['path']}`; target `{cfg['target']}`; "
        f"data `{cfg['data']}` ({state.data['train']} train / {state.data['holdout']} "
        f"holdout / {state.data['val']} validation).",
        f"Task `{task['name']}`: proposals are scored by {task['score']} on the holdout set "
        "(higher is better).",
        f"Status: **{s.status}**: {s.meaning}; {s.iterations} iterations, exit code {s.exit_code}.",
        f"Adapted model interface: {s.adapted_interface}.",
    ]


def _resources(state: RunState) -> list[str]:
    """The resource table (original, budget, adapted), the margin and the pruning floor."""
    s, units = state.summary, state.units
    lines = [
        "",
        "| resource | original | budget | adapted | p10-p90 (rounds) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for resource, original in s.original.items():
        limit = s.limits.get(resource)
        final = s.final[resource]
        spread = s.final_spread[resource]
        lines.append(
            f"| {resource} ({units[resource]}) | {_fmt(original)} | "
            f"{_fmt(limit) if limit is not None else '-'} | {_fmt(final)} | "
            f"{_fmt(spread['p10'])}-{_fmt(spread['p90'])} ({spread['rounds']}) | "
            f"{final / original:.3f} |"
        )
    if s.margin:
        lines += [
            "",
            f"Latency budgets count as met at budget x (1 - {s.margin:g}) (--margin).",
        ]
    floor = state.floor
    if floor:
        lines += [
            "",
            "Smallest network pruning can reach (every group at the grid minimum): "
            + ", ".join(
                f"{r} {_fmt(v)} {units[r]} ({v / s.original[r]:.3f} of the original)"
                for r, v in floor.items()
            )
            + ".",
        ]
    return lines


def _validation_and_time(state: RunState) -> list[str]:
    """Validation scores, where the time went and how many measurements were made."""
    s, task = state.summary, state.task
    unit = task["unit"]
    va = s.val_accuracy
    return [
        "",
        f"Validation {task['score']}: original {format_score(va['original'], unit)}, adapted "
        f"{format_score(va['adapted'], unit)} (before the long-term fine-tune "
        f"{format_score(va['before_long_finetune'], unit)}).",
        f"Time: {s.seconds_total:.1f} s in total ({s.long_finetune_seconds:.1f} s long "
        f"fine-tune and final measurement); measurements: {s.table_measurements} layer "
        f"entries for the tables (in {s.table_seconds:.1f} s), "
        f"{s.network_measurements} whole networks (each "
        "timed against the original in 3 interleaved rounds, the two run by turns where the "
        "runner can; a network that meets the budget "
        "again in 11 rounds before the run declares it met, and these 11 give the adapted "
        "network's figures).",
    ]


def estimate_errors(history: list[IterationRecord]) -> dict[int, float]:
    """Each iteration's latency estimate one step ahead (the chosen pruning's, made when it was
    proposed) against its latency measured once chosen: (estimated - measured) / measured."""
    out = {}
    for r in history:
        estimated, measured = r.estimate.get("latency"), r.measured.get("latency")
        if r.group is not None and estimated is not None and measured:
            out[r.iteration] = (estimated - measured) / measured
    return out


def _iterations(state: RunState) -> list[str]:
    """The table of iterations: the group pruned, its channels, latency (estimated one step
    ahead, measured) and holdout score; then the estimates' error over the run."""
    task = state.task
    unit = task["unit"]
    errors = estimate_errors(state.history)
    lines = [
        "",
        "## Iterations",
        "",
        "| it | group (first producer) | channels | estimated | measured | error | "
        f"holdout {task['score']} | proposals | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in state.history:
        g = r.group
        if g is None:  # the original
            lines.append(
                f"| 0 | original | - | - | {_fmt(r.measured['latency'])} | - | "
                f"{format_score(r.holdout_accuracy, unit, 1)} | - | {r.total_seconds:.1f} |"
            )
            continue
        error = f"{100 * errors[r.iteration]:+.1f}%" if r.iteration in errors else "-"
        lines.append(
            f"| {r.iteration} | {g['group']} ({g['producers'][0]}) | "
            f"{g['channels_before']} -> {g['channels_after']} | "
            f"{_fmt(r.estimate.get('latency', float('nan')))} | "
            f"{_fmt(r.measured['latency'])} | {error} | "
            f"{format_score(r.holdout_accuracy, unit, 1)} | {len(r.proposals)} | "
            f"{r.total_seconds:.1f} |"
        )
    if errors:
        worst = max(errors, key=lambda i: abs(errors[i]))
        mean = sum(abs(e) for e in errors.values()) / len(errors)
        lines += [
            "",
            "One step ahead: the chosen pruning's latency as estimated when it was proposed, "
            f"against its measurement once chosen: mean error {100 * mean:.1f}%, "
            f"worst {100 * errors[worst]:+.1f}% (iteration {worst}), over {len(errors)} "
            "iterations.",
        ]
    return lines


def write_report(
    rundir: RunDir, state: RunState, original: onnx.ModelProto, adapted: onnx.ModelProto
) -> None:
    """Write report.md and the plots into the run directory."""
    before, after = layer_channels(original), layer_channels(adapted)
    plots = _plots(rundir, state, before, after)
    save_text(render_markdown(state, before, after, plots), rundir.path / "report.md")
