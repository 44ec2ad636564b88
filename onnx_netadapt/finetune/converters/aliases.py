"""Versions that only widened the accepted types: served by onnx2torch's converter of the
previous version."""

from __future__ import annotations

from onnx_netadapt.finetune.converters._registry import add, delegate, has_converter

# (op type, new version, onnx2torch version whose converter serves it)
ALIASES = (
    ("Cast", 19, 13),
    ("Cast", 21, 13),
    ("Constant", 19, 13),
    ("Constant", 21, 13),
    ("ConstantOfShape", 20, 9),
    ("ConstantOfShape", 21, 9),
    ("Equal", 19, 13),
    ("Flatten", 21, 13),
    ("GreaterOrEqual", 16, 12),
    ("LessOrEqual", 16, 12),
    ("Identity", 19, 16),
    ("Identity", 21, 16),
    ("IsInf", 20, 10),
    ("IsNaN", 20, 13),
    ("ScatterND", 18, 16),
    ("Shape", 19, 15),
    ("Shape", 21, 15),
    ("Transpose", 21, 13),
    ("Unsqueeze", 21, 13),
)

for _op, _version, _served_by in ALIASES:
    if has_converter(_op, _served_by):
        add(_op, _version, delegate(_op, _served_by))
