"""A Ray node lost in the middle of an iteration, on a real multi-node Ray cluster.

``ray.cluster_utils.Cluster`` starts real raylets (one per node) on this machine: the head holds
no CPU, so every proposal runs on a worker node; the test removes that node while proposals
run on it (its raylet and workers die, as when a machine goes away) and adds another. The
proposals must be rerun on the new node and score what they score in one process, or, past the
retries, stop the run with a clear message.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray
from adapt_models import build_tiny_digits
from ray.cluster_utils import Cluster
from test_engines import _in_process, _jobs, _ray_task_pids

from onnx_netadapt.engines import plan_devices
from onnx_netadapt.engines.base import EngineError
from onnx_netadapt.engines.ray_cluster import RayEngine


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_digits(tmp_path_factory.mktemp("tiny") / "tiny.onnx", epochs=2)


@pytest.fixture()
def cluster() -> Any:
    """A head without CPUs and one worker node of 2 CPUs."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def _evaluate_in_a_thread(engine: RayEngine, jobs: list, current: bytes) -> tuple:
    """``engine.evaluate`` in a thread (Ray adds nodes from the main thread only); the
    thread and a dict that receives its scores or its error."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["scores"] = engine.evaluate(jobs, current, None)
        except Exception as exc:  # handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _lose_the_node_when_busy(cluster: Any) -> str:
    """Remove the worker node once a proposal runs on it, then add a new one; the lost id."""
    deadline = time.monotonic() + 120
    while not _ray_task_pids():
        assert time.monotonic() < deadline, "no proposal started on the worker node"
        time.sleep(0.2)
    node = next(iter(cluster.worker_nodes))
    cluster.remove_node(node, allow_graceful=False)
    cluster.add_node(num_cpus=2)
    return node.unique_id


def test_proposals_of_a_lost_node_are_rerun_on_another(
    tiny: Path, tmp_path: Path, cluster: Any
) -> None:
    ctx, jobs, current = _jobs(tiny, tmp_path, steps=150)
    expected = _in_process(ctx, jobs, tmp_path / "ref")
    with RayEngine(plan_devices("cpu", workers=2), cluster.address) as engine:
        engine.start(ctx)
        thread, out = _evaluate_in_a_thread(engine, jobs, current)
        lost = _lose_the_node_when_busy(cluster)
        thread.join(timeout=300)
    assert lost not in {n.unique_id for n in cluster.worker_nodes}
    assert "error" not in out, out.get("error")
    scores = out["scores"]
    assert [s.error for s in scores] == [None] * len(jobs)  # none dropped or scored as failed
    assert [s.holdout_accuracy for s in scores] == [s.holdout_accuracy for s in expected]


def test_a_node_lost_past_the_retries_stops_with_a_clear_message(
    tiny: Path, tmp_path: Path, cluster: Any
) -> None:
    ctx, jobs, current = _jobs(tiny, tmp_path, steps=150)
    with RayEngine(plan_devices("cpu", workers=2), cluster.address, retries=0) as engine:
        engine.start(ctx)
        thread, out = _evaluate_in_a_thread(engine, jobs, current)
        _lose_the_node_when_busy(cluster)
        thread.join(timeout=300)
    assert isinstance(out.get("error"), EngineError), out
    assert "lost its Ray worker 1 times" in str(out["error"])
