"""The study's decision rules: when a variant wins or loses against the baseline, when it is not shown to
differ, and when no verdict is given at all.

A variant *wins* (or *loses*) only when the difference of the seed means exceeds the sum of the two seed
standard deviations; otherwise it is *not shown to differ* (never "a tie": equal is not what a small
difference over a few seeds shows). No verdict at all is given while the baseline's validation loss
is less than ``TRAINED_MARGIN`` nats below the validation set's unigram entropy (the loss of knowing word
frequencies alone): such models have not learned language, so their differences say nothing about ODE-BERT.
"""

from __future__ import annotations

from .records import PretrainSummary, Stats

TRAINED_MARGIN = 1.0  # nats below the unigram entropy the baseline must reach before any verdict
INCONCLUSIVE = "inconclusive: not trained beyond word frequencies"
NOT_SHOWN = "not shown to differ"


def verdict(candidate: Stats, baseline: Stats, lower_is_better: bool) -> str:
    """``win`` / ``loss`` / ``not shown to differ`` of ``candidate`` against ``baseline`` (``SeedStats``, or
    mappings with ``mean``, ``std`` and ``n``) by the seed spread; ``(1 seed)``: no spread to judge by."""
    if candidate is None or baseline is None or candidate["mean"] is None or baseline["mean"] is None:
        return "n/a"
    difference = candidate["mean"] - baseline["mean"]
    if lower_is_better:
        difference = -difference
    spread = (candidate["std"] or 0.0) + (baseline["std"] or 0.0)
    outcome = NOT_SHOWN if abs(difference) <= spread else ("win" if difference > 0 else "loss")
    return outcome if candidate["n"] >= 2 and baseline["n"] >= 2 else f"{outcome} (1 seed)"


def trained_beyond_unigram(baseline: PretrainSummary | None, unigram: float | None) -> bool:
    """Whether the baseline learned more than word frequencies: its mean validation loss is at least
    ``TRAINED_MARGIN`` nats below the unigram entropy. Unknown (no entropy recorded) counts as trained, as
    before the rule existed."""
    if baseline is None or baseline.val_loss is None:
        return False
    return unigram is None or baseline.val_loss.mean <= unigram - TRAINED_MARGIN
