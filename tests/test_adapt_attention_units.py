"""``--attention-units`` in the loop: attention blocks adapted by whole heads or by per-head
dimensions, and a proposal rebuilt by a remote worker in the same mode as the loop made it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from adapt_models import digits_arrays, export_dynamic_batch, read_history, tiny_digits_config
from click.testing import CliRunner
from models import CASES
from torch import nn

from onnx_netadapt.adapt import adapt_model
from onnx_netadapt.adapt.proposals import ProposalJob, rebuild_proposal
from onnx_netadapt.channels.analysis import analyse
from onnx_netadapt.cli import main
from onnx_netadapt.errors import PruneError, UsageError
from onnx_netadapt.graph.load import load_model
from onnx_netadapt.prune.apply import prune

HEADS, DIM = 4, 8


class TinyDigitsAttention(nn.Module):
    """A conv stem, one multi-head self-attention over the 4x4 positions, a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU())
        self.q = nn.Linear(16, HEADS * DIM)
        self.k = nn.Linear(16, HEADS * DIM)
        self.v = nn.Linear(16, HEADS * DIM)
        self.out = nn.Linear(HEADS * DIM, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        t = self.stem(x).flatten(2).transpose(1, 2)  # (N, 16 positions, 16)

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(n, 16, HEADS, DIM).transpose(1, 2)

        q, k, v = split(self.q(t)), split(self.k(t)), split(self.v(t))
        attn = torch.softmax(q @ k.transpose(-1, -2) * DIM**-0.5, dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(n, 16, HEADS * DIM)
        return self.head((t + self.out(y)).mean(1))


@pytest.fixture(scope="module")
def tiny_attention(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attention classifier trained for a few epochs on the digits (a second or two)."""
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a[:1400]) for a in digits_arrays())
    net = TinyDigitsAttention()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(6):
        for idx in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return export_dynamic_batch(net.eval(), tmp_path_factory.mktemp("attn") / "attention.onnx")


def _q_rows(model: onnx.ModelProto) -> int:
    """Output features of the q projection (its weight's rows after the exporter's transpose)."""
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "MatMul" and "q" in n.name.lower())
    return inits[node.input[1]][1]


def _head_counts(model: onnx.ModelProto) -> set[int]:
    """The head count in every Reshape to (1, 16, H, D)."""
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    return {
        int(inits[n.input[1]][2])
        for n in model.graph.node
        if n.op_type == "Reshape" and n.input[1] in inits and inits[n.input[1]].size == 4
    }


@pytest.mark.parametrize("units", ["heads", "dims"])
def test_the_loop_adapts_attention_by_the_units_asked(
    tiny_attention: Path, tmp_path: Path, units: str
) -> None:
    out = tmp_path / units
    cfg = tiny_digits_config(attention_units=units)
    adapt_model(tiny_attention, cfg, out)
    history = read_history(out)
    assert history["config"]["attention_units"] == units
    attention = [
        p
        for it in history["history"]
        for p in it.get("proposals", [])
        if any("q" in name.lower() for name in p["producers"])
    ]
    assert attention, "no proposal cut the attention block"
    for proposal in attention:
        kept = proposal["channels_after"]
        # heads: whole heads of DIM channels; dims: the same dims in all HEADS heads
        assert kept % (DIM if units == "heads" else HEADS) == 0
        assert kept < proposal["channels_before"]
    adapted = onnx.load(out / "adapted.onnx")
    rows = _q_rows(adapted)
    heads = _head_counts(adapted)
    if units == "dims":
        assert heads == {HEADS} and rows % HEADS == 0
    else:
        assert rows == DIM * max(heads)


def test_a_worker_rebuilds_the_proposal_in_the_loop_s_units() -> None:
    """Ray workers rebuild a proposal from the current network: by dims when the loop cut dims."""
    model = CASES["attention_heads"].build()
    current = model.SerializeToString()
    analysis = analyse(load_model(model, fold=False), "dims")
    group = next(g for g in analysis.groups if g.attention_dims and g.prunable)
    made = prune(analysis, {group.id: group.units // 2}, check=False).model
    job = ProposalJob(group.id, "unused.onnx", 0, group.units // 2, False, "dims")
    rebuilt = rebuild_proposal(current, job)
    assert rebuilt.SerializeToString() == made.SerializeToString()
    # the same job read by heads names another cut (here: more units than the heads group has)
    by_heads = ProposalJob(group.id, "unused.onnx", 0, group.units // 2, False, "heads")
    with pytest.raises(PruneError, match="cannot keep"):
        rebuild_proposal(current, by_heads)


def test_unknown_attention_units_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--attention-units"):
        tiny_digits_config(attention_units="rows").validate()
    result = CliRunner().invoke(
        main,
        ["adapt", str(tmp_path / "m.onnx"), "--budget", "0.5", "--attention-units", "rows"],
    )
    assert result.exit_code == 2 and "rows" in result.output
    assert not np.any([p.exists() for p in tmp_path.iterdir()])
