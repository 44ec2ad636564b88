"""Export zoo models to ONNX, each in a subprocess so that a crash or a hang in one model does
not stop a sweep; files already present are reused (cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.zoo.build import build_model
from benchmarks.zoo.catalogue import ZooModel
from onnx_netadapt.graph.save import save_json

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPORTERS = ("legacy", "dynamo")
DEFAULT_OPSET = {"legacy": 17, "dynamo": 18}
RESULT_MARKER = "ZOO_RESULT "


@dataclass
class ExportResult:
    """Outcome of one export; ``seconds`` covers export and save only, ``wall_seconds`` the
    whole subprocess (interpreter start, imports, model construction)."""

    ok: bool
    seconds: float
    error: str | None
    path: str
    size_bytes: int = 0
    wall_seconds: float = 0.0
    cached: bool = False
    stderr_tail: str | None = field(default=None, repr=False)


def _onnx_files(path: Path) -> list[Path]:
    """The ONNX file and its external data file, if any."""
    data = path.with_name(path.name + ".data")
    return [p for p in (path, data) if p.exists()]


def _temporary_dir(out_path: Path) -> Path:
    return out_path.parent / f".tmp-{out_path.stem}-{os.getpid()}"


def _remove_temporaries(out_path: Path) -> None:
    for tmp_dir in out_path.parent.glob(f".tmp-{out_path.stem}-*"):
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _consolidate_external_data(path: Path) -> None:
    """Rewrite a model whose weights lie in many side files as one ``<name>.data`` file."""
    import onnx

    siblings = [p for p in path.parent.iterdir() if p != path]
    if not siblings:
        return
    model = onnx.load(str(path))  # pulls the external tensors in
    for p in siblings:
        p.unlink()
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
    )


def export_in_process(
    source: str,
    name: str,
    exporter: str,
    out_path: Path,
    input_size: Sequence[int],
    opset: int | None,
) -> float:
    """Build and export one model in this process; returns the export seconds."""
    import torch

    opset = opset or DEFAULT_OPSET[exporter]
    model = build_model(source, name, input_size)
    x = torch.randn(1, *input_size)
    tmp_dir = _temporary_dir(out_path)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    tmp_path = tmp_dir / out_path.name
    try:
        start = time.perf_counter()
        # Not under torch.no_grad(): there nn.MultiheadAttention takes its fused fast path
        # (aten::_native_multi_head_attention), which the legacy exporter cannot convert.
        if exporter == "dynamo":
            program = torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                opset_version=opset,
                input_names=["input"],
                output_names=["logits"],
            )
            program.save(str(tmp_path))  # external data only above ~1.5 GB
        elif exporter == "legacy":
            torch.onnx.export(
                model,
                (x,),
                str(tmp_path),
                dynamo=False,
                opset_version=opset,
                do_constant_folding=True,
                input_names=["input"],
                output_names=["logits"],
            )
            _consolidate_external_data(tmp_path)  # > 2 GB: one side file per tensor
        else:
            raise ValueError(f"unknown exporter {exporter!r}")
        seconds = time.perf_counter() - start
        # Data first, the .onnx last: the .onnx file marks a finished export.
        for p in tmp_dir.iterdir():
            if p != tmp_path:
                os.replace(p, out_path.parent / p.name)
        os.replace(tmp_path, out_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return seconds


def _child_command(model: ZooModel, exporter: str, out_path: Path, opset: int | None) -> list[str]:
    """The ``python -m benchmarks.zoo export`` command line that exports ``model``."""
    cmd = [sys.executable, "-m", "benchmarks.zoo", "export", "--source", model.source]
    cmd += ["--name", model.name, "--exporter", exporter, "--out", str(out_path)]
    cmd += ["--input-size", *map(str, model.input_size)]
    if opset is not None:
        cmd += ["--opset", str(opset)]
    return cmd


def _timed_out(exc: subprocess.TimeoutExpired, out_path: Path, wall: float) -> ExportResult:
    """The result of a child killed after ``exc.timeout`` seconds."""
    _remove_temporaries(out_path)
    stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
    return ExportResult(
        ok=False,
        seconds=float(exc.timeout),
        error=f"timeout after {exc.timeout:g} s",
        path=str(out_path),
        wall_seconds=wall,
        stderr_tail=(stderr or "")[-2000:] or None,
    )


def _child_result(
    proc: subprocess.CompletedProcess[str], out_path: Path, wall: float
) -> ExportResult:
    """The result of a child that ended: the seconds and error it reported, else its stderr."""
    reported: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            reported = json.loads(line[len(RESULT_MARKER) :])
    ok = proc.returncode == 0 and out_path.exists()
    error = None
    if not ok:  # the child's exception summary, else the last line of stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        error = reported.get("error") or (lines[-1].strip() if lines else None)
        error = error or f"exit status {proc.returncode}"
        if proc.returncode < 0:
            error = f"killed by signal {-proc.returncode}: {error}"
    return ExportResult(
        ok=ok,
        seconds=round(reported.get("seconds", wall), 3),
        error=error,
        path=str(out_path),
        size_bytes=sum(p.stat().st_size for p in _onnx_files(out_path)) if ok else 0,
        wall_seconds=round(wall, 3),
        stderr_tail=None if ok else proc.stderr[-2000:],
    )


def export(
    model: ZooModel,
    exporter: str,
    out_path: Path,
    opset: int | None = None,
    timeout_s: int = 600,
) -> ExportResult:
    """Export ``model`` to ``out_path`` in a subprocess; an existing file is reused."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, not {exporter!r}")
    out_path = Path(out_path).resolve()
    if out_path.exists():
        size = sum(p.stat().st_size for p in _onnx_files(out_path))
        return ExportResult(
            ok=True, seconds=0.0, error=None, path=str(out_path), size_bytes=size, cached=True
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = _child_command(model, exporter, out_path, opset)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        return _timed_out(exc, out_path, time.perf_counter() - start)
    wall = time.perf_counter() - start
    _remove_temporaries(out_path)  # left behind when the child was killed
    return _child_result(proc, out_path, wall)


def export_all(
    models: Sequence[ZooModel],
    exporter: str,
    out_dir: Path,
    opset: int | None = None,
    timeout_s: int = 600,
    skip_failed: bool = False,
) -> dict[str, dict[str, Any]]:
    """Export ``models`` one after the other into ``out_dir/<exporter>/``; returns the log."""
    import torch

    target = Path(out_dir).resolve() / exporter
    target.mkdir(parents=True, exist_ok=True)
    log_path = target / "export_log.json"
    log: dict[str, Any] = json.loads(log_path.read_text()) if log_path.exists() else {}
    entries: dict[str, dict[str, Any]] = log.get("models", {})
    log.update(exporter=exporter, opset=opset or DEFAULT_OPSET[exporter], torch=torch.__version__)
    for i, model in enumerate(models, 1):
        previous = entries.get(model.key)
        if skip_failed and previous is not None and not previous["ok"]:
            print(f"[{i}/{len(models)}] {model.key}: skipped (failed before)", flush=True)
            continue
        result = export(model, exporter, target / f"{model.key}.onnx", opset, timeout_s)
        if result.cached and previous is not None and previous["ok"]:
            entry = previous
        else:
            entry = asdict(result) | {
                "family": model.family,
                "input_size": list(model.input_size),
                "params_m": model.params_m,
            }
            entry["path"] = Path(result.path).name
            if result.stderr_tail is None:
                del entry["stderr_tail"]
        entries[model.key] = entry
        log["models"] = entries
        save_json(log, log_path)
        status = "cached" if result.cached else ("ok" if result.ok else f"FAILED: {result.error}")
        print(
            f"[{i}/{len(models)}] {model.key}: {status} "
            f"({result.seconds:.1f} s export, {result.wall_seconds:.1f} s wall, "
            f"{result.size_bytes / 1e6:.1f} MB)",
            flush=True,
        )
    return entries
