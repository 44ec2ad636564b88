"""``onnx-netadapt profile``: a model's measured latency and its per-layer table on a target."""

from __future__ import annotations

import logging
from pathlib import Path

from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.measure.registry import check_runner_options, make_runner
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.measure.table import LatencyTable

logger = logging.getLogger(__name__)


def profile_model(
    loaded: LoadedModel,
    target: str,
    table_path: Path | None = None,
    threads: int = 1,
    options: dict | None = None,
) -> dict:
    """Measure ``loaded`` whole and per layer on ``target``; JSON-ready report."""
    check_runner_options([target], options or {})
    with make_runner(target, threads, **(options or {})) as runner:
        table = LatencyTable(runner.fingerprint(), table_path)
        stats = runner.measure(loaded.model)
        signatures = model_signatures(loaded)
        entries = table.lookup(list(signatures.values()), runner)
        layers_total = sum(entries[s].median_ms for s in signatures.values())
        rows = [
            {
                "node": node,
                "op": sig.op if not sig.depthwise else "Conv(depthwise)",
                "in_channels": sig.in_channels,
                "out_channels": sig.out_channels,
                "value": entries[sig].median_ms,
                "share": entries[sig].median_ms / layers_total if layers_total else 0.0,
                "signature": sig.key(),
            }
            for node, sig in signatures.items()
        ]
        rows.sort(key=lambda r: -r["value"])
        return {
            "unit": runner.unit,
            "fingerprint": runner.fingerprint(),
            "measured": {
                "median": stats.median_ms,
                "p10": stats.p10_ms,
                "p90": stats.p90_ms,
                "n": stats.n,
            },
            "layers_total": layers_total,
            "residual": stats.median_ms - layers_total if runner.additive else 0.0,
            "layers": rows,
            "table_entries": len(table),
            "measurements": table.measurements,
        }
