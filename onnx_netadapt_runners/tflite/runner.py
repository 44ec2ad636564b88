"""The TFLite (LiteRT) CPU runner: latency on this host, or on an Android phone over adb.

Host (``device=None``): each layer becomes a single-layer ``.tflite`` (``flatbuffer.py``) and is
timed in-process by ``ai_edge_litert.interpreter.Interpreter(num_threads=threads)`` (XNNPACK is
its default delegate) with ``sample_until_stable``. Whole ONNX networks go through ``onnx2tf``
(``convert.py``) first.

Phone (``device=SERIAL``): the same ``.tflite`` files are pushed to
``/data/local/tmp/onnx_netadapt/`` and timed by TFLite's ``benchmark_model`` pinned with
``taskset`` to the big cores (``cpu_mask``, default ``f0``). ``benchmark_model`` reports
aggregate statistics only; ``benchmark_output.samples_from_timings`` turns them into samples
(see there). ``profile_ops`` runs it with ``--enable_op_profiling=true`` and returns the per-op
table (timings are taken without the profiler, which adds overhead).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx

from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.measure.host import cpu_identity
from onnx_netadapt.measure.runner import (
    Availability,
    ProfileUnsupported,
    Runner,
    RunnerError,
    RunnerUnavailable,
)
from onnx_netadapt.measure.signature import LayerSignature
from onnx_netadapt.measure.stats import MeasureSettings, sample_until_stable, time_ms
from onnx_netadapt_runners.android import Adb, DeviceUnavailable, connect
from onnx_netadapt_runners.tflite.benchmark_output import (
    BenchmarkResult,
    OpTiming,
    parse_benchmark_output,
    samples_from_timings,
)
from onnx_netadapt_runners.tflite.convert import onnx_to_tflite
from onnx_netadapt_runners.tflite.flatbuffer import tflite_layer_model, validate_model

logger = logging.getLogger(__name__)

REMOTE_DIR = "/data/local/tmp/onnx_netadapt"
BENCHMARK_MODEL_HELP = (
    "download TFLite's prebuilt benchmark_model for the phone's ABI (android_aarch64_benchmark_"
    "model, https://ai.google.dev/edge/litert/models/measurement), then `adb -s {serial} push "
    "benchmark_model {path} && adb -s {serial} shell chmod +x {path}`, or pass its device path "
    "with benchmark_model=..."
)


class TfliteRunner(Runner):
    """TFLite CPU latency (XNNPACK) on this host or on an adb-attached Android phone.

    Args:
        threads: CPU threads of the interpreter / ``benchmark_model --num_threads``.
        device: adb serial of the phone; None times on this host.
        settings: warm-up and repetition (``benchmark_model``: ``--warmup_runs=warmup
            --num_runs=max_runs --max_secs=max_seconds``; it finishes the run in progress).
        onnx2tf: the onnx2tf program for whole networks (name on PATH or path in its own venv).
        benchmark_model: ``benchmark_model`` path on the phone (on the host: a host build, used
            by ``profile_ops`` only).
        cpu_mask: hex CPU mask for ``taskset`` (phone default ``f0``: the big cores of most
            4+4 SoCs); on the host, pins the measuring thread (and the interpreter threads it
            starts) while the runner is active (default: no pinning).
        adb: the adb program.
        timeout: seconds allowed for one benchmark_model / onnx2tf call.
    """

    name = "tflite"
    summary = "TFLite/LiteRT CPU (XNNPACK) on this host, or on an Android phone over adb"

    def __init__(
        self,
        threads: int = 1,
        device: str | None = None,
        settings: MeasureSettings | None = None,
        onnx2tf: str = "onnx2tf",
        benchmark_model: str = "/data/local/tmp/benchmark_model",
        cpu_mask: str | None = None,
        adb: str = "adb",
        timeout: float = 600.0,
    ) -> None:
        super().__init__(settings)
        if int(threads) < 1:
            raise NetAdaptError(f"runner 'tflite': threads must be >= 1, got {threads}")
        self.threads = int(threads)
        self.device = device
        self.onnx2tf = onnx2tf
        self.benchmark_model = benchmark_model
        self.cpu_mask = cpu_mask if cpu_mask is not None else ("f0" if device else None)
        if self.cpu_mask:
            try:
                int(self.cpu_mask, 16)
            except ValueError:
                raise NetAdaptError(
                    f"runner 'tflite': cpu_mask must be a hex CPU mask such as f0, got {cpu_mask!r}"
                ) from None
        self.timeout = float(timeout)
        self.adb_program = adb
        self.adb: Adb | None = None  # connected to ``device`` while entered
        self.last_result: BenchmarkResult | None = None
        self._fingerprint: dict[str, object] | None = None
        self._converted: dict[str, bytes] = {}
        self._saved_affinity: set[int] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        """LiteRT must be importable (it writes, checks and, on the host, times the models)."""
        try:
            import flatbuffers  # noqa: F401
            from ai_edge_litert import schema_py_generated  # noqa: F401
            from ai_edge_litert.interpreter import Interpreter  # noqa: F401
        except ImportError as exc:
            return Availability(
                False,
                f"LiteRT is not importable ({exc})",
                "install it: pip install ai-edge-litert",
            )
        if shutil.which("onnx2tf") is None:  # single layers work; whole networks need it
            return Availability(
                True,
                "whole networks need onnx2tf, which is not on PATH (single layers work)",
                "install onnx2tf in its own environment and pass --runner-option "
                "onnx2tf=~/venvs/onnx2tf/bin/onnx2tf (README: 'Whole networks on TFLite')",
            )
        return Availability(True)

    def _acquire(self) -> None:
        if not self.device:
            self._pin_host()
            return
        self.adb = self._connect()
        mkdir = self.adb.quote("mkdir", "-p", REMOTE_DIR)
        self.adb.output(mkdir, what=f"creating {REMOTE_DIR}")
        probe = f"test -x {shlex.quote(self.benchmark_model)} && echo present || echo absent"
        if "present" not in self.adb.output(probe, what="looking for benchmark_model"):
            raise RunnerUnavailable(
                f"benchmark_model is not an executable at {self.benchmark_model} on "
                f"{self.device!r}: "
                + BENCHMARK_MODEL_HELP.format(serial=self.device, path=self.benchmark_model)
            )

    def _connect(self) -> Adb:
        """The adb client of ``device``; one that is not attached or usable is a RunnerError."""
        try:
            return connect(self.device, self.adb_program)
        except DeviceUnavailable as exc:
            raise RunnerError(
                f"adb device {self.device!r} is not attached or not usable: {exc}"
            ) from exc

    def _release(self) -> None:
        self.adb = None
        if self._saved_affinity is not None:
            os.sched_setaffinity(0, self._saved_affinity)
            self._saved_affinity = None

    # -- protocol -------------------------------------------------------------------------
    def _fingerprint_impl(self) -> dict[str, object]:
        if self._fingerprint is None:
            self._fingerprint = (
                self._phone_fingerprint() if self.device else self._host_fingerprint()
            )
        return self._fingerprint

    def _measure_impl(self, model: onnx.ModelProto) -> list[float]:
        return self._time(self.convert(model), "the model")

    def _measure_layer_impl(self, signature: LayerSignature) -> list[float]:
        return self._time(tflite_layer_model(signature), f"layer {signature.key()}")

    # -- public extras --------------------------------------------------------------------
    def convert(self, model: onnx.ModelProto) -> bytes:
        """The ``.tflite`` of a whole ONNX model (onnx2tf, cached per model content)."""
        key = hashlib.sha256(model.SerializeToString()).hexdigest()
        if key not in self._converted:
            tflite = onnx_to_tflite(model, self.onnx2tf, self.timeout)
            validate_model(tflite, None, "the model converted by onnx2tf")
            self._converted[key] = tflite
        return self._converted[key]

    def profile_layers(self, model: onnx.ModelProto) -> dict[str, float]:
        """Per-op average ms inside the converted network (TFLite op names).

        Raises ProfileUnsupported where no benchmark_model can profile (the host without a
        benchmark_model build): the LiteRT Python interpreter times whole networks only.
        """
        try:
            ops = self.profile_ops(model)
        except RunnerUnavailable as exc:
            raise ProfileUnsupported(str(exc)) from exc
        return {name: op.avg_ms for name, op in ops.items()}

    def profile_ops(self, target: LayerSignature | onnx.ModelProto | bytes) -> dict[str, OpTiming]:
        """Per-op times (``benchmark_model --enable_op_profiling=true``'s ``Run Order`` table).

        Args:
            target: a layer, a whole ONNX model, or ``.tflite`` bytes.

        Returns:
            ``[Name]`` column -> op type, avg ms, % of the run. Ops taken by the XNNPACK
            delegate show up as one ``TfLiteXNNPackDelegate`` node.
        """
        self._require_active()
        if isinstance(target, LayerSignature):
            model = tflite_layer_model(target)
        elif isinstance(target, onnx.ModelProto):
            model = self.convert(target)
        else:
            model = bytes(target)
        result = self._bench(model, profile=True)
        if not result.ops:
            raise RunnerError("benchmark_model printed no op profile (Run Order table)")
        return result.ops

    # -- timing ---------------------------------------------------------------------------
    def _time(self, model: bytes, what: str) -> list[float]:
        if not self.device:
            return self._time_on_host(model, what)
        timings = self._bench(model, profile=False).timings
        if timings.count < self.settings.min_runs:
            logger.warning(
                "benchmark_model ran %s only %d times (< min_runs=%d) within max_secs=%s",
                what,
                timings.count,
                self.settings.min_runs,
                self.settings.max_seconds,
            )
        return samples_from_timings(timings)

    def _time_on_host(self, model: bytes, what: str) -> list[float]:
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_content=model, num_threads=self.threads)
            interpreter.allocate_tensors()
            rng = np.random.default_rng(0)
            for detail in interpreter.get_input_details():
                data = rng.standard_normal(detail["shape"]).astype(detail["dtype"])
                interpreter.set_tensor(detail["index"], data)
            return sample_until_stable(lambda: time_ms(interpreter.invoke), self.settings)
        except (RuntimeError, ValueError) as exc:
            raise RunnerError(f"LiteRT failed to run {what}: {exc}") from exc

    def _bench_flags(self, graph: str, profile: bool) -> list[str]:
        s = self.settings
        return [
            f"--graph={graph}",
            f"--num_threads={self.threads}",
            f"--warmup_runs={s.warmup}",
            "--warmup_min_secs=0",
            f"--num_runs={s.max_runs}",
            "--min_secs=0",
            f"--max_secs={s.max_seconds:g}",
            f"--enable_op_profiling={'true' if profile else 'false'}",
        ]

    def _bench(self, model: bytes, profile: bool) -> BenchmarkResult:
        """Run benchmark_model on ``model`` (phone over adb, or a host build) and parse it."""
        name = hashlib.sha256(model).hexdigest()[:16] + ".tflite"
        with tempfile.TemporaryDirectory(prefix="onnx_netadapt_tflite_") as tmp:
            local = Path(tmp) / name
            local.write_bytes(model)
            bench = self._bench_phone if self.device else self._bench_host
            output = bench(local, profile)
        self.last_result = parse_benchmark_output(output)
        return self.last_result

    def _bench_phone(self, local: Path, profile: bool) -> str:
        assert self.adb is not None
        remote = f"{REMOTE_DIR}/{local.name}"
        self.adb.push([local], REMOTE_DIR, what=f"pushing {local.name} to {REMOTE_DIR}")
        taskset = ["taskset", self.cpu_mask] if self.cpu_mask else []
        command = self.adb.quote(
            *taskset, self.benchmark_model, *self._bench_flags(remote, profile)
        )
        try:
            return self.adb.output(command, what=f"running `{command}`", timeout=self.timeout)
        finally:
            try:
                self.adb.output(self.adb.quote("rm", "-f", remote), what="cleaning up")
            except NetAdaptError as exc:  # the device may be gone: keep the first error
                logger.debug("could not remove %s: %s", remote, exc)

    def _bench_host(self, local: Path, profile: bool) -> str:
        program = shutil.which(self.benchmark_model)
        if program is None:
            raise RunnerUnavailable(
                f"no host benchmark_model at {self.benchmark_model!r}: on the host, op profiles "
                "need TFLite's benchmark_model built for it (linux_x86-64_benchmark_model, "
                "https://ai.google.dev/edge/litert/models/measurement); pass benchmark_model=PATH"
            )
        args = [program, *self._bench_flags(str(local), profile)]
        try:
            proc = subprocess.run(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=self.timeout,
                errors="replace",
            )
        except subprocess.TimeoutExpired as exc:
            message = f"benchmark_model did not finish within {self.timeout:.0f} s"
            raise RunnerError(message) from exc
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
            raise RunnerError(f"benchmark_model failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout

    # -- fingerprints and pinning ---------------------------------------------------------
    def _host_fingerprint(self) -> dict[str, object]:
        return {
            "device": f"host-{platform.machine()}-{cpu_identity()}",
            "runtime": f"litert {_litert_version()}",
            "delegate": "xnnpack",
            "threads": self.threads,
            "cpu_mask": self.cpu_mask or "all",
            "where": "host",
        }

    def _phone_fingerprint(self) -> dict[str, object]:
        assert self.adb is not None
        props = ["ro.product.manufacturer", "ro.product.model", "ro.soc.model", "ro.board.platform"]
        out = self.adb.output("; ".join(f"getprop {p}" for p in props), what="reading properties")
        maker, model, soc, board = ([*out.splitlines(), "", "", "", ""])[:4]
        digest = self.adb.output(
            f"sha256sum {shlex.quote(self.benchmark_model)} 2>/dev/null || echo unknown",
            what="hashing benchmark_model",
        ).split()
        return {
            "device": f"android-{maker.strip()} {model.strip()} ({soc.strip() or board.strip()})",
            "runtime": f"benchmark_model sha256:{(digest or ['unknown'])[0][:16]}",
            "delegate": "xnnpack",
            "threads": self.threads,
            "cpu_mask": self.cpu_mask or "all",
            "where": f"adb:{self.device}",
        }

    def _pin_host(self) -> None:
        if not self.cpu_mask:
            return
        allowed = os.sched_getaffinity(0)
        cpus = {i for i in allowed if int(self.cpu_mask, 16) >> i & 1}
        if not cpus:
            raise RunnerUnavailable(
                f"cpu_mask {self.cpu_mask!r} selects none of the CPUs this process may use "
                f"({sorted(allowed)}); pass a mask of those (e.g. 1 for CPU 0)"
            )
        self._saved_affinity = allowed
        os.sched_setaffinity(0, cpus)


def _litert_version() -> str:
    try:
        return metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        return "unknown"
