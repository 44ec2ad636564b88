"""The points of one architecture and seed of the Fashion-MNIST comparison: latency tables, the
four methods at every budget and target, the side-by-side measurement (the method:
benchmarks/compare_fmnist.py's docstring). Finished points are stored as they finish and skipped
on a rerun.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import onnx

from benchmarks.compare import (
    BUDGETS,
    CURVE,
    long_finetune,
    netadapt_family,
    runner_ms,
    static,
    steps_per_epoch,
)
from benchmarks.fmnist_setup import Setup, Store, point_key
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.data import load_data
from onnx_netadapt.data.builtin import load_builtin
from onnx_netadapt.demo.build import build_model, export
from onnx_netadapt.demo.nets import make_net
from onnx_netadapt.evaluate import accuracy
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.graph.save import save_model
from onnx_netadapt.measure.metrics import model_macs, parameter_count
from onnx_netadapt.prune.apply import prune

logger = logging.getLogger("compare_fmnist")


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
class ArchSeedRun:
    """The points of one architecture and seed: trains, fine-tunes, scores and stores them."""

    def __init__(self, arch: str, seed: int, setup: Setup, work: Path, store: Store) -> None:
        self.arch, self.seed, self.setup, self.store = arch, seed, setup, store
        self.folder = work / f"{arch}_s{seed}"
        self.start = time.perf_counter()
        _, val = load_builtin(setup.spec)
        limit = setup.val_limit
        self.val = val if limit is None else val.subset(np.arange(min(limit, len(val))))
        self.data = None  # the fine-tunes' data, loaded when first needed
        self.base_path, base_record = self.trained(1.0, "base")
        self.base_steps = setup.epochs * steps_per_epoch(base_record["train_examples"])

    def trained(self, width: float, sub: str) -> tuple[Path, dict]:
        """A network of ``width`` trained from scratch (reused when already on disk)."""
        setup = self.setup
        path = self.folder / sub / f"{self.arch}_w{setup.base_width * width:g}.onnx"
        if path.exists() and path.with_suffix(".json").exists():
            return path, json.loads(path.with_suffix(".json").read_text())
        record = build_model(
            self.arch,
            setup.base_width * width,
            self.folder / sub,
            epochs=setup.epochs,
            seed=self.seed,
            data=setup.spec,
            limit=setup.limit,
        )
        return Path(record["path"]), record

    def tune(
        self,
        model: onnx.ModelProto,
        steps: int,
        lr: float | None = None,
        distill: float | None = None,
    ) -> onnx.ModelProto:
        """The long fine-tune of ``steps`` steps on the run's data (peak ``lr`` and distillation
        weight ``distill``, from the base network: the setup's unless given)."""
        if self.data is None:
            shape = (1, 1, self.setup.size, self.setup.size)
            self.data = load_data(self.setup.spec, shape, seed=self.seed)
        setup = self.setup
        lr = setup.long_lr if lr is None else lr
        distill = setup.long_distill if distill is None else distill
        teacher = static(self.base_path, setup.shape) if distill else None
        return long_finetune(model, steps, self.seed, self.data, lr, teacher, distill)

    def extra(self, k: int) -> int:
        """Training steps after the base network's for NetAdapt's iteration ``k``."""
        return self.setup.short_steps * k + self.setup.long_steps

    def has(self, method: str, target: str | None, where: float) -> bool:
        return self.store.has(point_key(method, target, self.arch, where, self.seed))

    def finish(
        self, method: str, target: str | None, where: float, model: onnx.ModelProto, meta: dict
    ) -> None:
        """Save the final network of one point and store the point."""
        key = point_key(method, target, self.arch, where, self.seed)
        save_model(model, self.folder / "final" / f"{key}.onnx")
        self.store.add(
            {
                "key": key,
                "arch": self.arch,
                "seed": self.seed,
                "method": method,
                "target": target,
                "budget": None if method == CURVE else where,
                **({"width": where} if method == CURVE else {}),
                "val_accuracy": accuracy(model, self.val),
                "params": parameter_count(model),
                "mmacs": model_macs(model) / 1e6,
                "seconds": round(time.perf_counter() - self.start, 1),
                **meta,
            }
        )
        logger.info("%s: val %.4f", key, self.store.data["points"][-1]["val_accuracy"])

    def base_point(self) -> None:
        if not self.has("base", None, 1.0):
            model = static(self.base_path, self.setup.shape)
            self.finish("base", None, 1.0, model, {"steps": self.base_steps})

    def netadapt_point(self, target: str, budget: float, family: list[dict], k: int) -> None:
        """NetAdapt guided by ``target``: its iteration ``k``, long fine-tuned."""
        if not self.has("netadapt", target, budget):
            model = self.tune(onnx.load(family[k]["path"]), self.setup.long_steps)
            meta = {"iteration": k, "steps": self.base_steps + self.extra(k)}
            self.finish("netadapt", target, budget, model, meta)

    def mac_point(
        self, target: str, budget: float, family: list[dict], ratios: list[float], k: int
    ) -> None:
        """NetAdapt guided by MACs: its first network under ``budget`` on ``target``, long
        fine-tuned for the steps left of NetAdapt's (iteration ``k``)."""
        if self.has("netadapt-macs", target, budget):
            return
        k_mac = next((i for i, r in enumerate(ratios) if r <= budget), len(family) - 1)
        short = self.setup.short_steps * k_mac
        mac_long = max(0, self.extra(k) - short)
        model = self.tune(onnx.load(family[k_mac]["path"]), mac_long)
        meta = {"iteration": k_mac, "steps": self.base_steps + short + mac_long}
        self.finish("netadapt-macs", target, budget, model, meta)

    def multiplier_network(self, width: float) -> onnx.ModelProto:
        """The multiplier's network of ``width``, trained from scratch (before fine-tuning)."""
        path, _ = self.trained(width, "multiplier")
        return static(path, self.setup.shape)

    def uniform_network(self, ratio: float) -> onnx.ModelProto:
        """The base network with every group pruned to ``ratio`` (L2; before fine-tuning)."""
        base = static(self.base_path, self.setup.shape)
        return prune(analyse(load_model(base, fold=False)), ratio=ratio).model

    def multiplier_point(self, target: str, budget: float, table: dict, k: int) -> None:
        """The widest multiplier under ``budget`` on ``target``, trained from scratch."""
        if not self.has("multiplier", target, budget):
            width = _largest_under(table["width"], budget)
            model = self.tune(self.multiplier_network(width), self.extra(k))
            meta = {"width": width, "steps": self.base_steps + self.extra(k)}
            self.finish("multiplier", target, budget, model, meta)

    def uniform_point(self, target: str, budget: float, table: dict, k: int) -> None:
        """Uniform pruning, the largest keep ratio under ``budget`` on ``target``."""
        if not self.has("uniform", target, budget):
            ratio = _largest_under(table["ratio"], budget)
            model = self.tune(self.uniform_network(ratio), self.extra(k))
            meta = {"ratio": ratio, "steps": self.base_steps + self.extra(k)}
            self.finish("uniform", target, budget, model, meta)

    def curve_point(self, width: float, steps: int) -> None:
        """A multiplier network narrower than any budget's, fine-tuned for ``steps``."""
        if not self.has(CURVE, None, width):
            model = self.tune(self.multiplier_network(width), steps)
            self.finish(CURVE, None, width, model, {"steps": self.base_steps + steps})


def run_one(arch: str, seed: int, setup: Setup, work: Path, store: Store) -> None:
    """Every missing point of ``arch`` and ``seed``, then the side-by-side measurement."""
    run = ArchSeedRun(arch, seed, setup, work, store)
    run.base_point()
    tables = latency_tables(arch, setup, store)
    mac_family = netadapt_family(
        run.base_path,
        "macs",
        f"{setup.mac_budget}",
        seed,
        run.folder / "na_macs",
        data=setup.spec,
        settings=setup.adapt_settings(),
    )
    curve_extra = setup.long_steps  # the most extra steps at the smallest budget
    for target in setup.targets:
        extra = _target_points(run, target, tables[target], mac_family)
        curve_extra = max(curve_extra, extra)
    for width in setup.curve_widths:
        run.curve_point(width, curve_extra)
    measure_side_by_side(arch, seed, setup, run.folder / "final", store)


def _target_points(run: ArchSeedRun, target: str, table: dict, mac_family: list[dict]) -> int:
    """Every budget's points chosen for ``target``; the extra steps at the smallest budget."""
    setup = run.setup
    family = netadapt_family(
        run.base_path,
        target,
        str(min(BUDGETS)),
        run.seed,
        run.folder / f"na_{target}",
        setup.options.get(target),
        data=setup.spec,
        settings=setup.adapt_settings(),
    )
    mac_ms = _mac_family_ms(run.arch, run.seed, target, mac_family, setup, run.store)
    extras = {}
    for budget, k in first_under(run.folder / f"na_{target}").items():
        extras[budget] = run.extra(k)
        run.netadapt_point(target, budget, family, k)
        run.mac_point(target, budget, mac_family, mac_ms, k)
        run.multiplier_point(target, budget, table, k)
        run.uniform_point(target, budget, table, k)
    return extras[min(BUDGETS)]


def first_under(adaptation: Path) -> dict[float, int]:
    """Per budget of the comparison, the first iteration of the adaptation in ``adaptation``
    measured (in its own run) under that fraction of its original's latency; else its last."""
    history = json.loads((adaptation / "history.json").read_text())["history"]
    in_run = {r["iteration"]: r["measured"]["latency"] for r in history}
    return {
        budget: next((i for i, ms in in_run.items() if ms <= budget * in_run[0]), max(in_run))
        for budget in BUDGETS
    }


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
