"""Proposal workers never outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PARENT = textwrap.dedent(
    """
    import sys, time
    from onnx_netadapt.adapt.proposals import EvalContext, TrainPlan
    from onnx_netadapt.engines import make_engine, plan_devices

    plan = TrainPlan(steps=0, batch_size=1, optimizer="sgd", lr=0.1, distill=0.0, threads=1)
    with make_engine("local", plan_devices("cpu", workers=2)) as engine:
        engine.start(EvalContext(None, plan))
        busy = [engine._pool.submit(time.sleep, 2.0) for _ in range(2)]
        time.sleep(1.0)
        print(" ".join(map(str, engine.worker_pids)), flush=True)
        time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_workers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    try:
        line = parent.stdout.readline()  # type: ignore[union-attr]
        workers = [int(p) for p in line.split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers), line
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "workers outlived their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in locals().get("workers", []):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
