"""Engines: device plans, a worker lost mid-iteration, Ray picking what local picks."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from adapt_models import build_tiny_digits, tiny_digits_config
from ray_procs import ray_pids

from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget
from onnx_netadapt.adapt.proposals import EvalContext, ProposalJob, TrainPlan, evaluate_proposal
from onnx_netadapt.data import load_data
from onnx_netadapt.engines import make_engine, plan_devices
from onnx_netadapt.engines.base import EngineError
from onnx_netadapt.engines.devices import DeviceError
from onnx_netadapt.graph.save import save_model
from onnx_netadapt.prune.apply import prune


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_digits(tmp_path_factory.mktemp("tiny") / "tiny.onnx", epochs=2)


def test_device_plans() -> None:
    assert plan_devices("cpu", workers=3).devices == ("cpu", "cpu", "cpu")
    assert plan_devices("auto", gpus=0, workers=2).devices == ("cpu", "cpu")
    assert plan_devices("auto", gpus=2).devices == ("cuda:0", "cuda:1")  # one worker per GPU
    assert plan_devices("cuda", gpus=2, workers=3).devices == ("cuda:0", "cuda:1", "cuda:0")
    assert plan_devices("cuda:1", gpus=2).devices == ("cuda:1",)
    assert plan_devices("cpu", threads=1).workers >= 1  # fills the cores by default
    with pytest.raises(DeviceError, match="sees 0 CUDA"):
        plan_devices("cuda", gpus=0)
    with pytest.raises(DeviceError, match="sees 2 CUDA"):
        plan_devices("cuda:2", gpus=2)
    with pytest.raises(DeviceError, match="unknown --device"):
        plan_devices("tpu")
    with pytest.raises(EngineError, match="unknown engine"):
        make_engine("spark", plan_devices("cpu", workers=1))


def _jobs(tiny: Path, folder: Path, steps: int) -> tuple[EvalContext, list[ProposalJob], bytes]:
    """Three proposals of the tiny network, as the loop makes them from its current network."""
    from onnx_netadapt.channels.analysis import analyse
    from onnx_netadapt.graph.load import load_model

    data = load_data("digits", (1, 1, 8, 8), holdout_per_class=5, num_classes=10)
    plan = TrainPlan(steps=steps, batch_size=32, optimizer="sgd", lr=0.01, distill=0.0, threads=1)
    current = load_model(tiny, {"image": (1, 1, 8, 8)}).model.SerializeToString()
    analysis = analyse(load_model(current, fold=False))
    jobs = []
    for group in [g for g in analysis.groups if g.prunable][:3]:
        units = max(1, group.units // 2)
        model = prune(analysis, {group.id: units}, check=False).model
        path = save_model(model, folder / f"group_{group.id}.onnx")
        jobs.append(ProposalJob(group.id, str(path), 1000 + group.id, units))
    return EvalContext(data, plan), jobs, current


def _kill_one_when_busy(find_pids, killed: list[int]) -> threading.Thread:
    """Kill (SIGKILL) the first worker that ``find_pids`` reports, once."""

    def run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = find_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_local_engine_reruns_the_proposals_of_a_killed_worker(tiny: Path, tmp_path: Path) -> None:
    ctx, jobs, _ = _jobs(tiny, tmp_path, steps=150)
    expected = _in_process(ctx, jobs, tmp_path / "ref")
    killed: list[int] = []
    with make_engine("local", plan_devices("cpu", workers=2)) as engine:
        engine.start(ctx)
        killer = _kill_one_when_busy(lambda: engine.worker_pids, killed)
        scores = engine.evaluate(jobs, b"", None)
        killer.join(timeout=1)
    assert killed, "no worker was killed: the test did not exercise the retry"
    assert [s.error for s in scores] == [None] * len(jobs)  # none dropped or failed
    assert [s.holdout_accuracy for s in scores] == [s.holdout_accuracy for s in expected]
    deadline = time.monotonic() + 10
    while _spawned_children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _spawned_children(), "a worker of the broken pool outlived the engine"


def test_local_engine_recovers_from_a_worker_killed_between_iterations(
    tiny: Path, tmp_path: Path
) -> None:
    """An idle worker may die holding the pool's call-queue lock: the next iteration must
    neither hang on it nor lose a proposal."""
    ctx, first_jobs, _ = _jobs(tiny, tmp_path, steps=20)
    (tmp_path / "next").mkdir()
    _, next_jobs, _ = _jobs(tiny, tmp_path / "next", steps=20)  # the same proposals, new files
    expected = _in_process(ctx, first_jobs, tmp_path / "ref")
    scores: dict[str, list] = {}

    def two_iterations() -> None:
        with make_engine("local", plan_devices("cpu", workers=2)) as engine:
            engine.start(ctx)
            scores["first"] = engine.evaluate(first_jobs, b"", None)
            os.kill(engine.worker_pids[0], signal.SIGKILL)  # idle, between iterations
            time.sleep(0.5)
            scores["next"] = engine.evaluate(next_jobs, b"", None)

    thread = threading.Thread(target=two_iterations, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the iteration after the kill hung"
    want = [s.holdout_accuracy for s in expected]
    assert [s.holdout_accuracy for s in scores["first"]] == want
    assert [s.holdout_accuracy for s in scores["next"]] == want
    assert [s.error for s in scores["next"]] == [None] * len(next_jobs)


def _spawned_children() -> list[int]:
    """Live multiprocessing workers started by this process (a stray one blocks its exit)."""
    me, found = str(os.getpid()), []
    for entry in Path("/proc").iterdir():
        try:
            ppid, state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1::-1][:2]
            if ppid == me and state != "Z" and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def _in_process(ctx: EvalContext, jobs: list[ProposalJob], folder: Path) -> list:
    """The scores of ``jobs`` evaluated here, one after the other, on copies of their files."""
    return [
        evaluate_proposal(ProposalJob(j.group_id, _copy(j.path, folder), j.seed), ctx) for j in jobs
    ]


def _copy(path: str, folder: Path) -> str:
    folder.mkdir(exist_ok=True)
    target = folder / Path(path).name
    target.write_bytes(Path(path).read_bytes())
    return str(target)


def test_ray_engine_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    engine = make_engine("ray", plan_devices("cpu", workers=1))
    with pytest.raises(EngineError, match=r"onnx-netadapt\[cluster\]"):
        engine.start(EvalContext(None, None))  # type: ignore[arg-type]


ray = pytest.importorskip("ray")


def _ray_task_pids() -> list[int]:
    """Ray worker processes running a proposal."""
    return ray_pids(b"ray::_evaluate_task")


def _config(**overrides: object) -> AdaptConfig:
    settings = {"budgets": [parse_budget("0.75")], "step": 0.2, "short_steps": 6}
    return tiny_digits_config(**{**settings, "long_epochs": 0, **overrides})


def test_ray_engine_picks_what_the_local_engine_picks(tiny: Path, tmp_path: Path) -> None:
    adapt_model(tiny, _config(workers=1), tmp_path / "local")
    adapt_model(tiny, _config(workers=2, engine="ray"), tmp_path / "ray")
    local = json.loads((tmp_path / "local" / "history.json").read_text())["history"]
    remote = json.loads((tmp_path / "ray" / "history.json").read_text())["history"]
    assert len(local) == len(remote) >= 2
    for a, b in zip(local[1:], remote[1:], strict=True):
        assert a["group"] == b["group"]
        assert [p["holdout_accuracy"] for p in a["proposals"]] == [
            p["holdout_accuracy"] for p in b["proposals"]
        ]
    assert not ray.is_initialized()  # the engine stopped the instance it started


def test_ray_engine_retries_a_proposal_whose_worker_is_killed(tiny: Path, tmp_path: Path) -> None:
    ctx, jobs, current = _jobs(tiny, tmp_path, steps=150)
    expected = _in_process(ctx, jobs, tmp_path / "ref")
    killed: list[int] = []
    with make_engine("ray", plan_devices("cpu", workers=2)) as engine:
        engine.start(ctx)
        killer = _kill_one_when_busy(_ray_task_pids, killed)
        scores = engine.evaluate(jobs, current, None)
        killer.join(timeout=1)
    assert killed, "no Ray worker was killed: the test did not exercise the retry"
    assert [s.error for s in scores] == [None] * len(jobs)
    assert [s.holdout_accuracy for s in scores] == [s.holdout_accuracy for s in expected]
