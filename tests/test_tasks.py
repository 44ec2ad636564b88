"""Tasks: the protocol's built-ins on tiny models, discovery, several inputs and outputs
through the loop, a plugin package, and target checks that name the task and the output."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from example_packages import install_example
from onnx import numpy_helper
from task_models import segmenter, two_in_two_out

from onnx_netadapt.adapt import AdaptConfig, adapt_model, parse_budget
from onnx_netadapt.cli import main
from onnx_netadapt.data import ArrayDataset, check_fits, load_data
from onnx_netadapt.errors import DataError
from onnx_netadapt.evaluate import output_infos, run_outputs, task_score
from onnx_netadapt.finetune import TrainSettings, fine_tune
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.tasks import TaskError, discover, get_task
from onnx_netadapt.tasks.distill import Distill
from onnx_netadapt.tasks.segmentation import Segmentation

ROOT = Path(__file__).resolve().parents[1]
TWO_SHAPES = {"image": (1, 1, 8, 8), "side": (1, 4)}
SEG_SHAPES = {"x": (1, 1, 8, 8)}


def _perturbed(model: onnx.ModelProto, name: str, scale: float, seed: int = 1) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name == name:
            w = numpy_helper.to_array(init)
            noise = np.random.default_rng(seed).normal(0, scale * w.std(), w.shape)
            init.CopyFrom(numpy_helper.from_array((w + noise).astype(np.float32), name))
    return out


def _two_input_data(n: int, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    return ArrayDataset(
        {
            "image": rng.normal(size=(n, 1, 8, 8)).astype(np.float32),
            "side": rng.normal(size=(n, 4)).astype(np.float32),
        }
    )


def test_builtins_are_listed_and_a_task_loads_by_path() -> None:
    result = CliRunner().invoke(main, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {"classification", "distill", "segmentation"} <= set(rows)
    assert rows["segmentation"]["score"] == "mean IoU" and rows["classification"]["unit"] == "%"
    assert isinstance(get_task("onnx_netadapt.tasks.distill:Distill"), Distill)
    with pytest.raises(TaskError, match="no task named 'nope'"):
        get_task("nope")
    with pytest.raises(TaskError, match="cannot load it"):
        get_task("no_such_module_xyz:Task")


def test_a_broken_task_plugin_is_reported_with_its_error(tmp_path, monkeypatch) -> None:
    dist = tmp_path / "broken_task-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-task\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[onnx_netadapt.tasks]\nbroken = no_such_module_xyz:Task\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="broken"):
        found = discover()
    assert found["broken"].task is None and "no_such_module_xyz" in found["broken"].error
    assert found["distill"].task is Distill
    with pytest.raises(TaskError, match="failed to load"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        get_task("broken")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(main, ["tasks"])
    assert result.exit_code == 0 and "broken" in result.output and "failed to load" in result.output


def test_distill_trains_a_two_input_two_output_model_back_to_the_original() -> None:
    original = load_model(two_in_two_out(), TWO_SHAPES).model
    student = _perturbed(original, "w1", 1.0)
    data = _two_input_data(256)
    holdout = _two_input_data(64, seed=5)
    task = Distill()
    reference = run_outputs(original, holdout)
    assert [r.shape for r in reference] == [(64, 2, 8, 8), (64, 3)]
    assert task_score(original, holdout, task, reference).value == pytest.approx(1.0)
    before = task_score(student, holdout, task, reference)
    settings = TrainSettings(steps=150, batch_size=32, optimizer="adamw", lr=3e-3, device="cpu")
    result = fine_tune(student, data, settings, teacher=original, task=task)
    after = task_score(result.model, holdout, task, reference)
    assert after.value > before.value + 0.05 and after.loss < before.loss
    assert result.max_abs_diff < 1e-3  # ORT and torch agree on both outputs after write-back


def test_distill_weights_select_the_outputs() -> None:
    original = load_model(two_in_two_out(), TWO_SHAPES).model
    student = _perturbed(original, "wo", 2.0)  # only the logits head differs
    holdout = _two_input_data(32)
    reference = run_outputs(original, holdout)
    heat_only = task_score(student, holdout, Distill(weights=[1, 0]), reference).value
    logits_only = task_score(student, holdout, Distill(weights=[0, 1]), reference).value
    assert heat_only == pytest.approx(1.0) and logits_only < 0.9


def _seg_data(n: int, seed: int) -> ArrayDataset:
    x = np.random.default_rng(seed).normal(size=(n, 1, 8, 8)).astype(np.float32)
    return ArrayDataset(x, np.digitize(x[:, 0], [-0.5, 0.5]).astype(np.int64))


def test_segmentation_trains_with_pixel_cross_entropy_and_scores_mean_iou() -> None:
    model = load_model(segmenter(), SEG_SHAPES).model
    train, holdout = _seg_data(256, 0), _seg_data(64, 1)
    task = Segmentation()
    before = task_score(model, holdout, task)
    settings = TrainSettings(steps=120, batch_size=32, optimizer="adamw", lr=1e-2, device="cpu")
    tuned = fine_tune(model, train, settings, task=task).model
    after = task_score(tuned, holdout, task)
    assert 0.0 <= before.value < 0.5 < after.value <= 1.0
    assert after.loss < before.loss
    perfect = np.eye(3, dtype=np.float32)[holdout.y].transpose(0, 3, 1, 2) * 10
    assert task.score([perfect], holdout.y, None).value == pytest.approx(1.0)


def test_a_wrong_target_shape_names_the_task_and_the_output() -> None:
    model = segmenter()
    data = ArrayDataset(np.zeros((4, 1, 8, 8), np.float32), np.zeros((4, 4, 4), np.int64))
    with pytest.raises(DataError, match=r"task 'segmentation', train targets for output 'scores'"):
        check_fits(
            data, (None, 1, 8, 8), np.float32, "train", None, Segmentation(), output_infos(model)
        )
    labels = ArrayDataset(np.zeros((4, 1, 8, 8), np.float32), np.zeros(4, np.int64))
    with pytest.raises(
        DataError, match=r"task 'classification', train targets for output 'scores'"
    ):
        check_fits(
            labels,
            (None, 1, 8, 8),
            np.float32,
            "train",
            3,
            get_task("classification"),
            output_infos(model),
        )
    bad_class = ArrayDataset(np.zeros((4, 1, 8, 8), np.float32), np.full((4, 8, 8), 7))
    with pytest.raises(DataError, match=r"'scores'.*classes 7\.\.7 but the output has 3"):
        check_fits(
            bad_class, (None, 1, 8, 8), np.float32, "val", None, Segmentation(), output_infos(model)
        )


def _write_data_module(folder: Path, name: str, body: str) -> str:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return f"{name}:splits"


def test_two_inputs_two_outputs_through_the_loop(tmp_path: Path, monkeypatch) -> None:
    model = tmp_path / "two.onnx"
    onnx.save(two_in_two_out(), str(model))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = _write_data_module(
        tmp_path,
        "two_input_data",
        """
        import numpy as np

        def splits():
            rng = np.random.default_rng(0)
            def examples(n):  # one dict per example, no targets
                return [
                    {"side": rng.normal(size=4).astype(np.float32),
                     "image": rng.normal(size=(1, 8, 8)).astype(np.float32)}
                    for _ in range(n)
                ]
            return {"train": examples(160), "holdout": examples(32), "val": examples(32)}
        """,
    )
    config = AdaptConfig(
        target="macs",
        budgets=[parse_budget("0.6")],
        data=spec,
        step=0.2,
        decay=1.0,
        short_steps=10,
        long_epochs=0.5,
        batch_size=32,
        input_shapes={"image": [1, 1, 8, 8], "side": [1, 4]},
    )
    out = tmp_path / "run"
    summary = adapt_model(model, config, out)
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["task"] == "distill"  # auto: the first output is not (N, C)
    assert history["task"]["score"] == "fidelity (1 - NMSE)"
    assert (
        summary["status"] == "met" and summary["final"]["latency"] <= summary["limits"]["latency"]
    )
    assert summary["val_accuracy"]["original"] == pytest.approx(1.0)
    assert 0.5 < summary["val_accuracy"]["adapted"] < 1.0
    adapted = onnx.load(str(out / "adapted.onnx"))
    assert [i.name for i in adapted.graph.input] == ["image", "side"]
    assert [o.name for o in adapted.graph.output] == ["heat", "logits"]
    assert "fidelity (1 - NMSE)" in (out / "report.md").read_text()


def test_tuple_examples_and_segmentation_targets_load_for_the_task(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = _write_data_module(
        tmp_path,
        "seg_masks",
        """
        import numpy as np

        def splits():
            rng = np.random.default_rng(0)
            x = rng.normal(size=(40, 1, 8, 8)).astype(np.float32)
            masks = np.digitize(x[:, 0], [-0.5, 0.5])
            return [(xi, mi) for xi, mi in zip(x, masks)], None, None
        """,
    )
    model = segmenter()
    splits = load_data(
        spec,
        (None, 1, 8, 8),
        np.float32,
        holdout_per_class=1,
        task=Segmentation(),
        outputs=output_infos(model),
    )
    assert splits.train.y.shape[1:] == (8, 8) and len(splits.holdout) == 10
    with pytest.raises(DataError, match="give class indices"):  # classification refuses masks
        load_data(spec, (None, 1, 8, 8), np.float32)


def test_the_example_task_package_installs_and_trains(tmp_path, monkeypatch) -> None:
    target = tmp_path / "site"
    install_example("custom_task", target)
    monkeypatch.syspath_prepend(str(target))
    task = get_task("regression")
    assert type(task).__module__ == "netadapt_regression"
    result = CliRunner().invoke(main, ["tasks"])
    assert "regression" in result.output and "R2" in result.output
    model = load_model(segmenter(classes=2), SEG_SHAPES).model
    x = np.random.default_rng(0).normal(size=(128, 1, 8, 8)).astype(np.float32)
    y = np.concatenate([np.maximum(x, 0), -x], axis=1)  # a per-pixel function to learn
    data = ArrayDataset(x, y)
    before = task_score(model, data, task)
    settings = TrainSettings(steps=100, batch_size=32, optimizer="adamw", lr=1e-2, device="cpu")
    tuned = fine_tune(model, data, settings, task=task).model
    assert task_score(tuned, data, task).value > before.value + 0.3
    wrong = ArrayDataset(x, y[:, :1, :4])
    with pytest.raises(DataError, match="task 'regression', train targets for output 'scores'"):
        check_fits(wrong, (None, 1, 8, 8), np.float32, "train", None, task, output_infos(model))


def test_an_unknown_task_is_refused_before_any_work(tmp_path: Path) -> None:
    model = tmp_path / "seg.onnx"
    onnx.save(segmenter(), str(model))
    out = tmp_path / "run"
    args = [str(model), "--target", "macs", "--budget", "0.5", "--task", "nope", "-o", str(out)]
    result = CliRunner().invoke(main, ["adapt", *args])
    assert result.exit_code == 2 and "no task named 'nope'" in result.output
    assert not out.exists()
    options = ["--task", "segmentation", "--task-option", "weights=[1,0]"]
    result = CliRunner().invoke(main, ["adapt", *args[:-4], *options, "-o", str(out)])
    assert (
        result.exit_code == 2 and "does not take the options {'weights': [1, 0]}" in result.output
    )
    assert not out.exists()


def test_several_inputs_load_from_tuples_in_input_order(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = _write_data_module(
        tmp_path,
        "tuple_inputs",
        """
        import numpy as np

        def splits():
            rng = np.random.default_rng(0)
            def examples(n, inputs=2):  # ((image, side), no target) per example
                return [
                    ((rng.normal(size=(8, 8)), rng.normal(size=4))[:inputs], None)
                    for _ in range(n)
                ]
            return examples(30), examples(6), examples(6)

        def one_input():
            return [((np.zeros((8, 8)),), None)] * 10, None, None
        """,
    )
    specs = {"image": ((1, 1, 8, 8), np.float32), "side": ((1, 4), np.float32)}
    splits = load_data(spec, specs, task=Distill())
    assert list(splits.train.x) == ["image", "side"]
    assert splits.train.x["image"].shape == (30, 1, 8, 8)  # (8, 8) examples laid out as (1, 8, 8)
    assert splits.val.x["side"].dtype == np.float32 and len(splits.holdout) == 6
    with pytest.raises(DataError, match=r"gives 1 inputs but the model takes 2 \(image, side\)"):
        load_data("tuple_inputs:one_input", specs, task=Distill())
    with pytest.raises(DataError, match="the model has 2 inputs"):
        load_data("digits", specs)
