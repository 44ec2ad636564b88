"""The NetAdapt loop (METHOD.md): shrink one channel group per iteration until the budgets hold.

``adapt`` is a generator of :class:`IterationResult`; it checkpoints after every iteration so a
run can be stopped at any point and resumed (``resume=True``) from its last finished iteration.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from onnx_netadapt.adapt.config import AdaptConfig
from onnx_netadapt.adapt.ending import RunEnd, raise_outcome
from onnx_netadapt.adapt.opening import (
    check_prunable,
    check_reachable,
    eval_context,
    load_run_data,
    resolve_task,
)
from onnx_netadapt.adapt.proposals import EvalContext, proposal_records, write_proposals
from onnx_netadapt.adapt.resources import ResourceSet
from onnx_netadapt.adapt.rundir import RunDir, RunDirError, file_digest
from onnx_netadapt.adapt.search import Candidate, Skipped, search_all
from onnx_netadapt.adapt.select import choose
from onnx_netadapt.adapt.state import IterationRecord, RunState
from onnx_netadapt.adapt.status import FINISHED, MAX_ITERATIONS, MET, RUNNING, UNREACHABLE
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.data.dataset import DataSplits
from onnx_netadapt.engines import make_engine, plan_devices, target_runner
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.evaluate import task_score
from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.graph.save import save_model
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.tasks.base import Task

if TYPE_CHECKING:
    from onnx_netadapt.engines.base import Engine

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# Fractions of this iteration's reduction tried when no group can deliver all of it.
STEP_FALLBACKS = (1.0, 0.5, 0.25, 0.125)


@dataclass
class IterationResult:
    """One finished iteration (iteration 0 is the original network).

    Attributes:
        status: ``running``, then at the end ``met`` (every budget holds, confirmed by a
            longer measurement), ``unreachable`` (no group can shrink further) or
            ``max_iterations`` (see ``onnx_netadapt.adapt.status``).
        record: the iteration's entry of history.json (``None`` for the end of the loop).
    """

    iteration: int
    network: Path
    measured: dict[str, float]
    holdout_accuracy: float
    status: str = RUNNING
    record: IterationRecord | None = None


class Adaptation:
    """State of one run; ``run()`` yields its iterations. Use ``adapt()`` to create one."""

    def __init__(
        self,
        model: str | os.PathLike | None,
        config: AdaptConfig | None,
        out_dir: str | os.PathLike,
        resume: bool = False,
        data: DataSplits | None = None,
        runner_options: dict | None = None,
        progress: Progress | None = None,
        overwrite: bool = False,
    ) -> None:
        self.rundir = RunDir(out_dir)
        self.overwrite = overwrite
        self.progress = progress or (lambda stage, done, total: None)
        self.runner_options = runner_options or {}
        self.state: RunState
        if resume:
            self.state = self.rundir.load_state()
            self.config = AdaptConfig.from_dict(self.state.config)
            self.model_path = Path(self.state.model["path"])
            if model is not None and Path(model).resolve() != self.model_path.resolve():
                raise RunDirError(
                    f"--resume {out_dir} adapts {self.model_path}, not {model}: "
                    "drop the model argument or use another output directory"
                )
            self.rundir.check_model(self.model_path, self.state.model["sha256"])
            if file_digest(self.model_path) != self.state.model["sha256"]:
                raise RunDirError(
                    f"{self.model_path} changed since the run in {out_dir} started: "
                    "resuming would mix two models; start a new run"
                )
        else:
            if model is None or config is None:
                raise RunDirError("a new run needs a model and settings")
            self.config = config
            self.model_path = Path(model)
        self.config.validate()
        if not resume:
            self.rundir.check_new(self.model_path, self.config.table, overwrite)
        self.resume = resume
        self._data = data
        # table entries measured by earlier processes of this run (counts go on across resumes)
        measured_before = self.state.table_measurements if resume else 0
        self.ending = RunEnd(self.rundir, self.config, self.model_path, measured_before)
        self._engine_started = False

    # -- setup ---------------------------------------------------------------------------
    def _load_original(self) -> LoadedModel:
        shapes = {k: tuple(v) for k, v in self.config.input_shapes.items()}
        return load_model(self.model_path, shapes)

    def _load_data(self, loaded: LoadedModel, task: Task) -> DataSplits:
        return self._data if self._data is not None else load_run_data(self.config, loaded, task)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> Iterator[IterationResult]:
        """Run (or continue) the adaptation, yielding every finished iteration."""
        cfg = self.config
        original = self._load_original()
        task = resolve_task(cfg, original)
        data = self._load_data(original, task)
        ctx = eval_context(cfg, original.model, data, task)
        table_path = Path(cfg.table) if cfg.table else self.rundir.table_path
        resources = ResourceSet(
            cfg.target,
            cfg.budgets,
            cfg.threads,
            table_path,
            self.runner_options,
            estimator=cfg.estimator,
            make_target=target_runner(cfg.measure_on, cfg.ray_address),
        )
        plan = plan_devices(cfg.device, cfg.workers, cfg.train_threads, cfg.deterministic)
        engine = make_engine(cfg.engine, plan, cfg.ray_address)
        with resources, engine:
            if self.resume:
                current = load_model(self.rundir.path / self.state.current, fold=False)
                resources.restore(self.state.calibration, current)
                reference = onnx.load(self.rundir.network_path(0))
                resources.set_reference(reference, self.state.original)
                if self.state.status == FINISHED:
                    logger.info("the run in %s has already finished", self.rundir.path)
                    raise_outcome(self.state)
                    return
            else:
                yield self._start(original, data, ctx, resources)
            status = self.state.status
            try:
                while status == RUNNING:
                    result = self._iteration(resources, engine, ctx)
                    status = result.status
                    if result.record:
                        yield result
            except NetAdaptError as exc:
                exc.args = (
                    f"{exc} -- the run is saved up to iteration {self.state.iteration}: "
                    f"continue it with --resume {self.rundir.path}",
                )
                raise
            self.ending.finish(self.state, original, data, ctx, resources, status)

    def _start(
        self, original: LoadedModel, data: DataSplits, ctx: EvalContext, resources: ResourceSet
    ) -> IterationResult:
        self.rundir.start(self.overwrite)
        start = time.perf_counter()
        net0 = save_model(original.model, self.rundir.network_path(0))
        analysis = analyse(original, self.config.attention_units)
        check_prunable(analysis, self.config.allow_approximate)
        measured = resources.calibrate(original)
        resources.set_reference(original.model, measured)
        limits = {t.resource: t.budget.limit(measured[t.resource]) for t in resources.budgeted}
        goals = {
            t.resource: limits[t.resource] * (1.0 - self.config.margin if t.unit == "ms" else 1.0)
            for t in resources.budgeted
        }
        floor = check_reachable(self.config, analysis, resources, goals)
        holdout = task_score(original.model, data.holdout, ctx.task, ctx.holdout_reference).value
        record = IterationRecord(
            iteration=0,
            network=str(net0.relative_to(self.rundir.path)),
            measured=measured,
            holdout_accuracy=holdout,
            seconds={"total": time.perf_counter() - start},
            table_measurements=resources.measurements(),
        )
        self.state = RunState(
            model={"path": str(self.model_path.resolve()), "sha256": file_digest(self.model_path)},
            config=self.config.to_dict(),
            data=data.summary(),
            original=measured,
            limits=limits,
            goals=goals,
            floor=floor,
            units={t.resource: t.unit for t in resources},
            calibration=resources.calibration(),
            current=record.network,
            holdout_accuracy=holdout,
            history=[record],
            table_measurements=record.table_measurements,
            task=ctx.task.describe(),
        )
        self._checkpoint()
        return IterationResult(0, net0, measured, holdout, RUNNING, record)

    def _iteration(
        self, resources: ResourceSet, engine: Engine, ctx: EvalContext
    ) -> IterationResult:
        """One NetAdapt iteration, or the end of the loop (its status in the result)."""
        i = self.state.iteration + 1
        start = time.perf_counter()
        current = load_model(self.rundir.path / self.state.current, fold=False)
        ended = self._ending(i, resources, current)
        if ended is not None:
            return ended
        values = resources.values()
        targets, candidates, skipped = self._search(i, current, values, resources)
        searched = time.perf_counter()
        if not candidates:
            self.state.unreachable = [s.describe() for s in skipped]
            return self._ended(UNREACHABLE, resources, current)
        cfg = self.config
        folder = self.rundir.proposal_dir()
        jobs = write_proposals(
            folder, candidates, cfg.seed, i, cfg.allow_approximate, cfg.attention_units
        )
        if not self._engine_started:  # started late: its workers' start-up never overlaps
            engine.start(ctx)  # the measurements of the original and the floor
            self._engine_started = True
        current_file = (self.rundir.path / self.state.current).read_bytes()
        scores = engine.evaluate(jobs, current_file, lambda d, n: self.progress("proposals", d, n))
        evaluated = time.perf_counter()
        primary = cfg.budgets[0].resource
        pick = choose(
            candidates, scores, cfg.select, primary, values[primary], self.state.holdout_accuracy
        )
        if pick is None:
            errors = "; ".join(f"group {s.group_id}: {s.error}" for s in scores if s.error)
            raise NetAdaptError(f"iteration {i}: every proposal failed to fine-tune: {errors}")
        network = self.rundir.network_path(i)
        network.parent.mkdir(parents=True, exist_ok=True)
        os.replace(jobs[pick].path, network)
        shutil.rmtree(self.rundir.proposal_dir(), ignore_errors=True)
        measured = resources.calibrate(load_model(network, fold=False))
        record = IterationRecord(
            iteration=i,
            network=str(network.relative_to(self.rundir.path)),
            targets=targets,
            group=candidates[pick].describe(),
            estimate=candidates[pick].estimate,
            measured=measured,
            holdout_accuracy=scores[pick].holdout_accuracy,
            proposals=proposal_records(candidates, scores),
            skipped=[s.describe() for s in skipped],
            seconds={
                "search": searched - start,
                "proposals": evaluated - searched,
                "measure": time.perf_counter() - evaluated,
                "total": time.perf_counter() - start,
            },
            table_measurements=self.ending.table_measurements(resources),
        )
        self._adopt(record, resources)
        return IterationResult(i, network, measured, record.holdout_accuracy, RUNNING, record)

    def _ending(
        self, i: int, resources: ResourceSet, current: LoadedModel
    ) -> IterationResult | None:
        """The end of the loop before iteration ``i`` (budget met, or the iteration limit)."""
        if self.state.meets(resources.values()):
            # the first 3-round measurement that meets the goals is biased low (that is why it
            # stopped): a longer one decides, and the loop goes on if it misses
            confirmed = self.ending.confirm(self.state, resources, current)
            if self.state.meets({r: m.value for r, m in confirmed.items()}):
                return self._ended(MET)
            logger.info("iteration %d met the goals in 3 rounds but not in 11: going on", i - 1)
        if i > self.config.max_iterations:
            return self._ended(MAX_ITERATIONS, resources, current)
        return None

    def _search(
        self, i: int, current: LoadedModel, values: dict[str, float], resources: ResourceSet
    ) -> tuple[dict[str, float], list[Candidate], list[Skipped]]:
        """This iteration's targets and, per group, the largest count meeting them (or why
        not); the step is cut down when no group can deliver all of it."""
        cfg = self.config
        analysis = analyse(current, cfg.attention_units)
        signatures = model_signatures(current)
        targets: dict[str, float] = {}
        candidates: list[Candidate] = []
        skipped: list[Skipped] = []
        for fraction in STEP_FALLBACKS:
            targets = self.state.targets(values, cfg.step * cfg.decay ** (i - 1) * fraction)
            candidates, skipped = search_all(
                analysis, signatures, resources, targets, cfg.round_to, cfg.allow_approximate
            )
            if candidates:
                break
        return targets, candidates, skipped

    def _adopt(self, record: IterationRecord, resources: ResourceSet) -> None:
        """Make ``record``'s network the current one and checkpoint."""
        state = self.state
        state.iteration, state.current = record.iteration, record.network
        state.calibration = resources.calibration()
        state.holdout_accuracy = record.holdout_accuracy
        state.table_measurements = record.table_measurements
        state.history.append(record)
        self._checkpoint()

    def _ended(
        self,
        status: str,
        resources: ResourceSet | None = None,
        current: LoadedModel | None = None,
    ) -> IterationResult:
        """End the loop with ``status``; the final network gets its confirmation measurement."""
        if self.state.confirmed() is None and resources is not None and current is not None:
            self.ending.confirm(self.state, resources, current)
        self.state.status = status
        self._checkpoint()
        return IterationResult(
            self.state.iteration,
            self.rundir.path / self.state.current,
            self.state.latest.measured,
            self.state.holdout_accuracy,
            status,
        )

    def _checkpoint(self) -> None:
        """Write history.json, then state.json (the checkpoint a resume starts from)."""
        self.rundir.save(self.state)


def adapt(
    model: str | os.PathLike | None,
    config: AdaptConfig | None = None,
    out_dir: str | os.PathLike = "netadapt_out",
    *,
    resume: bool = False,
    data: DataSplits | None = None,
    runner_options: dict | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Iterator[IterationResult]:
    """Adapt ``model`` under ``config``; yields one result per finished iteration.

    >>> from onnx_netadapt import AdaptConfig, adapt, parse_budget
    >>> cfg = AdaptConfig(target="ort", budgets=[parse_budget("0.5")], data="mnist5k")
    >>> for it in adapt("model.onnx", cfg, "out"):          # doctest: +SKIP
    ...     print(it.iteration, it.measured["latency"], it.holdout_accuracy)
    """
    run = Adaptation(model, config, out_dir, resume, data, runner_options, progress, overwrite)
    return run.run()


def adapt_model(
    model: str | os.PathLike | None,
    config: AdaptConfig | None = None,
    out_dir: str | os.PathLike = "netadapt_out",
    **kwargs: object,
) -> dict:
    """Run a whole adaptation and return its summary (see history.json ``summary``)."""
    run = Adaptation(model, config, out_dir, **kwargs)  # type: ignore[arg-type]
    for _ in run.run():
        pass
    return run.state.summary.to_dict() if run.state.summary else {}
