"""Feeds for a model's inputs, and one ONNX Runtime run that reads any of its tensors.

``random_inputs`` feeds the oracle and the ORT runner; ``run_on_zeros`` is the probe that
completes the shapes ONNX shape inference leaves open (``graph/shapes.py`` before analysis,
``finetune/convert.py`` before conversion).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from onnx_netadapt.graph.large import ort_session
from onnx_netadapt.graph.ops import numpy_dtype
from onnx_netadapt.graph.shapes import is_static_dim, static_dims


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Random feeds for every graph input (a dynamic dim, declared or -1/0, is fed as 1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value if is_static_dim(d) else 1 for d in vi.type.tensor_type.shape.dim]
        dtype = numpy_dtype(vi.type.tensor_type.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[vi.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds


def run_on_zeros(model: onnx.ModelProto, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The values of tensors ``names`` in one ONNX Runtime run of ``model`` on zero inputs.

    The run has every graph optimisation off (the tensors keep their names); ``model`` is not
    changed. Raises whatever ONNX Runtime raises (e.g. on an op it does not know), and
    ``ValueError`` when an input has no static shape.
    """
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort_session(probe, options, ["CPUExecutionProvider"])
    inputs = {vi.name: vi for vi in model.graph.input}
    feeds = {}
    for inp in session.get_inputs():
        vi = inputs[inp.name]
        dims = static_dims(vi.type)
        if dims is None:
            raise ValueError(f"input {inp.name!r} has no static shape")
        feeds[inp.name] = np.zeros(dims, dtype=numpy_dtype(vi.type.tensor_type.elem_type))
    wanted = list(dict.fromkeys(names))
    return dict(zip(wanted, session.run(wanted, feeds), strict=True))
