"""What fine-tuning and evaluation return and write as ``results.json``: typed records.

``FinetuneResults.to_dict()`` / ``EvaluationResults.to_dict()`` are the ``results.json`` files; the records
can also be indexed like them (``results["runs"][0]["test"]["accuracy"]``). The scores of one split stay a
plain mapping (:data:`Scores`), because which metrics it holds depends on the task.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from ..data.tasks import TaskData
from ..utils.device import ComputeInfo
from ..utils.metrics import SeedStats, summarize
from ..utils.records import Record
from .config import FinetuneConfig

# The scores of a model on one split: the task's metrics by name (``accuracy``, ``pearson``, ...), ``nfe``
# (function evaluations per forward pass), ``examples`` and ``seconds``.
Scores = dict[str, float]
# ``{metric: SeedStats}``: each metric's median and spread over the seeds.
MetricStats = dict[str, SeedStats]


@dataclass(kw_only=True)
class TaskDescription(Record):
    """The task a model was scored on, as loaded (``sizes``: examples per split)."""

    name: str
    num_labels: int
    regression: bool
    pair: bool
    metrics: list[str]
    label_names: list[str] | None
    sizes: dict[str, int]
    source: str

    @classmethod
    def of(cls, task: TaskData) -> TaskDescription:
        spec = task.spec
        return cls(
            name=spec.name,
            num_labels=spec.num_labels,
            regression=spec.is_regression,
            pair=spec.is_pair,
            metrics=list(spec.metrics),
            label_names=list(spec.label_names) if spec.label_names else None,
            sizes=task.sizes(),
            source=task.source,
        )


@dataclass(kw_only=True)
class ModelDescription(Record):
    """The scored model's class, ODE settings, size and parameter count (``model_class`` is ``"class"`` in
    JSON)."""

    model_class: str
    ode_method: str
    ode_steps: int
    ode_scope: str
    norm_position: str
    splitting: str
    hidden_size: int
    num_hidden_layers: int
    parameters: int

    @classmethod
    def of(cls, model) -> ModelDescription:
        # Every field but the class and the parameter count is the model config's field of that name.
        from_config = [f.name for f in fields(cls) if f.name not in ("model_class", "parameters")]
        return cls(
            model_class=type(model).__name__,
            parameters=sum(p.numel() for p in model.parameters()),
            **{name: getattr(model.config, name) for name in from_config},
        )

    # ``class`` is a Python keyword, so the field has another name than the JSON key.
    def to_dict(self) -> dict:
        values = super().to_dict()
        return {"class": values.pop("model_class"), **values}

    @classmethod
    def from_dict(cls, values: dict) -> ModelDescription:
        if isinstance(values, cls):
            return values
        values = dict(values)
        return super().from_dict({"model_class": values.pop("class", None), **values})

    def __getitem__(self, name: str):
        return super().__getitem__("model_class" if name == "class" else name)


@dataclass(kw_only=True)
class SeedRun(Record):
    """One seed of the protocol: how training went, and the selected model's scores.

    ``best_step``: the step of the model kept (best validation score); ``early_stopped``: training ended
    before ``max_steps``; ``selection_history``: ``{"step", "epoch", <main metric>}`` per validation
    evaluation; ``by_ode_steps``: ``{str(steps): {"validation"|"test": Scores}}``, the trained step count
    included; ``model_dir``: where the model was saved (``save_models``), else ``None`` and absent from JSON.
    """

    seed: int
    best_step: int | None
    steps: int
    max_steps: int
    epochs: float
    early_stopped: bool
    train_loss: float
    train_seconds: float
    selection_history: list[dict[str, float]]
    validation: Scores
    test: Scores
    by_ode_steps: dict[str, dict[str, Scores]]
    model_dir: str | None = None

    def to_dict(self) -> dict:
        values = super().to_dict()
        if values["model_dir"] is None:
            del values["model_dir"]
        return values


@dataclass(kw_only=True)
class FinetuneSummary(Record):
    """Median and spread over seeds of every metric: ``by_ode_steps`` is
    ``{str(steps): {split: MetricStats}}``."""

    validation: MetricStats
    test: MetricStats
    by_ode_steps: dict[str, dict[str, MetricStats]]

    @classmethod
    def of(cls, runs: list[SeedRun], metrics: list[str]) -> FinetuneSummary:
        def over_seeds(scores: list[Scores]) -> MetricStats:
            return {metric: summarize([seed_scores[metric] for seed_scores in scores]) for metric in metrics}

        by_ode_steps = {
            steps: {
                split: over_seeds([run.by_ode_steps[steps][split] for run in runs])
                for split in ("validation", "test")
            }
            for steps in runs[0].by_ode_steps
        }
        return cls(
            validation=over_seeds([run.validation for run in runs]),
            test=over_seeds([run.test for run in runs]),
            by_ode_steps=by_ode_steps,
        )


@dataclass(kw_only=True)
class FinetuneResults(Record):
    """The fine-tuning protocol's outcome: one ``SeedRun`` per seed and their ``summary`` (``results.json``).

    ``source_model_type``: the checkpoint's ``model_type`` (``bert`` or ``bert_ode``); ``model`` describes the
    model as fine-tuned (after ``ode_overrides``); ``main_metric`` is the one that selected the checkpoints.
    """

    kind: Literal["finetune"] = "finetune"
    checkpoint: str
    source_model_type: str | None
    task: TaskDescription
    config: FinetuneConfig
    model: ModelDescription
    main_metric: str
    runs: list[SeedRun]
    summary: FinetuneSummary
    total_seconds: float
    compute: ComputeInfo | None = None  # how and where it computed (None in results from before it was kept)

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "model": self.model.to_dict(),
            "runs": [run.to_dict() for run in self.runs],
        }

    @classmethod
    def from_dict(cls, values: dict) -> FinetuneResults:
        return super().from_dict({**values, "model": ModelDescription.from_dict(values["model"])})


@dataclass(kw_only=True)
class EvaluationResults(Record):
    """A fine-tuned model scored on one split with each step count: ``by_ode_steps`` is
    ``{str(steps): Scores}``.

    Asked for predictions, each entry also holds ``predictions`` (a list) and ``logits`` (an array, never
    written).
    """

    kind: Literal["evaluate"] = "evaluate"
    checkpoint: str
    task: TaskDescription
    split: str
    model: ModelDescription
    main_metric: str
    by_ode_steps: dict[str, dict[str, Any]]
    compute: ComputeInfo | None = None

    def to_dict(self) -> dict:
        by_ode_steps = {
            steps: {name: value for name, value in scores.items() if name != "logits"}
            for steps, scores in self.by_ode_steps.items()
        }
        return {**super().to_dict(), "model": self.model.to_dict(), "by_ode_steps": by_ode_steps}

    @classmethod
    def from_dict(cls, values: dict) -> EvaluationResults:
        return super().from_dict({**values, "model": ModelDescription.from_dict(values["model"])})


__all__ = [
    "EvaluationResults",
    "FinetuneResults",
    "FinetuneSummary",
    "MetricStats",
    "ModelDescription",
    "Scores",
    "SeedRun",
    "TaskDescription",
]
