"""Command-line options that several commands share (``inspect``, ``prune``, ``adapt``...)."""

from __future__ import annotations

import click

from onnx_netadapt.channels.context import ATTENTION_UNITS, DEFAULT_ATTENTION_UNITS

input_shape_option = click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="NAME:D1,D2,...",
    help="Static shape of a model input with dynamic dimensions (repeatable).",
)

attention_units_option = click.option(
    "--attention-units",
    type=click.Choice(ATTENTION_UNITS),
    default=DEFAULT_ATTENTION_UNITS,
    show_default=True,
    help="Prune multi-head attention by whole heads, or by the same dimensions of every head.",
)
