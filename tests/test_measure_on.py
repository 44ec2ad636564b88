"""--measure-on: the target runner in a Ray actor on the node that declares a custom resource.

One real local Ray instance (2 CPUs, declaring ``device:fake``) is shared by the module.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
from adapt_models import build_tiny_digits, read_history, tiny_digits_config
from click.testing import CliRunner
from models import CASES
from ray_procs import ray_pids

from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget
from onnx_netadapt.cli import main
from onnx_netadapt.engines import ray_runner
from onnx_netadapt.engines.base import EngineError
from onnx_netadapt.engines.ray_runner import RemoteRunner, resolve_resource
from onnx_netadapt.errors import UsageError
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.measure.registry import make_runner
from onnx_netadapt.measure.runner import ProfileUnsupported, RunnerUnavailable
from onnx_netadapt.measure.signature import model_signatures

DEVICE = "device:fake"
ACTOR = b"ray::RunnerHost"


def _config(**overrides: object) -> AdaptConfig:
    """A run of two or three iterations on the tiny network, MACs as the exact target."""
    settings = {"budgets": [parse_budget("0.75")], "step": 0.2, "short_steps": 6}
    return tiny_digits_config(**{**settings, "long_epochs": 0, "engine": "ray", **overrides})


def test_measure_on_needs_the_ray_engine(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="add --engine ray"):
        _config(engine="local", measure_on=DEVICE).validate()
    with pytest.raises(UsageError, match="custom Ray resource"):
        _config(measure_on="CPU").validate()
    model = tmp_path / "model.onnx"
    onnx.save(CASES["residual_chain"].build(), model)
    args = ["adapt", str(model), "--budget", "0.5", "--measure-on", DEVICE, "-o", tmp_path / "o"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "--engine ray" in result.output
    assert not (tmp_path / "o").exists()


def test_measure_on_auto_is_named_after_the_serial() -> None:
    assert resolve_resource("auto", {"device": "R58M123"}) == "device:R58M123"
    assert resolve_resource("gpu-host", {"device": "R58M123"}) == "gpu-host"
    with pytest.raises(UsageError, match="--runner-option device=SERIAL"):
        resolve_resource("auto", {})


def test_measure_on_without_a_cluster_says_how_to_declare_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ray_runner, "_ray_running", lambda: False)
    with pytest.raises(UsageError, match=r"ray start --head --resources='\{\"device:fake\": 1\}'"):
        RemoteRunner("macs", 1, {}, DEVICE).__enter__()


ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray instance whose only node declares one unit of ``device:fake``."""
    ray.init(num_cpus=2, resources={DEVICE: 1}, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_digits(tmp_path_factory.mktemp("tiny") / "tiny.onnx", epochs=2)


@pytest.fixture(scope="module")
def driver_run(cluster: None, tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The history of the run whose runner stays in the driver (the reference)."""
    out = tmp_path_factory.mktemp("driver")
    adapt_model(tiny, _config(), out)
    return read_history(out)


def _free_device() -> float:
    """Units of ``device:fake`` no actor holds (Ray releases a killed actor's asynchronously)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        free = ray.available_resources().get(DEVICE, 0.0)
        if free:
            return free
        time.sleep(0.1)
    return 0.0


def test_the_runner_runs_in_an_actor_that_holds_the_device(cluster: None) -> None:
    loaded = load_model(CASES["residual_chain"].build())
    signatures = list(dict.fromkeys(model_signatures(loaded).values()))
    with make_runner("ort", 1) as here:
        expected_fingerprint = here.fingerprint()
        expected_profile = set(here.profile_layers(loaded.model))
    with RemoteRunner("ort", 1, {}, DEVICE) as remote:
        pid = remote.where["pid"]
        assert pid != os.getpid() and pid in ray_pids(ACTOR)
        assert ray.available_resources().get(DEVICE, 0.0) == 0  # the actor holds the device
        assert remote.fingerprint() == expected_fingerprint  # same host, same ORT
        assert (remote.name, remote.unit, remote.additive) == ("ort", "ms", True)
        assert remote.measure(loaded.model).median_ms > 0
        layers = remote.measure_layers(signatures)
        assert list(layers) == signatures and all(s.median_ms > 0 for s in layers.values())
        assert set(remote.profile_layers(loaded.model)) == expected_profile
        network = remote.profile_network(loaded.model)  # with the runs' own time
        assert set(network.layers) == expected_profile and network.run_ms > 0
    assert _free_device() == 1  # released when the run leaves it


def test_a_missing_resource_is_refused_at_once(cluster: None) -> None:
    start = time.monotonic()
    with pytest.raises(EngineError, match="device:phone") as info:
        RemoteRunner("ort", 1, {}, "device:phone").__enter__()
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert DEVICE in message  # what the cluster has
    assert "ray start --head --resources='{\"device:phone\": 1}'" in message
    assert info.value.exit_code == 12


def test_a_runner_error_in_the_actor_keeps_its_type(cluster: None) -> None:
    with pytest.raises(RunnerUnavailable, match="no runner named 'roofline2'"):
        RemoteRunner("roofline2", 1, {}, DEVICE).__enter__()
    assert _free_device() == 1
    unsupported = pytest.raises(ProfileUnsupported, match="cannot profile")
    with RemoteRunner("macs", 1, {}, DEVICE) as remote, unsupported:  # estimators fall back
        remote.profile_layers(CASES["residual_chain"].build())


def _killer(killed: list[int], seen: set[int]):
    """A progress callback: records the actor's pid, SIGKILLs it after the first proposals."""

    def progress(stage: str, done: int, total: int) -> None:
        pids = ray_pids(ACTOR)
        seen.update(pids)
        if stage == "proposals" and done == total and not killed:
            assert pids, "no runner actor is running"
            for pid in pids:  # the run's actor (and any earlier one Ray has not reaped yet)
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)
            while set(pids) & set(ray_pids(ACTOR)):
                time.sleep(0.05)

    return progress


def _picks(history: dict) -> list[tuple]:
    keys = ("group", "measured", "estimate", "holdout_accuracy")
    return [tuple(r[k] for k in keys) for r in history["history"]]


def test_measured_on_the_device_the_run_picks_what_the_driver_picks(
    tiny: Path, tmp_path: Path, driver_run: dict
) -> None:
    seen: set[int] = set()
    progress = lambda stage, done, total: seen.update(ray_pids(ACTOR))  # noqa: E731
    adapt_model(tiny, _config(measure_on=DEVICE), tmp_path, progress=progress)
    assert seen and os.getpid() not in seen  # measured in the actor
    assert len(driver_run["history"]) >= 3
    assert _picks(read_history(tmp_path)) == _picks(driver_run)


def test_a_killed_actor_is_restarted_and_the_run_goes_on(
    tiny: Path, tmp_path: Path, driver_run: dict
) -> None:
    killed: list[int] = []
    seen: set[int] = set()
    adapt_model(tiny, _config(measure_on=DEVICE), tmp_path, progress=_killer(killed, seen))
    assert killed, "the actor was not killed: the test did not exercise the restart"
    assert seen - set(killed), "no restarted actor measured after the kill"
    assert _picks(read_history(tmp_path)) == _picks(driver_run)


def test_an_actor_lost_past_its_restarts_stops_the_run_resumably(
    tiny: Path, tmp_path: Path, driver_run: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_runner, "DEFAULT_RESTARTS", 0)
    killed: list[int] = []
    with pytest.raises(EngineError, match="died 1 times") as info:
        adapt_model(tiny, _config(measure_on=DEVICE), tmp_path, progress=_killer(killed, set()))
    assert info.value.exit_code == 12
    assert f"--resume {tmp_path}" in str(info.value)
    assert _free_device() == 1
    adapt_model(None, None, tmp_path, resume=True)
    assert _picks(read_history(tmp_path)) == _picks(driver_run)
