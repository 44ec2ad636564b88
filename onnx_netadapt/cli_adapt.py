"""``onnx-netadapt MODEL --target T --budget 0.5``: the adaptation command.

Progress goes to stderr (one bar over the proposals of an iteration, one line per finished
iteration with a bar of the way to the budget); ``--json`` prints the run's summary on stdout
for pipelines. Exit codes are the errors' (README).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from onnx_netadapt.adapt import Adaptation, AdaptConfig, IterationResult, parse_budgets
from onnx_netadapt.adapt.config import SELECT_MODES
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.graph.load import parse_input_shape
from onnx_netadapt.measure.estimate import MODES as ESTIMATE_MODES


def parse_runner_options(values: tuple[str, ...]) -> dict[str, object]:
    """``KEY=VALUE`` pairs; values are JSON when they parse as JSON (numbers, true), else text."""
    options: dict[str, object] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint="--runner-option")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


class _Progress:
    """Text progress on stderr: a bar over proposals, a line per iteration."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet or not self.tty:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        click.echo(
            f"\r  {stage} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            err=True,
            nl=done == total,
        )

    def iteration(self, result: IterationResult, state: dict) -> None:
        if self.quiet:
            return
        limits, original = state["limits"], state["original"]
        units = state["units"]
        shares = [
            (original[r] - result.measured[r]) / (original[r] - lim)
            for r, lim in limits.items()
            if original[r] > lim
        ]
        share = min(1.0, max(0.0, min(shares) if shares else 1.0))
        bar = "#" * int(20 * share) + "." * (20 - int(20 * share))
        lat = result.measured["latency"]
        text = f"iter {result.iteration:>3} [{bar}] {100 * share:3.0f}%"
        text += f"  latency {lat:.4g} {units['latency']}"
        for r, lim in limits.items():
            text += f"  {r} {result.measured[r]:.4g}/{lim:.4g}"
        text += f"  holdout {100 * result.holdout_accuracy:.1f}%"
        group = result.record.get("group")
        if group:
            text += (
                f"  group {group['group']} ({group['producers'][0]}) "
                f"{group['channels_before']}->{group['channels_after']}"
                f"  {result.record['seconds']['total']:.1f}s"
            )
        click.echo(text, err=True)


@click.command("adapt")
@click.argument("model", required=False, type=click.Path(path_type=Path))
@click.option("--target", default="ort", show_default=True, help="Runner that measures latency.")
@click.option(
    "--budget",
    "budgets",
    multiple=True,
    metavar="[RESOURCE=]VALUE",
    help="0.5 = half the original latency; 12ms absolute; params=0.7 on another resource.",
)
@click.option(
    "--data",
    default="mnist5k",
    show_default=True,
    help="Builtin name (mnist5k, digits, fashion-mnist[:DIR]; NAME@HxW resizes), "
    "package.module:function, a .npz, or an image folder.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Run directory.")
@click.option(
    "--resume", type=click.Path(path_type=Path), help="Continue the run in this directory."
)
@click.option("--step", default=0.025, show_default=True, help="Initial reduction per iteration.")
@click.option("--decay", default=0.96, show_default=True, help="Reduction decay per iteration.")
@click.option("--round-to", default=8, show_default=True, help="Channel grid of proposals.")
@click.option("--short-steps", default=50, show_default=True, help="Fine-tune steps per proposal.")
@click.option("--long-epochs", default=5.0, show_default=True, help="Final fine-tune epochs.")
@click.option("--select", type=click.Choice(SELECT_MODES), default="accuracy", show_default=True)
@click.option(
    "--estimator",
    type=click.Choice(ESTIMATE_MODES),
    default="auto",
    show_default=True,
    help="How a proposal's latency is estimated from the table and the current network.",
)
@click.option("--workers", default=1, show_default=True, help="Proposals evaluated in parallel.")
@click.option("--train-threads", default=1, show_default=True, help="Torch threads per proposal.")
@click.option("--threads", default=1, show_default=True, help="Runner threads (ort, tflite).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "adamw"]), default="sgd", show_default=True)
@click.option("--lr", default=0.01, show_default=True, help="Learning rate of the fine-tunes.")
@click.option("--distill", default=0.0, show_default=True, help="Weight of distillation (0-1).")
@click.option("--holdout-per-class", default=10, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--max-iterations", default=200, show_default=True)
@click.option("--table", type=click.Path(path_type=Path), help="Shared latency table JSON.")
@click.option("--allow-approximate", is_flag=True, help="Also prune approximate groups.")
@click.option(
    "--runner-option",
    "runner_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to the runner (e.g. onnx2tf=/path/to/onnx2tf).",
)
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="NAME:D1,D2,...",
    help="Static shape of a model input with dynamic dimensions (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def adapt_cmd(
    model: Path | None,
    resume: Path | None,
    output: Path | None,
    budgets: tuple[str, ...],
    runner_options: tuple[str, ...],
    input_shapes: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    **settings: object,
) -> None:
    """Adapt MODEL until every --budget holds (NetAdapt), writing the run to -o DIR."""
    progress = _Progress(quiet)
    out_dir = resume or output or (model.with_name(model.stem + "_netadapt") if model else None)
    try:
        config = None
        if resume is None:
            if model is None:
                raise click.UsageError("give a MODEL to adapt (or --resume DIR)")
            table = settings.pop("table")
            config = AdaptConfig(
                budgets=parse_budgets(budgets),
                input_shapes={k: list(v) for k, v in map(parse_input_shape, input_shapes)},
                table=str(table) if table else None,
                **settings,  # type: ignore[arg-type]
            )
        run = Adaptation(
            model,
            config,
            out_dir,
            resume=resume is not None,
            runner_options=parse_runner_options(runner_options),
            progress=progress,
        )
        for result in run.run():
            progress.iteration(result, run.state)
    except NetAdaptError as exc:
        summary = _read_summary(out_dir)
        if as_json:
            click.echo(json.dumps({"error": str(exc), "exit_code": exc.exit_code, **summary}))
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    summary = _read_summary(out_dir)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    elif not quiet:
        _print_summary(summary, out_dir)


def _read_summary(out_dir: Path | None) -> dict:
    """The summary of the run in ``out_dir`` (empty when the run never got that far)."""
    if out_dir is None:
        return {}
    try:
        return json.loads((Path(out_dir) / "state.json").read_text()).get("summary") or {}
    except (OSError, json.JSONDecodeError):
        return {}


def _print_summary(summary: dict, out_dir: Path) -> None:
    units = summary["units"]
    for resource, original in summary["original"].items():
        final = summary["final"][resource]
        limit = summary["limits"].get(resource)
        budget = f" (budget {limit:.4g})" if limit is not None else ""
        click.echo(
            f"{resource}: {original:.4g} -> {final:.4g} {units[resource]}{budget}, "
            f"x{final / original:.3f}"
        )
    va = summary["val_accuracy"]
    click.echo(
        f"validation accuracy: {100 * va['original']:.2f}% -> {100 * va['adapted']:.2f}%  "
        f"({summary['iterations']} iterations, {summary['seconds_total']:.0f} s, "
        f"{summary['table_measurements']} table measurements)"
    )
    click.echo(f"wrote {out_dir}/adapted.onnx, history.json, report.md")
