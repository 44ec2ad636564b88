"""Attention blocks prune by whole heads: q, k, v and the output projection's rows together."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from models import CASES
from onnx import numpy_helper

from onnx_netadapt import analyse, load_model, prune
from onnx_netadapt.cli import main
from onnx_netadapt.verify import check_against_masked


def _head_group(analysis):
    groups = [g for g in analysis.groups if g.attention_heads]
    assert len(groups) == 1, [g.to_dict() for g in analysis.groups]
    return groups[0]


def _reshape_shapes(model: onnx.ModelProto) -> list[list[int]]:
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [
        inits[n.input[1]].tolist()
        for n in model.graph.node
        if n.op_type == "Reshape" and n.input[1] in inits
    ]


def test_heads_form_one_group_and_the_head_count_is_rewritten():
    analysis = analyse(load_model(CASES["attention_heads"].build()))
    group = _head_group(analysis)
    assert group.prunable and group.units == 2 and group.class_width == 8
    assert len(group.producers) == 3  # q, k and v projections
    result = prune(analysis, {group.id: [1]})
    assert check_against_masked(analysis, result).ok
    # D is longer than H, yet heads (not per-head dims across heads) are the units
    assert [1, 6, 1, 8] in _reshape_shapes(result.model)
    weights = {i.name: tuple(i.dims) for i in result.model.graph.initializer}
    for producer in group.producers:
        node = next(n for n in result.model.graph.node if n.name == producer.node)
        assert weights[node.input[1]] == (16, 8)


def test_per_head_score_bias_is_sliced_with_its_head():
    analysis = analyse(load_model(CASES["attention_heads_bias"].build()))
    group = _head_group(analysis)
    result = prune(analysis, {group.id: [0, 3]})
    assert check_against_masked(analysis, result).ok
    dims = [tuple(i.dims) for i in result.model.graph.initializer]
    assert (1, 2, 6, 6) in dims and (1, 4, 6, 6) not in dims


@pytest.mark.parametrize("name", ["attention_fused_qkv_split", "attention_fused_qkv_gather"])
def test_fused_qkv_projection_loses_whole_heads(name):
    analysis = analyse(load_model(CASES[name].build()))
    group = _head_group(analysis)
    heads = group.units
    assert group.prunable and group.channels == 3 * heads * 4
    result = prune(analysis, {group.id: [0, heads - 1]})
    assert check_against_masked(analysis, result).ok
    assert [1, 6, 3, 2, 4] in _reshape_shapes(result.model)


def test_single_head_attention_prunes_q_and_k_by_dimension():
    """No head to remove: q and k lose the same dimensions (they used to be pinned)."""
    analysis = analyse(load_model(CASES["attention_single_head"].build()))
    groups = [g for g in analysis.groups if g.attention_dims]
    assert len(groups) == 1 and len(groups[0].producers) == 2  # q and k projections
    assert groups[0].prunable and groups[0].units == 8
    result = prune(analysis, {groups[0].id: [0, 3, 5]})
    assert check_against_masked(analysis, result).ok
    assert np.isclose(analysis.summary()["prunable_share"], 1.0)


def _dims_groups(analysis, heads: int, dim: int):
    groups = [g for g in analysis.groups if g.attention_dims]
    assert groups and all(g.prunable and g.units == dim for g in groups), [
        g.to_dict() for g in analysis.groups
    ]
    assert all(g.class_width * g.units == g.channels for g in groups)
    assert not any(g.attention_heads for g in analysis.groups)
    return groups


@pytest.mark.parametrize(
    ("name", "heads", "dim", "groups"),
    [
        ("attention_heads", 2, 8, 2),  # q/k, and v with the output projection's rows
        ("attention_heads_bias", 4, 4, 2),
        ("attention_relative_logits", 4, 4, 2),  # W_rel loses the rows of removed q dims
        ("attention_fused_qkv_split", 3, 4, 1),  # [3, H, D] needs one D for q, k and v
        ("attention_fused_qkv_gather", 4, 4, 1),
    ],
)
def test_per_head_dimensions_prune_exactly(name, heads, dim, groups):
    analysis = analyse(load_model(CASES[name].build()), attention_units="dims")
    found = _dims_groups(analysis, heads, dim)
    assert len(found) == groups
    kept = {g.id: [0, dim - 1] for g in found}
    result = prune(analysis, kept)
    outcome = check_against_masked(analysis, result)
    assert outcome.ok, outcome
    shapes = _reshape_shapes(result.model)
    assert any(heads in s and s[-1] == 2 for s in shapes), shapes  # H kept, D 2


def test_oracle_masks_the_summed_dimensions():
    """Removing q/k dimensions changes the scores: without the mask at q @ k^T the masked
    original differs from the pruned model, so the oracle checks the pairing."""
    analysis = analyse(load_model(CASES["attention_heads"].build()), attention_units="dims")
    qk = next(g for g in analysis.groups if g.attention_dims and len(g.producers) == 2)
    result = prune(analysis, {qk.id: [0, 2, 4]})
    assert check_against_masked(analysis, result).ok
    analysis.contractions.clear()
    assert not check_against_masked(analysis, result).ok


def test_unknown_attention_units_are_refused():
    with pytest.raises(ValueError, match="attention_units"):
        analyse(load_model(CASES["attention_heads"].build()), attention_units="rows")


def test_inspect_shows_head_groups(tmp_path):
    path = tmp_path / "attention.onnx"
    onnx.save(CASES["attention_fused_qkv_gather"].build(), path)
    result = CliRunner().invoke(main, ["inspect", str(path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "48(4 heads)" in result.output


def test_cli_prunes_by_head_dimension(tmp_path):
    path, out = tmp_path / "attention.onnx", tmp_path / "pruned.onnx"
    onnx.save(CASES["attention_heads"].build(), path)
    shown = CliRunner().invoke(main, ["inspect", str(path), "--attention-units", "dims"])
    assert shown.exit_code == 0 and "16(8 dims)" in shown.output, shown.output
    args = ["prune", str(path), "-o", str(out), "--keep", "1=4", "--attention-units", "dims"]
    result = CliRunner().invoke(main, [*args, "--verify"])
    assert result.exit_code == 0, result.output
    assert [1, 6, 2, 4] in _reshape_shapes(onnx.load(out))  # 2 heads of 4 dims
    wrong = CliRunner().invoke(main, [*args[:-1], "rows"])
    assert wrong.exit_code == 2 and "rows" in wrong.output


def _torch_attention(fused: bool, sdpa: bool, linear: bool = False):
    torch = pytest.importorskip("torch")

    class Attention(torch.nn.Module):
        """A ViT-style block: timm's fused qkv + unbind, or separate q/k/v projections."""

        def __init__(self, c: int = 32, heads: int = 4) -> None:
            super().__init__()
            self.heads, self.dim = heads, c // heads
            self.embed = torch.nn.Linear(8, c)
            self.qkv = torch.nn.Linear(c, 3 * c) if fused else None
            self.q, self.k, self.v = (torch.nn.Linear(c, c) for _ in range(3))
            self.proj = torch.nn.Linear(c, c)
            self.fc = torch.nn.Linear(c, 10)

        def forward(self, x):
            x = self.embed(x)
            b, n, c = x.shape
            if fused:
                qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.dim).permute(2, 0, 3, 1, 4)
                q, k, v = qkv.unbind(0)
            else:
                q, k, v = (
                    f(x).reshape(b, n, self.heads, self.dim).transpose(1, 2)
                    for f in (self.q, self.k, self.v)
                )
            if linear:  # EfficientViT's ReLU linear attention: v padded with a column of ones
                v = torch.nn.functional.pad(v, (0, 1), mode="constant", value=1.0)
                o = q.relu() @ (k.relu().transpose(-2, -1) @ v)
                o = o[..., :-1] / (o[..., -1:] + 1e-6)
            elif sdpa:
                o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            else:
                o = ((q @ k.transpose(-2, -1)) * self.dim**-0.5).softmax(-1) @ v
            o = o.transpose(1, 2).reshape(b, n, c)
            return self.fc(x + self.proj(o)).mean(1)

    return torch, Attention().eval()


def _export(torch, net, x, dynamo: bool) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(net, (x,), dynamo=True, verbose=False).model_proto
        buffer = io.BytesIO()
        torch.onnx.export(net, x, buffer, dynamo=False, opset_version=17)
        return onnx.load_from_string(buffer.getvalue())


EXPORTS = [
    (False, False, False, False),
    (True, True, False, False),
    (True, False, True, False),
    (False, True, True, False),
    (True, False, False, True),
]


@pytest.mark.parametrize(("fused", "sdpa", "dynamo", "linear"), EXPORTS)
def test_exported_attention_prunes_by_heads(fused, sdpa, dynamo, linear):
    torch, net = _torch_attention(fused, sdpa, linear)
    model = _export(torch, net, torch.randn(1, 6, 8), dynamo)
    analysis = analyse(load_model(model))
    group = _head_group(analysis)
    assert group.prunable and group.units == 4, group.to_dict()
    assert len(group.producers) == (1 if fused else 3)
    result = prune(analysis, {group.id: [1, 2]})
    outcome = check_against_masked(analysis, result)
    assert outcome.ok, outcome
    assert any(2 in shape and 8 in shape for shape in _reshape_shapes(result.model))
    assert np.isclose(analysis.summary()["prunable_share"], 1.0)


@pytest.mark.parametrize(("fused", "sdpa", "dynamo", "linear"), EXPORTS)
def test_exported_attention_prunes_by_head_dimension(fused, sdpa, dynamo, linear):
    """SDPA without a scale: both exporters compute 1/sqrt(D) from the shape of q, which the
    loader folds into a constant, so the pruned model keeps the original scale (exact). Linear
    attention (k^T @ v carries k's and v's dimensions at once) keeps whole heads."""
    torch, net = _torch_attention(fused, sdpa, linear)
    loaded = load_model(_export(torch, net, torch.randn(1, 6, 8), dynamo))
    assert not any(n.op_type in ("Shape", "Size") for n in loaded.model.graph.node)
    analysis = analyse(loaded, attention_units="dims")
    if linear:
        assert _head_group(analysis).units == 4
        return
    found = _dims_groups(analysis, 4, 8)
    assert len(found) == (1 if fused else 2)
    result = prune(analysis, {g.id: [1, 2, 6] for g in found})
    outcome = check_against_masked(analysis, result)
    assert outcome.ok, outcome
    assert any(s[-2:] == [4, 3] for s in _reshape_shapes(result.model))
    assert np.isclose(analysis.summary()["prunable_share"], 1.0)


def test_multi_scale_linear_attention_keeps_heads_through_a_grouped_conv():
    """EfficientViT's LiteMLA: qkv 1x1 conv, a depthwise 5x5 + grouped 1x1 (one conv-group per
    head and q/k/v) aggregation concatenated as extra heads, ReLU linear attention over v padded
    with ones. The grouped conv has wide groups (8 channels, 6 groups): it must remove whole
    conv-groups here (the heads couple each group's channels), not the same index of every group
    (which, with the heads, would leave a single unit)."""
    torch = pytest.importorskip("torch")
    heads, dim = 2, 8
    c = heads * dim

    class LiteMLA(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(3, c, 3, padding=1)
            self.qkv = torch.nn.Conv2d(c, 3 * c, 1, bias=False)
            self.dw = torch.nn.Conv2d(3 * c, 3 * c, 5, padding=2, groups=3 * c, bias=False)
            self.pw = torch.nn.Conv2d(3 * c, 3 * c, 1, groups=3 * heads, bias=False)
            self.proj = torch.nn.Conv2d(2 * c, c, 1)
            self.fc = torch.nn.Conv2d(c, 10, 1)

        def forward(self, x):
            x = self.stem(x)
            qkv = self.qkv(x)
            qkv = torch.cat([qkv, self.pw(self.dw(qkv))], dim=1)
            b, _, h, w = qkv.shape
            qkv = qkv.reshape(b, -1, 3 * dim, h * w).transpose(-1, -2)
            q, k, v = qkv.chunk(3, dim=-1)
            v = torch.nn.functional.pad(v, (0, 1), mode="constant", value=1.0)
            out = q.relu() @ (k.relu().transpose(-1, -2) @ v)
            out = out[..., :-1] / (out[..., -1:] + 1e-6)
            out = self.proj(out.transpose(-1, -2).reshape(b, -1, h, w))
            return self.fc(x + out).mean((2, 3))

    net = LiteMLA().eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.randn(1, 3, 6, 6), buffer, dynamo=False, opset_version=17)
    analysis = analyse(load_model(onnx.load_from_string(buffer.getvalue())))
    group = _head_group(analysis)
    assert group.prunable and group.units == heads, group.to_dict()
    assert len(group.producers) == 2  # the qkv conv and the aggregation's grouped conv
    result = prune(analysis, {group.id: [1]})
    assert check_against_masked(analysis, result).ok
    groups = [
        a.i for n in result.model.graph.node for a in n.attribute if a.name == "group" and a.i > 1
    ]
    assert 3 in groups  # the grouped conv lost one head's three conv-groups (6 -> 3)
    # by head dimension, q|k|v side by side are sliced per head, but linear attention keeps
    # whole heads: the slices must not collapse them into one unit
    by_dims = analyse(analysis.loaded, attention_units="dims")
    assert _head_group(by_dims).units == heads


def _side_by_side(heads: int, kd: int, vd: int, chunk: bool = False):
    """LeViT / EfficientFormer: one projection viewed as [B, N, H, 2 kd + vd] and split into
    q|k|v along the per-head axis (``chunk``: timm's CoAtNet, which the legacy exporter writes
    as three Slices)."""
    torch = pytest.importorskip("torch")

    class SideBySide(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Linear(8, 16)
            self.qkv = torch.nn.Linear(16, heads * (2 * kd + vd))
            self.proj = torch.nn.Linear(heads * vd, 16)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            x = self.embed(x)
            b, n, _ = x.shape
            qkv = self.qkv(x).view(b, n, heads, -1).permute(0, 2, 1, 3)
            q, k, v = qkv.chunk(3, dim=3) if chunk else qkv.split([kd, kd, vd], dim=3)
            a = ((q @ k.transpose(-2, -1)) * kd**-0.5).softmax(-1)
            o = (a @ v).transpose(1, 2).reshape(b, n, heads * vd)
            return self.fc(x + self.proj(o)).mean(1)

    torch.manual_seed(0)
    return torch, SideBySide().eval()


@pytest.mark.parametrize(("dynamo", "chunk"), [(False, False), (True, False), (False, True)])
def test_side_by_side_qkv_per_head_prunes_by_dimension(dynamo, chunk):
    """By head dimension the split keeps the heads and loses the same sub-ranges of every
    head (its sizes or Slice bounds rewritten); by heads the whole line goes."""
    heads, kd = 2, 4
    vd = kd if chunk else 6
    torch, net = _side_by_side(heads, kd, vd, chunk)
    model = _export(torch, net, torch.randn(1, 6, 8), dynamo)
    assert _head_group(analyse(load_model(model))).units == heads
    analysis = analyse(load_model(model), attention_units="dims")
    (group,) = [g for g in analysis.groups if g.attention_dims]
    assert group.prunable and group.units == kd + vd
    result = prune(analysis, {group.id: [0, 3, kd, kd + 3]})  # 2 q/k dims, 2 v dims
    outcome = check_against_masked(analysis, result)
    assert outcome.ok, outcome
    weights = {i.name: tuple(i.dims) for i in result.model.graph.initializer}
    assert (16, heads * (2 * 2 + 2)) in weights.values()
    slices = [n for n in result.model.graph.node if n.op_type == "Slice"]
    assert len(slices) == (3 if chunk else 0)


def test_a_kept_count_never_empties_one_part_of_a_split():
    """The v dimensions have the smallest filters: the top 3 units by L2 are all q/k, which
    would leave v (one output of the split) without channels. One v unit replaces the
    weakest q/k unit instead."""
    heads, kd, vd = 2, 4, 6
    torch, net = _side_by_side(heads, kd, vd)
    with torch.no_grad():
        per_head = net.qkv.weight.view(heads, 2 * kd + vd, 16)
        per_head[:, 2 * kd :] *= 1e-3
    model = _export(torch, net, torch.randn(1, 6, 8), False)
    analysis = analyse(load_model(model), attention_units="dims")
    (group,) = [g for g in analysis.groups if g.attention_dims]
    result = prune(analysis, {group.id: 3})
    kept = result.kept[group.id].tolist()
    assert len(kept) == 3 and sum(u >= kd for u in kept) == 1, kept
    assert check_against_masked(analysis, result).ok
