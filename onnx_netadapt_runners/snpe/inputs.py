"""Network inputs for snpe-net-run: raw float32 files and the input list naming them.

snpe-net-run reads each input as raw bytes in the DLC's layout; the ONNX converter turns NCHW
image inputs into NHWC ("In SNPE, the image must be presented as a tensor of shape (batch x
height x width x channel)", SNPE reference guide, "Input Image Formatting":
https://developer.qualcomm.com/sites/default/files/docs/snpe/image_input.html). The input list
holds one line per inference: the raw file's path, or ``name:=path`` entries separated by spaces
for several inputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from onnx_netadapt.measure.runner import RunnerError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """One network input: its name and static ONNX shape (NCHW for images)."""

    name: str
    shape: tuple[int, ...]
    symbolic: bool = False

    @property
    def snpe_shape(self) -> tuple[int, ...]:
        """The shape SNPE expects: channels last for 4-D (NCHW) and 5-D (NCDHW) inputs."""
        if len(self.shape) in (4, 5):
            return (self.shape[0], *self.shape[2:], self.shape[1])
        return self.shape

    def converter_dim(self) -> str:
        """The shape as ``snpe-onnx-to-dlc -d NAME DIMS`` wants it ("1,3,224,224")."""
        return ",".join(str(d) for d in self.shape)


def input_specs(model: onnx.ModelProto) -> list[InputSpec]:
    """The graph inputs that are not initializers; a symbolic batch dimension becomes 1.

    Raises:
        RunnerError: an input is not float32 or has another dynamic dimension.
    """
    initializers = {init.name for init in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            raise RunnerError(
                f"input {value.name!r} is {onnx.TensorProto.DataType.Name(tensor.elem_type)}; "
                "the SNPE runner feeds float32 inputs only (measure a float32 export)"
            )
        dims, symbolic = [], False
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                dims.append(int(dim.dim_value))
            elif axis == 0:
                dims.append(1)
                symbolic = True
            else:
                raise RunnerError(
                    f"input {value.name!r} has a dynamic dimension {axis} "
                    f"({dim.dim_param or '?'}); SNPE needs static shapes: export with fixed "
                    "sizes (or fix them with python -m onnxruntime.tools.make_dynamic_shape_fixed)"
                )
        specs.append(InputSpec(value.name, tuple(dims), symbolic))
    if not specs:
        raise RunnerError("the model has no graph inputs to feed")
    return specs


def write_raw_inputs(specs: list[InputSpec], directory: Path, seed: int = 0) -> list[Path]:
    """One random float32 raw file per input, in SNPE's layout (little-endian, C order)."""
    rng = np.random.default_rng(seed)
    paths = []
    for index, spec in enumerate(specs):
        path = directory / f"input_{index}.raw"
        rng.standard_normal(spec.snpe_shape).astype("<f4").tofile(path)
        paths.append(path)
    return paths


def input_list_text(specs: list[InputSpec], device_paths: list[str], repeats: int) -> str:
    """The input list: ``repeats`` lines, each naming every input's raw file on the device."""
    if len(specs) == 1:
        line = device_paths[0]
    else:
        line = " ".join(f"{s.name}:={p}" for s, p in zip(specs, device_paths, strict=True))
    return "".join(f"{line}\n" for _ in range(repeats))
