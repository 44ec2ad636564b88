"""The Fashion-MNIST comparison's setup and its store of points (``points.json``).

Used by ``python -m benchmarks.compare_fmnist`` (benchmarks/compare_fmnist.py) and its report
(benchmarks/fmnist_report.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from onnx_netadapt.graph.save import save_json
from onnx_netadapt.measure.host import cpu_model_name

METHODS = ("netadapt", "netadapt-macs", "multiplier", "uniform")
# The networks compared (onnx_netadapt/demo/nets.py): short of capacity at width 1, with an
# 8-channel floor at most 0.2 of their latency at 56x56 (results/compare_fmnist/README.md).
ARCHS = ("mobilenet_v1_lite", "resnet_lite")
WIDTHS = tuple(round(1.0 - 0.0625 * i, 4) for i in range(15))  # 1.0 .. 0.125
RATIOS = tuple(round(0.95 - 0.05 * i, 2) for i in range(18))  # 0.95 .. 0.1
ADDED_LATER = ("long_lr", "long_distill")  # Setup fields that older points.json files lack


@dataclass(frozen=True)
class Setup:
    """Everything that defines one benchmark run (stored with its points)."""

    data: str = "fashion-mnist"
    size: int = 56
    base_width: float = 1.0  # of the lean networks (results/compare_fmnist/README.md: why)
    epochs: int = 5
    limit: int | None = None  # training images for the from-scratch trainings (None: all)
    short_steps: int = 40
    long_steps: int = 1000
    long_lr: float = 0.01  # peak lr of the long fine-tunes (every method's extra steps)
    long_distill: float = 0.0  # their distillation weight, from the base network
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
        defaults = _jsonable(Setup())
        for name in ADDED_LATER:  # stores older than a field hold its default
            theirs.setdefault(name, defaults[name])
        if mine != theirs:
            changed = sorted(k for k in mine if mine[k] != theirs.get(k))
            raise SystemExit(
                f"{path} holds points of another setup (differs in {', '.join(changed)}): "
                "give another --out (and --work), or the same options as before"
            )

    def archs(self) -> list[str]:
        """The architectures this store has points of (the studies' default)."""
        return sorted({p["arch"] for p in self.data["points"]})

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


def commands_so_far(report_json: Path, command: str) -> list[str]:
    """The commands whose results a cumulative report (``scratch``, ``select``, ``recipe``:
    every run adds its points to the earlier ones') holds: those its last JSON lists, then
    ``command`` if new."""
    commands: list[str] = []
    if report_json.exists():
        earlier = json.loads(report_json.read_text())
        if "commands" in earlier:
            commands = list(earlier["commands"])
        elif "command" in earlier:  # written before reports kept the list
            commands = [earlier["command"]]
    return commands if command in commands else [*commands, command]


def commands_line(commands: list[str]) -> str:
    """A cumulative report's opening words: every command behind its rows."""
    return "Commands: " + "; ".join(f"`{c}`" for c in commands) + ". "
