"""NetAdapt against the width multiplier and uniform pruning on Fashion-MNIST, on ort and tflite.

    python -m benchmarks.compare_fmnist run [--archs mobilenet_v1_lite resnet_lite] [--seeds 0 1 2]
        [--targets ort tflite] [--size 56] [--epochs 5]
    python -m benchmarks.compare_fmnist report        # markdown + JSON + PNG from saved points
    python -m benchmarks.compare_fmnist overhead      # floor/base latency per input size
    python -m benchmarks.compare_fmnist selection     # holdout vs validation rank correlation
    python -m benchmarks.compare_fmnist scratch [--targets ort] [--seeds 0] [--threads 1]
        # netadapt's architectures trained from scratch (benchmarks/fmnist_scratch.py)
    python -m benchmarks.compare_fmnist channels [--seeds 0]   # what each method kept
    python -m benchmarks.compare_fmnist recipe [--lrs 0.03 0.1] [--distills 0 0.5]  # long recipe
    python -m benchmarks.compare_fmnist select [--seeds 0] [--targets ort]  # --select ratio
        # against --select accuracy (benchmarks/fmnist_select.py; times latency: quiet machine)
    python -m benchmarks.compare_fmnist run --smoke --data fashion-mnist:DIR --out /tmp/x

The method of benchmarks/compare.py (its helpers are reused), on Fashion-MNIST resized to SIZE x
SIZE (60,000 training images; the 10,000 test images are the validation set, never used for
training or picking), for every latency target T in ``--targets``:

1. ``netadapt``: NetAdapt guided by latency measured on T (one run down to the smallest budget;
   the first network under each budget, then a long fine-tune);
2. ``netadapt-macs``: NetAdapt guided by MACs; the first network under the budget on T;
3. ``multiplier``: the widest width multiplier under the budget on T, trained from scratch;
4. ``uniform``: every prunable group cut by the same ratio (L2), the largest under the budget on
   T, then fine-tuned;

plus ``multiplier-curve`` networks narrower than any budget's. The width and ratio tables are
measured once per architecture and target (untrained networks: latency depends on shapes only).
Same total training steps for every method (compare.py's rule). Each point (method, target,
arch, budget, seed) is stored in points.json as it finishes and a rerun skips it; when all points
of one (arch, seed) exist, all its final networks are measured side by side on every target
(interleaved rounds, medians; ratios to the base network in the same pass). The report gives
accuracy against measured latency per target, and the speed-up of netadapt over the multiplier at
equal accuracy per budget with a bootstrap interval over seeds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks import fmnist_checks
from benchmarks.fmnist_recipe import recipe_report, run_recipe
from benchmarks.fmnist_report import channels_report, cmd_report
from benchmarks.fmnist_run import run_one
from benchmarks.fmnist_scratch import run_scratch, scratch_report
from benchmarks.fmnist_select import run_select, select_report
from benchmarks.fmnist_setup import ARCHS, SMOKE, Setup, Store
from onnx_netadapt.demo.build import build_model

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("compare_fmnist")

RESULTS = REPO / "benchmarks" / "results" / "compare_fmnist"


# -- commands -------------------------------------------------------------------------------
def setup_from(args: argparse.Namespace) -> Setup:
    """The Setup of the command line (``--smoke``: SMOKE, with --data)."""
    setup = SMOKE if args.smoke else Setup()
    changes = {
        k: v
        for k, v in {
            "data": args.data,
            "size": args.size,
            "epochs": args.epochs,
            "targets": tuple(args.targets) if args.targets else None,
            "base_width": args.base_width,
            "select": getattr(args, "select", None),
            "long_lr": getattr(args, "long_lr", None),
            "long_distill": getattr(args, "long_distill", None),
        }.items()
        if v is not None
    }
    if args.onnx2tf:
        changes["options"] = {"tflite": {"onnx2tf": str(args.onnx2tf)}}
    return replace(setup, **changes)


def _command() -> str:
    """This command line, for the reports."""
    return "python -m benchmarks.compare_fmnist " + " ".join(sys.argv[1:])


def cmd_run(args: argparse.Namespace) -> None:
    setup = setup_from(args)
    args.out.mkdir(parents=True, exist_ok=True)
    store = Store(args.out / "points.json", setup)
    archs = args.archs or (["mobilenet_v1_lite"] if args.smoke else list(ARCHS))
    seeds = args.seeds or ([0] if args.smoke else [0, 1, 2])
    for arch in archs:
        for seed in seeds:
            start = time.perf_counter()
            run_one(arch, seed, setup, args.work, store)
            logger.info("%s seed %d: %.0f s", arch, seed, time.perf_counter() - start)
    cmd_report(args)


def cmd_overhead(args: argparse.Namespace) -> None:
    setup = setup_from(args)
    args.out.mkdir(parents=True, exist_ok=True)
    archs = args.archs or list(ARCHS)
    targets = list(setup.targets)
    widths = args.base_widths or [setup.base_width]
    fmnist_checks.overhead(
        archs, args.sizes, targets, widths, setup.options, setup.rounds, args.out
    )


def cmd_selection(args: argparse.Namespace) -> None:
    setup = setup_from(args)
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.base
    if base is None and args.run is None:  # with --run, the run's own networks are studied
        base = (
            args.work
            / f"{args.arch}_s{args.seed}"
            / "base"
            / f"{args.arch}_w{setup.base_width:g}.onnx"
        )
        if not base.exists():
            base = Path(
                build_model(
                    args.arch,
                    setup.base_width,
                    base.parent,
                    epochs=setup.epochs,
                    seed=args.seed,
                    data=setup.spec,
                    limit=setup.limit,
                )["path"]
            )
    rows = fmnist_checks.selection_noise(
        base,
        setup.spec,
        setup.shape,
        setup.adapt_settings(),
        args.holdouts,
        args.short_steps,
        args.target,
        args.seed,
        args.work / "selection",
        args.run,
        args.iteration,
    )
    print(fmnist_checks.selection_report(rows, _command(), args.out))


def comparison_setup(args: argparse.Namespace) -> tuple[Setup, list[str]]:
    """For the studies that read a finished comparison: its Setup (every target, as the run
    had) and the targets asked for (default: all); sets the torch threads asked for."""
    targets = args.targets
    args.targets = None
    setup = setup_from(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    return setup, targets or list(setup.targets)


def cmd_scratch(args: argparse.Namespace) -> None:
    """NetAdapt's final architectures trained from scratch (benchmarks/fmnist_scratch.py)."""
    setup, targets = comparison_setup(args)
    run_scratch(args.archs, args.seeds or [0], targets, setup, args.work, args.out)
    scratch_report(args.out, _command())


def cmd_select(args: argparse.Namespace) -> None:
    """NetAdapt with --select ratio against the comparison's (benchmarks/fmnist_select.py)."""
    setup, targets = comparison_setup(args)
    run_select(args.archs, args.seeds or [0], targets, setup, args.work, args.out)
    select_report(args.out, _command())


def cmd_channels(args: argparse.Namespace) -> None:
    print("\n".join(channels_report(args.out, args.work, args.seeds or [0], _command())))


def cmd_recipe(args: argparse.Namespace) -> None:
    """The long fine-tune at other peak lrs and distillation (benchmarks/fmnist_recipe.py)."""
    setup, targets = comparison_setup(args)
    arch = args.arch or ("mobilenet_v1_lite" if args.smoke else ARCHS[0])
    run_recipe(
        arch, args.seed, targets, args.budgets, args.lrs, args.distills, setup, args.work, args.out
    )
    recipe_report(args.out, _command())


def _study_parser(
    sub: argparse._SubParsersAction, name: str, help_text: str, targets_help: str
) -> argparse.ArgumentParser:
    """The sub-command of a study over a finished comparison's architectures and seeds."""
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("--archs", nargs="+", help="default: every one the comparison has")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--targets", nargs="+", help=f"{targets_help} (default: all)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--smoke", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--archs", nargs="+")
    run.add_argument("--seeds", nargs="+", type=int)
    run.add_argument("--targets", nargs="+")
    run.add_argument("--smoke", action="store_true", help="tiny settings: checks the pipeline")
    run.add_argument("--select", choices=["accuracy", "ratio"], help="NetAdapt's proposal pick")
    report = sub.add_parser("report")
    over = sub.add_parser("overhead", help="floor/base latency per input size (quiet machine)")
    over.add_argument("--sizes", nargs="+", type=int, default=[28, 56, 84, 112])
    over.add_argument("--base-widths", nargs="+", type=float, default=[1.0, 0.5])
    over.add_argument("--archs", nargs="+")
    over.add_argument("--targets", nargs="+")
    over.add_argument("--smoke", action="store_true")
    sel = sub.add_parser("selection", help="holdout vs validation accuracy of proposals")
    sel.add_argument("--arch", default=ARCHS[0])
    sel.add_argument("--seed", type=int, default=0)
    sel.add_argument("--base", type=Path, help="base network (default: the run's, or trained)")
    sel.add_argument("--holdouts", nargs="+", type=int, default=[10, 30, 100, 300])
    sel.add_argument("--short-steps", nargs="+", type=int, default=[40, 100, 300])
    sel.add_argument("--target", default="macs", help="runner whose first proposals are used")
    sel.add_argument("--run", type=Path, help="an adaptation's folder: study its --iteration")
    sel.add_argument("--iteration", type=int, default=1, help="with --run: which iteration")
    sel.add_argument("--smoke", action="store_true")
    sel.add_argument("--targets", nargs="+")
    scratch = _study_parser(
        sub, "scratch", "netadapt's architectures trained from scratch", "whose netadapt points"
    )
    select = _study_parser(
        sub, "select", "--select ratio against --select accuracy", "ratio runs guided by"
    )
    recipe = sub.add_parser("recipe", help="the long fine-tune at several peak lrs")
    recipe.add_argument("--arch")
    recipe.add_argument("--seed", type=int, default=0)
    recipe.add_argument("--targets", nargs="+")
    recipe.add_argument("--budgets", nargs="+", type=float, default=[0.75, 0.5, 0.35])
    recipe.add_argument("--lrs", nargs="+", type=float, default=[0.03, 0.1])
    recipe.add_argument("--distills", nargs="+", type=float, default=[0.0])
    recipe.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    recipe.add_argument("--smoke", action="store_true")
    chan = sub.add_parser("channels", help="output channels per Conv of the final networks")
    chan.add_argument("--seeds", nargs="+", type=int)
    chan.add_argument("--work", type=Path, default=Path("/tmp/compare_fmnist"))
    for p in (run, report, over, sel, scratch, chan, recipe, select):
        p.add_argument("--out", type=Path, default=RESULTS)
    for p in (run, scratch, recipe, select):  # run these into another --out (and --work)
        p.add_argument("--long-lr", type=float, help="peak lr of every method's long fine-tune")
        p.add_argument("--long-distill", type=float, help="its distillation weight, from the base")
    for p in (run, over, sel, scratch, recipe, select):
        p.add_argument("--work", type=Path, default=Path("/tmp/compare_fmnist"))
        p.add_argument("--data", help="fashion-mnist or fashion-mnist:DIR")
        p.add_argument("--size", type=int)
        p.add_argument("--epochs", type=int)
        p.add_argument("--base-width", type=float)
        p.add_argument("--onnx2tf", type=Path, default=Path("/work/venvs/onnx2tf/bin/onnx2tf"))
    args = parser.parse_args(argv)
    commands = {
        "run": cmd_run,
        "report": cmd_report,
        "overhead": cmd_overhead,
        "selection": cmd_selection,
        "scratch": cmd_scratch,
        "channels": cmd_channels,
        "recipe": cmd_recipe,
        "select": cmd_select,
    }
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
