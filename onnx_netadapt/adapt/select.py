"""NetAdapt's pick among the fine-tuned proposals of one iteration."""

from __future__ import annotations

import math
from collections.abc import Sequence

from onnx_netadapt.adapt.proposals import ProposalScore
from onnx_netadapt.adapt.search import Candidate


def choose(
    candidates: Sequence[Candidate],
    scores: Sequence[ProposalScore],
    mode: str,
    primary: str,
    current_value: float,
    current_accuracy: float,
) -> int | None:
    """Index of the chosen proposal (None when every proposal failed).

    ``accuracy``: the highest holdout accuracy (the paper). ``ratio``: the least accuracy lost
    per unit of ``primary`` resource saved (MobileNetV3 / the official code). Ties (common on a
    holdout set of a few hundred images) go to the lower holdout loss, then to the cheaper
    proposal, then to the lower group id, so the pick is deterministic.
    """
    best, best_key = None, None
    for i, (cand, score) in enumerate(zip(candidates, scores, strict=True)):
        if score.error is not None or math.isnan(score.holdout_accuracy):
            continue
        saved = max(current_value - cand.estimate[primary], 1e-12)
        lost = current_accuracy - score.holdout_accuracy
        merit = score.holdout_accuracy if mode == "accuracy" else -lost / saved
        loss = score.holdout_loss if not math.isnan(score.holdout_loss) else math.inf
        key = (merit, -loss, -cand.estimate[primary], -cand.group_id)
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best
