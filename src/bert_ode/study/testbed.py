"""The testbed's verdict (``reports/testbed``): can the recipe see gains known to exist, before any ODE scheme
is compared on it?

It reads a ``cooldowns`` study (``configs/compare-testbed.yaml``) made of a learning-rate sweep and of
positive controls, and the throughput measured by ``benchmarks/testbed_throughput.py``. Everything here is a
function of those records:

- **learning rates**: per swept arm, the validation loss of each rate at the sweep's budget (each seed and
  the mean); the chosen rate is the lowest mean, and the study preset must train the arm at it;
- **controls**: each a claim "``better`` has a lower validation loss than ``worse`` at equal tokens", with the
  Welch 95% t interval of ``loss(worse) - loss(better)``; it passes when the interval lies above 0, fails when
  it lies below or contains 0 with every seed in, and is pending while seeds are missing. The downstream
  control reads test accuracy the same way;
- **noise and power**: BERT's seed standard deviation at each budget and, through the slope of its loss
  against log tokens, the seeds a compute-multiplier interval needs for a half-width of at most 0.10;
- **the decision**: the depth, budgets, rates and seeds of the next study with its compute in hours, or
  which control failed.

An arm at its chosen rate pools the sweep's runs at that rate (seeds 0 and 1: the very same runs) with the
arm's own seeds, so that no run is made twice.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

from ..utils import markdown
from ..utils.records import Record
from .config import StudyConfig, Variant
from .records import BranchUnit, ConstantRun, ControlUnit
from .small_sample import Interval, welch_interval

MULTIPLIER_HALF_WIDTH = 0.10  # the next study's target: a compute-multiplier interval within +-0.10 of ~1


@dataclass
class SweepRow(Record):
    """One rate of one arm's sweep: each seed's validation loss at the budget, and their mean."""

    rate: float
    losses: dict[str, float]  # seed -> loss
    mean: float | None
    means_by_budget: dict[str, float] = field(default_factory=dict)  # every cooldown budget -> mean loss
    escape_tokens: dict[str, float | None] = field(default_factory=dict)  # seed -> tokens to 1 nat below


@dataclass
class ArmSweep(Record):
    """One arm's learning-rate sweep and the rate it chose."""

    arm: str
    budget: int
    rows: list[SweepRow]
    best_rate: float | None  # lowest mean loss over the seeds every rate has
    preset_rate: float  # the rate the preset trains the arm at
    at_edge: bool  # the best rate is the smallest or the largest tried: the grid may not hold the optimum


@dataclass
class Control(Record):
    """A positive control: ``better`` beats ``worse`` at equal tokens (by loss, or by a downstream score)."""

    name: str
    claim: str
    budget: int
    better: str
    worse: str
    measure: str  # "validation loss" or a downstream metric
    better_values: dict[str, float]
    worse_values: dict[str, float]
    gain: Interval | None  # of the better arm's advantage: loss(worse) - loss(better), or score difference
    gain_mean: float | None
    required_seeds: int  # seeds per arm before the control is read
    status: str  # "pass", "fail", "pending"


@dataclass
class Power(Record):
    """BERT's seed noise at one budget and the seeds a compute-multiplier interval needs."""

    budget: int
    seeds: int
    loss_sd: float | None
    slope_per_log_token: float | None  # d loss / d ln(tokens) of BERT's mean loss around this budget
    log_multiplier_sd: float | None  # loss_sd / |slope|: one seed's spread in log compute
    seeds_needed: int | None  # for a 95% t half-width <= ln(1 + MULTIPLIER_HALF_WIDTH) on the log scale


@dataclass
class TestbedResults(Record):
    """Everything the testbed report shows, derived from the records."""

    sweeps: list[ArmSweep]
    controls: list[Control]
    power: list[Power]
    passes: dict[str, float]  # budget -> passes over the unique training tokens
    train_tokens: int | None
    throughput: dict = field(default_factory=dict)
    tokens_per_second: dict[str, float] = field(default_factory=dict)  # arm -> measured in its runs
    decision: list[str] = field(default_factory=list)
    # the task's baselines without pretraining ({baseline: {split: scores}}) and the fine-tuning protocol's
    # convergence check (benchmarks/testbed_finetune_protocol.py's runs)
    downstream_baselines: dict = field(default_factory=dict)
    protocol: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------
# Reading the records
# ------------------------------------------------------------------------------------------------------------


class Losses:
    """Validation losses of the cooldown records: ``(variant, budget) -> {seed: loss}``; downstream scores."""

    def __init__(self, records: list):
        self.loss: dict[tuple[str, int], dict[int, float]] = {}
        self.score: dict[tuple[str, int | None], dict[int, dict]] = {}
        self.speed: dict[str, list[float]] = {}
        self.escape: dict[str, dict[int, float | None]] = {}  # variant -> seed -> tokens to 1 nat below
        self.curves: dict[
            str, dict[int, tuple[list, float | None]]
        ] = {}  # variant -> seed -> (curve, unigram)
        for record in records:
            if isinstance(record, BranchUnit):
                self.loss.setdefault((record.variant, record.budget_tokens), {})[record.seed] = (
                    record.val_loss
                )
                if record.finetune is not None:
                    self.score.setdefault((record.variant, record.budget_tokens), {})[record.seed] = (
                        record.finetune
                    )
            elif isinstance(record, ControlUnit):
                self.score.setdefault((record.variant, None), {})[record.seed] = record.finetune
            elif isinstance(record, ConstantRun):
                self.speed.setdefault(record.variant, []).append(record.tokens_per_second)
                self.curves.setdefault(record.variant, {})[record.seed] = (
                    record.curve,
                    record.unigram_entropy,
                )
                self.escape.setdefault(record.variant, {})[record.seed] = escape_tokens(record)


ESCAPE_NATS = 1.0  # the plateau is left when the validation loss is this far below the unigram entropy


def escape_tokens(run: ConstantRun) -> float | None:
    """The tokens of the first evaluation at least ``ESCAPE_NATS`` below the unigram entropy; ``None``: the
    run never got there (it ended on the plateau)."""
    if run.unigram_entropy is None:
        return None
    bar = run.unigram_entropy - ESCAPE_NATS
    return next((float(point.tokens) for point in run.curve if point.val_loss <= bar), None)


def _variant(config: StudyConfig, name: str) -> Variant:
    return next(variant for variant in config.variants if variant.name == name)


def preset_rate(config: StudyConfig, name: str) -> float:
    """The peak rate the study trains variant ``name`` at."""
    return float(_variant(config, name).train.get("lr", config.recipes.pretrain.train.lr))


def arm_runs(config: StudyConfig, name: str) -> list[str]:
    """The variants whose runs are arm ``name`` at its preset rate: itself and, where it is swept, the sweep's
    variant at that very rate (the same runs)."""
    rate = preset_rate(config, name)
    same = [swept for r, swept in config.swept_variants().get(name, []) if math.isclose(r, rate)]
    return [name, *same]


def arm_values(config: StudyConfig, losses: Losses, name: str, budget: int) -> dict[int, float]:
    values: dict[int, float] = {}
    for variant in arm_runs(config, name):
        values.update(losses.loss.get((variant, budget), {}))
    return dict(sorted(values.items()))


# ------------------------------------------------------------------------------------------------------------
# Learning rates
# ------------------------------------------------------------------------------------------------------------


def arm_sweep(config: StudyConfig, losses: Losses, arm: str) -> ArmSweep:
    budget = config.sweep_budget_of(arm)
    rows = []
    budgets = config.cooldowns_of(_variant(config, arm))
    for rate, swept in config.swept_variants()[arm]:
        values = losses.loss.get((swept, budget), {})
        by_budget = {b: losses.loss.get((swept, b), {}) for b in budgets}
        rows.append(
            SweepRow(
                rate=rate,
                losses={str(s): v for s, v in sorted(values.items())},
                mean=statistics.fmean(values.values()) if values else None,
                means_by_budget={f"{b:,}": statistics.fmean(v.values()) for b, v in by_budget.items() if v},
                escape_tokens={str(s): t for s, t in sorted(losses.escape.get(swept, {}).items())},
            )
        )
    common = set.intersection(*(set(row.losses) for row in rows)) if rows else set()
    complete = [row for row in rows if common and set(row.losses) >= common]
    best = min(complete, key=lambda row: statistics.fmean(row.losses[s] for s in common), default=None)
    rates = [row.rate for row in rows]
    chosen = None if best is None or len(complete) < len(rows) else best.rate
    return ArmSweep(
        arm=arm,
        budget=budget,
        rows=rows,
        best_rate=chosen,
        preset_rate=preset_rate(config, arm),
        at_edge=chosen is not None and chosen in (min(rates), max(rates)),
    )


# ------------------------------------------------------------------------------------------------------------
# Controls
# ------------------------------------------------------------------------------------------------------------

REQUIRED_SEEDS = 3  # per arm, before a control is read (a Welch interval on 2 seeds has 1 degree of freedom)


def _status(gain: Interval | None, counts: tuple[int, int]) -> str:
    if gain is None or min(counts) < REQUIRED_SEEDS:
        return "pending"
    return "pass" if gain.low > 0 else "fail"


def loss_control(config, losses: Losses, name: str, claim: str, better: str, worse: str, budget: int):
    good, bad = arm_values(config, losses, better, budget), arm_values(config, losses, worse, budget)
    gain = welch_interval(list(bad.values()), list(good.values()))
    return Control(
        name=name,
        claim=claim,
        budget=budget,
        better=better,
        worse=worse,
        measure="validation loss",
        better_values={str(s): v for s, v in good.items()},
        worse_values={str(s): v for s, v in bad.items()},
        gain=gain,
        gain_mean=statistics.fmean(bad.values()) - statistics.fmean(good.values()) if good and bad else None,
        required_seeds=REQUIRED_SEEDS,
        status=_status(gain, (len(good), len(bad))),
    )


def downstream_control(config: StudyConfig, losses: Losses, arm: str, budget: int) -> Control:
    """The pretrained arm against the same encoder from random initialisation, on the test split's main
    metric."""

    def main(scores) -> float:
        return float(scores.test[scores.main_metric])

    pretrained = {
        s: main(f) for v in arm_runs(config, arm) for s, f in losses.score.get((v, budget), {}).items()
    }
    scratch = {s: main(f) for s, f in losses.score.get(("random-init", None), {}).items()}
    metric = next(iter(losses.score.get(("random-init", None), {}).values()), None)
    gain = welch_interval(list(pretrained.values()), list(scratch.values()))
    return Control(
        name="downstream",
        claim=f"pretrained {arm} fine-tunes better than the same encoder from random initialisation",
        budget=budget,
        better=arm,
        worse="random-init",
        measure=f"test {metric.main_metric}" if metric else "test score",
        better_values={str(s): v for s, v in sorted(pretrained.items())},
        worse_values={str(s): v for s, v in sorted(scratch.items())},
        gain=gain,
        gain_mean=(
            statistics.fmean(pretrained.values()) - statistics.fmean(scratch.values())
            if pretrained and scratch
            else None
        ),
        required_seeds=REQUIRED_SEEDS,
        status=_status(gain, (len(pretrained), len(scratch))),
    )


# ------------------------------------------------------------------------------------------------------------
# Noise and power
# ------------------------------------------------------------------------------------------------------------


def seeds_needed(log_sd: float, target: float = MULTIPLIER_HALF_WIDTH) -> int | None:
    """The smallest n >= 2 seeds per arm whose 95% half-width on the log multiplier,
    ``t(n-1) * sd * sqrt(2 / n)``, is at most ``ln(1 + target)``; ``None`` beyond 100 seeds. The factor 2
    counts both arms' noise: the variant's seeds and the n seeds of BERT's pooled curve they are read on
    (the multiplier's own t interval sees only the first, so this is the conservative count)."""
    limit = math.log1p(target)
    for n in range(2, 101):
        if stats.t.ppf(0.975, n - 1) * log_sd * math.sqrt(2 / n) <= limit:
            return n
    return None


def power(config: StudyConfig, losses: Losses, arm: str) -> list[Power]:
    budgets = config.cooldowns_of(_variant(config, arm))
    means = {b: arm_values(config, losses, arm, b) for b in budgets}
    rows = []
    for index, budget in enumerate(budgets):
        values = list(means[budget].values())
        sd = statistics.stdev(values) if len(values) >= 2 else None
        neighbour = budgets[index - 1] if index else (budgets[1] if len(budgets) > 1 else None)
        slope = None
        if neighbour is not None and means[budget] and means[neighbour]:
            rise = statistics.fmean(means[budget].values()) - statistics.fmean(means[neighbour].values())
            slope = rise / math.log(budget / neighbour)
        log_sd = sd / abs(slope) if sd is not None and slope else None
        rows.append(
            Power(
                budget=budget,
                seeds=len(values),
                loss_sd=sd,
                slope_per_log_token=slope,
                log_multiplier_sd=log_sd,
                seeds_needed=seeds_needed(log_sd) if log_sd is not None else None,
            )
        )
    return rows


# ------------------------------------------------------------------------------------------------------------
# The whole verdict
# ------------------------------------------------------------------------------------------------------------

# the controls of configs/compare-testbed.yaml: (name, claim, better arm, worse arm)
LOSS_CONTROLS = (
    ("depth 6 vs 4", "BERT with 6 layers beats BERT with 4 at equal tokens", "bert-L6", "bert-L4"),
    ("depth 4 vs 2", "BERT with 4 layers beats BERT with 2 at equal tokens", "bert-L4", "bert-L2"),
    ("width", "hidden 256 beats hidden 128 (2 layers) at equal tokens", "bert-L2-h256", "bert-L2"),
    ("data", "one pass over unique tokens beats 16 passes over a sixteenth", "bert-L6", "bert-L6-16-passes"),
)
BASELINE = "bert-L6"
NEXT_STUDY_ARMS = ("bert-L6", "strang-L6", "ab2-learned-L6")  # raced at BERT's cost; issue 36 adds more
NEXT_STUDY_HOURS = 16.0


def measured_speed(config: StudyConfig, losses: Losses, arm: str) -> float | None:
    """Tokens per second of the arm's constant-rate runs (every rate of its sweep: the same cost)."""
    variants = arm_runs(config, arm) + [name for _, name in config.swept_variants().get(arm, [])]
    speeds = [speed for variant in variants for speed in losses.speed.get(variant, [])]
    return statistics.fmean(speeds) if speeds else None


def passes_over_data(config: StudyConfig, train_tokens: int | None) -> dict[str, float]:
    """Passes over the unique training tokens at every budget (and for each arm that trains on a sample)."""
    if not train_tokens:
        return {}
    budgets = sorted({b for v in config.variants for b in config.cooldowns_of(v)})
    passes = {f"{b:,}": b / train_tokens for b in budgets}
    for variant in config.variants:
        sample = variant.data.get("max_train_tokens")
        if sample:
            for b in config.cooldowns_of(variant):
                passes[f"{b:,} ({variant.name})"] = b / sample
    return passes


def testbed_results(
    config: StudyConfig, records: list, train_tokens: int | None, throughput: dict | None = None
) -> TestbedResults:
    losses = Losses(records)
    names = {variant.name for variant in config.variants}
    budget = config.sweep_budget_of(BASELINE)
    controls = [
        loss_control(config, losses, name, claim, better, worse, budget)
        for name, claim, better, worse in LOSS_CONTROLS
        if better in names and worse in names
    ]
    if config.random_init_seeds:
        tuned_at = config.finetune_at_of(_variant(config, BASELINE))
        controls.append(downstream_control(config, losses, BASELINE, max(tuned_at, default=budget)))
    speeds = {arm: measured_speed(config, losses, arm) for arm in config.swept_variants()}
    results = TestbedResults(
        sweeps=[arm_sweep(config, losses, arm) for arm in config.swept_variants()],
        controls=controls,
        power=power(config, losses, BASELINE),
        passes=passes_over_data(config, train_tokens),
        train_tokens=train_tokens,
        throughput=throughput or {},
        tokens_per_second={arm: speed for arm, speed in speeds.items() if speed is not None},
    )
    results.decision = decision(config, results)
    return results


def decision(config: StudyConfig, results: TestbedResults) -> list[str]:
    """The next study's setting, or which controls failed or are not yet read: plain sentences."""
    status = {control.name: control for control in results.controls}
    pending = [c.name for c in results.controls if c.status == "pending"]
    failed = [c.name for c in results.controls if c.status == "fail"]
    lines = []
    runs = [t for sweep in results.sweeps for row in sweep.rows for t in row.escape_tokens.values()]
    if runs and all(t is None for t in runs):
        lines.append(
            f"None of the {len(runs)} swept constant-rate runs so far left the word-frequency plateau (came "
            f"{ESCAPE_NATS:g} nat below the unigram entropy): the sweep compares rates on the plateau, where "
            "they cannot be told apart for what comes after it, and no control read there says what the next "
            "study needs ([plateau.md](plateau.md))."
        )
    if pending:
        lines.append(f"Not decided: the controls {', '.join(pending)} are pending (seeds still missing).")
    if failed:
        lines.append(
            f"The controls {', '.join(failed)} failed: their intervals do not lie above 0. The next study "
            "does not run on this testbed until they pass."
        )
    if pending or failed:
        return lines
    depth = 6 if status["depth 6 vs 4"].status == "pass" else 4
    budget = config.sweep_budget_of(BASELINE)
    row = next((p for p in results.power if p.budget == budget), None)
    seeds = max(5, row.seeds_needed or 5) if row else 5
    rates = {s.arm: s.best_rate for s in results.sweeps if s.arm.endswith(f"L{depth}")}
    hours = sum(
        seeds * budget * (1 + config.cooldown_fraction) / results.tokens_per_second[arm] / 3600
        for arm in NEXT_STUDY_ARMS
        if arm in results.tokens_per_second
    )
    lines.append(
        f"Every control passed. The next study: {depth} layers, budgets up to {budget:,} tokens, "
        f"{seeds} seeds, rates {rates}; {hours:.1f} hours for {', '.join(NEXT_STUDY_ARMS)} on this machine "
        f"(cap {NEXT_STUDY_HOURS:g})."
    )
    return lines


# ------------------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------------------


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _escape(tokens: float | None) -> str:
    return "not by its end" if tokens is None else f"{tokens / 1e6:.1f}M"


def _interval(gain: Interval | None) -> str:
    return "-" if gain is None else f"[{gain.low:+.3f}, {gain.high:+.3f}]"


def sweep_section(results: TestbedResults) -> list[str]:
    lines = [
        "## Learning rates",
        "",
        "Validation loss after the cooldown at the sweep's budget, each seed (`seed: loss`) and the mean; "
        "the chosen rate has the lowest mean over the seeds every rate has. A rate at the edge of the grid "
        "means the optimum may lie beyond it. The means at every cooldown budget, and where each seed's "
        f"constant-rate run first came {ESCAPE_NATS:g} nat below the unigram entropy (left the "
        "word-frequency plateau), show whether the sweep reads rates past the plateau.",
        "",
    ]
    for sweep in results.sweeps:
        budgets = sorted(
            {b for row in sweep.rows for b in row.means_by_budget}, key=lambda b: int(b.replace(",", ""))
        )
        rows = [
            [
                f"{row.rate:g}",
                ", ".join(f"{s}: {v:.3f}" for s, v in row.losses.items()) or "-",
                _loss(row.mean),
                *(_loss(row.means_by_budget.get(b)) for b in budgets),
                ", ".join(_escape(t) for t in row.escape_tokens.values()) or "-",
                "**chosen**" if row.rate == sweep.best_rate else "",
            ]
            for row in sweep.rows
        ]
        header = ["rate", "per seed", "mean", *(f"mean at {b}" for b in budgets), "left the plateau at", ""]
        chosen = "not yet (rates missing)" if sweep.best_rate is None else f"{sweep.best_rate:g}"
        agrees = sweep.best_rate is None or math.isclose(sweep.best_rate, sweep.preset_rate)
        note = (
            ""
            if agrees
            else f" **The preset trains it at {sweep.preset_rate:g}: set train.lr to the chosen rate.**"
        )
        edge = " (at the edge of the grid)" if sweep.at_edge else ""
        lines += [
            f"`{sweep.arm}` at {sweep.budget:,} tokens: chosen {chosen}{edge}.{note}",
            "",
            *markdown.table(header, rows),
            "",
        ]
    return lines


def control_section(results: TestbedResults) -> list[str]:
    rows = []
    for c in results.controls:
        rows.append(
            [
                c.name,
                c.claim,
                f"{c.budget:,}",
                f"{len(c.better_values)} / {len(c.worse_values)}",
                "-" if c.gain_mean is None else f"{c.gain_mean:+.3f}",
                _interval(c.gain),
                f"**{c.status}**",
            ]
        )
    return [
        "## Positive controls",
        "",
        "The gain is the better arm's advantage at equal tokens (validation loss of the worse arm minus the "
        "better one's, in nats; downstream: the better arm's test score minus the other's), with Welch's 95% "
        "t interval over seeds. A control passes when the interval lies above 0; it is read once each arm "
        f"has {REQUIRED_SEEDS} seeds (pending before).",
        "",
        *markdown.table(["control", "claim", "tokens", "seeds", "gain", "95% interval", "status"], rows),
        "",
    ]


def power_section(results: TestbedResults) -> list[str]:
    rows = [
        [
            f"{p.budget:,}",
            p.seeds,
            _loss(p.loss_sd),
            "-" if p.slope_per_log_token is None else f"{p.slope_per_log_token:+.3f}",
            _loss(p.log_multiplier_sd),
            "-" if p.seeds_needed is None else p.seeds_needed,
        ]
        for p in results.power
    ]
    return [
        "## Noise and power",
        "",
        f"BERT-L6's seed standard deviation of the validation loss, the slope of its mean loss against ln "
        "tokens between neighbouring budgets, one seed's spread in log compute (sd / |slope|), and the seeds "
        "per arm a compute-multiplier interval needs for a half-width of at most "
        f"{MULTIPLIER_HALF_WIDTH:.2f} (95% t on logs, both arms' noise counted).",
        "",
        *markdown.table(["tokens", "seeds", "loss sd", "slope", "log-compute sd", "seeds needed"], rows),
        "",
    ]


def throughput_section(results: TestbedResults) -> list[str]:
    record = results.throughput
    if not record:
        return ["## Throughput", "", "Not measured yet (`python benchmarks/testbed_throughput.py`).", ""]
    machine = record["machine"]
    rows = [
        [p["hidden"], p["layers"], p["ode_method"], f"{p['tokens_per_second']:,}"] for p in record["points"]
    ]
    measured = [[arm, f"{speed:,.0f}"] for arm, speed in results.tokens_per_second.items()]
    return [
        "## Throughput",
        "",
        f"Training tokens per second of the testbed recipe ({machine['precision']}, {machine['threads']} "
        f"threads, CPU capability {machine['cpu_capability']}, torch {machine['torch']}; median logging "
        f"window of {machine['steps']} steps): `python benchmarks/testbed_throughput.py`.",
        "",
        *markdown.table(["hidden", "layers", "scheme", "tokens/s"], rows),
        "",
        "In the testbed's own runs (evaluations included):",
        "",
        *markdown.table(["arm", "tokens/s"], measured),
        "",
    ]


LAST_FIFTH = 0.8  # a best step past this share of training: the protocol had not converged


def downstream_section(results: TestbedResults) -> list[str]:
    lines = ["## The downstream task and its protocol", ""]
    if results.downstream_baselines:
        rows = [
            [
                name,
                *(
                    f"{scores.get(split, {}).get('accuracy', float('nan')):.3f}"
                    for split in ("validation", "test")
                ),
            ]
            for name, scores in results.downstream_baselines.items()
        ]
        lines += [
            "Rotten Tomatoes sentiment (split by movie), without pretraining: accuracy of the bag-of-words "
            "baselines (scikit-learn; fitted on train, one fixed setting each).",
            "",
            *markdown.table(["baseline", "validation", "test"], rows),
            "",
        ]
    if results.protocol:
        late = [run for run in results.protocol if run["best_step"] > LAST_FIFTH * run["max_steps"]]
        rows = [
            [
                run["model"],
                f"{run['learning_rate']:g}",
                f"{run['epochs']:g}",
                f"{run['best_step']} / {run['max_steps']}",
                "yes" if run in late else "",
                f"{run['validation']['accuracy']:.3f}",
                f"{run['test']['accuracy']:.3f}",
            ]
            for run in results.protocol
        ]
        checkpoints = sorted({run["checkpoint"] for run in results.protocol if run["model"] == "pretrained"})
        lines += [
            "The protocol's convergence (`python benchmarks/testbed_finetune_protocol.py`, one seed each; "
            f"pretrained encoder {', '.join(f'`{c}`' for c in checkpoints)}, random init its architecture): "
            f"the best validation step fell in the last fifth of training in {len(late)} of "
            f"{len(results.protocol)} settings.",
            "",
            *markdown.table(
                ["model", "rate", "epochs", "best step", "last fifth", "validation acc.", "test acc."], rows
            ),
            "",
        ]
    return lines


def report_markdown(results: TestbedResults, command: str, plots: list[str]) -> str:
    passes = ", ".join(f"{budget}: {value:.2f}" for budget, value in results.passes.items())
    lines = [
        "# The testbed: can it see a known gain?",
        "",
        f"Made by `{command}` from the records; every figure below is one of theirs.",
        "",
        "## The decision",
        "",
        *[part for line in results.decision for part in (line, "")],
        *([f"Unique training tokens: {results.train_tokens:,}.", ""] if results.train_tokens else []),
        *([f"Passes over the data per budget: {passes}.", ""] if passes else []),
        *control_section(results),
        *sweep_section(results),
        *downstream_section(results),
        *power_section(results),
        *throughput_section(results),
        *[f"![{name}]({name})" for name in plots],
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# Figures (matplotlib's object API, as study/plots.py)
# ------------------------------------------------------------------------------------------------------------


def _save(fig, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=120)
    return name


def throughput_plot(results: TestbedResults, out_dir: Path) -> str | None:
    from matplotlib.figure import Figure

    points = results.throughput.get("points", [])
    if not points:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for hidden, method in sorted({(p["hidden"], p["ode_method"]) for p in points}):
        line = sorted(
            (p["layers"], p["tokens_per_second"])
            for p in points
            if (p["hidden"], p["ode_method"]) == (hidden, method)
        )
        ax.plot(*zip(*line, strict=True), marker="o", label=f"hidden {hidden}, {method}")
    ax.set(xlabel="layers", ylabel="training tokens / s", yscale="log", title="Throughput on this machine")
    ax.legend()
    return _save(fig, out_dir, "throughput.png")


def sweep_plot(results: TestbedResults, out_dir: Path) -> str | None:
    from matplotlib.figure import Figure

    sweeps = [s for s in results.sweeps if any(row.losses for row in s.rows)]
    if not sweeps:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for sweep in sweeps:
        rows = [row for row in sweep.rows if row.losses]
        (line,) = ax.plot([r.rate for r in rows], [r.mean for r in rows], marker="o", label=sweep.arm)
        for row in rows:
            ax.scatter([row.rate] * len(row.losses), list(row.losses.values()), s=8, color=line.get_color())
    ax.set(xscale="log", xlabel="peak learning rate", ylabel="validation loss after the cooldown (nats)")
    ax.set_title(f"Learning-rate sweep at {sweeps[0].budget:,} tokens (mean; dots: seeds)")
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "learning_rates.png")


def curves_plot(losses: Losses, out_dir: Path) -> str | None:
    """Every constant-rate run's validation curve, with the unigram entropy and the plateau's exit bar."""
    from matplotlib.figure import Figure

    if not losses.curves:
        return None
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    unigrams = []
    for variant, runs in sorted(losses.curves.items()):
        for index, (_, (curve, unigram)) in enumerate(sorted(runs.items())):
            xs, ys = [p.tokens / 1e6 for p in curve], [p.val_loss for p in curve]
            ax.plot(xs, ys, linewidth=1, label=variant if index == 0 else None)
            unigrams += [unigram] if unigram is not None else []
    if unigrams:
        unigram = statistics.fmean(unigrams)
        ax.axhline(unigram, color="grey", linestyle="--", linewidth=0.8)
        ax.axhline(unigram - ESCAPE_NATS, color="grey", linestyle=":", linewidth=0.8)
        ax.text(0, unigram, " unigram", va="bottom", fontsize=8, color="grey")
        ax.text(
            0, unigram - ESCAPE_NATS, f" {ESCAPE_NATS:g} nat below", va="bottom", fontsize=8, color="grey"
        )
    ax.set(xlabel="training tokens (millions)", ylabel="validation MLM loss", title="Constant-rate runs")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, out_dir, "constant_runs.png")


def control_plot(results: TestbedResults, out_dir: Path) -> str | None:
    from matplotlib.figure import Figure

    read = [c for c in results.controls if c.gain is not None]
    if not read:
        return None
    fig = Figure(figsize=(7, 0.6 * len(read) + 1.5))
    ax = fig.subplots()
    for index, control in enumerate(read):
        colour = {"pass": "tab:green", "fail": "tab:red"}.get(control.status, "tab:grey")
        ax.errorbar(
            control.gain_mean,
            index,
            xerr=[[control.gain_mean - control.gain.low], [control.gain.high - control.gain_mean]],
            fmt="o",
            color=colour,
            capsize=4,
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(read)), [f"{c.name} ({c.measure})" for c in read])
    ax.set(xlabel="gain of the better arm (95% Welch t)", title="Positive controls: pass when above 0")
    return _save(fig, out_dir, "controls.png")


def write_testbed_report(
    results: TestbedResults, out_dir: Path, command: str, losses: Losses | None = None
) -> Path:
    """``report.md``, ``results.json`` and the figures into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [curves_plot(losses, out_dir)] if losses is not None else []
    plots += [
        p
        for p in (
            control_plot(results, out_dir),
            sweep_plot(results, out_dir),
            throughput_plot(results, out_dir),
        )
        if p
    ]
    (out_dir / "report.md").write_text(report_markdown(results, command, plots), encoding="utf-8")
    results.write_json(out_dir / "results.json")
    return out_dir / "report.md"


# ------------------------------------------------------------------------------------------------------------
# Running it: bert-ode testbed
# ------------------------------------------------------------------------------------------------------------

RECORD_KINDS = (ConstantRun, BranchUnit, ControlUnit)


def _copy_records(source: Path, target: Path, overwrite: bool) -> None:
    """The records (and the corpus count) of ``source`` into ``target``; a committed copy is what lets a
    later part on another machine resume without running a finished unit again."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.json")):
        if overwrite or not (target / path.name).exists():
            shutil.copyfile(path, target / path.name)


def read_records(folder: Path) -> list:
    return [
        kind.read_json(path) for kind in RECORD_KINDS for path in sorted(folder.glob(f"{kind.kind}--*.json"))
    ]


def run_testbed(
    preset: str = "testbed",
    overrides: dict | None = None,
    *,
    report_only: bool = False,
    progress: bool = True,
    command: str = "bert-ode testbed --report-only",
    report_root: str | Path = "reports",
) -> Path:
    """Runs (or resumes) the testbed's units, keeps their records beside the report, and writes the report;
    returns its path. ``report_only``: runs nothing."""
    import json

    import yaml

    from ..utils.config_io import to_dict
    from .config import load_study
    from .cooldowns import CooldownStudy

    config = load_study(preset, overrides)
    out_dir = Path(report_root) / config.name
    kept, records_dir = out_dir / "records", config.root / "records"
    if not report_only:
        if kept.is_dir():
            _copy_records(kept, records_dir, overwrite=False)  # finished elsewhere: not run again
        config.root.mkdir(parents=True, exist_ok=True)
        (config.root / "study.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
        study = CooldownStudy(config, progress=progress)
        study.run()
        study.corpus_size()  # records/corpus.json: the passes over the data
        study.downstream_baselines()  # records/downstream-baselines.json
        _copy_records(records_dir, kept, overwrite=True)
    folder = records_dir if records_dir.is_dir() else kept
    if not folder.is_dir():
        raise ValueError(f"no testbed records at {records_dir} or {kept}: run bert-ode testbed first")
    corpus = folder / "corpus.json"
    train_tokens = json.loads(corpus.read_text())["train_tokens"] if corpus.is_file() else None
    throughput_file = out_dir / "throughput.json"
    throughput = json.loads(throughput_file.read_text()) if throughput_file.is_file() else None
    records = read_records(folder)
    results = testbed_results(config, records, train_tokens, throughput)
    baselines, protocol = folder / "downstream-baselines.json", out_dir / "finetune_protocol.json"
    results.downstream_baselines = json.loads(baselines.read_text()) if baselines.is_file() else {}
    results.protocol = json.loads(protocol.read_text())["runs"] if protocol.is_file() else []
    return write_testbed_report(results, out_dir, command, Losses(records))


__all__ = [
    "ArmSweep",
    "Control",
    "Losses",
    "Power",
    "TestbedResults",
    "arm_sweep",
    "arm_values",
    "decision",
    "downstream_control",
    "loss_control",
    "power",
    "run_testbed",
    "seeds_needed",
    "testbed_results",
    "write_testbed_report",
]
