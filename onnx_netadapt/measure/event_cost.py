"""What a runtime costs per node and per run, apart from the work: read off a chain of tiny nodes.

A runtime's profile gives each node its kernel time, and a node that does almost no work still
shows a few microseconds there: the executor's dispatch and the profiler's own bookkeeping
(ONNX Runtime reports whole microseconds; on this project's machine 2.0 us per node of
``event_chain_model``, of which a plain run spends 0.25 us). A network's measured time is its
nodes' work, their dispatch and the run call's own cost (binding inputs and outputs, about 4 us
here), so the difference between the measured time and the sum of a profile, the "constant
overhead" of ``calibration.py``, is that call cost minus the profiler's share of every profiled
node: about -0.35 ms for EfficientNet-B0's 200 profiled nodes.

``measure_node_costs`` times a short and a long chain of tiny nodes, profiled and plain, in one
session each (``Runner.profile_network``), and returns the three costs; ``model_overhead_ms``
predicts a network's constant overhead from them and the number of nodes its profile names.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_netadapt.measure.runner import Runner

SHORT_CHAIN, LONG_CHAIN = 3, 33
CHAIN_SHAPE = (1, 8, 2, 2)
CHAIN_OPSET = 17
PREFIX = "event"


class NodeCosts(NamedTuple):
    """A runtime's costs apart from the work (ms).

    Attributes:
        profiled_ms: what its profile reports for a node that does almost nothing.
        node_ms: what such a node adds to a plain (unprofiled) run; None where the runner
            does not time its profiled sessions (``NetworkProfile.run_ms``).
        call_ms: a plain run's own cost, without nodes; None likewise.
    """

    profiled_ms: float
    node_ms: float | None = None
    call_ms: float | None = None


def event_chain_model(nodes: int = LONG_CHAIN) -> onnx.ModelProto:
    """A chain of ``nodes`` tiny nodes named ``event0``, ``event1``...: in turn a Relu, a Mul by
    a per-channel constant (broadcast) and an Add of the input (the kinds of node a network's
    other units hold; unary ones show less fixed cost than binary ones, 1.4 against 2.0 us
    here), on a tensor of 32 elements. No runtime fuses or removes them.

    >>> [n.op_type for n in event_chain_model(4).graph.node]
    ['Relu', 'Mul', 'Add', 'Relu']
    """
    channels = CHAIN_SHAPE[1]
    scale = numpy_helper.from_array(np.ones((1, channels, 1, 1), np.float32), "scale")
    chain, previous = [], "x"
    for i in range(nodes):
        inputs = {0: [previous], 1: [previous, "scale"], 2: [previous, "x"]}[i % 3]
        op = ("Relu", "Mul", "Add")[i % 3]
        chain.append(helper.make_node(op, inputs, [f"t{i}"], name=f"{PREFIX}{i}"))
        previous = f"t{i}"
    graph = helper.make_graph(
        chain,
        "event_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(CHAIN_SHAPE))],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, list(CHAIN_SHAPE))],
        [scale],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", CHAIN_OPSET)])
    model.ir_version = 8
    return model


def measure_node_costs(runner: Runner) -> NodeCosts:
    """The costs of ``NodeCosts`` on ``runner``: the long chain's mean profiled time per node,
    and from the plain run times of the short and the long chain, the time per node (their
    slope) and per run (their intercept). Raises what ``runner.profile_network`` raises."""
    short = runner.profile_network(event_chain_model(SHORT_CHAIN))
    long = runner.profile_network(event_chain_model(LONG_CHAIN))
    times = [ms for name, ms in long.layers.items() if name.startswith(PREFIX)]
    profiled = sum(times) / LONG_CHAIN if times else 0.0
    if short.run_ms is None or long.run_ms is None:
        return NodeCosts(profiled)
    node = max(0.0, (long.run_ms - short.run_ms) / (LONG_CHAIN - SHORT_CHAIN))
    call = max(0.0, short.run_ms - SHORT_CHAIN * node)
    return NodeCosts(profiled, node, call)


def median_costs(costs: list[NodeCosts]) -> NodeCosts | None:
    """Field by field median of ``costs`` (None: none; a None field where any is None)."""
    if not costs:
        return None
    fields = []
    for values in zip(*costs, strict=True):
        known = [v for v in values if v is not None]
        fields.append(float(np.median(known)) if len(known) == len(values) else None)
    return NodeCosts(*fields)


def model_overhead_ms(costs: NodeCosts | None, nodes: int) -> float | None:
    """A network's constant overhead (measured minus the sum of its profile) as the run call's
    cost plus, per profiled node, what a plain run spends on it beyond its work less what the
    profile reports beyond it; None where the runner gave no plain run times.

    >>> model_overhead_ms(NodeCosts(0.002, 0.00025, 0.004), 200)
    -0.346
    """
    if costs is None or costs.node_ms is None or costs.call_ms is None:
        return None
    return round(costs.call_ms + nodes * (costs.node_ms - costs.profiled_ms), 12)
