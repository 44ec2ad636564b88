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

import numpy as np
import onnx

from onnx_netadapt.adapt.config import AdaptConfig
from onnx_netadapt.adapt.proposals import (
    EvalContext,
    ProposalJob,
    ProposalScore,
    TrainPlan,
    proposal_seed,
)
from onnx_netadapt.adapt.resources import Measurement, ResourceSet
from onnx_netadapt.adapt.rundir import RunDir, RunDirError, file_digest
from onnx_netadapt.adapt.search import Candidate, Skipped, minimal_network, search_all
from onnx_netadapt.adapt.select import choose
from onnx_netadapt.adapt.state import Confirmation, IterationRecord, RunState, RunSummary
from onnx_netadapt.adapt.status import (
    EXIT_CODES,
    FINISHED,
    MAX_ITERATIONS,
    MEANING,
    MET,
    RUNNING,
    UNREACHABLE,
    outcome_error,
)
from onnx_netadapt.channels.analysis import ChannelAnalysis, analyse
from onnx_netadapt.data.dataset import ArrayDataset, DataSplits
from onnx_netadapt.engines import make_engine, plan_devices, target_runner
from onnx_netadapt.errors import BudgetError, NetAdaptError
from onnx_netadapt.evaluate import (
    input_specs,
    output_classes,
    output_infos,
    run_outputs,
    task_score,
)
from onnx_netadapt.graph.deliverable import with_original_interface
from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.graph.save import save_model
from onnx_netadapt.measure.signature import model_signatures
from onnx_netadapt.tasks.base import LossOptions, Task
from onnx_netadapt.tasks.registry import get_task

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
        self._measured_before = self.state.table_measurements if resume else 0
        self._engine_started = False

    # -- setup ---------------------------------------------------------------------------
    def _load_original(self) -> LoadedModel:
        shapes = {k: tuple(v) for k, v in self.config.input_shapes.items()}
        return load_model(self.model_path, shapes)

    def _task(self, loaded: LoadedModel) -> Task:
        """The run's task; ``auto`` resolves (once, saved with the run) to classification for
        a model whose first output is class scores (N, C), else to distill."""
        cfg = self.config
        if cfg.task == "auto":
            first = output_infos(loaded.model)[0]
            cfg.task = "classification" if len(first.shape) == 2 else "distill"
            logger.info("task: %s (output %s is %s)", cfg.task, first.name, first.shape)
        task = get_task(cfg.task, cfg.task_options)
        options = LossOptions(distill=cfg.distill)
        return task.with_options(options)

    def _load_data(self, loaded: LoadedModel, task: Task) -> DataSplits:
        from onnx_netadapt.data import load_data

        if self._data is not None:
            return self._data
        specs = {
            name: (tuple(loaded.shapes[name]), dtype)
            for name, (_, dtype) in input_specs(loaded.model).items()
        }
        shape, dtype = next(iter(specs.values()))
        return load_data(
            self.config.data,
            specs if len(specs) > 1 else shape,
            dtype,
            holdout_per_class=self.config.holdout_per_class,
            seed=self.config.seed,
            num_classes=output_classes(loaded.model),
            task=task,
            outputs=output_infos(loaded.model),
        )

    def _eval_context(self, original: onnx.ModelProto, data: DataSplits, task: Task) -> EvalContext:
        reference = _reference(original, data.holdout, task)
        plan = TrainPlan(
            steps=self.config.short_steps,
            batch_size=self.config.batch_size,
            optimizer=self.config.optimizer,
            lr=self.config.lr,
            distill=self.config.distill,
            threads=self.config.train_threads,
            deterministic=self.config.deterministic,
        )
        needs_teacher = task.needs_teacher(data.train.has_targets)
        return EvalContext(data, plan, original if needs_teacher else None, reference, task)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> Iterator[IterationResult]:
        """Run (or continue) the adaptation, yielding every finished iteration."""
        cfg = self.config
        original = self._load_original()
        task = self._task(original)
        data = self._load_data(original, task)
        ctx = self._eval_context(original.model, data, task)
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
                    self._raise_outcome()
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
            self._finish(original, data, ctx, resources, status)

    def _start(
        self, original: LoadedModel, data: DataSplits, ctx: EvalContext, resources: ResourceSet
    ) -> IterationResult:
        self.rundir.start(self.overwrite)
        start = time.perf_counter()
        net0 = save_model(original.model, self.rundir.network_path(0))
        analysis = analyse(original)
        if not any(g.prunable_with(self.config.allow_approximate) for g in analysis.groups):
            approximate = sum(g.prunable_with(True) for g in analysis.groups)
            hint = (
                f"; {approximate} groups are approximate (pruning them changes other channels' "
                "values, e.g. weights standardised at run time): allow them with "
                "--allow-approximate"
                if approximate
                else ""
            )
            raise BudgetError(
                "no channel group of this model can be pruned exactly (see `onnx-netadapt "
                f"inspect`){hint}"
            )
        measured = resources.calibrate(original)
        resources.set_reference(original.model, measured)
        limits = {t.resource: t.budget.limit(measured[t.resource]) for t in resources.budgeted}
        goals = {
            t.resource: limits[t.resource] * (1.0 - self.config.margin if t.unit == "ms" else 1.0)
            for t in resources.budgeted
        }
        floor = self._check_reachable(analysis, resources, goals)
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

    def _check_reachable(
        self, analysis: ChannelAnalysis, resources: ResourceSet, limits: dict[str, float]
    ) -> dict[str, float]:
        """Measure the smallest network pruning can reach; refuse a budget below it.

        ``limits`` are the goals (the budgets less ``--margin``). Returns the smallest
        network's value per budgeted resource (the floor)."""
        smallest = minimal_network(analysis, self.config.round_to, self.config.allow_approximate)
        problems = []
        floors = {}
        for item in resources.budgeted:
            floor = floors[item.resource] = resources.measure(item, smallest)
            if floor > limits[item.resource]:
                problems.append(
                    f"{item.resource}: goal {limits[item.resource]:.4g} {item.unit} (the budget "
                    f"less --margin {self.config.margin:g}), but even "
                    f"with every prunable group cut to {self.config.round_to} channels the "
                    f"network measures {floor:.4g} {item.unit} (original "
                    f"{item.measured:.4g} {item.unit}; the rest is in layers pruning cannot "
                    "change - see `onnx-netadapt inspect`)"
                )
        if problems:
            raise BudgetError("the budget cannot be met: " + "; ".join(problems))
        return floors

    def _targets(self, iteration: int, values: dict[str, float], fraction: float) -> dict:
        """This iteration's resource targets (only for budgets not yet met)."""
        step = self.config.step * self.config.decay ** (iteration - 1) * fraction
        targets = {}
        for resource, limit in self.state.goals.items():
            if values[resource] <= limit:
                targets[resource] = limit
            else:
                reduced = values[resource] - step * self.state.original[resource]
                targets[resource] = max(limit, reduced)
        return targets

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
        jobs = self._write_proposals(i, candidates)
        if not self._engine_started:  # started late: its workers' start-up never overlaps
            engine.start(ctx)  # the measurements of the original and the floor
            self._engine_started = True
        current_file = (self.rundir.path / self.state.current).read_bytes()
        scores = engine.evaluate(jobs, current_file, lambda d, n: self.progress("proposals", d, n))
        evaluated = time.perf_counter()
        primary = self.config.budgets[0].resource
        pick = choose(
            candidates,
            scores,
            self.config.select,
            primary,
            values[primary],
            self.state.holdout_accuracy,
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
            proposals=_proposal_records(candidates, scores),
            skipped=[s.describe() for s in skipped],
            seconds={
                "search": searched - start,
                "proposals": evaluated - searched,
                "measure": time.perf_counter() - evaluated,
                "total": time.perf_counter() - start,
            },
            table_measurements=self._table_measurements(resources),
        )
        self._adopt(record, resources)
        return IterationResult(i, network, measured, record.holdout_accuracy, RUNNING, record)

    def _ending(
        self, i: int, resources: ResourceSet, current: LoadedModel
    ) -> IterationResult | None:
        """The end of the loop before iteration ``i`` (budget met, or the iteration limit)."""
        if self._meets(resources.values()):
            # the first 3-round measurement that meets the goals is biased low (that is why it
            # stopped): a longer one decides, and the loop goes on if it misses
            confirmed = self._confirm(resources, current)
            if self._meets({r: m.value for r, m in confirmed.items()}):
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
        analysis = analyse(current)
        signatures = model_signatures(current)
        targets: dict[str, float] = {}
        candidates: list[Candidate] = []
        skipped: list[Skipped] = []
        for fraction in STEP_FALLBACKS:
            targets = self._targets(i, values, fraction)
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

    def _write_proposals(self, iteration: int, candidates: list[Candidate]) -> list[ProposalJob]:
        folder = self.rundir.proposal_dir()
        shutil.rmtree(folder, ignore_errors=True)
        jobs = []
        for cand in candidates:
            path = save_model(cand.model, folder / f"group_{cand.group_id:04d}.onnx")
            seed = proposal_seed(self.config.seed, iteration, cand.producers)
            jobs.append(
                ProposalJob(
                    cand.group_id, str(path), seed, cand.units, self.config.allow_approximate
                )
            )
            cand.model = None  # type: ignore[assignment]  # free memory: it is on disk now
        return jobs

    def _meets(self, values: dict[str, float]) -> bool:
        """Whether ``values`` meet every goal (the budgets less ``--margin``)."""
        return all(values[r] <= goal for r, goal in self.state.goals.items())

    def _table_measurements(self, resources: ResourceSet) -> int:
        """Table entries measured by this run so far, across resumes."""
        return self._measured_before + resources.measurements()

    def _confirm(self, resources: ResourceSet, current: LoadedModel) -> dict[str, Measurement]:
        """The longer measurement of the current network; recorded and checkpointed."""
        confirmed = resources.confirm(current)
        entry = Confirmation(
            iteration=self.state.iteration,
            measured={r: m.to_dict() for r, m in confirmed.items()},
            meets=self._meets({r: m.value for r, m in confirmed.items()}),
        )
        self.state.confirmations.append(entry)
        self.state.calibration = resources.calibration()
        self._checkpoint()
        return confirmed

    def _ended(
        self,
        status: str,
        resources: ResourceSet | None = None,
        current: LoadedModel | None = None,
    ) -> IterationResult:
        """End the loop with ``status``; the final network gets its confirmation measurement."""
        if self.state.confirmed() is None and resources is not None and current is not None:
            self._confirm(resources, current)
        self.state.status = status
        self._checkpoint()
        return IterationResult(
            self.state.iteration,
            self.rundir.path / self.state.current,
            self.state.latest.measured,
            self.state.holdout_accuracy,
            status,
        )

    def _finish(
        self,
        original: LoadedModel,
        data: DataSplits,
        ctx: EvalContext,
        resources: ResourceSet,
        status: str,
    ) -> None:
        """Long-term fine-tune, final figures, validation accuracy, report; then the outcome."""
        from onnx_netadapt.adapt.report import write_report

        start = time.perf_counter()
        chosen = onnx.load(self.rundir.path / self.state.current)
        final = self._long_finetune(chosen, data, ctx)
        deliverable = with_original_interface(final, self.model_path)
        save_model(deliverable.model, self.rundir.adapted_path)
        final_values, noise = self._final_figures(resources, chosen, final)
        val_reference = _reference(original.model, data.val, ctx.task)
        state = self.state
        state.summary = RunSummary(
            status=status,
            meaning=MEANING[status],
            exit_code=EXIT_CODES[status],
            budgets_met=status == MET,
            iterations=state.iteration,
            original=state.original,
            final=final_values,
            final_spread=noise,
            limits=state.limits,
            goals=state.goals,
            margin=self.config.margin,
            units=state.units,
            val_accuracy={
                "original": task_score(original.model, data.val, ctx.task, val_reference).value,
                "before_long_finetune": task_score(chosen, data.val, ctx.task, val_reference).value,
                "adapted": task_score(final, data.val, ctx.task, val_reference).value,
            },
            long_finetune_seconds=time.perf_counter() - start,
            seconds_total=sum(r.total_seconds for r in state.history)
            + (time.perf_counter() - start),
            table_measurements=self._table_measurements(resources),
            table_seconds=resources.measure_seconds(),
            network_measurements=resources.network_measurements,
            table_entries={t.resource: len(t.table) for t in resources},
            adapted=str(self.rundir.adapted_path),
            adapted_interface=deliverable.note,
            unreachable=state.unreachable if status == UNREACHABLE else [],
        )
        state.status = FINISHED
        write_report(self.rundir, state, original.model, final)
        self._checkpoint()
        self._raise_outcome()

    def _long_finetune(
        self, chosen: onnx.ModelProto, data: DataSplits, ctx: EvalContext
    ) -> onnx.ModelProto:
        """The long-term fine-tune of the chosen network (none for the original itself)."""
        cfg = self.config
        if cfg.long_epochs <= 0 or self.state.iteration == 0:
            return chosen
        from onnx_netadapt.finetune import TrainSettings, fine_tune

        settings = TrainSettings(
            epochs=cfg.long_epochs,
            batch_size=cfg.batch_size,
            optimizer=cfg.optimizer,
            lr=cfg.long_lr or cfg.lr,
            distill=cfg.distill if ctx.teacher is not None else 0.0,
            seed=cfg.seed,
        )
        return fine_tune(chosen, data.train, settings, teacher=ctx.teacher, task=ctx.task).model

    def _final_figures(
        self, resources: ResourceSet, chosen: onnx.ModelProto, final: onnx.ModelProto
    ) -> tuple[dict[str, float], dict[str, dict]]:
        """The adapted network's values and the spread of their measurement.

        Latency comes from the confirmation measurement of the chosen network: the long
        fine-tune changes weights only (checked here), and the status was decided on that same
        measurement. Exact resources are measured on the final network itself.
        """
        if _weight_shapes(chosen) != _weight_shapes(final):
            raise NetAdaptError(
                "internal error: the long fine-tune changed the network's weight shapes; "
                "please report this model"
            )
        if self.state.confirmed() is None:  # ended before any confirmation (schema 1 run)
            self._confirm(resources, load_model(chosen, fold=False))
        confirmed = self.state.confirmed()
        assert confirmed is not None
        values, spread = {}, {}
        for name, item in resources.tracked.items():
            if item.unit == "ms":
                spread[name] = confirmed.measured[name]
            else:
                spread[name] = resources.measure_rounds(item, final, 1).to_dict()
            values[name] = spread[name]["value"]
        return values, spread

    def _raise_outcome(self) -> None:
        """Raise the error of a finished run whose budget was missed (its exit code)."""
        assert self.state.summary is not None
        error = outcome_error(self.state.summary)
        if error is not None:
            raise error

    def _checkpoint(self) -> None:
        """Write history.json, then state.json (the checkpoint a resume starts from)."""
        self.rundir.save(self.state)


def _reference(
    original: onnx.ModelProto, data: ArrayDataset, task: Task
) -> list[np.ndarray] | None:
    """The original model's outputs on ``data`` when ``task`` scores against them."""
    return run_outputs(original, data) if task.needs_reference(data.has_targets) else None


def _proposal_records(candidates: list[Candidate], scores: list[ProposalScore]) -> list[dict]:
    """Every proposal of an iteration as history.json lists it."""
    return [
        {
            **c.describe(),
            "holdout_accuracy": s.holdout_accuracy,
            "holdout_loss": s.holdout_loss,
            "seconds": s.seconds,
            "stages": s.stages,
            "error": s.error,
        }
        for c, s in zip(candidates, scores, strict=True)
    ]


def _weight_shapes(model: onnx.ModelProto) -> list[tuple[str, tuple[int, ...]]]:
    """Name and shape of every initializer: the architecture, for a before/after check."""
    return sorted((i.name, tuple(i.dims)) for i in model.graph.initializer)


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
