"""Test models that older ONNX Runtimes can read.

``onnx.helper.make_model`` stamps the newest IR version this onnx knows (14 with onnx 1.23),
which ONNX Runtime 1.30 (still common in deployment and CUDA images) refuses. Every model a
test builds goes through ``make_model`` here, which stamps the oldest IR version its opsets need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx
from onnx import helper

# The newest IR version ONNX Runtime 1.18 reads; no test model needs more.
MAX_TEST_IR_VERSION = 10


def make_model(
    graph: onnx.GraphProto, opset_imports: Sequence[onnx.OperatorSetIdProto], **kwargs: Any
) -> onnx.ModelProto:
    """``helper.make_model`` with the oldest IR version that ``opset_imports`` allow."""
    model = helper.make_model(graph, opset_imports=list(opset_imports), **kwargs)
    model.ir_version = helper.find_min_ir_version_for(list(opset_imports), ignore_unknown=True)
    return model
