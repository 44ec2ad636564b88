"""``onnx-netadapt MODEL --target T --budget 0.5``: the adaptation command.

Progress goes to stderr (one bar over the proposals of an iteration, one line per finished
iteration with a bar of the way to the budget); ``--json`` prints the run's summary on stdout
for pipelines. Exit codes are the errors' (README).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click
from click.core import ParameterSource

from onnx_netadapt.adapt import Adaptation, AdaptConfig, IterationResult, parse_budgets
from onnx_netadapt.adapt.config import SELECT_MODES
from onnx_netadapt.adapt.rundir import RunDir, RunDirError
from onnx_netadapt.adapt.state import RunState, RunSummary
from onnx_netadapt.cli_options import attention_units_option, input_shape_option
from onnx_netadapt.engines import ENGINES
from onnx_netadapt.errors import NetAdaptError, UsageError
from onnx_netadapt.graph.load import parse_input_shape
from onnx_netadapt.measure.estimate import MODES as ESTIMATE_MODES
from onnx_netadapt.tasks.base import format_score


def parse_runner_options(
    values: tuple[str, ...], option: str = "--runner-option"
) -> dict[str, object]:
    """``KEY=VALUE`` pairs; values are JSON when they parse as JSON (numbers, true), else text."""
    options: dict[str, object] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint=option)
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


def _parse_workers(value: str) -> int | None:
    """``auto`` -> None (decided from the devices), else a positive count."""
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"{value!r}: a positive count or auto", param_hint="--workers")
    return int(value)


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

    def iteration(self, result: IterationResult, state: RunState) -> None:
        if self.quiet:
            return
        limits, original, units = state.goals, state.original, state.units
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
        task = state.task
        text += (
            f"  holdout {task['score']} {format_score(result.holdout_accuracy, task['unit'], 1)}"
        )
        group = result.record.group if result.record else None
        if result.record and group:
            text += (
                f"  group {group['group']} ({group['producers'][0]}) "
                f"{group['channels_before']}->{group['channels_after']}"
                f"  {result.record.total_seconds:.1f}s"
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
    "--margin",
    default=0.0,
    show_default=True,
    help="A latency budget counts as met only at budget x (1 - margin) (room for noise).",
)
@click.option(
    "--estimator",
    type=click.Choice(ESTIMATE_MODES),
    default="auto",
    show_default=True,
    help="How a proposal's latency is estimated from the table and the current network.",
)
@click.option(
    "--workers",
    default="auto",
    show_default=True,
    help="Proposals evaluated in parallel: auto = one per GPU, else fill the CPU cores.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where proposals train: auto (every GPU, else CPU), cpu, cuda or cuda:N.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="Where proposals run: this machine, or Ray (pip install 'onnx-netadapt[cluster]').",
)
@click.option(
    "--ray-address",
    default=None,
    help="Ray cluster for --engine ray: auto joins this machine's cluster (default: start one).",
)
@click.option(
    "--measure-on",
    default=None,
    metavar="RESOURCE",
    help="With --engine ray: measure latency in a Ray actor on the node that declares this "
    "custom resource (e.g. device:SERIAL; auto = device:<--runner-option device>). "
    "Default: in this process.",
)
@click.option(
    "--deterministic",
    is_flag=True,
    help="Deterministic training kernels (GPU results repeat exactly, a little slower).",
)
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
@attention_units_option
@click.option(
    "--runner-option",
    "runner_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to the runner (e.g. onnx2tf=/path/to/onnx2tf).",
)
@input_shape_option
@click.option(
    "--task",
    default="auto",
    show_default=True,
    help="How to train and score: classification, distill, segmentation, a plugin (see "
    "`onnx-netadapt tasks`) or package.module:Name; auto = classification for (N, C) "
    "outputs, else distill.",
)
@click.option(
    "--task-option",
    "task_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to the task (e.g. weights=[1,0.5] for distill).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Let -o be a folder that holds other files or an earlier run; only the files a run "
    "writes are replaced (never the input model).",
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
    task_options: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    overwrite: bool,
    **settings: object,
) -> None:
    """Adapt MODEL until every --budget holds (NetAdapt), writing the run to -o DIR."""
    progress = _Progress(quiet)
    out_dir = resume or output or (model.with_name(model.stem + "_netadapt") if model else None)
    run: Adaptation | None = None
    try:
        config = None
        if resume is not None and (ignored := _ignored_on_resume(click.get_current_context())):
            raise UsageError(
                f"--resume {resume} continues the run with the settings it started with; "
                f"{', '.join(ignored)} would be ignored: drop them (or start a new run with -o)"
            )
        if resume is None:
            if model is None:
                raise click.UsageError("give a MODEL to adapt (or --resume DIR)")
            table = settings.pop("table")
            settings["workers"] = _parse_workers(str(settings["workers"]))
            config = AdaptConfig(
                budgets=parse_budgets(budgets),
                input_shapes={k: list(v) for k, v in map(parse_input_shape, input_shapes)},
                table=str(table) if table else None,
                task_options=parse_runner_options(task_options, "--task-option"),
                **settings,  # type: ignore[arg-type]
            )
        run = Adaptation(
            model,
            config,
            out_dir,
            resume=resume is not None,
            runner_options=parse_runner_options(runner_options),
            progress=progress,
            overwrite=overwrite,
        )
        for result in run.run():
            progress.iteration(result, run.state)
    except KeyboardInterrupt:
        _interrupted(out_dir, as_json)
    except NetAdaptError as exc:
        # refused before this run saved a state: a summary there is an earlier run's
        _exit_on_error(exc, out_dir, hasattr(run, "state"), as_json, quiet)
    summary = _read_summary(out_dir)
    if summary is None:
        raise click.ClickException(f"{out_dir} holds no finished run")
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=1))
    elif not quiet:
        _print_summary(summary, out_dir, _read_state(out_dir))


def _exit_on_error(
    exc: NetAdaptError, out_dir: Path | None, own_state: bool, as_json: bool, quiet: bool
) -> NoReturn:
    """Report ``exc`` (with the summary of the run in ``out_dir`` when ``own_state``: this run
    saved a state there) and exit with its code."""
    summary = _read_summary(out_dir) if own_state else None
    if as_json:
        data = summary.to_dict() if summary else {}
        click.echo(json.dumps({**data, "error": str(exc), "exit_code": exc.exit_code}))
    elif summary and not quiet:
        _print_summary(summary, out_dir, _read_state(out_dir))
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


# What --resume still takes: everything else is a setting the run keeps from its start.
_RESUME_OPTIONS = {"resume", "runner_options", "as_json", "quiet"}


def _ignored_on_resume(ctx: click.Context) -> list[str]:
    """Options and arguments given explicitly that a resumed run would not use."""
    given = []
    for param in ctx.command.params:
        if param.name in _RESUME_OPTIONS or param.name is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given.append(
                param.human_readable_name
                if param.param_type_name == "argument"
                else min(param.opts, key=len)
            )
    return given


# Exit code after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130


def _interrupted(out_dir: Path | None, as_json: bool) -> None:
    """Ctrl-C: say where the run stands and how to continue it, then exit 130."""
    state = _read_state(out_dir)
    if state is None:
        message = (
            "interrupted before the first iteration was saved; start it again with the same command"
        )
    else:
        message = (
            f"interrupted: the run is saved up to iteration {state.iteration}; continue it with "
            f"onnx-netadapt --resume {out_dir}"
        )
    if as_json:
        click.echo(json.dumps({"error": message, "exit_code": INTERRUPTED_EXIT}))
    click.echo(message, err=True)
    sys.exit(INTERRUPTED_EXIT)


def _read_state(out_dir: Path | None) -> RunState | None:
    """The saved state of the run in ``out_dir`` (None when nothing readable was saved)."""
    if out_dir is None or not RunDir(out_dir).state_path.exists():
        return None
    try:
        return RunDir(out_dir).load_state()
    except RunDirError:
        return None


def _read_summary(out_dir: Path | None) -> RunSummary | None:
    """The summary of the run in ``out_dir`` (None when the run never got that far)."""
    state = _read_state(out_dir)
    return state.summary if state else None


def _print_summary(summary: RunSummary, out_dir: Path, state: RunState | None) -> None:
    units = summary.units
    click.echo(f"status: {summary.status}: {summary.meaning}")
    for resource, original in summary.original.items():
        final = summary.final[resource]
        limit = summary.limits.get(resource)
        budget = ""
        if limit is not None:
            goal = summary.goals[resource]
            held = "met" if final <= goal else "NOT met"
            budget = f" (budget {limit:.4g}" + (f", goal {goal:.4g}" if goal != limit else "")
            budget += f": {held})"
        spread = summary.final_spread[resource]
        noise = ""
        if spread["rounds"] > 1:
            noise = f" [p10-p90 {spread['p10']:.4g}-{spread['p90']:.4g}, {spread['rounds']} rounds]"
        click.echo(
            f"{resource}: {original:.4g} -> {final:.4g} {units[resource]}{budget}, "
            f"x{final / original:.3f}{noise}"
        )
    va = summary.val_accuracy
    task = state.task if state else {"score": "accuracy", "unit": "%"}
    unit = task["unit"]
    click.echo(
        f"validation {task['score']}: {format_score(va['original'], unit)} -> "
        f"{format_score(va['adapted'], unit)}  "
        f"({summary.iterations} iterations, {summary.seconds_total:.0f} s, "
        f"{summary.table_measurements} table measurements)"
    )
    click.echo(f"wrote {out_dir}/adapted.onnx, history.json, report.md")
