"""Cheap probes of what a model's representations do while it trains (``train.probe_blocks``), logged at every
evaluation to ``probes.jsonl`` beside ``log.csv``.

Two signals of the MLM plateau and its abrupt end: the mean pairwise cosine similarity of the token states of
one sequence, per layer (near 1: representation collapse, tokens nearly parallel; Noci et al. 2022, Gopalani &
Hu 2025), and the entropy of every head's attention distribution, per layer (uniform attention has entropy
log T; heads that learn structure drop below it; Chen et al. 2024, "Sudden drops in the loss").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..utils.records import Record


@dataclass
class ProbePoint(Record):
    """The probes at one evaluation."""

    step: int
    tokens: int
    # per hidden state (the embeddings, then each layer's output): mean pairwise cosine of a sequence's tokens
    token_cosine: list[float]
    attention_entropy: list[list[float]]  # per layer, per head: mean entropy of a query's attention, in nats
    uniform_entropy: float  # log T: the entropy of attention spread evenly over the T tokens


def mean_pairwise_cosine(states: torch.Tensor) -> float:
    """Mean cosine similarity over the pairs of distinct tokens of each sequence of ``states`` (batch, seq,
    hidden), averaged over the batch: ``(|sum u|^2 - T) / (T (T - 1))`` for the unit vectors ``u``."""
    unit = torch.nn.functional.normalize(states.double(), dim=-1)
    length = unit.shape[1]
    summed = unit.sum(dim=1).pow(2).sum(dim=-1)  # |sum_i u_i|^2 per sequence
    return ((summed - length) / (length * (length - 1))).mean().item()


def attention_entropy(probs: torch.Tensor) -> list[float]:
    """Per head: the mean over batch and queries of the entropy of one query's attention distribution."""
    probs = probs.double()
    entropy = -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1)  # (batch, heads, queries)
    return entropy.mean(dim=(0, 2)).tolist()


@torch.no_grad()
def probe(model, input_ids: torch.Tensor, step: int, tokens: int) -> ProbePoint:
    """The probes of ``model`` (a BertOdeForMaskedLM, evaluated eager and unmasked) on ``input_ids``."""
    config = model.config
    previous, was_training = config._attn_implementation, model.training
    config._attn_implementation = "eager"  # attention weights are returned by the eager kernel
    model.eval()
    try:
        outputs = model.bert(input_ids=input_ids, output_hidden_states=True, output_attentions=True)
    finally:
        config._attn_implementation = previous
        model.train(was_training)
    return ProbePoint(
        step=step,
        tokens=tokens,
        token_cosine=[mean_pairwise_cosine(h) for h in outputs.hidden_states],
        attention_entropy=[attention_entropy(a) for a in outputs.attentions],
        uniform_entropy=math.log(input_ids.shape[1]),
    )


def append_probe(path: Path, point: ProbePoint) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(point.to_dict()) + "\n")


def read_probes(path: Path, up_to_step: int | None = None) -> list[ProbePoint]:
    """The probes logged in ``path`` (none if it does not exist), up to ``up_to_step`` where given."""
    if not path.is_file():
        return []
    points = [
        ProbePoint.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()
    ]
    return [p for p in points if up_to_step is None or p.step <= up_to_step]


def truncate_probes(path: Path, step: int) -> None:
    """Drops the probes past ``step``: a run resumed from the checkpoint at ``step`` logs them again."""
    if path.is_file():
        kept = read_probes(path, up_to_step=step)
        path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in kept), encoding="utf-8")
