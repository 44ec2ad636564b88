"""Runner protocol, built-in ORT and device-free runners, latency table, plugin discovery."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from example_packages import install_example
from models import CASES

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.cli import main
from onnx_netadapt.graph.probe import random_inputs
from onnx_netadapt.measure.estimate import Estimator
from onnx_netadapt.measure.micromodel import onnx_layer_model
from onnx_netadapt.measure.registry import discover, get_runner, list_runners
from onnx_netadapt.measure.runner import RunnerError
from onnx_netadapt.measure.signature import LayerSignature, model_signatures
from onnx_netadapt.measure.stats import LatencyStats, MeasureSettings
from onnx_netadapt.measure.table import LatencyTable
from onnx_netadapt.verify import run_model

FAST = MeasureSettings(warmup=1, min_runs=3, max_runs=10, max_seconds=0.2)
ROOT = Path(__file__).resolve().parents[1]
CONV = LayerSignature(
    "Conv", 8, 16, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), activation="Relu"
)


def ort_runner():
    return get_runner("ort")(threads=1, settings=FAST)


def test_stats_are_robust_to_an_outlier():
    stats = LatencyStats.from_samples([1.0] * 9 + [100.0])
    assert stats.median_ms == 1.0 and stats.n == 10
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_builtin_runners_are_registered():
    assert {"ort", "macs", "params", "memory"} <= set(list_runners())
    assert list_runners("m*").keys() == {"macs", "memory"}


def test_runner_must_be_entered():
    with pytest.raises(RunnerError, match="context manager"):
        ort_runner().measure(CASES["residual_chain"].build())


def test_ort_measures_models_and_layers():
    with ort_runner() as runner:
        fp = runner.fingerprint()
        assert fp["runner"] == "ort" and fp["threads"] == "1"
        stats = runner.measure(CASES["residual_chain"].build())
        assert stats.median_ms > 0 and stats.n >= 3
        small, big = CONV, CONV.with_channels(64, 128)
        layers = runner.measure_layers([small, big, small])
        assert set(layers) == {small, big}
        assert layers[big].median_ms > layers[small].median_ms


def test_ort_profile_maps_to_onnx_nodes():
    model = CASES["conv_bn_relu_chain"].build()
    conv_names = {n.name for n in model.graph.node if n.op_type == "Conv"}
    with ort_runner() as runner:
        times = runner.profile_layers(model, runs=3)
    assert conv_names <= set(times), (conv_names, times)
    assert all(v >= 0 for v in times.values())


def test_ort_profile_times_the_whole_run_in_the_same_session():
    model = CASES["conv_bn_relu_chain"].build()
    with ort_runner() as runner:
        profile = runner.profile_network(model, runs=5)
        measured = runner.measure(model).median_ms
    assert profile.run_ms is not None and profile.run_ms > 0
    # the same network, timed without the profiler: the size of a plain measurement
    assert 0.2 * measured < profile.run_ms < 5 * measured


@pytest.mark.parametrize(
    "sig",
    [
        CONV,
        LayerSignature("Conv", 16, 16, (8, 8), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), groups=16),
        LayerSignature("Gemm", 32, 10, rows=1),
        LayerSignature("ConvTranspose", 8, 4, (4, 4), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),
    ],
)
def test_micro_models_run_with_the_signature_shapes(sig):
    model = onnx_layer_model(sig)
    (out,) = run_model(model, random_inputs(model))
    expected = (
        (sig.rows, sig.out_channels)
        if sig.op == "Gemm"
        else (1, sig.out_channels, *sig.output_hw())
    )
    assert out.shape == expected


def test_device_free_resources_match_pruning():
    model = CASES["conv_bn_relu_chain"].build()
    analysis = analyse(load_model(model))
    pruned = prune(analysis, ratio=0.5).model
    for name in ("macs", "params", "memory"):
        with get_runner(name)() as runner:
            before, after = runner.measure(model).median_ms, runner.measure(pruned).median_ms
            assert 0 < after < before, name


def test_macs_table_sum_equals_whole_model():
    loaded = load_model(CASES["residual_chain"].build())
    with get_runner("macs")() as runner:
        estimator = Estimator(runner, LatencyTable(runner.fingerprint()))
        total = estimator.layers_ms(model_signatures(loaded))
        assert total == pytest.approx(runner.measure(loaded.model).median_ms)


def test_table_is_lazy_and_persistent(tmp_path):
    path = tmp_path / "table.json"
    with ort_runner() as runner:
        table = LatencyTable(runner.fingerprint(), path)
        table.lookup([CONV], runner)
        table.lookup([CONV], runner)
        assert table.measurements == 1
        again = LatencyTable(runner.fingerprint(), path)
        assert again.get(CONV) == table.get(CONV)
        other = LatencyTable({**runner.fingerprint(), "threads": "4"}, path)
        assert other.get(CONV) is None  # another setup never sees these entries
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and len(data["tables"]) == 1


def test_truncated_table_is_rebuilt_with_a_warning(tmp_path, caplog, recwarn):
    path = tmp_path / "table.json"
    fp = {"runner": "macs", "device": "none"}
    table = LatencyTable(fp, path)
    table.entries[CONV.key()] = LatencyStats(1.0, 1.0, 1.0, 1)
    table.save()
    path.write_text(path.read_text()[:40])
    with caplog.at_level(logging.WARNING):
        fresh = LatencyTable(fp, path)
    # said once (a log record), not a second time through the warnings module
    assert len(caplog.records) == 1 and "unreadable" in caplog.records[0].message
    assert not [w for w in recwarn if "unreadable" in str(w.message)]
    assert len(fresh) == 0
    assert list(tmp_path.glob("table.json.corrupt-*"))


def test_two_processes_share_one_table(tmp_path):
    path = tmp_path / "shared.json"
    script = textwrap.dedent(f"""
        import sys
        from onnx_netadapt.measure.table import LatencyTable
        from onnx_netadapt.measure.signature import LayerSignature
        from onnx_netadapt.measure.stats import LatencyStats
        fp = {{"runner": "test"}}
        offset = int(sys.argv[1])
        for i in range(25):
            table = LatencyTable(fp, {str(path)!r})
            sig = LayerSignature("Gemm", offset + i, 8)
            table.entries[sig.key()] = LatencyStats(1.0, 1.0, 1.0, 1)
            table.save()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k * 1000)]) for k in (1, 2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(LatencyTable({"runner": "test"}, path)) == 50


def test_broken_plugin_warns_and_others_still_work(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[onnx_netadapt.runners]\nbroken = no_such_module_xyz:Runner\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="broken"):
        found = discover()
    assert found["broken"].runner is None and "no_such_module_xyz" in found["broken"].error
    assert found["ort"].runner is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(main, ["runners"])
    assert result.exit_code == 0
    assert "broken" in result.output and "failed to load" in result.output


def test_a_broken_plugin_is_reported_once_per_process(tmp_path):
    """One warning, not a warning and a log line, however often the plugins are discovered."""
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[onnx_netadapt.runners]\nbroken = no_such_module_xyz:Runner\n"
    )
    script = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from onnx_netadapt.measure.registry import discover, list_runners\n"
        "discover(); discover(); list_runners()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("runner plugin 'broken'") == 1, proc.stderr


def test_example_plugin_package_installs_and_runs(tmp_path, monkeypatch):
    target = tmp_path / "site"
    install_example("custom_runner", target)
    monkeypatch.syspath_prepend(str(target))
    cls = get_runner("roofline")
    model = CASES["conv_bn_relu_chain"].build()
    with cls() as runner:
        whole = runner.measure(model).median_ms
        layers = runner.measure_layers(list(model_signatures(load_model(model)).values()))
    assert whole == pytest.approx(sum(s.median_ms for s in layers.values()))


def test_cli_runners_and_profile(tmp_path):
    result = CliRunner().invoke(main, ["runners", "--json"])
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["ort"]["available"] and rows["macs"]["unit"] == "MMAC"
    model = tmp_path / "m.onnx"
    import onnx

    onnx.save(CASES["conv_bn_relu_chain"].build(), str(model))
    table = tmp_path / "t.json"
    out = CliRunner().invoke(
        main, ["profile", str(model), "--target", "macs", "--json", "--table", str(table)]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["residual"] == pytest.approx(0, abs=1e-9)
    assert abs(sum(r["share"] for r in report["layers"]) - 1) < 1e-6
    assert table.exists()
    bad = CliRunner().invoke(main, ["profile", str(model), "--target", "nope"])
    assert bad.exit_code == 7 and "no runner named 'nope'" in bad.output  # README: 7


def test_estimator_calibrates_on_the_original():
    loaded = load_model(CASES["residual_chain"].build())
    with ort_runner() as runner:
        estimator = Estimator(runner, LatencyTable(runner.fingerprint()))
        calibration = estimator.calibrate(loaded)
        assert np.isfinite(calibration.residual_ms)
        assert estimator.estimate(loaded) == pytest.approx(calibration.measured_ms)
