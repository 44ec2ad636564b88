"""The ``onnx-netadapt`` command line.

Exit codes: 0 success; 1 other tool error; 2 usage error (or an output directory that holds a
run already); 3 model unreadable or invalid; 4 model unsupported (opset, dynamic shape); 5 pruning
request impossible; 6 runner failed while measuring; 7 runner unavailable here; 8 bad data;
9 fine-tuning failed (conversion, write-back mismatch); 10 budget unparsable or unreachable.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from onnx_netadapt.channels.analysis import ChannelAnalysis, analyse
from onnx_netadapt.cli_adapt import adapt_cmd
from onnx_netadapt.cli_options import attention_units_option, input_shape_option
from onnx_netadapt.cli_tasks import tasks_cmd
from onnx_netadapt.errors import NetAdaptError, PruneError, UsageError
from onnx_netadapt.graph.deliverable import with_original_interface
from onnx_netadapt.graph.load import LoadedModel, load_model, parse_input_shape
from onnx_netadapt.graph.save import save_json, save_model
from onnx_netadapt.paths import check_distinct, check_output_file

logger = logging.getLogger(__name__)


def _load(model: Path, input_shapes: tuple[str, ...]) -> LoadedModel:
    shapes = dict(parse_input_shape(s) for s in input_shapes)
    return load_model(model, shapes)


def _fail(exc: NetAdaptError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


# Options of the group itself; anything else first on the command line starts an adaptation.
_GROUP_OPTIONS = {"-v", "-vv", "-vvv", "--verbose", "--version", "-h", "--help"}


class _DefaultToAdapt(click.Group):
    """``onnx-netadapt MODEL ...`` (no command name) means ``onnx-netadapt adapt MODEL ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for index, arg in enumerate(args):
            if arg in _GROUP_OPTIONS:
                continue
            if arg not in self.commands:
                args = [*args[:index], "adapt", *args[index:]]
            break
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToAdapt, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="onnx-netadapt")
def main(verbose: int) -> None:
    """NetAdapt for ONNX: prune filters guided by latency measured on the target.

    \b
    onnx-netadapt MODEL --target ort --budget 0.5 [--data mnist5k] [-o DIR]   adapt (default)
    onnx-netadapt COMMAND ...                                                  other commands
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@input_shape_option
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option("--all", "show_all", is_flag=True, help="List every group (default: first 40).")
@attention_units_option
def inspect(
    model: Path, input_shapes: tuple[str, ...], as_json: bool, show_all: bool, attention_units: str
) -> None:
    """List the channel groups of MODEL, prunable or why not."""
    try:
        analysis = analyse(_load(model, input_shapes), attention_units)
    except NetAdaptError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(analysis.to_dict(), indent=1))
        return
    click.echo(_format_analysis(analysis, limit=None if show_all else 40))


def _format_analysis(analysis: ChannelAnalysis, limit: int | None) -> str:
    lines = [f"model: {analysis.loaded.source}  (opset {analysis.loaded.opset})"]
    lines += [f"normalised: {note}" for note in analysis.loaded.notes]
    lines.append(f"{'group':>5}  {'status':<11} {'channels':>8}  producers -> consumers / reason")
    groups = analysis.groups if limit is None else analysis.groups[:limit]
    for g in groups:
        producers = ", ".join(p.node for p in g.producers[:3])
        if len(g.producers) > 3:
            producers += f" (+{len(g.producers) - 3})"
        units = (
            f"{g.channels}" if g.class_width == 1 else f"{g.channels}({g.units}x{g.class_width})"
        )
        if g.attention_heads:
            units = f"{g.channels}({g.units} heads)"
        elif g.attention_dims:
            units = f"{g.channels}({g.units} dims)"
        detail = g.reasons[0] if g.reasons else f"-> {len(g.consumers)} consumers"
        lines.append(f"{g.id:>5}  {g.status:<11} {units:>8}  {producers}  {detail}")
    if limit is not None and len(analysis.groups) > limit:
        lines.append(f"  ... {len(analysis.groups) - limit} more groups (--all to list them)")
    s = analysis.summary()
    lines.append(
        f"summary: {s['prunable_groups']} prunable, {s['approximate_groups']} approximate, "
        f"{s['unprunable_groups']} unprunable of {s['groups']} groups; "
        f"{100 * s['prunable_share']:.1f}% of Conv/Gemm output channels prunable "
        f"({100 * s['prunable_share_with_approximate']:.1f}% with approximate groups), "
        "model outputs excluded"
    )
    for _node, reason in list(analysis.unsupported.items())[:20]:
        lines.append(f"unsupported: {reason}")
    return "\n".join(lines)


def _parse_keep(values: tuple[str, ...]) -> dict[int, int]:
    keep: dict[int, int] = {}
    for value in values:
        group, sep, count = value.partition("=")
        if not sep or not group.strip().isdigit() or not count.strip().isdigit():
            raise UsageError(f"cannot read --keep {value!r}: write GROUP=N, e.g. --keep 3=48")
        if int(group) in keep:
            raise UsageError(
                f"--keep names group {int(group)} twice ({int(group)}={keep[int(group)]} and "
                f"{value}): give one count per group"
            )
        keep[int(group)] = int(count)
    return keep


def _check_prune_outputs(model: Path, output: Path, report: Path | None) -> None:
    """Every output path of ``prune`` is checked before anything is written."""
    outputs = {"-o": output} if report is None else {"-o": output, "--report": report}
    for option, path in outputs.items():
        check_output_file(path, option, [model])
    check_distinct(outputs)


def _nothing_pruned(analysis: ChannelAnalysis, ratio: float, round_to: int) -> PruneError:
    largest = max((g.channels for g in analysis.groups if g.prunable), default=0)
    return PruneError(
        f"nothing to prune: with --round-to {round_to}, --ratio {ratio:g} keeps every channel "
        f"of every prunable group (the largest has {largest} channels); use a smaller "
        "--round-to or --ratio. Nothing written."
    )


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the pruned model (.onnx).",
)
@click.option(
    "--ratio", type=float, help="Fraction of channels to KEEP in every prunable group, in (0, 1]."
)
@click.option(
    "--keep",
    "keeps",
    multiple=True,
    metavar="GROUP=N",
    help="Keep the N channels of GROUP with the largest L2 norm (repeatable).",
)
@click.option("--round-to", default=8, show_default=True, help="Channel grid for --ratio.")
@click.option(
    "--allow-approximate",
    is_flag=True,
    help="Also prune groups whose pruning changes other channels' statistics (LayerNorm).",
)
@click.option("--report", type=click.Path(path_type=Path), help="Write a JSON report here.")
@click.option("--verify", is_flag=True, help="Check the result against the masked original in ORT.")
@input_shape_option
@attention_units_option
def prune(
    model: Path,
    output: Path,
    ratio: float | None,
    keeps: tuple[str, ...],
    round_to: int,
    allow_approximate: bool,
    report: Path | None,
    verify: bool,
    input_shapes: tuple[str, ...],
    attention_units: str,
) -> None:
    """Remove channels from MODEL and write the pruned model to OUTPUT."""
    from onnx_netadapt.measure.metrics import parameter_count
    from onnx_netadapt.prune.apply import prune as prune_model

    try:
        if (ratio is None) == (not keeps):
            raise UsageError("give exactly one of --ratio R or --keep GROUP=N")
        if round_to < 1:
            raise UsageError(f"--round-to {round_to} must be at least 1")
        keep = _parse_keep(keeps) if keeps else None
        _check_prune_outputs(model, output, report)
        analysis = analyse(_load(model, input_shapes), attention_units)
        result = prune_model(
            analysis, keep, ratio=ratio, round_to=round_to, allow_approximate=allow_approximate
        )
        data = result.report
        data["params_before"] = parameter_count(analysis.loaded.model)
        data["params_after"] = parameter_count(result.model)
        if ratio is not None and ratio < 1 and data["params_after"] == data["params_before"]:
            raise _nothing_pruned(analysis, ratio, round_to)
        if verify:
            from onnx_netadapt.verify import check_against_masked

            outcome = check_against_masked(analysis, result)
            data["oracle"] = outcome.to_dict()
            if not outcome.ok:
                raise PruneError(
                    f"the pruned model differs from the masked original by "
                    f"{outcome.max_abs_diff:.3g}; nothing written. Please report this model."
                )
        deliverable = with_original_interface(result.model, model)
        data["interface"] = deliverable.note
        save_model(deliverable.model, output)
        if report is not None:
            save_json(data, report)
    except NetAdaptError as exc:
        _fail(exc)
    pruned = sum(1 for g in data["groups"] if g["channels_after"] < g["channels_before"])
    click.echo(
        f"pruned {pruned} groups; parameters {data['params_before']:,} -> "
        f"{data['params_after']:,}; wrote {output}"
    )


@main.command("runners")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def runners_cmd(as_json: bool) -> None:
    """List the registered runners and whether each can run here (if not, why and the fix)."""
    from onnx_netadapt.measure.registry import list_runners

    rows = []
    for name, info in list_runners().items():
        status = info.availability()
        summary = info.runner.summary if info.runner is not None else ""
        unit = info.runner.unit if info.runner is not None else ""
        rows.append(
            {
                "name": name,
                "target": info.target,
                "summary": summary,
                "unit": unit,
                "available": status.available,
                "reason": status.reason,
                "fix": status.fix,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        mark = "yes" if row["available"] else "no "
        click.echo(f"{row['name']:<10} {mark}  {row['summary']}")
        if row["reason"]:  # why not; or, for an available runner, what it cannot do here
            click.echo(f"{'':<15}{'note' if row['available'] else 'why'}: {row['reason']}")
            if row["fix"]:
                click.echo(f"{'':<15}fix: {row['fix']}")


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", default="ort", show_default=True, help="Runner name (see `runners`).")
@click.option(
    "--table",
    "table_path",
    type=click.Path(path_type=Path),
    help="Latency table JSON to use and extend (default: in memory only).",
)
@click.option("--threads", type=int, default=1, show_default=True, help="Threads (ort, tflite).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--top", type=int, default=25, show_default=True, help="Layers to list.")
@click.option(
    "--runner-option",
    "runner_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to the runner (e.g. onnx2tf=/path/to/onnx2tf, device=SERIAL).",
)
@input_shape_option
def profile(
    model: Path,
    target: str,
    table_path: Path | None,
    threads: int,
    as_json: bool,
    top: int,
    runner_options: tuple[str, ...],
    input_shapes: tuple[str, ...],
) -> None:
    """Measured and estimated latency of MODEL on a target, with the per-layer table."""
    from onnx_netadapt.cli_adapt import parse_runner_options
    from onnx_netadapt.measure.profile import profile_model

    try:
        options = parse_runner_options(runner_options)
        if table_path is not None:
            check_output_file(table_path, "--table", [model])
        report = profile_model(_load(model, input_shapes), target, table_path, threads, options)
    except NetAdaptError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    unit = report["unit"]
    click.echo(
        f"target: {target}  ({', '.join(f'{k}={v}' for k, v in report['fingerprint'].items())})"
    )
    click.echo(
        f"measured: {report['measured']['median']:.4g} {unit} "
        f"(p10 {report['measured']['p10']:.4g}, p90 {report['measured']['p90']:.4g}, "
        f"n={report['measured']['n']})"
    )
    click.echo(
        f"sum of layer table entries: {report['layers_total']:.4g} {unit}; residual "
        f"(rest of the network): {report['residual']:.4g} {unit}"
    )
    click.echo(f"{'layer':<48} {'op':<14} {'in':>5} {'out':>5} {unit:>9} {'share':>6}")
    for row in report["layers"][:top]:
        click.echo(
            f"{row['node'][:48]:<48} {row['op'][:14]:<14} {row['in_channels']:>5} "
            f"{row['out_channels']:>5} {row['value']:>9.4g} {100 * row['share']:>5.1f}%"
        )
    if len(report["layers"]) > top:
        click.echo(f"... {len(report['layers']) - top} more layers (--top N)")
    click.echo(f"table: {report['table_entries']} entries, {report['measurements']} measured now")


main.add_command(adapt_cmd)
main.add_command(tasks_cmd)

if __name__ == "__main__":
    main()
