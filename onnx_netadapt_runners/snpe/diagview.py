"""Parsing what ``snpe-diagview --input_log SNPEDiag.log`` prints.

snpe-diagview (``usage: snpe-diagview --input_log DIAG_LOG [-h] [--output CSV_FILE]``) reads
the diagnostic log snpe-net-run writes and prints it as text. When the input list holds several
inputs, the timings it reports are the average over the whole input set (SNPE reference guide,
"Tools > snpe-diagview"; mirrored at https://blog.csdn.net/weixin_38498942/article/details/131442029).

The text format, as printed by real SDKs:

SNPE 2.37 (github.com, a gesture-model benchmark README; the "Per-Layer" names are the DLC
layer names, i.e. the source model's node names)::

    Software library version: 2.37.0.250724175447_124859
    SNPE Execute Statistics (Averaged):
    ----------------------------------------
      Total Inference Time: 69 us
      Forward Propagate Time: 67 us
      RPC Execute Time: 0
    ...
      Per-Layer Execution Times:
      ------------------------------
        0: _sequential_1/dense_1/MatMul : 23 us : CPU
        0: Input OpId_2 (cycles) : 2142 cycles : DSP          (HTP/DSP: cycles, not time)

SNPE 1.x - 2.9 (Qualcomm's ``snpe_bench.py``, ``snpebm_parser.py`` ``DroidTimingLogParser``,
and a Snapdragon 8 Gen 2 tutorial on github.com running SNPE 2.9.0.4462)::

    Software library version: 2.9.0.4462
    Average SNPE Statistics:
    Total Inference Time: 26458 us
    Forward Propagate Time: 26448 us
    Layer Times:
    ---------------
    0: 1419 us : CPU

The 1.x format has no layer names (snpe_bench takes them from ``snpe-dlc-info``); those layers
are reported as ``layer_000``, ``layer_001``...
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

TOTAL_INFERENCE = "Total Inference Time"

_STAT = re.compile(
    r"^\s*([A-Za-z][A-Za-z0-9 ()/\-]*?)\s*:\s*(\d+(?:\.\d+)?)\s*(us|ms|cycles)?\s*(?:NONE)?\s*$"
)
_VALUE = re.compile(r"^(\d+(?:\.\d+)?)\s*(us|ms|cycles)?$")
_LAYER = re.compile(r"^\s*(\d+)\s*:\s*(.*?)\s*$")
_LAYER_HEADERS = ("Per-Layer Execution Times", "Layer Times")
_TO_MS = {"us": 1e-3, "ms": 1.0, "": 1e-3}


@dataclass(frozen=True)
class LayerTime:
    """One layer line: index, DLC layer name ("" in 1.x output), value, unit, runtime."""

    index: int
    name: str
    value: float
    unit: str
    runtime: str

    @property
    def label(self) -> str:
        """The layer name, or ``layer_NNN`` when diagview prints none."""
        return self.name or f"layer_{self.index:03d}"

    @property
    def ms(self) -> float | None:
        """The time in milliseconds (None for cycle counts, which have no fixed clock)."""
        scale = _TO_MS.get(self.unit)
        return None if scale is None else self.value * scale


@dataclass(frozen=True)
class DiagviewReport:
    """The statistics and per-layer times of one diagnostic log."""

    statistics: dict[str, tuple[float, str]] = field(default_factory=dict)
    layers: tuple[LayerTime, ...] = ()
    version: str = ""

    def ms(self, key: str) -> float:
        """A statistic in milliseconds (e.g. ``TOTAL_INFERENCE``).

        Raises:
            KeyError: the statistic is missing or not a time.
        """
        value, unit = self.statistics[key]
        scale = _TO_MS.get(unit)
        if scale is None:
            raise KeyError(f"{key} is given in {unit}, not a time")
        return value * scale

    def layer_ms(self) -> dict[str, float]:
        """Milliseconds per layer name (cycle counts are left out; repeated names add up)."""
        times: dict[str, float] = {}
        for layer in self.layers:
            if layer.ms is not None:
                times[layer.label] = times.get(layer.label, 0.0) + layer.ms
        return times


def parse_diagview(text: str) -> DiagviewReport:
    """Parse snpe-diagview's text output (both formats of the module docstring).

    The first occurrence of a statistic wins (the averaged execute statistics come first), and
    only the first per-layer block is read.
    """
    statistics: dict[str, tuple[float, str]] = {}
    layers: list[LayerTime] = []
    version = ""
    state = "stats"  # -> "layers" after a layer header -> "done" after the block
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Software library version:"):
            version = version or line.split(":", 1)[1].strip()
            continue
        if any(line.startswith(header) for header in _LAYER_HEADERS):
            state = "layers" if state == "stats" else state
            continue
        if state == "layers":
            if not line or set(line) <= {"-", "="}:
                continue
            layer = _parse_layer(line)
            if layer is not None:
                layers.append(layer)
                continue
            state = "done"
        match = _STAT.match(raw)
        if match:
            key, value, unit = match.group(1).strip(), float(match.group(2)), match.group(3)
            statistics.setdefault(key, (value, unit or ""))
    return DiagviewReport(statistics, tuple(layers), version)


def _parse_layer(line: str) -> LayerTime | None:
    match = _LAYER.match(line)
    if not match:
        return None
    parts = [p.strip() for p in match.group(2).split(" : ")]
    # "name : 23 us : CPU" (2.x), "1419 us : CPU" (1.x), "1419 us" (1.x, no runtime)
    for value_at in (len(parts) - 2, len(parts) - 1):
        if value_at < 0:
            continue
        value = _VALUE.match(parts[value_at])
        if value:
            name = " : ".join(parts[:value_at])
            runtime = parts[value_at + 1] if value_at + 1 < len(parts) else ""
            return LayerTime(
                int(match.group(1)), name, float(value.group(1)), value.group(2) or "", runtime
            )
    return None
