"""SnpeRunner: latency measured by Qualcomm SNPE on an Android phone (GPU, CPU or DSP), over adb.

Per measurement: ``snpe-onnx-to-dlc`` converts the ONNX model on the host, a random float32 raw
input and an input list are pushed with the DLC, ``snpe-net-run`` runs on the phone with
``--perf_profile``, ``--profiling_level`` and the runtime flag, the diagnostic logs come back and
``snpe-diagview`` (host) reads them.

>>> with SnpeRunner(runtime="gpu") as runner:                     # doctest: +SKIP
...     stats = runner.measure(model)
...     per_layer = runner.profile_layers(model)
"""

from __future__ import annotations

import logging
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from onnx_netadapt.measure.runner import (
    Availability,
    ProfileUnsupported,
    Runner,
    RunnerError,
    RunnerUnavailable,
)
from onnx_netadapt.measure.stats import MeasureSettings
from onnx_netadapt_runners import proc
from onnx_netadapt_runners.android import ADB_FIX, Adb, ShellResult, connect, find_adb
from onnx_netadapt_runners.snpe import device
from onnx_netadapt_runners.snpe.diagview import TOTAL_INFERENCE, DiagviewReport, parse_diagview
from onnx_netadapt_runners.snpe.inputs import (
    InputSpec,
    input_list_text,
    input_specs,
    write_raw_inputs,
)
from onnx_netadapt_runners.snpe.sdk import (
    CONVERTER,
    DIAGVIEW,
    NET_RUN,
    SDK_FIX,
    SnpeSdk,
    parse_version,
)

logger = logging.getLogger(__name__)

RUNTIME_FLAGS = {"cpu": [], "gpu": ["--use_gpu"], "dsp": ["--use_dsp"]}
PERF_PROFILES = (
    "burst",
    "high_performance",
    "sustained_high_performance",
    "balanced",
    "default",
    "power_saver",
    "low_power_saver",
    "high_power_saver",
    "low_balanced",
    "extreme_power_saver",
    "system_settings",
)
# "off" writes no timings; per-layer times need "detailed" (profile_layers asks for it).
PROFILING_LEVELS = ("basic", "moderate", "detailed", "linting")


@dataclass
class Timeouts:
    """Seconds allowed to each step (generous: a phone can be slow)."""

    convert: float = 600.0
    diagview: float = 60.0
    version: float = 30.0
    net_run: float = 120.0  # per snpe-net-run invocation (network build + inference)


def _availability(owner: Any) -> Availability:
    """Cheap: the SDK's host tools exist (SNPE_ROOT or the instance's snpe_root), adb is on PATH."""
    _, problem = SnpeSdk.locate(getattr(owner, "snpe_root", None))
    if problem:
        return Availability(False, problem, SDK_FIX)
    if find_adb() is None:
        return Availability(False, "adb is not on PATH", ADB_FIX)
    return Availability(True)


class _ClassOrInstanceMethod:
    """``availability()`` on the class (runner listing) or on an instance (sees ``snpe_root``)."""

    def __init__(self, func: Callable[[Any], Availability]) -> None:
        self._func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: object, owner: type | None = None) -> Callable[[], Availability]:
        return types.MethodType(self._func, owner if obj is None else obj)


class SnpeRunner(Runner):
    """Measure with Qualcomm SNPE on an Android phone over adb.

    Args:
        runtime: "gpu" (default), "cpu" or "dsp".
        device: adb serial; needed when several devices are connected (CLI: --device SERIAL).
        perf_profile: snpe-net-run ``--perf_profile`` (burst, high_performance, balanced...).
        profiling_level: ``--profiling_level`` of timing runs (basic, moderate, detailed).
        runs: timed snpe-net-run invocations per measurement (samples).
        snpe_root: the unpacked SNPE SDK (default: $SNPE_ROOT).
        settings: ``warmup`` extra invocations are run first and dropped.
    """

    name = "snpe"
    summary = "Qualcomm SNPE on an Android phone over adb (GPU by default; CPU or DSP)"
    availability = _ClassOrInstanceMethod(_availability)  # type: ignore[assignment]

    def __init__(
        self,
        runtime: str = "gpu",
        device: str | None = None,
        perf_profile: str = "burst",
        profiling_level: str = "basic",
        runs: int = 20,
        snpe_root: str | Path | None = None,
        settings: MeasureSettings | None = None,
    ) -> None:
        super().__init__(settings)
        _check_choice("runtime", runtime, tuple(RUNTIME_FLAGS))
        _check_choice("perf_profile", perf_profile, PERF_PROFILES)
        _check_choice("profiling_level", profiling_level, PROFILING_LEVELS)
        if int(runs) < 1:
            raise RunnerError(f"runs must be at least 1, got {runs}")
        self.runtime = runtime
        self.device = device
        self.perf_profile = perf_profile
        self.profiling_level = profiling_level
        self.runs = int(runs)
        self.snpe_root = snpe_root
        self.timeouts = Timeouts()
        self._sdk: SnpeSdk | None = None
        self._adb: Adb | None = None
        self._fingerprint: dict[str, object] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def _acquire(self) -> None:
        """Pick the device, push snpe-net-run and its libraries (once per SDK), make work dir."""
        sdk = self._require_sdk()
        binary, libs, dsp = self._device_files(sdk)
        adb = self._connect()
        stamp = sdk.artifacts_stamp([binary, *libs, *dsp])
        found = adb.shell(
            f"mkdir -p {device.WORK_DIR} && cat {device.STAMP} 2>/dev/null; true",
            what="checking the SNPE files on the device",
        )
        if found.stdout.strip() != stamp:
            logger.info("pushing SNPE %s to %s", sdk.version_from_path() or sdk.root, adb.serial)
            dirs = f"{device.BIN_DIR} {device.LIB_DIR} {device.DSP_DIR}"
            self._check(
                adb.shell(
                    f"rm -rf {dirs} {device.STAMP} && mkdir -p {dirs} {device.WORK_DIR}",
                    what="preparing the SNPE directories on the device",
                ),
                "preparing the SNPE directories on the device",
                "check that /data/local/tmp is writable (adb shell touch /data/local/tmp/x)",
            )
            what = "pushing the SNPE runtime to the device"
            adb.push([binary], device.BIN_DIR, what=what)
            adb.push(libs, device.LIB_DIR, what=what)
            adb.push(dsp, device.DSP_DIR, what=what)
            self._check(
                adb.shell(
                    f"chmod 755 {device.NET_RUN} && echo {stamp} > {device.STAMP}",
                    what="finishing the SNPE push",
                ),
                "finishing the SNPE push",
                "check the device with `adb shell ls -l /data/local/tmp/snpebm/bin`",
            )
        self._adb = adb

    def _release(self) -> None:
        adb, self._adb = self._adb, None
        if adb is None:
            return
        try:
            adb.shell(f"rm -rf {device.WORK_DIR}", what="cleaning up the work directory")
        except RunnerError as exc:  # the device may be gone; nothing left to protect
            logger.warning("could not clean %s on %s: %s", device.WORK_DIR, adb.serial, exc)

    # -- protocol -------------------------------------------------------------------------
    def _fingerprint_impl(self) -> dict[str, object]:
        """Phone model, SoC, Android version, SNPE version, runtime, perf profile."""
        if self._fingerprint is None:
            adb = self._adb or self._connect()
            props = (
                "ro.product.model",
                "ro.soc.model",
                "ro.board.platform",
                "ro.build.version.release",
            )
            result = adb.shell(
                "; ".join(f"getprop {p}" for p in props), what="reading the device properties"
            )
            values = [line.strip() for line in result.stdout.splitlines()]
            model, soc, platform, android = (values + [""] * len(props))[: len(props)]
            self._fingerprint = {
                "device": model or "unknown",
                "soc": soc or platform or "unknown",
                "platform": platform or "unknown",
                "android": android or "unknown",
                "snpe": self._snpe_version(),
                "runtime": self.runtime,
                "perf_profile": self.perf_profile,
                "profiling_level": self.profiling_level,
                "metric": TOTAL_INFERENCE,
            }
        return dict(self._fingerprint)

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        """Samples (ms): "Total Inference Time" of ``runs`` separate snpe-net-run invocations.

        snpe-diagview reports, for an input list of several inputs, the average over the whole
        list (SNPE reference guide, snpe-diagview), so one invocation over a repeated input list
        yields one number, not a distribution. As Qualcomm's snpe_bench.py does ("works by
        internally executing snpe-net-run n number of times", one SNPEDiag log each), every
        sample is its own invocation with a one-line input list; all invocations run in one
        ``adb shell`` loop. ``settings.warmup`` extra invocations run first and are dropped.
        The network build (Init) is not part of "Total Inference Time".
        """
        adb = self._active_adb()
        warmup = max(0, int(self.settings.warmup))
        invocations = warmup + self.runs
        with tempfile.TemporaryDirectory(prefix="netadapt-snpe-") as tmp_name:
            tmp = Path(tmp_name)
            self._prepare(model, tmp, repeats=1)
            self._run_loop(adb, self.profiling_level, invocations)
            reports = self._fetch_reports(adb, tmp, range(warmup, invocations))
        return [self._total_ms(report, index) for index, report in reports]

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        """Per-layer times (ms) of ``model`` inside the whole network, keyed by SNPE layer name.

        One snpe-net-run with ``--profiling_level detailed`` over an input list of ``runs``
        lines: diagview's per-layer times are the average over them. SNPE names DLC layers
        after the ONNX nodes (unnamed nodes get a made-up name, typically from their output
        tensor); the names are returned exactly as snpe-diagview prints them. A name that
        occurs several times (one op split in several) gets the sum. SNPE versions that print
        no names give ``layer_000``, ``layer_001``...

        Raises:
            ProfileUnsupported: the runtime reports cycle counts only (DSP/HTP) or no layers.
        """
        self._require_active()
        adb = self._active_adb()
        with tempfile.TemporaryDirectory(prefix="netadapt-snpe-") as tmp_name:
            tmp = Path(tmp_name)
            self._prepare(model, tmp, repeats=self.runs)
            self._run_loop(adb, "detailed", 1)
            [(_, report)] = self._fetch_reports(adb, tmp, [0])
        times = report.layer_ms()
        if not times:
            units = sorted({layer.unit for layer in report.layers})
            detail = f"per-layer values are in {', '.join(units)}" if units else "no layers"
            raise ProfileUnsupported(
                f"snpe-diagview gave no per-layer times for runtime {self.runtime!r} ({detail}); "
                "the DSP/HTP reports cycle counts, not times: profile layers on the gpu or cpu "
                "runtime, or measure single-layer models (measure_layers) on the DSP"
            )
        return times

    # -- steps ----------------------------------------------------------------------------
    def _prepare(self, model: onnx.ModelProto, tmp: Path, repeats: int) -> None:
        """Convert to DLC, write the inputs and the input list, push them to the work dir."""
        adb = self._active_adb()
        specs = input_specs(model)
        onnx_path = tmp / "model.onnx"
        if model.ByteSize() > 2**30:  # protobuf's 2 GB limit: weights in a side file
            copy = onnx.ModelProto()
            copy.CopyFrom(model)  # saving with external data rewrites the proto it is given
            onnx.save_model(copy, str(onnx_path), save_as_external_data=True)
        else:
            onnx.save_model(model, str(onnx_path))
        dlc = tmp / "model.dlc"
        self._convert(onnx_path, dlc, specs)
        raws = write_raw_inputs(specs, tmp)
        input_list = tmp / "input_list.txt"
        device_paths = [f"{device.WORK_DIR}/{path.name}" for path in raws]
        input_list.write_text(input_list_text(specs, device_paths, repeats))
        adb.push([dlc, *raws, input_list], device.WORK_DIR, what="pushing the model and inputs")

    def _convert(self, onnx_path: Path, dlc: Path, specs: list[InputSpec]) -> None:
        sdk = self._require_sdk()
        cmd = [
            str(sdk.host_tool(CONVERTER)),
            "--input_network",
            str(onnx_path),
            "--output_path",
            str(dlc),
        ]
        for spec in specs:
            if spec.symbolic:  # fix the symbolic batch dimension
                cmd += ["-d", spec.name, spec.converter_dim()]
        proc.run_checked(
            cmd,
            timeout=self.timeouts.convert,
            what="converting the model with snpe-onnx-to-dlc",
            fix=(
                "the model may use layers or opsets this SNPE version does not support (SNPE "
                "docs: 'Supported ONNX Ops'); save it and run "
                "`snpe-onnx-to-dlc --input_network model.onnx` for the full log"
            ),
            env=sdk.host_env(),
            cwd=onnx_path.parent,
        )
        if not dlc.is_file():
            raise RunnerError(f"snpe-onnx-to-dlc exited 0 but wrote no {dlc.name}")

    def _flags(self, profiling_level: str) -> list[str]:
        return [
            *RUNTIME_FLAGS[self.runtime],
            "--perf_profile",
            self.perf_profile,
            "--profiling_level",
            profiling_level,
        ]

    def _run_loop(self, adb: Adb, profiling_level: str, invocations: int) -> None:
        script = device.timing_loop_script(
            self._flags(profiling_level), "input_list.txt", invocations
        )
        what = f"running snpe-net-run ({invocations}x, {self.runtime})"
        result = adb.shell(script, what=what, timeout=self.timeouts.net_run * invocations + 30)
        if result.rc == device.NO_LOG_RC:
            raise RunnerError(
                f"snpe-net-run on {adb.serial} wrote no SNPEDiag log:\n{result.tail()}\n"
                "profiling must be on (--profiling_level basic or detailed)"
            )
        output = f"{result.stdout}\n{result.stderr}"
        if result.rc in (126, 127) or "CANNOT LINK EXECUTABLE" in output:
            fix = (
                f"the SNPE files on the phone are incomplete: delete them (adb -s {adb.serial} "
                f"shell rm -rf {device.DEVICE_ROOT}) and run again to push them anew"
            )
        else:
            fix = (
                f"check that the phone supports the {self.runtime} runtime "
                "(snpe-platform-validator) and every layer of the model, or try runtime='cpu'"
            )
        self._check(result, f"running snpe-net-run on {adb.serial}", fix)

    def _fetch_reports(
        self, adb: Adb, tmp: Path, indices: range | list[int]
    ) -> list[tuple[int, DiagviewReport]]:
        logs = tmp / "logs"
        logs.mkdir(exist_ok=True)
        adb.pull([device.log_path(i) for i in indices], logs, what="pulling the diagnostic logs")
        return [(i, self._diagview(logs / f"{i}.log")) for i in indices]

    def _diagview(self, log: Path) -> DiagviewReport:
        sdk = self._require_sdk()
        if not log.is_file():
            raise RunnerError(f"adb pull brought back no {log.name}")
        result = proc.run_checked(
            [str(sdk.host_tool(DIAGVIEW)), "--input_log", str(log)],
            timeout=self.timeouts.diagview,
            what="reading a diagnostic log with snpe-diagview",
            fix="snpe-diagview and the snpe-net-run pushed to the phone must come from one SDK",
            env=sdk.host_env(),
        )
        report = parse_diagview(result.stdout)
        if TOTAL_INFERENCE not in report.statistics:
            raise RunnerError(
                f"snpe-diagview printed no '{TOTAL_INFERENCE}' for {log.name}:\n"
                f"{proc.tail(result.stdout)}\n"
                "profiling must be on; if this SNPE version prints another format, report it"
            )
        return report

    def _total_ms(self, report: DiagviewReport, index: int) -> float:
        try:
            return report.ms(TOTAL_INFERENCE)
        except KeyError as exc:
            raise RunnerError(f"invocation {index}: {exc}") from exc

    # -- helpers --------------------------------------------------------------------------
    def _require_sdk(self) -> SnpeSdk:
        if self._sdk is None:
            sdk, problem = SnpeSdk.locate(self.snpe_root)
            if sdk is None:
                raise RunnerUnavailable(f"{problem}. {SDK_FIX}")
            self._sdk = sdk
        return self._sdk

    def _device_files(self, sdk: SnpeSdk) -> tuple[Path, list[Path], list[Path]]:
        """snpe-net-run, its libraries, and the DSP libraries (runtime dsp only)."""
        binary = sdk.device_binary()
        libs = sdk.device_libs()
        if binary is None or not libs:
            raise RunnerUnavailable(
                f"the SNPE SDK at {sdk.root} has no Android build (bin/aarch64-android/"
                f"{NET_RUN} and lib/aarch64-android/*.so): use the full SDK for Linux, which "
                "includes the Android binaries"
            )
        dsp = sdk.dsp_libs() if self.runtime == "dsp" else []
        if self.runtime == "dsp" and not dsp:
            raise RunnerUnavailable(
                f"the SNPE SDK at {sdk.root} has no DSP libraries (lib/hexagon-v*/unsigned or "
                "lib/dsp): the dsp runtime needs them"
            )
        return binary, libs, dsp

    def _connect(self) -> Adb:
        return connect(self.device)

    def _active_adb(self) -> Adb:
        self._require_active()
        if self._adb is None:
            raise RunnerError("the SNPE runner has no device (acquire failed)")
        return self._adb

    def _snpe_version(self) -> str:
        """``snpe-net-run --version`` of the SDK's host build, else the SDK directory's name."""
        sdk = self._require_sdk()
        host_net_run = sdk.host_tool(NET_RUN)
        if host_net_run.is_file():
            try:
                result = proc.run(
                    [str(host_net_run), "--version"],
                    timeout=self.timeouts.version,
                    what="asking snpe-net-run for its version",
                    fix="",
                    env=sdk.host_env(),
                )
                version = parse_version(result.stdout) if result.returncode == 0 else ""
                if version:
                    return version
            except RunnerError as exc:
                logger.debug("snpe-net-run --version failed: %s", exc)
        return sdk.version_from_path() or "unknown"

    @staticmethod
    def _check(result: ShellResult, what: str, fix: str) -> None:
        if result.rc != 0:
            raise RunnerError(f"{what} failed (exit {result.rc}):\n{result.tail()}\n{fix}")


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RunnerError(f"{option} must be one of {', '.join(choices)}; got {value!r}")
