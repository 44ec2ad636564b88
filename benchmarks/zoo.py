"""Model zoo for onnx-netadapt benchmarks: torchvision and timm classifiers exported to ONNX.

Every model is built with random weights (no network access is assumed) and exported with batch
size 1, static shapes, input ``input`` and output ``logits``. Exports run in a subprocess so that a
crash or a hang in one model does not stop a sweep.

Command line (run from the repository root)::

    python -m benchmarks.zoo list
    python -m benchmarks.zoo export-all --exporter legacy --out DIR [--only RE] [--limit N]
    python -m benchmarks.zoo verify --exporter legacy --out DIR [--only RE]

``export-all`` writes ``DIR/<exporter>/<source>__<name>.onnx`` and
``DIR/<exporter>/export_log.json``. Files already present are reused (cache).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPORTERS = ("legacy", "dynamo")
DEFAULT_OPSET = {"legacy": 17, "dynamo": 18}
DEFAULT_INPUT_SIZE = (3, 224, 224)
MAX_TIMM_INPUT = 256  # larger pretrained resolutions fall back to 224
_RESULT_MARKER = "ZOO_RESULT "

# torchvision 0.28.0 from PyPI is a CUDA build: with a CPU torch its C++ ops do not load and the
# import fails in ``torchvision/_meta_registrations.py``, which registers fake kernels for them.
_TORCHVISION_SCHEMAS = {
    "torchvision::nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "torchvision::qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

# Curated timm CNNs: small variants (mostly < 30M parameters), grouped by family.
TIMM_CNNS: dict[str, tuple[str, ...]] = {
    "resnet": (
        "resnet10t",
        "resnet14t",
        "resnet18",
        "resnet18d",
        "resnet26d",
        "resnet34",
        "resnet34d",
        "resnet50",
        "resnet50d",
        "resnetaa50",
        "resnetblur18",
        "resnet50_gn",
    ),
    "resnetv2": ("resnetv2_18", "resnetv2_50d"),
    "resnext": ("resnext26ts", "resnext50_32x4d", "resnext50d_32x4d"),
    "seresnet": (
        "seresnet18",
        "seresnet50",
        "seresnext26d_32x4d",
        "legacy_seresnet18",
        "legacy_seresnext26_32x4d",
    ),
    "ecaresnet": ("ecaresnet26t", "ecaresnetlight", "ecaresnet50d_pruned"),
    "regnetx": ("regnetx_002", "regnetx_004", "regnetx_008", "regnetx_016", "regnetx_032"),
    "regnety": ("regnety_002", "regnety_004", "regnety_008", "regnety_016", "regnety_032"),
    "regnetz": ("regnetz_005", "regnetz_b16", "regnetz_c16", "regnetz_d8"),
    "efficientnet": (
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_lite0",
        "efficientnet_es",
        "efficientnet_em",
        "efficientnet_b1_pruned",
        "efficientnet_cc_b0_4e",
        "tf_efficientnet_b0",
        "tf_efficientnet_b1",
        "tf_efficientnet_lite0",
        "tf_efficientnet_es",
        "tf_efficientnet_cc_b0_4e",
    ),
    "efficientnetv2": (
        "efficientnetv2_rw_t",
        "efficientnetv2_rw_s",
        "gc_efficientnetv2_rw_t",
        "tf_efficientnetv2_b0",
        "tf_efficientnetv2_b1",
        "tf_efficientnetv2_b2",
        "tf_efficientnetv2_s",
    ),
    "mobilenetv1": ("mobilenetv1_100",),
    "mobilenetv2": ("mobilenetv2_050", "mobilenetv2_100", "mobilenetv2_110d", "mobilenetv2_140"),
    "mobilenetv3": (
        "mobilenetv3_small_050",
        "mobilenetv3_small_100",
        "mobilenetv3_large_100",
        "mobilenetv3_rw",
        "tf_mobilenetv3_small_minimal_100",
        "tf_mobilenetv3_large_100",
    ),
    "mobilenetv4": (
        "mobilenetv4_conv_small",
        "mobilenetv4_conv_medium",
        "mobilenetv4_conv_blur_medium",
        "mobilenetv4_conv_large",
    ),
    "mobilenet_edgetpu": ("mobilenet_edgetpu_100", "mobilenet_edgetpu_v2_s"),
    "mnasnet": ("mnasnet_050", "mnasnet_100", "mnasnet_small", "semnasnet_100", "spnasnet_100"),
    "ghostnet": ("ghostnet_050", "ghostnet_100", "ghostnetv2_100", "ghostnetv3_100"),
    "repghostnet": ("repghostnet_050", "repghostnet_100"),
    "lcnet": ("lcnet_050", "lcnet_100", "lcnetv2_small"),
    "densenet": ("densenet121", "densenet169", "densenetblur121d"),
    "dla": ("dla34", "dla46_c", "dla46x_c", "dla60x_c", "dla60"),
    "dpn": ("dpn48b", "dpn68"),
    "rexnet": ("rexnet_100", "rexnet_130", "rexnetr_100"),
    "cspnet": (
        "cspresnet50",
        "cspresnext50",
        "cspdarknet53",
        "cs3darknet_s",
        "cs3darknet_m",
        "darknet17",
        "cspnext_tiny",
    ),
    "convnext": (
        "convnext_atto",
        "convnext_femto",
        "convnext_pico",
        "convnext_nano",
        "convnext_tiny",
    ),
    "convnextv2": ("convnextv2_atto", "convnextv2_femto", "convnextv2_pico", "convnextv2_nano"),
    "repvgg": ("repvgg_a0", "repvgg_a1", "repvgg_b0"),
    "mobileone": ("mobileone_s0", "mobileone_s1"),
    "vgg": ("vgg11", "vgg11_bn"),
    "hrnet": ("hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w18"),
    "res2net": ("res2net50_26w_4s", "res2net50_14w_8s", "res2next50"),
    "resnest": ("resnest14d", "resnest26d"),
    "sknet": ("skresnet18", "skresnet34", "skresnext50_32x4d"),
    "selecsls": ("selecsls42b", "selecsls60"),
    "tresnet": ("tresnet_m",),
    "xception": ("xception41", "legacy_xception"),
    "inception": ("inception_v3", "inception_v4", "inception_resnet_v2"),
    "byobnet": ("gernet_s", "gernet_m", "resnet33ts", "eca_resnet33ts", "gcresnet33ts"),
    "nfnet": ("nf_resnet26", "nf_regnet_b0", "nf_regnet_b1", "nf_ecaresnet26", "nf_seresnet26"),
    "fbnet": ("fbnetc_100", "fbnetv3_b", "fbnetv3_d"),
    "hardcorenas": ("hardcorenas_a", "hardcorenas_c", "hardcorenas_f"),
    "mixnet": ("mixnet_s", "mixnet_m", "tf_mixnet_s"),
    "tinynet": ("tinynet_a", "tinynet_c", "tinynet_e"),
    "vovnet": ("ese_vovnet19b_dw", "ese_vovnet39b"),
    "hgnet": ("hgnet_tiny", "hgnetv2_b0", "hgnetv2_b1"),
    "fastvit": ("fastvit_t8", "fastvit_t12", "fastvit_s12"),  # RepMixer-only variants
    "repvit": ("repvit_m0_9", "repvit_m1"),
    "fasternet": ("fasternet_t0",),
    "starnet": ("starnet_s1",),
    "inception_next": ("inception_next_atto",),
    "rdnet": ("rdnet_tiny",),
}

# torchvision name prefix -> family; the first match wins, so longer prefixes come first.
_TORCHVISION_FAMILIES = (
    ("efficientnet_v2", "efficientnetv2"),
    ("efficientnet", "efficientnet"),
    ("wide_resnet", "wide_resnet"),
    ("resnext", "resnext"),
    ("resnet", "resnet"),
    ("regnet_x", "regnetx"),
    ("regnet_y", "regnety"),
    ("mobilenet_v2", "mobilenetv2"),
    ("mobilenet_v3", "mobilenetv3"),
    ("shufflenet_v2", "shufflenetv2"),
    ("swin_v2", "swinv2"),
    ("swin", "swin"),
    ("inception", "inception"),
)


@dataclass(frozen=True)
class ZooModel:
    """One classifier of the zoo."""

    source: str  # 'torchvision' or 'timm'
    name: str
    family: str
    input_size: tuple[int, int, int]  # (C, H, W)
    params_m: float

    @property
    def key(self) -> str:
        """File stem used in caches: ``<source>__<name>``."""
        return f"{self.source}__{self.name}"


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


# --------------------------------------------------------------------------------------------
# Imports and model lists
# --------------------------------------------------------------------------------------------


def import_torchvision() -> ModuleType:
    """Import torchvision, working around a CUDA torchvision wheel next to a CPU torch.

    The first attempt is a plain import. If it fails because ``torchvision::nms`` is missing, the
    partially imported modules are dropped, the nms/qnms schemas are defined with
    ``torch.library.define`` and the import is retried. Idempotent.
    """
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"]
    import torch

    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[mod]
        for qualname, schema in _TORCHVISION_SCHEMAS.items():
            namespace, op = qualname.split("::")
            if not hasattr(getattr(torch.ops, namespace), op):
                torch.library.define(qualname, schema)
        import torchvision
    return torchvision


def import_timm() -> ModuleType:
    """Import timm (which imports torchvision, hence the workaround first)."""
    import_torchvision()
    import timm

    return timm


def _torchvision_family(name: str) -> str:
    for prefix, family in _TORCHVISION_FAMILIES:
        if name.startswith(prefix):
            return family
    return re.split(r"[_\d]", name, maxsplit=1)[0]


@functools.cache
def torchvision_classifiers() -> list[ZooModel]:
    """Every classification model of ``torchvision.models`` at 224x224.

    224 works for all of them with random weights (inception_v3 included; its 299 is only the
    resolution of the pretrained weights). Parameter counts come from the weights metadata, so no
    model is built.
    """
    models = import_torchvision().models
    zoo = []
    for name in models.list_models(module=models):
        num_params = models.get_model_weights(name).DEFAULT.meta["num_params"]
        zoo.append(
            ZooModel(
                source="torchvision",
                name=name,
                family=_torchvision_family(name),
                input_size=DEFAULT_INPUT_SIZE,
                params_m=round(num_params / 1e6, 3),
            )
        )
    return zoo


def _timm_params_m(name: str) -> float:
    """Parameter count in millions, built on the meta device (no memory, no init cost)."""
    import torch

    timm = import_timm()
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
    except Exception:  # some constructors need real tensors
        model = timm.create_model(name, pretrained=False)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3)


def _timm_input_size(name: str) -> tuple[int, int, int]:
    cfg = import_timm().get_pretrained_cfg(name)
    size = tuple(cfg.input_size) if cfg is not None and cfg.input_size else DEFAULT_INPUT_SIZE
    if len(size) != 3 or max(size[1:]) > MAX_TIMM_INPUT:
        return DEFAULT_INPUT_SIZE
    return (int(size[0]), int(size[1]), int(size[2]))


@functools.cache
def timm_cnns() -> list[ZooModel]:
    """The curated timm CNNs of ``TIMM_CNNS`` that exist in the installed timm version."""
    available = set(import_timm().list_models())
    zoo = []
    for family, names in TIMM_CNNS.items():
        for name in names:
            if name not in available:
                warnings.warn(f"timm has no model {name!r}; skipped", stacklevel=2)
                continue
            zoo.append(
                ZooModel(
                    source="timm",
                    name=name,
                    family=family,
                    input_size=_timm_input_size(name),
                    params_m=_timm_params_m(name),
                )
            )
    return zoo


def all_models() -> list[ZooModel]:
    """torchvision classifiers followed by timm CNNs."""
    return torchvision_classifiers() + timm_cnns()


def select(
    models: Iterable[ZooModel], only: str | None = None, limit: int | None = None
) -> list[ZooModel]:
    """Models whose ``<source>__<name>`` matches the regex ``only``; at most ``limit`` of them."""
    chosen = [m for m in models if only is None or re.search(only, m.key)]
    return chosen if limit is None else chosen[:limit]


def find_model(source: str, name: str) -> ZooModel:
    """Look a zoo model up by source and name."""
    pool = torchvision_classifiers() if source == "torchvision" else timm_cnns()
    for model in pool:
        if model.name == name:
            return model
    raise KeyError(f"{source}__{name} is not in the zoo")


def build_model(
    source: str,
    name: str,
    input_size: Sequence[int] = DEFAULT_INPUT_SIZE,
    seed: int = 0,
    calibrate: bool = True,
) -> torch.nn.Module:
    """Construct a model with random weights (deterministic for a seed), in eval mode.

    With ``calibrate``, the initialisation is made less degenerate (see ``_calibrate``): layers
    initialised to zero are re-initialised and BatchNorm running statistics are measured on one
    random batch, so activations and logits keep a sensible magnitude (plain random init gives,
    e.g., logits around 1e-9 for mobilenet_v3_small and exactly 0 for the torchvision ViTs).
    """
    import torch

    torch.manual_seed(seed)
    if source == "torchvision":
        model = import_torchvision().models.get_model(name, weights=None)
    elif source == "timm":
        model = import_timm().create_model(name, pretrained=False, exportable=True)
    else:
        raise ValueError(f"unknown source {source!r}")
    if calibrate:
        _calibrate(model, input_size)
    return model.eval()


def _calibrate(model: torch.nn.Module, input_size: Sequence[int]) -> None:
    """Revive zero-initialised layers and set BatchNorm statistics from a random batch.

    Zero-initialised norm scales (zero-init residual branches) become ones; Linear and Conv
    layers initialised to zero (torchvision ViT heads, timm global-context MLPs) get PyTorch's
    default initialisation.

    Runs in eval mode (train mode would run auxiliary heads, which need other input sizes): a
    pre-hook on each BatchNorm sets its running statistics to those of its input, so one forward
    pass calibrates the layers in order. BatchNorms on pooled features (one value per channel and
    sample) keep their default statistics: the means of random images are nearly identical, and
    their tiny variance would turn the layer into a huge amplifier of rounding noise.
    """
    import torch

    batch_norm = torch.nn.modules.batchnorm._BatchNorm
    norms = (batch_norm, torch.nn.GroupNorm, torch.nn.LayerNorm)

    def set_statistics(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        if x[0, 0].numel() == 1:
            return  # after global pooling: near-identical samples, a near-zero variance
        dims = [d for d in range(x.dim()) if d != 1]
        module.running_mean.copy_(x.mean(dims))
        module.running_var.copy_(x.var(dims, unbiased=False))

    handles = []
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
                if not module.weight.any():
                    module.reset_parameters()
                continue
            if not isinstance(module, norms):
                continue
            weight = getattr(module, "weight", None)
            if weight is not None and not weight.any():
                weight.fill_(1.0)
            if isinstance(module, batch_norm) and module.running_mean is not None:
                handles.append(module.register_forward_pre_hook(set_statistics))
        if handles:
            model.eval()
            try:
                model(torch.randn(2, *input_size))
            finally:
                for handle in handles:
                    handle.remove()


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


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


def _export_in_process(
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
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.zoo",
        "export",
        "--source",
        model.source,
        "--name",
        model.name,
        "--exporter",
        exporter,
        "--out",
        str(out_path),
        "--input-size",
        *map(str, model.input_size),
    ]
    if opset is not None:
        cmd += ["--opset", str(opset)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        _remove_temporaries(out_path)
        stderr = (
            exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        )
        return ExportResult(
            ok=False,
            seconds=float(timeout_s),
            error=f"timeout after {timeout_s} s",
            path=str(out_path),
            wall_seconds=time.perf_counter() - start,
            stderr_tail=(stderr or "")[-2000:] or None,
        )
    wall = time.perf_counter() - start
    _remove_temporaries(out_path)  # left behind when the child was killed
    seconds = wall
    reported: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(_RESULT_MARKER):
            reported = json.loads(line[len(_RESULT_MARKER) :])
    seconds = reported.get("seconds", wall)
    ok = proc.returncode == 0 and out_path.exists()
    error = None
    if not ok:  # the child's exception summary, else the last line of stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        error = reported.get("error") or (lines[-1].strip() if lines else None)
        error = error or f"exit status {proc.returncode}"
        if proc.returncode < 0:
            error = f"killed by signal {-proc.returncode}: {error}"
    size = sum(p.stat().st_size for p in _onnx_files(out_path)) if ok else 0
    return ExportResult(
        ok=ok,
        seconds=round(seconds, 3),
        error=error,
        path=str(out_path),
        size_bytes=size,
        wall_seconds=round(wall, 3),
        stderr_tail=None if ok else proc.stderr[-2000:],
    )


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


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
        _write_json(log_path, log)
        status = "cached" if result.cached else ("ok" if result.ok else f"FAILED: {result.error}")
        print(
            f"[{i}/{len(models)}] {model.key}: {status} "
            f"({result.seconds:.1f} s export, {result.wall_seconds:.1f} s wall, "
            f"{result.size_bytes / 1e6:.1f} MB)",
            flush=True,
        )
    return entries


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def verify_export(model: ZooModel, path: Path, seed: int = 0) -> tuple[float, float]:
    """Load, check and run an exported file against PyTorch.

    Rebuilds the torch model with the seed used by the export, so the weights match. Returns the
    max abs difference of the logits and the max abs value of the PyTorch logits (their scale).
    """
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    onnx_model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(str(path))  # by path: works above 2 GB too
    assert [i.name for i in onnx_model.graph.input] == ["input"], "input must be named 'input'"
    assert [o.name for o in onnx_model.graph.output] == ["logits"], "output must be 'logits'"
    x = torch.randn(1, *model.input_size, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        expected = build_model(model.source, model.name, model.input_size, seed)(x).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"input": x.numpy()})
    return float(np.max(np.abs(actual - expected))), float(np.max(np.abs(expected)))


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> None:
    models = select(all_models(), args.only, args.limit)
    for m in models:
        size = "x".join(map(str, m.input_size))
        print(f"{m.source:12s} {m.family:18s} {m.name:34s} {size:12s} {m.params_m:9.2f}M")
    print()
    for source, count in collections.Counter(m.source for m in models).items():
        families = collections.Counter(m.family for m in models if m.source == source)
        print(f"{source}: {count} models, {len(families)} families")
        print("  " + ", ".join(f"{fam} {n}" for fam, n in sorted(families.items())))
    print(f"total: {len(models)}")


def _cmd_export(args: argparse.Namespace) -> None:
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    try:
        seconds = _export_in_process(
            args.source, args.name, args.exporter, Path(args.out), args.input_size, args.opset
        )
    except Exception as exc:
        # Exporter messages can span many lines (TorchScript graph dumps): report the first.
        message = (str(exc).strip().splitlines() or [""])[0][:500]
        summary = f"{type(exc).__module__}.{type(exc).__qualname__}: {message}"
        print(_RESULT_MARKER + json.dumps({"error": summary}), flush=True)
        raise
    print(_RESULT_MARKER + json.dumps({"seconds": seconds}), flush=True)


def _cmd_export_all(args: argparse.Namespace) -> None:
    models = select(all_models(), args.only, args.limit)
    print(f"exporting {len(models)} models with the {args.exporter} exporter", flush=True)
    start = time.perf_counter()
    entries = export_all(
        models, args.exporter, Path(args.out), args.opset, args.timeout, args.skip_failed
    )
    done = [entries[m.key] for m in models if m.key in entries]
    ok = [e for e in done if e["ok"]]
    print(
        f"done in {time.perf_counter() - start:.0f} s: {len(ok)} ok, {len(done) - len(ok)} failed",
        flush=True,
    )


def _cmd_verify(args: argparse.Namespace) -> None:
    warnings.filterwarnings("ignore")
    target = Path(args.out).resolve() / args.exporter
    failures = 0
    for model in select(all_models(), args.only, args.limit):
        path = target / f"{model.key}.onnx"
        if not path.exists():
            continue
        try:
            diff, scale = verify_export(model, path)
            good = diff < args.atol + args.rtol * scale and scale > 1e-6
            message = f"max abs diff {diff:.2e} (logits up to {scale:.3g})"
            if scale <= 1e-6:
                message += ": degenerate logits, the comparison proves nothing"
        except Exception as exc:
            good, message = False, f"{type(exc).__name__}: {exc}".splitlines()[0]
        failures += not good
        print(f"{model.key}: {'ok' if good else 'MISMATCH'} {message}", flush=True)
    sys.exit(1 if failures else 0)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.zoo``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.zoo", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--only", help="regular expression on '<source>__<name>'")
        p.add_argument("--limit", type=int, help="at most N models (after --only)")

    p = sub.add_parser("list", help="print the model list with counts per source and family")
    add_selection(p)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("export", help="export one model in this process (used by export-all)")
    p.add_argument("--source", required=True, choices=("torchvision", "timm"))
    p.add_argument("--name", required=True)
    p.add_argument("--exporter", required=True, choices=EXPORTERS)
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--input-size", type=int, nargs=3, default=list(DEFAULT_INPUT_SIZE))
    p.add_argument("--opset", type=int)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("export-all", help="export the zoo sequentially, one subprocess per model")
    p.add_argument("--exporter", required=True, choices=EXPORTERS)
    p.add_argument("--out", required=True, help="cache directory; files go to OUT/<exporter>/")
    p.add_argument("--opset", type=int)
    p.add_argument("--timeout", type=int, default=600, help="seconds per model")
    p.add_argument("--skip-failed", action="store_true", help="do not retry logged failures")
    add_selection(p)
    p.set_defaults(func=_cmd_export_all)

    p = sub.add_parser("verify", help="check exported files against PyTorch with onnxruntime")
    p.add_argument("--exporter", required=True, choices=EXPORTERS)
    p.add_argument("--out", required=True)
    p.add_argument("--atol", type=float, default=1e-3)
    p.add_argument("--rtol", type=float, default=0.0, help="tolerance relative to the logit scale")
    add_selection(p)
    p.set_defaults(func=_cmd_verify)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
