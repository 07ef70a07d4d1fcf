"""How long a pretraining run lasts and how fast it learns at each moment of it."""

from __future__ import annotations

import math
from dataclasses import dataclass


def lr_factor(
    schedule: str, progress: float, warmup_fraction: float, cooldown_fraction: float = 0.2
) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of the budget.

    ``wsd`` (warmup-stable-decay; Hägele et al., NeurIPS 2024): the peak rate from the warmup's end until
    the last ``cooldown_fraction`` of the budget, then linearly down to 0. Up to its cooldown it is the
    ``constant`` schedule with the same warmup, so a cooldown branched off a constant-rate run at that point
    (``pretrain(..., branch_from=...)``) is the run this schedule would have made from the start: one
    constant-rate run gives every budget.
    """
    progress = min(max(progress, 0.0), 1.0)
    if warmup_fraction > 0 and progress < warmup_fraction:
        return progress / warmup_fraction
    if schedule == "constant":
        return 1.0
    if schedule == "wsd":
        return 1.0 if progress < 1 - cooldown_fraction else (1.0 - progress) / cooldown_fraction
    rest = (progress - warmup_fraction) / (1 - warmup_fraction)
    if schedule == "triangle":
        return 1.0 - rest
    return 0.5 * (1 + math.cos(math.pi * rest))  # cosine


@dataclass(frozen=True)
class Budget:
    """The run's length: optimizer steps, wall-clock seconds, or both (whichever ends first)."""

    total_steps: int | None
    seconds: float | None

    @classmethod
    def from_config(cls, train, tokens_per_step: int) -> Budget:
        """``train.max_steps`` overrides ``train.budget_tokens`` for the schedule's length."""
        if train.max_steps is not None:
            steps = train.max_steps
        elif train.budget_tokens is not None:
            steps = max(1, math.ceil(train.budget_tokens / tokens_per_step))
        else:
            steps = None  # a wall-clock budget alone
        return cls(steps, train.budget_minutes * 60 if train.budget_minutes else None)

    def warmup_fraction(self, train, tokens_per_step: int) -> float:
        """The warmup as a fraction of this budget: ``train.warmup_tokens`` (the same warmup whatever the
        budget, as runs of different lengths compared at one rate need) or ``train.warmup_fraction``."""
        if train.warmup_tokens is None:
            return train.warmup_fraction
        return min(1.0, train.warmup_tokens / (self.total_steps * tokens_per_step))

    def progress(self, step: int, seconds: float) -> float:
        """The fraction of the budget spent; >= 1 means the run is over."""
        fractions = []
        if self.total_steps is not None:
            fractions.append(step / self.total_steps)
        if self.seconds is not None:
            fractions.append(seconds / self.seconds)
        return max(fractions)
