"""The start of a run: its task, its data, the context proposals are scored in, and the checks
that refuse a run that cannot succeed (nothing prunable exactly, a budget below the floor)."""

from __future__ import annotations

import logging

import onnx

from onnx_netadapt.adapt.config import AdaptConfig
from onnx_netadapt.adapt.proposals import EvalContext, TrainPlan
from onnx_netadapt.adapt.resources import ResourceSet
from onnx_netadapt.adapt.search import minimal_network
from onnx_netadapt.channels.analysis import ChannelAnalysis
from onnx_netadapt.data.dataset import DataSplits
from onnx_netadapt.errors import BudgetError
from onnx_netadapt.evaluate import input_specs, output_classes, output_infos, reference_outputs
from onnx_netadapt.graph.load import LoadedModel
from onnx_netadapt.tasks.base import LossOptions, Task
from onnx_netadapt.tasks.registry import get_task

logger = logging.getLogger(__name__)


def resolve_task(cfg: AdaptConfig, loaded: LoadedModel) -> Task:
    """The run's task; ``auto`` resolves (once, saved with the run) to classification for a
    model whose first output is class scores (N, C), else to distill."""
    if cfg.task == "auto":
        first = output_infos(loaded.model)[0]
        cfg.task = "classification" if len(first.shape) == 2 else "distill"
        logger.info("task: %s (output %s is %s)", cfg.task, first.name, first.shape)
    task = get_task(cfg.task, cfg.task_options)
    return task.with_options(LossOptions(distill=cfg.distill))


def load_run_data(cfg: AdaptConfig, loaded: LoadedModel, task: Task) -> DataSplits:
    """The run's data splits (``--data``), shaped for the model's inputs."""
    from onnx_netadapt.data import load_data

    specs = {
        name: (tuple(loaded.shapes[name]), dtype)
        for name, (_, dtype) in input_specs(loaded.model).items()
    }
    shape, dtype = next(iter(specs.values()))
    return load_data(
        cfg.data,
        specs if len(specs) > 1 else shape,
        dtype,
        holdout_per_class=cfg.holdout_per_class,
        seed=cfg.seed,
        num_classes=output_classes(loaded.model),
        task=task,
        outputs=output_infos(loaded.model),
    )


def eval_context(
    cfg: AdaptConfig, original: onnx.ModelProto, data: DataSplits, task: Task
) -> EvalContext:
    """What every proposal's short fine-tune and holdout score need."""
    reference = reference_outputs(original, data.holdout, task)
    plan = TrainPlan(
        steps=cfg.short_steps,
        batch_size=cfg.batch_size,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        distill=cfg.distill,
        threads=cfg.train_threads,
        deterministic=cfg.deterministic,
    )
    needs_teacher = task.needs_teacher(data.train.has_targets)
    return EvalContext(data, plan, original if needs_teacher else None, reference, task)


def check_prunable(analysis: ChannelAnalysis, allow_approximate: bool) -> None:
    """Refuse a model none of whose channel groups can be pruned (exactly, unless allowed)."""
    if any(g.prunable_with(allow_approximate) for g in analysis.groups):
        return
    approximate = sum(g.prunable_with(True) for g in analysis.groups)
    hint = (
        f"; {approximate} groups are approximate (pruning them changes other channels' "
        "values, e.g. weights standardised at run time): allow them with "
        "--allow-approximate"
        if approximate
        else ""
    )
    raise BudgetError(
        f"no channel group of this model can be pruned exactly (see `onnx-netadapt inspect`){hint}"
    )


def check_reachable(
    cfg: AdaptConfig,
    analysis: ChannelAnalysis,
    resources: ResourceSet,
    limits: dict[str, float],
) -> dict[str, float]:
    """Measure the smallest network pruning can reach; refuse a budget below it.

    ``limits`` are the goals (the budgets less ``--margin``). Returns the smallest network's
    value per budgeted resource (the floor)."""
    smallest = minimal_network(analysis, cfg.round_to, cfg.allow_approximate)
    problems = []
    floors = {}
    for item in resources.budgeted:
        floor = floors[item.resource] = resources.measure(item, smallest)
        if floor > limits[item.resource]:
            problems.append(
                f"{item.resource}: goal {limits[item.resource]:.4g} {item.unit} (the budget "
                f"less --margin {cfg.margin:g}), but even "
                f"with every prunable group cut to {cfg.round_to} channels the "
                f"network measures {floor:.4g} {item.unit} (original "
                f"{item.measured:.4g} {item.unit}; the rest is in layers pruning cannot "
                "change - see `onnx-netadapt inspect`)"
            )
    if problems:
        raise BudgetError("the budget cannot be met: " + "; ".join(problems))
    return floors
