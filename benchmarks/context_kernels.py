"""In-context kernel times of a network's layers beside their in-network times, probed again.

The 'profile' estimate reads each layer's change off its in-context kernel entry (the layer
between two 1x1 convs, ``measure/kernels.py``). On the shared host, MobileNetV1 Paddle's first
depthwise conv had entries of 0.207-0.245 ms in some fidelity runs' tables and 0.141 ms in a
run of that case alone, while the network's own profile took about the same time. This
probes, in one process, the in-context kernel time of a few layers (the median of
``--profiles`` profiles, each in a fresh session) and the same layers' in-network times (one
network profile), several times: fresh, then after running another network (``--between``,
as the fidelity benchmark runs its cases one after another in one process). Medians of the
probes only; measures for about two minutes.

    python -m benchmarks.context_kernels mobilenet_v1:paddle --between resnet50:nhwc \\
        --out benchmarks/results/latency_fidelity/noisy_host --name context_kernels_s20
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import onnx

from benchmarks.fidelity_layouts import load_case, parse_cases
from benchmarks.latency_fidelity import LAYER, WHOLE
from benchmarks.record import run_header, save_results
from onnx_netadapt import analyse, prune
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.measure.kernels import KernelRunner, context_layer_model
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.signature import model_signatures

# MobileNetV1's stem conv, two depthwise convs and a 1x1 conv (its node names' second-last part)
DEFAULT_LAYERS = "features.0.0,features.1.0,features.3.0,features.6.0"


def load_spec(spec: str) -> LoadedModel:
    """The network of one ``arch:layout`` (``fidelity_layouts.load_case``)."""
    ((arch, layout),) = parse_cases(spec)
    return load_case(arch, layout)


def probe(
    kernels: KernelRunner, network: LoadedModel, layers: dict[str, onnx.ModelProto], profiles: int
) -> dict:
    """Each layer's in-context kernel time (median of ``profiles``, ms) and its in-network
    time in one profile of ``network`` taken right after."""
    context = {
        name: statistics.median(kernels.profile_kernel(model) for _ in range(profiles))
        for name, model in layers.items()
    }
    in_network = kernels.runner.profile_layers(network.model)
    return {
        name: {"context_ms": ms, "network_ms": in_network.get(name)} for name, ms in context.items()
    }


def run_other(runner, spec: str) -> float:
    """Run ``spec``'s network as a fidelity case does (whole, profiled, a pruning by turns);
    the seconds it took."""
    start = time.perf_counter()
    other = load_spec(spec)
    runner.settings = WHOLE
    for _ in range(3):
        runner.measure(other.model)
    runner.measure_alternating([other.model, prune(analyse(other), ratio=0.3).model])
    runner.settings = LAYER
    for _ in range(3):
        runner.profile_layers(other.model)
    return time.perf_counter() - start


def run(case: str, between: str, layer_names: list[str], profiles: int, repeats: int) -> dict:
    """Probes fresh, then after ``between`` ran, ``repeats`` times each."""
    network = load_spec(case)
    signatures = model_signatures(network)
    chosen = [n for n in signatures if n.split("/")[-2] in layer_names]
    layers = {n: context_layer_model(signatures[n]) for n in chosen}
    probes = []
    with make_runner("ort", threads=1) as runner:
        runner.settings = LAYER
        kernels = KernelRunner(runner)
        for i in range(repeats):
            probes.append(
                {"when": f"fresh {i + 1}", "layers": probe(kernels, network, layers, profiles)}
            )
        seconds = run_other(runner, between)
        for i in range(repeats):
            probes.append(
                {
                    "when": f"after {between} {i + 1}",
                    "layers": probe(kernels, network, layers, profiles),
                }
            )
    return {
        "case": case,
        "between": between,
        "between_seconds": seconds,
        "profiles": profiles,
        "probes": probes,
    }


def report(results: dict) -> str:
    """Markdown: per probe, each layer's in-context and in-network time."""
    names = list(results["probes"][0]["layers"])
    short = [n.split("/")[-2] for n in names]
    lines = [
        f"# In-context kernel times beside in-network times: {results['case']}",
        "",
        f"`{results['command']}` ({results['cpu']}, {results['date']}). Each cell: in-context "
        f"kernel time (median of {results['profiles']} profiles, each a fresh session) / the "
        f"same layer's time in one network profile right after, ms. Between the probes marked "
        f"'after', {results['between']} ran ({results['between_seconds']:.0f} s).",
        "",
        "| probe | " + " | ".join(short) + " |",
        "|---|" + "---|" * len(short),
    ]
    for p in results["probes"]:
        cells = [_cell(p["layers"][n]) for n in names]
        lines.append(f"| {p['when']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(layer: dict) -> str:
    """``context / network`` ms ("-" for a layer the network profile did not name)."""
    network = layer["network_ms"]
    return f"{layer['context_ms']:.3f} / " + ("-" if network is None else f"{network:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", default="mobilenet_v1:paddle", help="arch:layout")
    parser.add_argument("--between", default="resnet50:nhwc", help="arch:layout run between")
    parser.add_argument("--layers", default=DEFAULT_LAYERS, help="node names' second-last parts")
    parser.add_argument("--profiles", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latency_fidelity"))
    parser.add_argument("--name", default="context_kernels")
    args = parser.parse_args(argv)
    results = run_header("context_kernels", argv) | run(
        args.case, args.between, args.layers.split(","), args.profiles, args.repeats
    )
    print(save_results(results, report, args.out, args.name))


if __name__ == "__main__":
    main()
