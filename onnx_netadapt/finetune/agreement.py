"""Do ONNX Runtime and the converted torch module agree? Run both on the same inputs.

``check_agreement`` compares them after fine-tuning (and the write-back,
:mod:`onnx_netadapt.finetune.writeback`); ``run_onnx`` and ``run_torch`` give each one's outputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from onnx_netadapt.errors import FineTuneError


def check_agreement(
    model: onnx.ModelProto,
    module: nn.Module,
    x: np.ndarray | dict[str, np.ndarray],
    rtol: float = 1e-3,
    atol: float = 1e-3,
) -> float:
    """Run ONNX Runtime and the torch module (eval mode) on ``x`` (a dict by input name for
    several inputs); return the max abs difference.

    The tolerance is ``atol * max(1, max|ref|) + rtol * |ref|`` per output. Raises
    ``FineTuneError`` when they disagree.
    """
    reference = run_onnx(model, x)
    got = run_torch(module, x)
    if len(got) != len(reference):
        raise FineTuneError(
            f"ONNX Runtime gives {len(reference)} outputs, the torch module {len(got)}"
        )
    worst = 0.0
    for ref, out, vi in zip(reference, got, model.graph.output, strict=True):
        ref = np.asarray(ref, dtype=np.float64)
        out = np.asarray(out, dtype=np.float64).reshape(ref.shape)
        diff = float(np.max(np.abs(out - ref))) if ref.size else 0.0
        worst = max(worst, diff)
        limit = atol * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        if np.any(np.abs(out - ref) > limit + rtol * np.abs(ref)):
            raise FineTuneError(
                f"after fine-tuning, ONNX Runtime and PyTorch disagree on output {vi.name!r}: "
                f"max abs difference {diff:.3g} (tolerance {limit:.3g}). A converter or the "
                "write-back does not match ONNX semantics for some op of this model; run with "
                "--steps 0 to skip fine-tuning, and report the model."
            )
    return worst


def feeds(model: onnx.ModelProto, x: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays by graph input name: ``x`` itself when a dict, else fed to the only input."""
    weights = {init.name for init in model.graph.initializer}
    names = [vi.name for vi in model.graph.input if vi.name not in weights]
    if isinstance(x, dict):
        missing = [n for n in names if n not in x]
        if missing:
            raise FineTuneError(f"no data for the model inputs {missing} (given: {list(x)})")
        return {n: np.asarray(x[n]) for n in names}
    if len(names) != 1:
        raise FineTuneError(
            f"the model has {len(names)} inputs ({', '.join(names)}): give one array per input, "
            "as a dict by name"
        )
    return {names[0]: np.asarray(x)}


def run_onnx(model: onnx.ModelProto, x: np.ndarray | dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of ``model`` on ``x`` with ONNX Runtime (CPU), in chunks of its static batch."""
    import onnxruntime as ort

    from onnx_netadapt.graph.large import ort_session
    from onnx_netadapt.graph.shapes import static_dims

    fed = feeds(model, x)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort_session(model, options, ["CPUExecutionProvider"])
    by_name = {vi.name: vi for vi in model.graph.input}
    dims = static_dims(by_name[next(iter(fed))].type)
    count = len(next(iter(fed.values())))
    chunk = dims[0] if dims and dims[0] > 0 else count
    if count % chunk:  # complete the last chunk with copies of the first examples
        padded = np.arange(count + chunk - count % chunk) % count
        fed = {n: np.take(v, padded, axis=0) for n, v in fed.items()}
    total = len(next(iter(fed.values())))
    parts = [
        session.run(None, {n: v[i : i + chunk] for n, v in fed.items()})
        for i in range(0, total, chunk)
    ]
    return [np.concatenate([p[k] for p in parts])[:count] for k in range(len(parts[0]))]


def run_torch(module: nn.Module, x: np.ndarray | dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of ``module`` in eval mode on ``x`` (on the module's device), as numpy arrays."""
    was_training = module.training
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    arrays = list(x.values()) if isinstance(x, dict) else [x]
    tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]
    module.eval()
    try:
        with torch.no_grad():
            out = module(*tensors)
    except (RuntimeError, NotImplementedError, ValueError, IndexError, TypeError) as exc:
        shapes = [tuple(a.shape) for a in arrays]
        raise FineTuneError(
            f"the converted model fails on inputs of shape {', '.join(map(str, shapes))} "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        module.train(was_training)
    return [t.detach().cpu().numpy() for t in flatten_outputs(out)]


def flatten_outputs(out) -> list[torch.Tensor]:
    """The module's outputs as a flat list of tensors (graph output order)."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for item in out for t in flatten_outputs(item)]
