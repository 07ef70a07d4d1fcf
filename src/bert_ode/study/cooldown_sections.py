"""Sections of a ``cooldowns`` study's report beyond the escape, the multiplier and the gaps: how many passes
over the training corpus each budget means and how far training and validation loss part there, the learned
scheme coefficients as trained, the sensitivity and ablation arms' escapes against their reference arm
(same seed), the probes around each run's escape, every endpoint evaluated with more integration steps than it
was trained with, the downstream change between budgets on the same seeds, and the warm start. Each function
returns markdown lines; an empty list where the study has nothing to show.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ..utils import markdown
from ..utils.metrics import confidence_interval
from .config import StudyConfig, Variant
from .escape import escape_tokens
from .records import BranchUnit, ConstantRun, WarmUnit


def corpus_section(branches: list[BranchUnit], corpus: dict | None) -> list[str]:
    """Passes over the training blocks at each budget, and training minus validation loss at the endpoints
    (dropout is off in the study's recipe, so the two losses measure the same thing on different text)."""
    if not branches:
        return []
    train_tokens = (corpus or {}).get("train_tokens")
    lines = ["## Passes over the corpus and the train-validation gap", ""]
    if train_tokens:
        lines += [
            f"The training split packs into {corpus['train_blocks']:,} blocks of {corpus['seq_len']} tokens "
            f"({train_tokens / 1e6:.2f}M tokens); the validation split into {corpus['validation_blocks']:,}. "
            "A budget of B tokens is B / that many passes over the training text. The last column is the "
            "validation loss minus the training loss of the cooldown's last logging window (positive: "
            "the model does better on text it has seen).",
            "",
        ]
    else:
        lines += ["The training corpus was streamed and not counted: passes are not given.", ""]
    rows = []
    for (variant, budget), group in _by_endpoint(branches).items():
        gaps = [b.val_loss - b.train_loss for b in group]
        rows.append(
            [
                f"`{variant}`",
                f"{budget / 1e6:g}M",
                f"{budget / train_tokens:.1f}" if train_tokens else "-",
                f"{statistics.mean(b.train_loss for b in group):.3f}",
                f"{statistics.mean(b.val_loss for b in group):.3f}",
                f"{statistics.mean(gaps):+.3f}" + (f" ± {statistics.stdev(gaps):.3f}" if gaps[1:] else ""),
                str(len(group)),
            ]
        )
    header = ["variant", "budget", "passes", "train loss", "validation loss", "validation - train", "seeds"]
    return [*lines, *markdown.table(header, rows), ""]


def _by_endpoint(branches: list[BranchUnit]) -> dict[tuple[str, int], list[BranchUnit]]:
    grouped: dict[tuple[str, int], list[BranchUnit]] = {}
    for branch in sorted(branches, key=lambda b: (b.variant, b.budget_tokens, b.seed)):
        grouped.setdefault((branch.variant, branch.budget_tokens), []).append(branch)
    return grouped


def learned_section(branches: list[BranchUnit]) -> list[str]:
    """The learned coefficients (ab2-learned's ``beta``, PCformer's EMA ``alpha``) at each endpoint, mean over
    seeds per block. For two multistep coefficients ``(beta_0, beta_1)`` (newest first) the order conditions
    are read off: consistency (first order) needs ``beta_0 + beta_1 = 1``, second order also
    ``beta_1 = -1/2`` (Adams-Bashforth 2); ``(1, 0)`` is BERT's residual."""
    rows = []
    for (variant, budget), group in _by_endpoint([b for b in branches if b.learned]).items():
        for name in group[0].learned:
            per_seed = zip(*(b.learned[name] for b in group), strict=True)
            values = [statistics.mean(seed_values) for seed_values in per_seed]
            where = [f"`{variant}`", f"{budget / 1e6:g}M", _block(name)]
            rows.append([*where, _coefficients(values, _first_block(name)), str(len(group))])
    if not rows:
        return []
    return [
        "## Learned scheme coefficients, as trained",
        "",
        "Mean over seeds. For a multistep block `(beta_0, beta_1)`, newest evaluation first: BERT's residual "
        "is (1, 0), Adams-Bashforth 2 is (1.5, -0.5). The sum is the step's scale (1: a consistent step over "
        "the block's interval, so first order; below 1, a shorter step, as `ode_interval` < 1 would make); "
        "`beta_1 / beta_0` is its shape (0: Euler, -1/3: Adams-Bashforth 2, second order at sum 1). In the "
        "first block of a stream (layer 0) there is no earlier evaluation: both coefficients multiply the "
        "same one and get the same gradient, so only their sum is learned there; their difference stays at "
        "its initial value and no shape is read. PCformer's `alpha` weighs its predictor's stages.",
        "",
        *markdown.table(["variant", "budget", "block", "coefficients", "seeds"], rows),
        "",
    ]


def _block(parameter: str) -> str:
    """``bert.encoder.layer.1.ffn_ode.coefficients.weight`` -> ``layer 1 ffn``."""
    parts = parameter.split(".")
    index = next((i for i, part in enumerate(parts) if part.isdigit()), None)
    if index is None:
        return parameter
    stream = parts[index + 1] if index + 1 < len(parts) - 2 else ""
    return f"layer {parts[index]} {stream.removesuffix('_ode')}".strip()


def _first_block(parameter: str) -> bool:
    """A stream's first block (layer 0): its multistep coefficients multiply one evaluation."""
    return ".layer.0." in parameter


def _coefficients(values: Sequence[float], first: bool = False) -> str:
    """The values; for two multistep coefficients also their sum (the step's scale: 1 is a consistent step of
    the block's interval) and ``beta_1 / beta_0`` (the shape: 0 for Euler, -1/3 for Adams-Bashforth 2). In a
    stream's ``first`` block both multiply the same evaluation, so both get the same gradient: only the sum
    is learned, the difference stays where initialisation put it, and no shape is read."""
    text = "(" + ", ".join(f"{v:.3f}" for v in values) + ")"
    if len(values) == 2 and first:
        text += f", sum {sum(values):.3f}; beta_0 - beta_1 {values[0] - values[1]:.3f} (not identifiable)"
    elif len(values) == 2:
        ratio = f"{values[1] / values[0]:+.3f}" if values[0] else "-"
        text += f", sum {sum(values):.3f}, beta_1/beta_0 {ratio}"
    return text


def reference_arm(arm: Variant, variants: list[Variant]) -> Variant | None:
    """The arm a sensitivity or ablation arm changes one thing of: the main arm (no ``train`` overrides) whose
    model overrides are the largest part of the arm's own (``heun-interval-half`` -> ``heun``)."""
    candidates = [
        v
        for v in variants
        if v is not arm
        and not v.train
        and v.cooldowns != []
        and v.compute_match is None
        and v.model.items() <= arm.model.items()
    ]
    return max(candidates, key=lambda v: len(v.model), default=None)


def sensitivity_section(runs: list[ConstantRun], config: StudyConfig, margin: float) -> list[str]:
    """The escape of every sensitivity arm (its own ``train``) and ablation arm (no cooldowns of its own) next
    to its reference arm's at the same seed: how much the delay moves with the change."""
    arms = [v for v in config.variants if v.train or (v.cooldowns == [] and config.cooldowns)]
    rows = []
    for arm in arms:
        reference = reference_arm(arm, config.variants)
        for run in sorted((r for r in runs if r.variant == arm.name), key=lambda r: r.seed):
            own = _escape(run, margin)
            base_run = next(
                (r for r in runs if reference and r.variant == reference.name and r.seed == run.seed), None
            )
            base = _escape(base_run, margin) if base_run else None
            ratio = f"{own / base:.2f}" if own and base else "-"
            rows.append(
                [
                    f"`{arm.name}`",
                    _change(arm, reference),
                    str(run.seed),
                    _tokens(own, run.tokens),
                    f"`{reference.name}`: {_tokens(base, base_run.tokens)}" if base_run else "-",
                    ratio,
                ]
            )
    if not rows:
        return []
    return [
        "## Sensitivity and ablation arms: the escape against the arm they change",
        "",
        f"Tokens until the validation loss is {margin:g} nat below unigram, constant-rate runs, same seed; "
        "the ratio is the arm's escape over its reference's (above 1: later).",
        "",
        *markdown.table(["arm", "what changes", "seed", "escape", "reference", "ratio"], rows),
        "",
    ]


def _escape(run: ConstantRun | None, margin: float) -> int | None:
    if run is None or run.unigram_entropy is None:
        return None
    return escape_tokens(run.curve, run.unigram_entropy, margin)


def _tokens(value: int | None, limit: int) -> str:
    return f"{value / 1e6:.2f}M" if value is not None else f"> {limit / 1e6:.1f}M"


def _change(arm: Variant, reference: Variant | None) -> str:
    changed = {k: v for k, v in arm.model.items() if reference is None or k not in reference.model}
    parts = [f"{k}={v}" for k, v in {**changed, **arm.train}.items()]
    return ", ".join(parts) or "-"


def probes_section(runs: list[ConstantRun], margin: float, offset: int = 2_000_000) -> list[str]:
    """The probes of every run that escaped, at the evaluations nearest ``offset`` tokens before its escape,
    at it, and ``offset`` after: the last layer's mean pairwise token cosine (representation collapse), and
    the attention entropy over log T (1: uniform attention), mean over every layer's heads and the lowest.
    Medians over a variant's runs: the escape is abrupt, so a mean would mix runs at different stages."""
    rows = []
    for variant in sorted({r.variant for r in runs}):
        around = [_probes_around(r, margin, offset) for r in runs if r.variant == variant]
        around = [a for a in around if a is not None]
        if not around:
            continue
        cells = []
        for signal in range(3):
            medians = [statistics.median(a[where][signal] for a in around) for where in range(3)]
            cells.append(" / ".join(f"{m:.3f}" for m in medians))
        rows.append([f"`{variant}`", str(len(around)), *cells])
    if not rows:
        return []
    header = [
        "variant",
        "runs",
        "token cosine, last layer",
        "attention entropy / log T, mean head",
        "lowest head",
    ]
    return [
        "## Probes around the escape",
        "",
        f"At the evaluations nearest {offset / 1e6:g}M tokens before each run's escape ({margin:g} nat below "
        f"unigram), at it, and {offset / 1e6:g}M after (before / at / after), median over the variant's runs "
        "that escaped with that much curve on each side. Token cosine: the mean pairwise cosine of one "
        "sequence's token states after the last layer (1: every token the same vector). Attention entropy: "
        "a query's attention entropy over log T (1: uniform over the sequence), mean over all heads and "
        "layers, and of the head lowest at that evaluation.",
        "",
        *markdown.table(header, rows),
        "",
    ]


def _probes_around(run: ConstantRun, margin: float, offset: int) -> list[tuple[float, float, float]] | None:
    """(cosine, mean entropy, lowest entropy) before, at and after the run's escape; None without both
    sides."""
    at = _escape(run, margin)
    if at is None or not run.probes:
        return None
    first, last = run.probes[0].tokens, run.probes[-1].tokens
    if at - offset < first or at + offset > last:
        return None
    values = []
    for target in (at - offset, at, at + offset):
        point = min(run.probes, key=lambda p: abs(p.tokens - target))
        heads = [h / point.uniform_entropy for layer in point.attention_entropy for h in layer]
        values.append((point.token_cosine[-1], statistics.mean(heads), min(heads)))
    return values


def refinement_section(branches: list[BranchUnit], largest: int) -> list[str]:
    """Every variant's endpoint at its largest budget up to ``largest``, evaluated with 1, 2, 4, ... steps of
    its scheme per block (the trained model is the first): how far the trained discrete model sits from the
    continuous model its field defines. For a scheme of order p on a smooth field the loss differences of
    successive halvings shrink by 2^p, so ``log2`` of their ratio is an observed order, shown where both
    differences have one sign."""
    rows = []
    for variant in sorted({b.variant for b in branches}):
        mine = [b for b in branches if b.variant == variant and b.mlm_by_ode_steps]
        budgets = [b.budget_tokens for b in mine if b.budget_tokens <= largest]
        if not budgets:
            continue
        group = [b for b in mine if b.budget_tokens == max(budgets)]
        steps = sorted({int(s) for b in group for s in b.mlm_by_ode_steps}, key=int)
        steps = [s for s in steps if all(str(s) in b.mlm_by_ode_steps for b in group)]
        losses = [statistics.mean(b.mlm_by_ode_steps[str(s)]["val_loss"] for b in group) for s in steps]
        changes = [later - earlier for earlier, later in zip(losses, losses[1:], strict=False)]
        order = "-"
        if len(changes) >= 2 and changes[-2] * changes[-1] > 0:
            order = f"{math.log2(changes[-2] / changes[-1]):.2f}"
        rows.append(
            [
                f"`{variant}`",
                f"{max(budgets) / 1e6:g}M",
                " / ".join(str(s) for s in steps),
                " / ".join(f"{loss:.3f}" for loss in losses),
                " / ".join(f"{c:+.3f}" for c in changes),
                order,
                str(len(group)),
            ]
        )
    if not rows:
        return []
    header = ["variant", "budget", "steps per block", "validation loss", "change per halving", "order"]
    header.append("seeds")
    return [
        "## Refinement: each endpoint evaluated with more steps than it was trained with",
        "",
        "Every model trained with one step of its scheme per block; more steps integrate the same learned "
        "field more finely, toward the continuous model it defines (mean over seeds; the change is each "
        "halving's, positive: worse). What this can show: how far the trained discrete model sits from that "
        "continuous model. What it cannot: that the model is better, or a way to save compute, since no step "
        "count below the trained one exists. The observed order (log2 of successive changes' ratio) is the "
        "integrator's (1 for Euler, 2 for Heun) on any field smooth at the step's scale, trained or not; "
        "below it, the steps are too coarse for the field to be in that range.",
        "",
        *markdown.table(header, rows),
        "",
    ]


__all__ = [
    "corpus_section",
    "learned_section",
    "probes_section",
    "reference_arm",
    "refinement_section",
    "sensitivity_section",
]


def downstream_budgets_section(branches: list[BranchUnit]) -> list[str]:
    """Each variant fine-tuned at more than one budget: the later budget's test score minus the earlier one's,
    paired by seed, over the seeds fine-tuned at both (a mean over other seeds would mix seed spread in)."""
    tuned: dict[str, dict[int, dict[int, float]]] = {}
    for branch in branches:
        if branch.finetune is not None:
            score = branch.finetune.test[branch.finetune.main_metric]
            tuned.setdefault(branch.variant, {}).setdefault(branch.budget_tokens, {})[branch.seed] = score
    rows = []
    for variant, by_budget in sorted(tuned.items()):
        budgets = sorted(by_budget)
        for early, late in zip(budgets, budgets[1:], strict=False):
            seeds = sorted(set(by_budget[early]) & set(by_budget[late]))
            if not seeds:
                continue
            deltas = [by_budget[late][s] - by_budget[early][s] for s in seeds]
            low, high = confidence_interval(deltas)
            interval = f" [{low:+.3f}, {high:+.3f}]" if len(deltas) > 1 else ""
            per_seed = ", ".join(f"{s}: {d:+.3f}" for s, d in zip(seeds, deltas, strict=True))
            change = f"{early / 1e6:g}M -> {late / 1e6:g}M"
            rows.append([f"`{variant}`", change, per_seed, f"{statistics.mean(deltas):+.3f}{interval}"])
    if not rows:
        return []
    return [
        "### Between budgets, on the same seeds",
        "",
        "The later budget's test score minus the earlier one's, per seed, with the mean and its 95% paired-t "
        "interval (positive: the longer pretraining fine-tunes better).",
        "",
        *markdown.table(["variant", "budgets", "per seed", "mean change"], rows),
        "",
    ]


def warm_start_section(warm: list[WarmUnit]) -> list[str]:
    """Each conversion of the pretrained checkpoint: its validation MLM loss after the continued pretraining
    and its fine-tuned test score, per seed (the same tokens, order and MLM-head initialisation for each)."""
    if not warm:
        return []
    grouped: dict[str, list[WarmUnit]] = {}
    for unit in sorted(warm, key=lambda u: (u.variant, u.seed)):
        grouped.setdefault(unit.variant, []).append(unit)
    rows = []
    for variant, units in grouped.items():
        losses = [u.val_loss for u in units if u.val_loss is not None]
        metric = units[0].finetune.main_metric
        scores = [u.finetune.test[metric] for u in units]
        rows.append(
            [
                f"`{variant}`",
                f"{units[0].continued_tokens / 1e6:g}M" if units[0].continued_tokens else "none",
                ", ".join(f"{u.seed}: {u.val_loss:.3f}" for u in units if u.val_loss is not None) or "-",
                _mean_std(losses),
                ", ".join(f"{u.seed}: {u.finetune.test[metric]:.3f}" for u in units),
                _mean_std(scores),
            ]
        )
    source = warm[0].source
    header = ["conversion", "continued", "validation MLM loss", "mean ± std", "test score", "mean ± std"]
    return [
        "## Warm start: the pretrained checkpoint converted",
        "",
        f"`{source}` converted to each scheme (the Euler conversion is the checkpoint itself), pretrained "
        "further on the study's corpus and fine-tuned on its task, per seed. It keeps the checkpoint's "
        "tokenizer, so these losses are not comparable with the from-scratch runs'.",
        "",
        *markdown.table(header, rows),
        "",
    ]


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.3f}{spread}"
