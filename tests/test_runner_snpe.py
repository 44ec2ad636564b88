"""SnpeRunner against fake SNPE tools and a fake adb (tests/fakes/snpe).

The fakes follow the documented command lines and print snpe-diagview's real text format, so
these tests cover the runner's protocol with the tools; they say nothing about real timings.
"""

from __future__ import annotations

import subprocess

import numpy as np
import onnx
import pytest
from fakes.snpe.fake_sdk import SERIAL, FakeSnpe, build_fake_snpe
from onnx import TensorProto, helper, numpy_helper
from onnx_compat import make_model

from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.measure.micromodel import onnx_layer_model
from onnx_netadapt.measure.runner import RunnerError, RunnerUnavailable
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.stats import MeasureSettings
from onnx_netadapt_runners.android import AdbDevice, parse_devices, select_device
from onnx_netadapt_runners.snpe import SnpeRunner
from onnx_netadapt_runners.snpe.diagview import TOTAL_INFERENCE, parse_diagview
from onnx_netadapt_runners.snpe.inputs import input_list_text, input_specs
from onnx_netadapt_runners.snpe.sdk import SDK_FIX

FAST = MeasureSettings(warmup=0)


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeSnpe:
    """A fake SDK at $SNPE_ROOT, a fake adb first on PATH, one fake phone."""
    fake = build_fake_snpe(tmp_path)
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    for key in (
        "FAKE_ADB_DISCONNECT_AFTER",
        "FAKE_ADB_PROPS",
        "FAKE_SNPE_NET_RUN_FAIL",
        "FAKE_SNPE_DIAG_NAME",
    ):
        monkeypatch.delenv(key, raising=False)
    return fake


def conv(cin: int, cout: int, hw: int = 16, activation: str | None = None) -> onnx.ModelProto:
    sig = LayerSignature(
        "Conv", cin, cout, (hw, hw), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), activation=activation
    )
    return onnx_layer_model(sig)


def runner(**kwargs) -> SnpeRunner:
    kwargs.setdefault("runs", 2)
    return SnpeRunner(settings=FAST, **kwargs)


def two_conv_model() -> onnx.ModelProto:
    """A named conv, an unnamed one, and a symbolic batch dimension."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((4, 8, 1, 1)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="/features/conv1/Conv", pads=[1] * 4),
        helper.make_node("Conv", ["c1", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        inits,
    )
    return make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# -- availability -------------------------------------------------------------------------
def test_unavailable_without_snpe_root(monkeypatch):
    monkeypatch.delenv("SNPE_ROOT", raising=False)
    status = SnpeRunner.availability()
    assert not status.available
    assert status.reason == "SNPE_ROOT is not set"
    assert status.fix == SDK_FIX
    with pytest.raises(RunnerUnavailable, match="SNPE_ROOT is not set"), SnpeRunner():
        pass


def test_unavailable_when_sdk_lacks_host_tools(tmp_path, monkeypatch):
    monkeypatch.setenv("SNPE_ROOT", str(tmp_path))
    status = SnpeRunner.availability()
    assert not status.available
    assert "snpe-onnx-to-dlc" in status.reason and status.fix == SDK_FIX


def test_unavailable_without_adb(fake, tmp_path, monkeypatch):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    status = SnpeRunner.availability()
    assert not status.available
    assert status.reason == "adb is not on PATH"
    assert "platform-tools" in status.fix


def test_available_with_fakes_and_instance_snpe_root(fake, monkeypatch):
    assert SnpeRunner.availability().available
    monkeypatch.delenv("SNPE_ROOT")
    assert not SnpeRunner.availability().available
    assert SnpeRunner(snpe_root=fake.root).availability().available


def test_constructor_checks_options():
    with pytest.raises(NetAdaptError, match="runtime must be one of cpu, gpu, dsp"):
        SnpeRunner(runtime="npu")
    with pytest.raises(NetAdaptError, match="perf_profile"):
        SnpeRunner(perf_profile="turbo")
    with pytest.raises(NetAdaptError, match="profiling_level"):
        SnpeRunner(profiling_level="off")
    with pytest.raises(NetAdaptError, match="runs"):
        SnpeRunner(runs=0)


# -- device selection ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("devices", "wanted", "message"),
    [
        ("", None, "no Android device is connected"),
        ("A1:device,B2:device", None, r"several devices .*A1.*B2.*--device SERIAL"),
        ("A1:unauthorized", None, "A1 is unauthorized: unlock the phone and accept"),
        ("A1:offline", None, "A1 is offline: reconnect the USB cable"),
        ("A1:device", "ZZ9", r"'ZZ9' is not connected \(adb devices lists: A1 \(device\)\)"),
        ("A1:device,B2:unauthorized", "B2", "B2 is unauthorized"),
    ],
)
def test_device_selection_errors(fake, monkeypatch, devices, wanted, message):
    monkeypatch.setenv("FAKE_ADB_DEVICES", devices)
    with pytest.raises(RunnerUnavailable, match=message), runner(device=wanted):
        pass


def test_device_chosen_among_several(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "A1:device,B2:device")
    with runner(device="B2") as snpe:
        assert snpe.fingerprint()["device"] == "SM-S918B"
    assert (fake.phone("B2") / "data/local/tmp/snpebm/bin/snpe-net-run").is_file()
    assert not fake.phone("A1").exists()


def test_parse_and_select_devices_unit():
    text = (
        "* daemon not running; starting now at tcp:5037\n* daemon started successfully\n"
        "List of devices attached\nR5CT1\tdevice\nemulator-5554\toffline\n"
        "X9\tno permissions (missing udev rules? user is in the plugdev group)\n\n"
    )
    devices = parse_devices(text)
    assert [d.serial for d in devices] == ["R5CT1", "emulator-5554", "X9"]
    assert select_device(devices, None) == "R5CT1"
    with pytest.raises(RunnerUnavailable, match="udev rule"):
        select_device([AdbDevice("X9", devices[2].state)], None)


# -- measuring ----------------------------------------------------------------------------
def test_measure_single_conv(fake):
    with runner() as snpe:
        stats = snpe.measure(conv(8, 16))
        phone = fake.phone() / "data/local/tmp/snpebm"
        assert (phone / "bin/snpe-net-run").is_file()
        assert (phone / "lib/libSNPE.so").is_file()
        assert not (phone / "dsp/libSnpeHtpV73Skel.so").exists()  # gpu: no DSP libraries
        raw = phone / "work/input_0.raw"
        assert raw.stat().st_size == 4 * 8 * 16 * 16  # float32, NHWC of the 1x8x16x16 input
        assert (phone / "work/input_list.txt").read_text() == (
            "/data/local/tmp/snpebm/work/input_0.raw\n"
        )
    assert stats.n == 2
    assert 0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms < 10
    assert not (phone / "work").exists()  # cleaned up on exit, the SDK stays


def test_measure_with_snpe1_log_name_and_warmup(fake, monkeypatch):
    monkeypatch.setenv("FAKE_SNPE_DIAG_NAME", "SNPEDiag_0.log")
    snpe = SnpeRunner(runs=2, settings=MeasureSettings(warmup=1), perf_profile="balanced")
    with snpe:
        samples = snpe._measure_impl(conv(4, 4))
    assert len(samples) == 2  # the warm-up invocation is dropped


def test_bigger_conv_measures_slower(fake):
    with runner() as snpe:
        small = snpe.measure(conv(8, 8))
        big = snpe.measure(conv(64, 64))
    assert big.median_ms > 3 * small.median_ms


def test_profile_layers_keeps_snpe_layer_names(fake):
    with runner() as snpe:
        times = snpe.profile_layers(conv(16, 32, activation="Relu"))
        assert set(times) == {"layer", "act"}  # the micro-model's ONNX node names
        assert times["layer"] > times["act"] > 0
        named = snpe.profile_layers(two_conv_model())  # symbolic batch: fixed with -d
    assert set(named) == {"/features/conv1/Conv", "y"}  # node name, else the output tensor


def test_dsp_runtime_measures_and_reports_cycles(fake):
    with runner(runtime="dsp") as snpe:
        assert snpe.measure(conv(8, 8)).median_ms > 0
        assert (fake.phone() / "data/local/tmp/snpebm/dsp/libSnpeHtpV73Skel.so").is_file()
        with pytest.raises(RunnerError, match="cycle counts"):
            snpe.profile_layers(conv(8, 8))


def test_sdk_is_pushed_once(fake):
    with runner():
        pass
    first = fake.adb_calls()
    fake.reset_adb_calls()
    with runner():
        pass
    assert fake.adb_calls() < first  # no rm/push/chmod the second time


def test_fingerprint_fields(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_PROPS", '{"ro.product.model": "Pixel 8", "ro.soc.model": ""}')
    snpe = runner(runtime="cpu", perf_profile="high_performance")
    outside = snpe.fingerprint()  # reads the device without acquiring it
    with snpe:
        inside = snpe.fingerprint()
    assert inside == outside
    assert inside == {
        "runner": "snpe",
        "device": "Pixel 8",
        "soc": "kalama",  # ro.soc.model empty: the board platform
        "platform": "kalama",
        "android": "14",
        "snpe": "2.22.0.240425",  # snpe-net-run --version
        "runtime": "cpu",
        "perf_profile": "high_performance",
        "profiling_level": "basic",
        "metric": TOTAL_INFERENCE,
    }


# -- failures -----------------------------------------------------------------------------
def test_device_disconnecting_mid_run(fake, monkeypatch):
    with runner() as snpe:
        fake.reset_adb_calls()
        monkeypatch.setenv("FAKE_ADB_DISCONNECT_AFTER", "1")  # the push works, the run not
        with pytest.raises(RunnerError) as info:
            snpe.measure(conv(8, 8))
    message = str(info.value)
    assert f"device {SERIAL} disappeared while running snpe-net-run" in message
    assert f"error: failed to get feature set: device '{SERIAL}' not found" in message
    assert "run the same command again to resume" in message


def test_converter_failure_reports_stderr(fake):
    model = conv(4, 4)
    model.graph.node[0].domain = "com.example"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with runner() as snpe, pytest.raises(RunnerError) as info:
        snpe.measure(model)
    message = str(info.value)
    assert "snpe-onnx-to-dlc exited with 1" in message
    assert "ERROR_ONNX_UNSUPPORTED_OP" in message


def test_net_run_failure_reports_device_output(fake, monkeypatch):
    monkeypatch.setenv("FAKE_SNPE_NET_RUN_FAIL", "error_code=1234; error_message=GPU OOM")
    with runner() as snpe, pytest.raises(RunnerError) as info:
        snpe.measure(conv(4, 4))
    message = str(info.value)
    assert f"running snpe-net-run on {SERIAL} failed (exit 1)" in message
    assert "error_message=GPU OOM" in message and "try runtime='cpu'" in message


def test_missing_diag_log_is_reported(fake, monkeypatch):
    monkeypatch.setenv("FAKE_SNPE_DIAG_NAME", "profile.bin")  # not a SNPEDiag*.log
    with runner() as snpe, pytest.raises(RunnerError, match="wrote no SNPEDiag log"):
        snpe.measure(conv(4, 4))


def test_broken_sdk_on_phone_suggests_pushing_again(fake):
    with runner() as snpe:
        (fake.phone() / "data/local/tmp/snpebm/lib/libSNPE.so").unlink()
        with pytest.raises(RunnerError, match=r"CANNOT LINK EXECUTABLE(.|\n)*rm -rf"):
            snpe.measure(conv(4, 4))


# -- parsing and fakes (no device) --------------------------------------------------------
SNPE_2_37 = """\
Log File Created: Sun Oct  5 19:40:11 2025
Time Scale: 1e-06
Software library version: 2.37.0.250724175447_124859
SNPE Create Statistics:
  Init: 158658 us
  RPC Init Time: 0
SNPE Execute Statistics (Averaged):
----------------------------------------
  Total Inference Time: 1328 us
  Forward Propagate Time: 1315 us
  Accelerator Time: 59 us

  Per-Subnet Execution Times:
  ------------------------------
    Subnet 0 (GPU) : 757 us

  Per-Layer Execution Times:
  ------------------------------
    0: /features/conv1/Conv : 23 us : GPU
    1: seq/dense_1/MatMul:OpId_18 (cycles) : 1252 cycles : DSP
    2: /features/conv1/Conv : 7 us : GPU

"""

SNPE_2_9 = """\
Interpreting file serialized with Flatbuffer
Software library version: 2.9.0.4462

Dnn Runtime Load/Deserialize/Create/De-Init Statistics:
--------------------------------------------------
Init: 48856 us
RPC Init Time: 0 NONE

Average SNPE Statistics:
------------------------------
Total Inference Time: 26458 us
Forward Propagate Time: 26448 us

Layer Times:
---------------
0: 1419 us : CPU
1: 21 us : CPU
"""


def test_parse_diagview_snpe2_format():
    report = parse_diagview(SNPE_2_37)
    assert report.version == "2.37.0.250724175447_124859"
    assert report.ms(TOTAL_INFERENCE) == pytest.approx(1.328)
    assert report.ms("Init") == pytest.approx(158.658)
    assert [layer.unit for layer in report.layers] == ["us", "cycles", "us"]
    assert report.layers[1].name == "seq/dense_1/MatMul:OpId_18 (cycles)"
    assert report.layer_ms() == {"/features/conv1/Conv": pytest.approx(0.030)}


def test_parse_diagview_legacy_format_without_names():
    report = parse_diagview(SNPE_2_9)
    assert report.ms(TOTAL_INFERENCE) == pytest.approx(26.458)
    assert report.layer_ms() == {"layer_000": pytest.approx(1.419), "layer_001": 0.021}
    assert report.layers[0].runtime == "CPU"


def test_inputs_nhwc_and_input_list():
    specs = input_specs(two_conv_model())
    assert specs[0].shape == (1, 3, 8, 8) and specs[0].symbolic
    assert specs[0].snpe_shape == (1, 8, 8, 3)
    assert input_list_text(specs, ["/d/in.raw"], 2) == "/d/in.raw\n/d/in.raw\n"
    two = [specs[0], specs[0].__class__("mask", (1, 4))]
    assert input_list_text(two, ["/d/a.raw", "/d/b.raw"], 1) == "x:=/d/a.raw mask:=/d/b.raw\n"


@pytest.mark.parametrize(
    ("tool", "args", "error"),
    [
        ("bin/aarch64-android/snpe-net-run", ["--container", "m.dlc"], "required"),
        ("bin/aarch64-android/snpe-net-run", ["--use_gpu", "--bogus"], "unrecognized"),
        ("bin/x86_64-linux-clang/snpe-onnx-to-dlc", ["-o", "m.dlc"], "--input_network"),
        ("bin/x86_64-linux-clang/snpe-diagview", [], "--input_log"),
    ],
)
def test_fake_tools_reject_bad_command_lines(fake, tool, args, error):
    result = subprocess.run(
        [str(fake.root / tool), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert error in result.stderr
