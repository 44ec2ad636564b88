"""The end of a run: confirmation measurements, the long fine-tune, the final figures, the run
summary and the report (METHOD.md, steps 5-6)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import onnx

from onnx_netadapt.adapt.config import AdaptConfig
from onnx_netadapt.adapt.proposals import EvalContext
from onnx_netadapt.adapt.resources import Measurement, ResourceSet
from onnx_netadapt.adapt.rundir import RunDir
from onnx_netadapt.adapt.state import Confirmation, RunState, RunSummary
from onnx_netadapt.adapt.status import (
    EXIT_CODES,
    FINISHED,
    MEANING,
    MET,
    UNREACHABLE,
    outcome_error,
)
from onnx_netadapt.data.dataset import DataSplits
from onnx_netadapt.errors import NetAdaptError
from onnx_netadapt.evaluate import reference_outputs, task_score
from onnx_netadapt.graph.deliverable import with_original_interface
from onnx_netadapt.graph.load import LoadedModel, load_model
from onnx_netadapt.graph.save import save_model

logger = logging.getLogger(__name__)


@dataclass
class RunEnd:
    """Confirms the current network and finishes a run; every change to the state is
    checkpointed in ``rundir``."""

    rundir: RunDir
    config: AdaptConfig
    model_path: Path
    measured_before: int = 0  # table entries measured by earlier processes of this run

    def table_measurements(self, resources: ResourceSet) -> int:
        """Table entries measured by this run so far, across resumes."""
        return self.measured_before + resources.measurements()

    def confirm(
        self, state: RunState, resources: ResourceSet, current: LoadedModel
    ) -> dict[str, Measurement]:
        """The longer measurement of the current network; recorded and checkpointed."""
        confirmed = resources.confirm(current)
        entry = Confirmation(
            iteration=state.iteration,
            measured={r: m.to_dict() for r, m in confirmed.items()},
            meets=state.meets({r: m.value for r, m in confirmed.items()}),
        )
        state.confirmations.append(entry)
        state.calibration = resources.calibration()
        self.rundir.save(state)
        return confirmed

    def finish(
        self,
        state: RunState,
        original: LoadedModel,
        data: DataSplits,
        ctx: EvalContext,
        resources: ResourceSet,
        status: str,
    ) -> None:
        """Long-term fine-tune, final figures, validation accuracy, report; then the outcome."""
        from onnx_netadapt.adapt.report import write_report

        start = time.perf_counter()
        chosen = onnx.load(self.rundir.path / state.current)
        final = self.long_finetune(state, chosen, data, ctx)
        deliverable = with_original_interface(final, self.model_path)
        save_model(deliverable.model, self.rundir.adapted_path)
        final_values, noise = self.final_figures(state, resources, chosen, final)
        val_reference = reference_outputs(original.model, data.val, ctx.task)

        def val_score(model: onnx.ModelProto) -> float:
            return task_score(model, data.val, ctx.task, val_reference).value

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
                "original": val_score(original.model),
                "before_long_finetune": val_score(chosen),
                "adapted": val_score(final),
            },
            long_finetune_seconds=time.perf_counter() - start,
            seconds_total=sum(r.total_seconds for r in state.history)
            + (time.perf_counter() - start),
            table_measurements=self.table_measurements(resources),
            table_seconds=resources.measure_seconds(),
            network_measurements=resources.network_measurements,
            table_entries={t.resource: len(t.table) for t in resources},
            adapted=str(self.rundir.adapted_path),
            adapted_interface=deliverable.note,
            unreachable=state.unreachable if status == UNREACHABLE else [],
        )
        state.status = FINISHED
        write_report(self.rundir, state, original.model, final)
        self.rundir.save(state)
        raise_outcome(state)

    def long_finetune(
        self, state: RunState, chosen: onnx.ModelProto, data: DataSplits, ctx: EvalContext
    ) -> onnx.ModelProto:
        """The long-term fine-tune of the chosen network (none for the original itself)."""
        cfg = self.config
        if cfg.long_epochs <= 0 or state.iteration == 0:
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

    def final_figures(
        self,
        state: RunState,
        resources: ResourceSet,
        chosen: onnx.ModelProto,
        final: onnx.ModelProto,
    ) -> tuple[dict[str, float], dict[str, dict]]:
        """The adapted network's values and the spread of their measurement.

        Latency comes from the confirmation measurement of the chosen network: the long
        fine-tune changes weights only (checked here), and the status was decided on that same
        measurement. Exact resources are measured on the final network itself.
        """
        if weight_shapes(chosen) != weight_shapes(final):
            raise NetAdaptError(
                "internal error: the long fine-tune changed the network's weight shapes; "
                "please report this model"
            )
        if state.confirmed() is None:  # ended before any confirmation (schema 1 run)
            self.confirm(state, resources, load_model(chosen, fold=False))
        confirmed = state.confirmed()
        assert confirmed is not None
        values, spread = {}, {}
        for name, item in resources.tracked.items():
            if item.unit == "ms":
                spread[name] = confirmed.measured[name]
            else:
                spread[name] = resources.measure_rounds(item, final, 1).to_dict()
            values[name] = spread[name]["value"]
        return values, spread


def raise_outcome(state: RunState) -> None:
    """Raise the error of a finished run whose budget was missed (its exit code)."""
    assert state.summary is not None
    error = outcome_error(state.summary)
    if error is not None:
        raise error


def weight_shapes(model: onnx.ModelProto) -> list[tuple[str, tuple[int, ...]]]:
    """Name and shape of every initializer: the architecture, for a before/after check."""
    return sorted((i.name, tuple(i.dims)) for i in model.graph.initializer)
