"""benchmarks/context_kernels.py's report: a layer's in-context time beside its in-network one."""

from __future__ import annotations

from benchmarks.context_kernels import report


def test_each_probe_shows_context_over_network_time_per_layer():
    layer = "/features/features.1/features.1.0/Conv"
    results = {
        "command": "python -m benchmarks.context_kernels",
        "cpu": "cpu",
        "date": "now",
        "case": "mobilenet_v1:paddle",
        "between": "resnet50:nhwc",
        "between_seconds": 31.0,
        "profiles": 9,
        "probes": [
            {"when": "fresh 1", "layers": {layer: {"context_ms": 0.137, "network_ms": 0.18}}},
            {"when": "after 1", "layers": {layer: {"context_ms": 0.247, "network_ms": None}}},
        ],
    }
    text = report(results)
    assert "| probe | features.1.0 |" in text
    assert "| fresh 1 | 0.137 / 0.180 |" in text
    assert "| after 1 | 0.247 / - |" in text  # a layer the profile did not name
