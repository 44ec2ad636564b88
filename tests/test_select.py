"""Picking among proposals: by holdout accuracy, or by accuracy lost per latency saved."""

from __future__ import annotations

import math

import pytest

from onnx_netadapt.adapt.proposals import ProposalScore, proposal_seed
from onnx_netadapt.adapt.search import Candidate, candidate_counts
from onnx_netadapt.adapt.select import choose


def _cand(group: int, latency: float) -> Candidate:
    return Candidate(group, [f"conv{group}"], 8, 4, 8, {"latency": latency}, model=None)


def test_accuracy_and_ratio_modes_pick_differently() -> None:
    # current: 10 ms at 90% accuracy. A saves 1 ms losing 1 point; B saves 4 ms losing 2.
    cands = [_cand(0, 9.0), _cand(1, 6.0)]
    scores = [ProposalScore(0, 0.89, 1.0), ProposalScore(1, 0.88, 1.0)]
    assert choose(cands, scores, "accuracy", "latency", 10.0, 0.90) == 0
    assert choose(cands, scores, "ratio", "latency", 10.0, 0.90) == 1


def test_failed_proposals_are_skipped_and_ties_are_deterministic() -> None:
    cands = [_cand(0, 9.0), _cand(1, 8.0), _cand(2, 8.0)]
    scores = [
        ProposalScore(0, math.nan, 1.0, error="FineTuneError: no converter for op X"),
        ProposalScore(1, 0.9, 1.0),
        ProposalScore(2, 0.9, 1.0),
    ]
    assert choose(cands, scores, "accuracy", "latency", 10.0, 0.9) == 1  # same: lower group
    assert choose(cands[:1], scores[:1], "accuracy", "latency", 10.0, 0.9) is None


def test_grid_counts_and_seeds() -> None:
    class Group:
        units, class_width = 30, 1

    assert candidate_counts(Group(), 8) == [24, 16, 8]
    Group.units = 8
    assert candidate_counts(Group(), 8) == []
    Group.units, Group.class_width = 16, 4  # whole conv-groups of 4 channels: step 2 units
    assert candidate_counts(Group(), 8) == [14, 12, 10, 8, 6, 4, 2]
    assert proposal_seed(0, 3, ["a"]) == proposal_seed(0, 3, ["a"]) != proposal_seed(0, 4, ["a"])


def test_accuracy_ties_go_to_the_lower_holdout_loss() -> None:
    cands = [_cand(0, 8.0), _cand(1, 8.5)]
    scores = [
        ProposalScore(0, 0.9, 1.0, holdout_loss=0.40),
        ProposalScore(1, 0.9, 1.0, holdout_loss=0.31),
    ]
    assert choose(cands, scores, "accuracy", "latency", 10.0, 0.9) == 1


def test_cross_entropy_matches_its_definition() -> None:
    import numpy as np

    from onnx_netadapt.evaluate import cross_entropy

    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.5]])
    labels = np.array([0, 2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    want = -np.mean(np.log(p[[0, 1], labels]))
    assert cross_entropy(logits, labels) == pytest.approx(want)
