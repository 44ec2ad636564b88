"""NetAdapt against the width multiplier and uniform pruning on Fashion-MNIST, on ort and tflite.

    python -m benchmarks.compare_fmnist run [--archs mobilenet_v1 resnet] [--seeds 0 1 2]
        [--targets ort tflite] [--size 56] [--epochs 5]
    python -m benchmarks.compare_fmnist report        # markdown + JSON + PNG from saved points
    python -m benchmarks.compare_fmnist overhead      # floor/base latency per input size
    python -m benchmarks.compare_fmnist selection     # holdout vs validation rank correlation
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
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from benchmarks import fmnist_checks
from benchmarks.compare import (
    BUDGETS,
    CURVE,
    _latency_reaching,
    _mean_sd,
    long_finetune,
    netadapt_family,
    runner_ms,
    static,
    steps_per_epoch,
)
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.data import load_data
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.demo.build import build_model, export
from onnx_netadapt.demo.nets import make_net
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_json, save_model, save_text
from onnx_netadapt.measure.host import cpu_model_name
from onnx_netadapt.measure.metrics import model_macs, parameter_count
from onnx_netadapt.prune.apply import prune

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("compare_fmnist")

RESULTS = REPO / "benchmarks" / "results" / "compare_fmnist"
METHODS = ("netadapt", "netadapt-macs", "multiplier", "uniform")
WIDTHS = tuple(round(1.0 - 0.0625 * i, 4) for i in range(15))  # 1.0 .. 0.125
RATIOS = tuple(round(0.95 - 0.05 * i, 2) for i in range(18))  # 0.95 .. 0.1
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Setup:
    """Everything that defines one benchmark run (stored with its points)."""

    data: str = "fashion-mnist"
    size: int = 56
    base_width: float = 0.5  # the premise: accuracy falls clearly from width 0.5 down
    epochs: int = 5
    limit: int | None = None  # training images for the from-scratch trainings (None: all)
    short_steps: int = 40
    long_steps: int = 1000
    holdout_per_class: int = 100
    step: float = 0.06
    decay: float = 0.98
    lr: float = 0.01
    workers: int = 2
    targets: tuple[str, ...] = ("ort", "tflite")
    curve_widths: tuple[float, ...] = (0.25, 0.125)
    widths: tuple[float, ...] = WIDTHS  # the multiplier's candidates (tables)
    ratios: tuple[float, ...] = RATIOS  # uniform pruning's candidate keep ratios (tables)
    mac_budget: float = 0.2  # how far the MAC-guided NetAdapt run goes
    select: str = "accuracy"  # NetAdapt's --select (run "ratio" into another --out and --work)
    rounds: int = 5
    table_rounds: int = 3
    val_limit: int | None = None  # validation images scored (None: all 10,000)
    options: dict = field(default_factory=dict)  # runner options per target

    @property
    def spec(self) -> str:
        """The --data spec (resized unless 28x28)."""
        return self.data if self.size == 28 else f"{self.data}@{self.size}x{self.size}"

    @property
    def shape(self) -> dict[str, list[int]]:
        return {"image": [1, 1, self.size, self.size]}

    def adapt_settings(self) -> dict:
        """AdaptConfig fields of the NetAdapt runs (compare.py's ADAPT, for this setup)."""
        return {
            "step": self.step,
            "decay": self.decay,
            "short_steps": self.short_steps,
            "long_epochs": 0.0,
            "holdout_per_class": self.holdout_per_class,
            "workers": self.workers,
            "lr": self.lr,
            "select": self.select,
            "input_shapes": self.shape,
        }


SMOKE = Setup(
    size=28,
    base_width=0.5,
    epochs=1,
    limit=300,
    short_steps=2,
    long_steps=4,
    holdout_per_class=5,
    step=0.3,
    decay=1.0,
    workers=1,
    targets=("macs", "params"),
    curve_widths=(0.125,),
    widths=(1.0, 0.75, 0.5, 0.25),
    ratios=(0.75, 0.5, 0.25),
    mac_budget=0.35,
    rounds=1,
    table_rounds=1,
    val_limit=500,
)


# -- the store: every finished point, saved as it finishes ----------------------------------
class Store:
    """points.json: points keyed by (method, target, arch, budget or width, seed), the latency
    tables, the MAC family's latencies and the side-by-side measurements."""

    def __init__(self, path: Path, setup: Setup) -> None:
        self.path = path
        empty = {"setup": _jsonable(setup), "points": [], "tables": {}, "mac_ms": {}}
        self.data = json.loads(path.read_text()) if path.exists() else empty
        self.data.setdefault("measured", {})
        mine, theirs = _jsonable(setup), dict(self.data["setup"])
        mine.pop("options"), theirs.pop("options", None)  # runner paths may differ by machine
        if mine != theirs:
            changed = sorted(k for k in mine if mine[k] != theirs.get(k))
            raise SystemExit(
                f"{path} holds points of another setup (differs in {', '.join(changed)}): "
                "give another --out (and --work), or the same options as before"
            )

    def has(self, key: str) -> bool:
        return any(p["key"] == key for p in self.data["points"])

    def add(self, point: dict) -> None:
        self.data["points"].append(point)
        self.save()

    def save(self) -> None:
        self.data["cpu"] = cpu_model_name()
        save_json(self.data, self.path)


def point_key(method: str, target: str | None, arch: str, where: float, seed: int) -> str:
    """The identity of one point (also its final network's file name)."""
    return f"{method}_{target or 'any'}_{arch}_{where:g}_s{seed}"


def _jsonable(setup: Setup) -> dict:
    return json.loads(json.dumps(asdict(setup)))


# -- latency tables (shapes only: untrained networks) ----------------------------------------
def latency_tables(arch: str, setup: Setup, store: Store) -> dict[str, dict]:
    """{target: {"width": {w: ratio}, "ratio": {r: ratio}}}: latency / base latency of the
    multiplier widths and uniform keep ratios on each target, measured once per arch."""
    tables = store.data["tables"].setdefault(arch, {})
    for target in setup.targets:
        if target in tables:
            continue
        net = make_net(arch, setup.base_width).eval()
        base = static(export(net, (setup.size, setup.size)), setup.shape)
        models = {"base": base}
        for width in setup.widths[1:]:
            narrow = make_net(arch, setup.base_width * width).eval()
            models[f"w{width:g}"] = static(export(narrow, (setup.size, setup.size)), setup.shape)
        analysis = analyse(load_model(base, fold=False))
        for ratio in setup.ratios:
            models[f"r{ratio:g}"] = prune(analysis, ratio=ratio).model
        ms = runner_ms(target, models, setup.options.get(target), rounds=setup.table_rounds)
        tables[target] = {
            "width": {"1": 1.0, **{k[1:]: v / ms["base"] for k, v in ms.items() if k[0] == "w"}},
            "ratio": {k[1:]: v / ms["base"] for k, v in ms.items() if k[0] == "r"},
            "base_ms": ms["base"],
        }
        store.save()
    return tables


def _largest_under(table: dict[str, float], budget: float) -> float:
    """The largest width (or keep ratio) whose latency ratio is at most ``budget``."""
    fits = [float(k) for k, v in table.items() if v <= budget]
    return max(fits) if fits else min(float(k) for k in table)


# -- one architecture and seed --------------------------------------------------------------
def run_one(arch: str, seed: int, setup: Setup, work: Path, store: Store) -> None:
    """Every missing point of ``arch`` and ``seed``, then the side-by-side measurement."""
    folder = work / f"{arch}_s{seed}"
    final = folder / "final"

    def trained(width: float, sub: str) -> tuple[Path, dict]:
        """A network of ``width`` trained from scratch (reused when already on disk)."""
        path = folder / sub / f"{arch}_w{setup.base_width * width:g}.onnx"
        if path.exists() and path.with_suffix(".json").exists():
            return path, json.loads(path.with_suffix(".json").read_text())
        record = build_model(
            arch,
            setup.base_width * width,
            folder / sub,
            epochs=setup.epochs,
            seed=seed,
            data=setup.spec,
            limit=setup.limit,
        )
        return Path(record["path"]), record

    def finish(method: str, target: str | None, where: float, model, meta: dict) -> None:
        key = point_key(method, target, arch, where, seed)
        save_model(model, final / f"{key}.onnx")
        store.add(
            {
                "key": key,
                "arch": arch,
                "seed": seed,
                "method": method,
                "target": target,
                "budget": None if method == CURVE else where,
                **({"width": where} if method == CURVE else {}),
                "val_accuracy": accuracy(model, val),
                "params": parameter_count(model),
                "mmacs": model_macs(model) / 1e6,
                "seconds": round(time.perf_counter() - start, 1),
                **meta,
            }
        )
        logger.info("%s: val %.4f", key, store.data["points"][-1]["val_accuracy"])

    start = time.perf_counter()
    _, val = load_builtin(setup.spec)
    val = val if setup.val_limit is None else val.subset(np.arange(min(setup.val_limit, len(val))))
    base_path, base_record = trained(1.0, "base")
    base_steps = setup.epochs * steps_per_epoch(base_record["train_examples"])
    if not store.has(point_key("base", None, arch, 1.0, seed)):
        finish("base", None, 1.0, static(base_path, setup.shape), {"steps": base_steps})
    data = None  # the fine-tunes' data, loaded when first needed

    def tune(model: onnx.ModelProto, steps: int) -> onnx.ModelProto:
        nonlocal data
        if data is None:
            data = load_data(setup.spec, (1, 1, setup.size, setup.size), seed=seed)
        return long_finetune(model, steps, seed, data)

    tables = latency_tables(arch, setup, store)
    smallest = str(min(BUDGETS))
    mac_family = netadapt_family(
        base_path,
        "macs",
        f"{setup.mac_budget}",
        seed,
        folder / "na_macs",
        data=setup.spec,
        settings=setup.adapt_settings(),
    )
    curve_extra = setup.long_steps  # the most extra steps at the smallest budget
    for target in setup.targets:
        family = netadapt_family(
            base_path,
            target,
            smallest,
            seed,
            folder / f"na_{target}",
            setup.options.get(target),
            data=setup.spec,
            settings=setup.adapt_settings(),
        )
        history = json.loads((folder / f"na_{target}" / "history.json").read_text())["history"]
        in_run = {r["iteration"]: r["measured"]["latency"] for r in history}
        mac_ms = _mac_family_ms(arch, seed, target, mac_family, setup, store)
        for budget in BUDGETS:
            k = next((i for i, ms in in_run.items() if ms <= budget * in_run[0]), max(in_run))
            extra = setup.short_steps * k + setup.long_steps
            if budget == min(BUDGETS):
                curve_extra = max(curve_extra, extra)
            steps = base_steps + extra
            if not store.has(point_key("netadapt", target, arch, budget, seed)):
                model = tune(onnx.load(family[k]["path"]), setup.long_steps)
                finish("netadapt", target, budget, model, {"iteration": k, "steps": steps})
            if not store.has(point_key("netadapt-macs", target, arch, budget, seed)):
                k_mac = next((i for i, r in enumerate(mac_ms) if r <= budget), len(mac_family) - 1)
                mac_long = max(0, extra - setup.short_steps * k_mac)
                model = tune(onnx.load(mac_family[k_mac]["path"]), mac_long)
                meta = {
                    "iteration": k_mac,
                    "steps": base_steps + setup.short_steps * k_mac + mac_long,
                }
                finish("netadapt-macs", target, budget, model, meta)
            if not store.has(point_key("multiplier", target, arch, budget, seed)):
                width = _largest_under(tables[target]["width"], budget)
                path, _ = trained(width, "multiplier")
                model = tune(static(path, setup.shape), extra)
                finish("multiplier", target, budget, model, {"width": width, "steps": steps})
            if not store.has(point_key("uniform", target, arch, budget, seed)):
                ratio = _largest_under(tables[target]["ratio"], budget)
                base = static(base_path, setup.shape)
                pruned = prune(analyse(load_model(base, fold=False)), ratio=ratio).model
                finish(
                    "uniform", target, budget, tune(pruned, extra), {"ratio": ratio, "steps": steps}
                )
    for width in setup.curve_widths:
        if not store.has(point_key(CURVE, None, arch, width, seed)):
            path, _ = trained(width, "multiplier")
            model = tune(static(path, setup.shape), curve_extra)
            finish(CURVE, None, width, model, {"steps": base_steps + curve_extra})
    measure_side_by_side(arch, seed, setup, final, store)


def _mac_family_ms(
    arch: str, seed: int, target: str, family: list[dict], setup: Setup, store: Store
) -> list[float]:
    """Latency ratios on ``target`` of the MAC-guided family's networks (measured once)."""
    key = f"{arch}_s{seed}_{target}"
    if key not in store.data["mac_ms"]:
        models = {str(i): static(m["path"], setup.shape) for i, m in enumerate(family)}
        ms = runner_ms(target, models, setup.options.get(target), rounds=setup.table_rounds)
        store.data["mac_ms"][key] = [ms[str(i)] / ms["0"] for i in range(len(family))]
        store.save()
    return store.data["mac_ms"][key]


def measure_side_by_side(arch: str, seed: int, setup: Setup, final: Path, store: Store) -> None:
    """Every final network of (arch, seed) on every target, interleaved; skipped when done."""
    keys = sorted(p["key"] for p in store.data["points"] if p["arch"] == arch and p["seed"] == seed)
    record = store.data["measured"].get(f"{arch}_s{seed}")
    if record and record["keys"] == keys and all(t in record for t in setup.targets):
        return
    models = {key: onnx.load(final / f"{key}.onnx") for key in keys}
    record = {"keys": keys}
    for target in setup.targets:
        record[target] = runner_ms(target, models, setup.options.get(target), setup.rounds)
    store.data["measured"][f"{arch}_s{seed}"] = record
    store.save()


# -- report ---------------------------------------------------------------------------------
def target_view(data: dict, target: str, chosen_only: bool = True) -> list[dict]:
    """Points with ``latency_ratio`` on ``target`` (to the base in the same pass); with
    ``chosen_only``, the per-target methods only where they were chosen for ``target``."""
    out = []
    for p in data["points"]:
        measured = data["measured"].get(f"{p['arch']}_s{p['seed']}", {}).get(target)
        if measured is None or p["key"] not in measured:
            continue
        if chosen_only and p["target"] not in (None, target):
            continue
        base = measured[point_key("base", None, p["arch"], 1.0, p["seed"])]
        out.append({**p, "latency_ratio": measured[p["key"]] / base})
    return out


def speedups(view: list[dict], arch: str, method: str = "netadapt") -> dict[float, tuple]:
    """{budget: (speed-up, bound)}: the multiplier's latency at ``method``'s accuracy (its
    piecewise-linear curve over budgets, curve widths and the base) / ``method``'s latency."""

    def mean_at(sel: list[dict]) -> tuple[float, float]:
        return float(np.mean([p["latency_ratio"] for p in sel])), float(
            np.mean([p["val_accuracy"] for p in sel])
        )

    mine = [p for p in view if p["arch"] == arch]
    groups: dict[tuple, list[dict]] = {}
    for p in mine:
        if p["method"] in ("multiplier", CURVE, "base"):
            where = p["width"] if p["method"] == CURVE else p["budget"]
            groups.setdefault((p["method"], where), []).append(p)
    curve = sorted(mean_at(sel) for sel in groups.values())
    out = {}
    for budget in BUDGETS:
        sel = [p for p in mine if p["method"] == method and p["budget"] == budget]
        if sel and curve:
            lat, acc = mean_at(sel)
            reach, bound = _latency_reaching(curve, acc)
            out[budget] = (reach / lat, bound)
    return out


def bootstrap(view: list[dict], arch: str, rng: np.random.Generator) -> dict[float, list[float]]:
    """{budget: [2.5%, 97.5%]} of the speed-up, resampling seeds with replacement."""
    seeds = sorted({p["seed"] for p in view if p["arch"] == arch})
    samples: dict[float, list[float]] = {b: [] for b in BUDGETS}
    for _ in range(BOOTSTRAP if len(seeds) > 1 else 0):
        pick = rng.choice(seeds, size=len(seeds), replace=True)
        resampled = [p for s in pick for p in view if p["arch"] == arch and p["seed"] == s]
        for budget, (value, _) in speedups(resampled, arch).items():
            samples[budget].append(value)
    return {
        b: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
        for b, v in samples.items()
        if v
    }


def cmd_report(args: argparse.Namespace) -> dict:
    out = args.out
    data = json.loads((out / "points.json").read_text())
    targets = tuple(data["setup"]["targets"])
    archs = sorted({p["arch"] for p in data["points"]})
    seeds = sorted({p["seed"] for p in data["points"]})
    setup = data["setup"]
    lines = [
        "# NetAdapt against the width multiplier and uniform pruning on Fashion-MNIST",
        "",
        f"Command: `python -m benchmarks.compare_fmnist run` (CPU: {data.get('cpu', '?')}); "
        f"seeds {seeds}; input {setup['size']}x{setup['size']}, base width "
        f"{setup['base_width']:g}, {setup['epochs']} base epochs, short fine-tunes of "
        f"{setup['short_steps']} steps, long fine-tunes of {setup['long_steps']} steps, holdout "
        f"{setup['holdout_per_class']} per class, NetAdapt's --select "
        f"{setup.get('select', 'accuracy')}. Accuracy on the 10,000 test images (mean ± sd "
        "over seeds). Latency: medians of interleaved side-by-side rounds, 1 thread, as a ratio "
        "to the base network in the same pass (mean over seeds), on each target. Method details: "
        "the docstring of benchmarks/compare_fmnist.py.",
        "",
    ]
    summary: dict = {"setup": setup, "speedup_vs_multiplier": {}}
    rng = np.random.default_rng(0)
    for target in targets:
        view = target_view(data, target)
        others = {t: target_view(data, t, chosen_only=False) for t in targets if t != target}
        for arch in archs:
            base = [p for p in view if p["arch"] == arch and p["method"] == "base"]
            if not base:
                continue
            acc, sd = _mean_sd([p["val_accuracy"] for p in base])
            lines += [
                f"## {arch}, chosen for and measured on {target}",
                "",
                f"Base network: {100 * acc:.2f} ± {100 * sd:.2f}%.",
                "",
                "| budget | method | latency ratio | "
                + "".join(f"on {t} | " for t in others)
                + "val accuracy (%) | MMACs | steps | detail |",
                "|---|---|---|" + "---|" * len(others) + "---|---|---|---|",
            ]
            rows = [(str(b), m, b) for b in BUDGETS for m in METHODS]
            rows += [("below", CURVE, w) for w in setup["curve_widths"]]
            for label, method, where in rows:
                sel = [
                    p
                    for p in view
                    if p["arch"] == arch
                    and p["method"] == method
                    and (p.get("width") if method == CURVE else p["budget"]) == where
                ]
                if not sel:
                    continue
                keys = {p["key"] for p in sel}
                cross = "".join(
                    f"{np.mean([p['latency_ratio'] for p in v if p['key'] in keys]):.3f} | "
                    for v in others.values()
                )
                a, s = _mean_sd([p["val_accuracy"] for p in sel])
                detail = ", ".join(
                    f"{k} {sorted({p[k] for p in sel})}"
                    for k in ("iteration", "width", "ratio")
                    if k in sel[0]
                )
                lines.append(
                    f"| {label} | {method} | {np.mean([p['latency_ratio'] for p in sel]):.3f} | "
                    f"{cross}{100 * a:.2f} ± {100 * s:.2f} | "
                    f"{np.mean([p['mmacs'] for p in sel]):.2f} | "
                    f"{int(np.mean([p['steps'] for p in sel]))} | {detail} |"
                )
            speed = speedups(view, arch)
            interval = bootstrap(view, arch, rng)
            summary["speedup_vs_multiplier"].setdefault(target, {})[arch] = {
                str(b): {"speedup": v, "bound": bound, "bootstrap_95": interval.get(b)}
                for b, (v, bound) in speed.items()
            }
            lines += ["", "Speed-up of netadapt over the multiplier at equal accuracy:", ""]
            for b, (v, bound) in speed.items():
                ci = interval.get(b)
                ci_text = f" (bootstrap 95% over seeds: {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
                lines.append(f"- budget {b}: {bound} x{v:.2f}{ci_text}")
            lines.append("")
    lines += ["![accuracy vs latency](compare.png)", ""]
    save_text("\n".join(lines), out / "compare.md")
    save_json(summary, out / "summary.json")
    _plot(data, targets, archs, out / "compare.png")
    print("\n".join(lines))
    return summary


def _plot(data: dict, targets: tuple[str, ...], archs: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(targets), len(archs), figsize=(6 * len(archs), 4 * len(targets)), squeeze=False
    )
    for row, target in enumerate(targets):
        view = target_view(data, target)
        for col, arch in enumerate(archs):
            ax = axes[row][col]
            for method, marker in zip((*METHODS, CURVE), "os^vx", strict=True):
                wheres = sorted(
                    {
                        p.get("width") if method == CURVE else p["budget"]
                        for p in view
                        if p["arch"] == arch and p["method"] == method
                    }
                )
                xs, ys, es = [], [], []
                for where in wheres:
                    sel = [
                        p
                        for p in view
                        if p["arch"] == arch
                        and p["method"] == method
                        and (p.get("width") if method == CURVE else p["budget"]) == where
                    ]
                    xs.append(np.mean([p["latency_ratio"] for p in sel]))
                    a, s = _mean_sd([100 * p["val_accuracy"] for p in sel])
                    ys.append(a)
                    es.append(s)
                if xs:
                    order = np.argsort(xs)
                    ax.errorbar(
                        np.asarray(xs)[order],
                        np.asarray(ys)[order],
                        yerr=np.asarray(es)[order],
                        marker=marker,
                        label=method,
                        capsize=3,
                    )
            base = [
                100 * p["val_accuracy"] for p in view if p["arch"] == arch and p["method"] == "base"
            ]
            if base:
                ax.axhline(np.mean(base), color="gray", ls=":", label="base (latency 1.0)")
            ax.set_title(f"{arch} on {target}")
            ax.set_xlabel(f"measured {target} latency / base")
            ax.set_ylabel("validation accuracy (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


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
        }.items()
        if v is not None
    }
    if args.onnx2tf:
        changes["options"] = {"tflite": {"onnx2tf": str(args.onnx2tf)}}
    return replace(setup, **changes)


def cmd_run(args: argparse.Namespace) -> None:
    setup = setup_from(args)
    args.out.mkdir(parents=True, exist_ok=True)
    store = Store(args.out / "points.json", setup)
    archs = args.archs or (["mobilenet_v1"] if args.smoke else ["mobilenet_v1", "resnet"])
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
    archs = args.archs or ["mobilenet_v1", "resnet"]
    targets = list(setup.targets)
    widths = args.base_widths or [setup.base_width]
    fmnist_checks.overhead(
        archs, args.sizes, targets, widths, setup.options, setup.rounds, args.out
    )


def cmd_selection(args: argparse.Namespace) -> None:
    setup = setup_from(args)
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.base
    if base is None:
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
    )
    command = "python -m benchmarks.compare_fmnist " + " ".join(sys.argv[1:])
    print(fmnist_checks.selection_report(rows, command, args.out))


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
    sel.add_argument("--arch", default="mobilenet_v1")
    sel.add_argument("--seed", type=int, default=0)
    sel.add_argument("--base", type=Path, help="base network (default: the run's, or trained)")
    sel.add_argument("--holdouts", nargs="+", type=int, default=[10, 30, 100, 300])
    sel.add_argument("--short-steps", nargs="+", type=int, default=[40, 100, 300])
    sel.add_argument("--target", default="macs", help="runner whose first proposals are used")
    sel.add_argument("--smoke", action="store_true")
    sel.add_argument("--targets", nargs="+")
    for p in (run, report, over, sel):
        p.add_argument("--out", type=Path, default=RESULTS)
    for p in (run, over, sel):
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
    }
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
