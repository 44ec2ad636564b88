"""TFLite runner: single-layer .tflite models (checked against ORT), host timing with LiteRT,
benchmark_model output parsing, the phone path over a fake adb, and onnx2tf conversion."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from onnx_netadapt.cli import main
from onnx_netadapt.measure.micromodel import onnx_layer_model
from onnx_netadapt.measure.runner import ProfileUnsupported, RunnerError, RunnerUnavailable
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.stats import LatencyStats, MeasureSettings
from onnx_netadapt_runners.tflite import (
    TfliteRunner,
    UnsupportedLayer,
    parse_benchmark_output,
    samples_from_timings,
    tflite_layer_model,
)
from onnx_netadapt_runners.tflite import convert as tflite_convert
from onnx_netadapt_runners.tflite.benchmark_output import parse_op_profile, parse_timings

pytest.importorskip("ai_edge_litert.interpreter")

FAKES = Path(__file__).parent / "fakes" / "tflite"
TINY = MeasureSettings(warmup=1, min_runs=3, max_runs=5, max_seconds=0.2)
SERIAL = "FAKE123"


def conv(cin=8, cout=16, hw=(8, 8), k=(3, 3), s=(1, 1), p=(1, 1, 1, 1), d=(1, 1), **kw):
    return LayerSignature("Conv", cin, cout, hw, k, s, p, d, **kw)


def tconv(cin=8, cout=4, hw=(5, 5), k=(4, 4), s=(2, 2), p=(1, 1, 1, 1), **kw):
    return LayerSignature("ConvTranspose", cin, cout, hw, k, s, p, (1, 1), **kw)


CONV = conv(activation="Relu")

EQUIVALENCE = {
    "conv-same-relu": CONV,
    "conv-explicit-pad": conv(s=(2, 2)),  # (1,1,1,1) on 8x8 stride 2 is not TF's SAME (0,0,1,1)
    "conv-same-asymmetric": conv(s=(2, 2), p=(0, 0, 1, 1), activation="Relu6"),
    "conv-1x1-valid-hardswish": conv(k=(1, 1), p=(0, 0, 0, 0), activation="HardSwish"),
    "conv-odd-dilated-sigmoid": conv(
        hw=(7, 9), k=(3, 5), s=(2, 1), p=(0, 2, 1, 1), d=(1, 2), activation="Sigmoid"
    ),
    "conv-grouped-tanh": conv(groups=4, activation="Tanh"),
    "depthwise-x2-relu6": conv(cout=16, s=(2, 2), groups=8, activation="Relu6"),
    "depthwise-dilated-leaky": conv(
        cout=8, hw=(9, 9), p=(2, 2, 2, 2), d=(2, 2), groups=8, activation="LeakyRelu"
    ),
    "transpose-same-relu": tconv(activation="Relu"),
    "transpose-valid": tconv(k=(2, 2), p=(0, 0, 0, 0)),
    "transpose-cropped-end": tconv(k=(3, 3), p=(0, 0, 1, 1)),
    "fc-rows-tanh": LayerSignature("Gemm", 32, 10, rows=4, activation="Tanh"),
    "fc-no-bias-relu": LayerSignature("Gemm", 32, 10, bias=False, activation="Relu"),
}


def run_tflite(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def builtin_codes(model: bytes) -> list[int]:
    from ai_edge_litert import schema_py_generated as schema

    parsed = schema.ModelT.InitFromPackedBuf(model, 0)
    return [
        parsed.operatorCodes[op.opcodeIndex].builtinCode for op in parsed.subgraphs[0].operators
    ]


# -- single-layer models ---------------------------------------------------------------------
@pytest.mark.parametrize("sig", EQUIVALENCE.values(), ids=EQUIVALENCE.keys())
def test_layer_model_computes_what_the_onnx_micromodel_computes(sig):
    rng = np.random.default_rng(1)
    onnx_model = onnx_layer_model(sig, seed=3)
    inits = {t.name: t for t in onnx_model.graph.initializer}
    weights = numpy_helper.to_array(inits["w"])
    bias = None
    if "b" in inits:  # a non-zero bias, so its layout is checked too
        bias = rng.standard_normal(sig.out_channels).astype(np.float32)
        inits["b"].CopyFrom(numpy_helper.from_array(bias, "b"))
    gemm = sig.op == "Gemm"
    x = rng.standard_normal(
        (sig.rows, sig.in_channels) if gemm else (1, sig.in_channels, *sig.input_hw)
    ).astype(np.float32)
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    expected = session.run(None, {"x": x})[0]
    model = tflite_layer_model(sig, weights=weights, bias=bias)
    assert model[4:8] == b"TFL3"
    got = run_tflite(model, x if gemm else np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    got = got if gemm else got.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_padding_modes_and_activation_ops():
    from ai_edge_litert import schema_py_generated as schema

    op = schema.BuiltinOperator
    assert builtin_codes(tflite_layer_model(CONV)) == [op.CONV_2D]  # SAME, Relu fused
    assert builtin_codes(tflite_layer_model(conv(s=(2, 2)))) == [op.PAD, op.CONV_2D]
    hswish = tflite_layer_model(conv(k=(1, 1), p=(0, 0, 0, 0), activation="HardSwish"))
    assert builtin_codes(hswish) == [op.CONV_2D, op.HARD_SWISH]
    depthwise = tflite_layer_model(conv(cout=16, groups=8, activation="LeakyRelu"))
    assert builtin_codes(depthwise) == [op.DEPTHWISE_CONV_2D, op.LEAKY_RELU]
    parsed = schema.ModelT.InitFromPackedBuf(depthwise, 0)
    options = parsed.subgraphs[0].operators[0].builtinOptions
    assert options.depthMultiplier == 2 and options.padding == schema.Padding.SAME
    assert parsed.version == 3


def test_layers_without_a_faithful_tflite_form_are_refused_by_name():
    bad = tconv(k=(3, 3), s=(1, 1), p=(2, 2, 2, 2))  # leading pad 2, SAME gives 1
    with pytest.raises(UnsupportedLayer, match="ConvTranspose"):
        tflite_layer_model(bad)
    with pytest.raises(UnsupportedLayer, match="groups"):
        tflite_layer_model(tconv(cin=8, cout=8, groups=2))
    with pytest.raises(UnsupportedLayer, match="2-D"):
        tflite_layer_model(LayerSignature("Conv", 4, 4, (8,), (3,), (1,), (1, 1), (1,)))
    with pytest.raises(ValueError, match="ONNX layout"):
        tflite_layer_model(CONV, weights=np.zeros((16, 8, 3, 3, 1), np.float32))
    assert issubclass(UnsupportedLayer, RunnerError)


# -- host timing ------------------------------------------------------------------------------
def test_host_measures_layers_with_litert():
    sigs = [CONV, LayerSignature("Gemm", 64, 32, rows=2)]
    with TfliteRunner(threads=1, settings=TINY) as runner:
        fingerprint = runner.fingerprint()
        results = runner.measure_layers([*sigs, CONV])
    assert list(results) == sigs
    for stats in results.values():
        assert isinstance(stats, LatencyStats)
        assert 0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms < 1000
        assert TINY.min_runs <= stats.n <= TINY.max_runs
    assert fingerprint["runner"] == "tflite" and fingerprint["threads"] == "1"
    assert fingerprint["device"].startswith("host-") and fingerprint["where"] == "host"
    assert fingerprint["runtime"].startswith("litert ")


def test_host_pinning_and_op_profiles_with_a_host_benchmark_model(tmp_path):
    before = os.sched_getaffinity(0)
    first = min(before)
    mask = format(1 << first, "x")
    with TfliteRunner(settings=TINY, cpu_mask=mask, benchmark_model=str(tmp_path / "no")) as runner:
        assert os.sched_getaffinity(0) == {first}
        assert runner.fingerprint()["cpu_mask"] == mask
        with pytest.raises(RunnerUnavailable, match="host benchmark_model"):
            runner.profile_ops(CONV)
    assert os.sched_getaffinity(0) == before
    host_bm = tmp_path / "benchmark_model"  # a host build that prints a profile
    host_bm.write_text(f"#!/bin/sh\ncat <<'EOF'\n{OLD_SPACED_PROFILE}EOF\n")
    host_bm.chmod(0o755)
    with TfliteRunner(settings=TINY, benchmark_model=str(host_bm)) as runner:
        ops = runner.profile_ops(tflite_layer_model(CONV))
    assert ops["[]:38"].node_type == "RESIZE_NEAREST_NEIGHBOR"
    assert runner.last_result.timings.count == 50


def test_availability_reports_missing_litert(monkeypatch):
    assert TfliteRunner.availability().available
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    status = TfliteRunner.availability()
    assert not status.available and "pip install ai-edge-litert" in status.fix
    with pytest.raises(RunnerUnavailable, match="LiteRT"):
        TfliteRunner().__enter__()


def test_bad_arguments_are_refused():
    from onnx_netadapt.errors import NetAdaptError

    with pytest.raises(NetAdaptError, match="threads"):
        TfliteRunner(threads=0)
    with pytest.raises(NetAdaptError, match="cpu_mask"):
        TfliteRunner(device=SERIAL, cpu_mask="big")


# -- benchmark_model output -------------------------------------------------------------------
NEW_OUTPUT = """\
INFO: STARTING!
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if \
exceeding 150 seconds.
INFO: count=29 first=22148 curr=17011 min=16871 max=22148 avg=17312.8 std=946 p5=16900 \
median=17100 p95=19000

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if \
exceeding 150 seconds.
INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 \
p5=1238753 median=1239807 p95=1247415

INFO: Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06, \
Inference (avg): 1.24027e+06
"""

OLD_SPACED_PROFILE = """\
count=1 curr=3512391

count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, \
Inference (avg): 2.95034e+06
Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
            [node type]  [first]  [avg ms]      [%]    [cdf%]  [mem KB] [times called] [Name]
    TfLiteNnapiDelegate    3.826     4.011  62.037%   62.037%     0.000         1      []:64
RESIZE_NEAREST_NEIGHBOR    0.052     0.058   0.899%   62.936%     0.000         1      []:38

============================== Top by Computation Time ==============================
Timings (microseconds): count=50 first=9 curr=9 min=9 max=9 avg=9 std=0
"""


def test_parses_the_regular_runs_not_the_warmup():
    result = parse_benchmark_output(NEW_OUTPUT)
    t = result.timings
    assert (t.count, t.avg, t.min, t.max, t.median, t.p95) == (
        50,
        1.24027e06,
        1238588,
        1252566,
        1239807,
        1247415,
    )
    assert result.warmup is not None and result.warmup.count == 29
    assert result.init_us == 5579 and result.ops == {}
    stats = LatencyStats.from_samples(samples_from_timings(t))
    assert stats.n == 50 and stats.median_ms == pytest.approx(1239.807, rel=1e-3)
    assert 1238.588 <= stats.p10_ms <= stats.median_ms <= stats.p90_ms <= 1252.566


def test_parses_older_builds_and_their_op_table():
    result = parse_benchmark_output(OLD_SPACED_PROFILE)
    assert result.timings.count == 50 and result.timings.p5 is None
    assert result.warmup.count == 1 and result.warmup.std == 0  # "count=1 curr=X"
    stats = LatencyStats.from_samples(samples_from_timings(result.timings))
    assert stats.median_ms == pytest.approx(2950.34, rel=1e-3)  # the mean: no median reported
    assert 2727.568 <= stats.p10_ms < stats.median_ms < stats.p90_ms <= 3189.954
    assert list(result.ops) == ["[]:64", "[]:38"]
    assert result.ops["[]:64"].node_type == "TfLiteNnapiDelegate"
    assert result.ops["[]:64"].avg_ms == 4.011 and result.ops["[]:64"].percent == 62.037


def test_parses_all_same_timings_logcat_prefixes_and_missing_timings():
    same = parse_timings("I tflite  : count=40 curr=812(all same)")
    assert same.count == 40 and same.avg == same.median == 812 and same.std == 0
    assert samples_from_timings(same) == [0.812] * 40
    assert parse_timings("Timings (microseconds): count=5 curr=3") is None
    with pytest.raises(RunnerError, match=r"(?s)no timings.*Failed to mmap"):
        parse_benchmark_output("ERROR: Could not open 'x.tflite'.\nERROR: Failed to mmap model")
    assert parse_op_profile("count=3 first=1 curr=1 min=1 max=1 avg=1 std=0") == {}


# -- phone over a fake adb --------------------------------------------------------------------
@pytest.fixture
def fake_adb(monkeypatch, tmp_path):
    """Puts tests/fakes/tflite (adb, onnx2tf) first on PATH; returns the fake's state folder."""
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_STATE", str(tmp_path / "adb"))
    monkeypatch.setenv("FAKE_ADB_SERIALS", SERIAL)
    for name in ("FAKE_ADB_DISCONNECT_AFTER", "FAKE_ADB_NO_BENCHMARK", "FAKE_BM_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "adb"


def adb_calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


def test_phone_measures_layers_with_benchmark_model(fake_adb):
    with TfliteRunner(threads=2, device=SERIAL, settings=TINY) as runner:
        stats = runner.measure_layers([CONV])[CONV]
        fingerprint = runner.fingerprint()
    assert stats.n == TINY.max_runs  # the fake runs --num_runs times
    assert stats.median_ms == pytest.approx(1.205)  # the reported median (p5/median/p95 build)
    assert 1.1 <= stats.p10_ms < stats.median_ms < stats.p90_ms <= 1.5
    shell = [c for c in adb_calls(fake_adb) if "--graph=" in " ".join(c)][-1]
    assert shell[:3] == ["-s", SERIAL, "shell"]
    command = shell[3]
    assert command.startswith("taskset f0 /data/local/tmp/benchmark_model --graph=")
    assert "--num_threads=2" in command and f"--num_runs={TINY.max_runs}" in command
    assert "--warmup_runs=1" in command and "--enable_op_profiling=false" in command
    assert any(c[2:3] == ["push"] for c in adb_calls(fake_adb))
    assert not list((fake_adb / "device").glob("*.tflite"))  # cleaned up
    assert fingerprint["device"] == "android-Google Pixel 7 (GS201)"
    assert fingerprint["where"] == f"adb:{SERIAL}" and fingerprint["cpu_mask"] == "f0"
    assert fingerprint["runtime"].startswith("benchmark_model sha256:0123")


def test_phone_older_benchmark_model_and_op_profile(fake_adb, monkeypatch):
    monkeypatch.setenv("FAKE_BM_FORMAT", "old")
    sig = conv(s=(2, 2), activation="HardSwish")
    with TfliteRunner(device=SERIAL, settings=TINY, cpu_mask="80") as runner:
        stats = runner.measure_layers([sig])[sig]
        ops = runner.profile_ops(sig)
    assert stats.median_ms == pytest.approx(1.2105)  # the mean when no median is printed
    assert list(ops) == ["[padded]:0", "[conv]:2", "[hardswish]:3"]
    assert ops["[conv]:2"].node_type == "TfLiteXNNPackDelegate"
    assert ops["[conv]:2"].avg_ms == 1.1 and ops["[conv]:2"].percent == 91.667
    assert "taskset 80 " in adb_calls(fake_adb)[-2][3]
    assert "--enable_op_profiling=true" in adb_calls(fake_adb)[-2][3]


def test_missing_device_says_how_to_fix_it(fake_adb):
    with pytest.raises(RunnerError, match=r"'OTHER' is not attached.*adb devices.*--device"):
        TfliteRunner(device="OTHER", settings=TINY).__enter__()


def test_unauthorized_device_and_missing_benchmark_model(fake_adb, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_SERIALS", f"{SERIAL}:unauthorized")
    with pytest.raises(RunnerError, match="unauthorized"):
        TfliteRunner(device=SERIAL).__enter__()
    monkeypatch.setenv("FAKE_ADB_SERIALS", SERIAL)
    monkeypatch.setenv("FAKE_ADB_NO_BENCHMARK", "1")
    with pytest.raises(RunnerUnavailable, match=r"benchmark_model.*adb -s FAKE123 push"):
        TfliteRunner(device=SERIAL).__enter__()


def test_device_disconnecting_mid_run(fake_adb, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DISCONNECT_AFTER", "4")  # devices, mkdir, test -x, push
    runner = TfliteRunner(device=SERIAL, settings=TINY)
    with runner, pytest.raises(RunnerError) as info:
        runner.measure_layers([CONV])
    message = str(info.value)
    assert "lost device 'FAKE123'" in message and "not found" in message
    assert "adb devices" in message and "--device SERIAL" in message


def test_the_phone_path_uses_the_shared_android_client(fake_adb, monkeypatch):
    from onnx_netadapt_runners.android import Adb, DeviceLostError

    monkeypatch.setenv("FAKE_ADB_DISCONNECT_AFTER", "4")  # devices, mkdir, test -x, push
    runner = TfliteRunner(device=SERIAL, settings=TINY)
    with runner:
        assert isinstance(runner.adb, Adb) and runner.adb.serial == SERIAL
        with pytest.raises(DeviceLostError, match="run the same command again"):
            runner.measure_layers([CONV])
    assert runner.adb is None  # released with the runner


def test_no_adb_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RunnerUnavailable, match="platform-tools"):
        TfliteRunner(device=SERIAL).__enter__()


# -- whole networks through onnx2tf -----------------------------------------------------------
def test_missing_onnx2tf_says_how_to_install_it(tmp_path):
    runner = TfliteRunner(settings=TINY, onnx2tf=str(tmp_path / "venv" / "bin" / "onnx2tf"))
    fix = r"own virtual environment.*--runner-option onnx2tf="
    with runner, pytest.raises(RunnerUnavailable, match=fix):
        runner.measure(onnx_layer_model(CONV))


def test_runners_listing_says_whole_networks_need_onnx2tf(monkeypatch, tmp_path):
    """Listed as available (single layers run on LiteRT), with the onnx2tf note and the real
    option spelling (there is no --onnx2tf option)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["runners"])
    assert result.exit_code == 0, result.output
    tflite = result.output[result.output.index("tflite") :]
    assert tflite.split()[1] == "yes" and "note: whole networks need onnx2tf" in tflite
    assert "--runner-option onnx2tf=" in tflite
    cli_options = {p.name for p in main.commands["adapt"].params}
    assert "onnx2tf" not in cli_options


def test_rgb_network_converts_offline(fake_adb, monkeypatch, tmp_path):
    """onnx2tf downloads sample images for 3-channel image inputs; the runner gives it a
    stand-in so that conversion works without internet (the fake fails like onnx2tf without)."""
    rgb = conv(cin=3)
    tflite = tmp_path / "rgb.tflite"
    tflite.write_bytes(tflite_layer_model(rgb))
    monkeypatch.setenv("FAKE_ONNX2TF_TFLITE", str(tflite))
    monkeypatch.delenv("FAKE_ONNX2TF_FAIL", raising=False)
    monkeypatch.chdir(tmp_path)  # no sample file in the caller's folder
    with TfliteRunner(settings=TINY, onnx2tf="onnx2tf") as runner:
        assert runner.measure(onnx_layer_model(rgb)).median_ms > 0
    monkeypatch.setattr(tflite_convert, "write_sample_images", lambda path: None)
    with pytest.raises(RunnerError, match=r"github\.com"):
        tflite_convert.onnx_to_tflite(onnx_layer_model(rgb), "onnx2tf")
    assert not list(tmp_path.glob("*.npy"))


def test_host_without_benchmark_model_estimates_by_split(fake_adb, monkeypatch, tmp_path):
    """The host's LiteRT interpreter times whole networks only: profiling is unsupported, and
    the estimator falls back to splitting the measured residual over the layers."""
    from onnx_netadapt.graph.load import load_model
    from onnx_netadapt.measure.estimate import Estimator
    from onnx_netadapt.measure.table import LatencyTable

    tflite = tmp_path / "conv.tflite"
    tflite.write_bytes(tflite_layer_model(CONV))
    monkeypatch.setenv("FAKE_ONNX2TF_TFLITE", str(tflite))
    monkeypatch.delenv("FAKE_ONNX2TF_FAIL", raising=False)
    model = onnx_layer_model(CONV)
    runner = TfliteRunner(settings=TINY, onnx2tf="onnx2tf", benchmark_model=str(tmp_path / "no"))
    with runner:
        with pytest.raises(ProfileUnsupported, match="host benchmark_model"):
            runner.profile_layers(model)
        estimator = Estimator(runner, LatencyTable(runner.fingerprint()))
        estimator.calibrate(load_model(model))
        assert estimator.calibration.mode == "split"


def test_whole_model_goes_through_onnx2tf(fake_adb, monkeypatch, tmp_path):
    tflite = tmp_path / "conv.tflite"
    tflite.write_bytes(tflite_layer_model(CONV))
    monkeypatch.setenv("FAKE_ONNX2TF_TFLITE", str(tflite))
    monkeypatch.delenv("FAKE_ONNX2TF_FAIL", raising=False)
    model = onnx_layer_model(CONV)
    with TfliteRunner(settings=TINY, onnx2tf="onnx2tf") as runner:  # the fake, found on PATH
        first = runner.measure(model)
        monkeypatch.setenv("FAKE_ONNX2TF_FAIL", "1")
        again = runner.measure(model)  # converted once per model content
        assert first.n >= TINY.min_runs and again.median_ms > 0
        other = onnx_layer_model(conv(cout=8))
        with pytest.raises(RunnerError, match=r"(?s)onnx2tf failed \(exit 1\).*FancyOp"):
            runner.measure(other)
