"""Fine-tuning and evaluation on downstream tasks, the same code for BertOde and plain BERT checkpoints.

Every checkpoint, plain BERT (``model_type`` ``bert``) and BertOde alike, is loaded through
``BertOdeForSequenceClassification.from_bert``: a BERT baseline is the euler BertOde, run by the very same code.

The protocol (``finetune``): one hyperparameter set, several seeds; the model is evaluated on the validation split
during training and the best checkpoint on it is kept (early stopping after ``early_stopping_patience``
evaluations without improvement); the test split is scored once, at the end, for the report. The median and the
spread (min, max, std) over seeds are reported, as JSON and as a Markdown table. ``eval_ode_steps`` scores the
selected model again with other step counts (``config.ode_steps`` is read at every forward pass).

Training runs on HuggingFace ``Trainer``: it brings progress bars, mixed precision, and the device / DDP
handling of ``accelerate`` (``torchrun`` / ``accelerate launch`` work unchanged), and it skips the model's ``nfe`` and
``solver_stats`` outputs at evaluation through ``config.keys_to_ignore_at_inference``. Best-checkpoint selection
is a callback that keeps the best weights in memory rather than writing a checkpoint per evaluation. The final
scoring is a plain inference loop (``predict``), shared with ``evaluate``, which also records the function
evaluations per forward pass.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.tasks import BUILTIN_TASK, TaskData, TaskSpec, load_task
from .metrics import compute_metrics, logits_to_predictions, summarize, trainer_compute_metrics

# Arguments of ``load_task`` that a fine-tuning or evaluation run passes through.
TASK_OPTIONS = (
    "data_dir", "data_files", "text_column", "text_pair_column", "label_column", "regression", "split_seed",
    "max_train_examples", "max_eval_examples",
)


@dataclasses.dataclass
class FinetuneConfig:
    """One fine-tuning protocol: a checkpoint, a task, one hyperparameter set, several seeds.

    Args:
        checkpoint: a BertOde or plain BERT checkpoint directory (or Hub name), with its tokenizer.
        task: ``"bbc-news"`` (built-in, offline), a GLUE task name, or a local data file / directory.
        output_dir: where ``results.json`` and ``results.md`` go (and the models, with ``save_models``);
            ``None`` writes nothing.
        seeds: one run per seed; the seed sets the head's initialisation, dropout and data order.
        learning_rate, batch_size, epochs, max_seq_length, warmup_ratio, weight_decay: the hyperparameters.
        evaluations_per_epoch: validation evaluations per epoch (model selection points).
        early_stopping_patience: stop after this many evaluations without improvement (``None``: never).
        ode_overrides: config fields set when the checkpoint is loaded, e.g. ``{"ode_method": "heun"}`` to
            warm-start an ODE variant from a BERT checkpoint; empty keeps the checkpoint's own.
        eval_ode_steps: step counts to score the selected model with besides the trained one.
        reinit_head: when the checkpoint has a classification head of another size than the task's, replace it
            by a fresh one instead of raising an error.
        save_models: save each seed's selected model (with its tokenizer) under ``output_dir/seed-<seed>``.
        tokenizer: where the tokenizer lies, if not with the checkpoint.
        bf16: bfloat16 autocast for training and scoring (fast on CPUs with AVX-512 bf16, and on GPUs).
        progress: progress bars.
        data_dir ... max_eval_examples: passed to ``bert_ode.data.tasks.load_task``.
    """

    checkpoint: str
    task: str = BUILTIN_TASK
    output_dir: str | None = None
    seeds: Sequence[int] = (0, 1, 2)
    learning_rate: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    epochs: float = 3.0
    max_seq_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    evaluations_per_epoch: int = 2
    early_stopping_patience: int | None = None
    ode_overrides: dict = dataclasses.field(default_factory=dict)
    eval_ode_steps: Sequence[int] = ()
    reinit_head: bool = False
    save_models: bool = False
    tokenizer: str | None = None
    bf16: bool = False
    progress: bool = True
    data_dir: str | None = None
    data_files: str | list | dict | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str = "label"
    regression: bool | None = None
    split_seed: int = 0
    max_train_examples: int | None = None
    max_eval_examples: int | None = None

    def __post_init__(self):
        self.seeds = [int(seed) for seed in self.seeds]
        self.eval_ode_steps = [int(steps) for steps in self.eval_ode_steps]
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        for name in ("batch_size", "eval_batch_size", "max_seq_length", "evaluations_per_epoch"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid; it must be an integer >= 1")
        if not self.epochs > 0:
            raise ValueError(f"epochs={self.epochs!r} is invalid; it must be > 0")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} is invalid; it must be > 0")
        if any(steps < 1 for steps in self.eval_ode_steps):
            raise ValueError(f"eval_ode_steps={self.eval_ode_steps!r} is invalid; every step count must be >= 1")

    def task_options(self) -> dict:
        return {name: getattr(self, name) for name in TASK_OPTIONS}


# ---------------------------------------------------------------------------------------------------------------
# Model and data
# ---------------------------------------------------------------------------------------------------------------


def _checkpoint_config(checkpoint) -> dict:
    from transformers import PreTrainedConfig, PreTrainedModel

    if isinstance(checkpoint, PreTrainedModel):
        config_dict = checkpoint.config.to_dict()
        config_dict["architectures"] = [type(checkpoint).__name__]
        return config_dict
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(str(checkpoint))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read a checkpoint from {str(checkpoint)!r}: {error}") from error
    return config_dict


def _head_size(config_dict: dict) -> int | None:
    """The size of the checkpoint's sequence-classification head; ``None`` when it has none."""
    architectures = config_dict.get("architectures") or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        return None
    return len(config_dict.get("id2label") or {}) or int(config_dict.get("num_labels", 2))


def load_model_for_task(checkpoint, spec: TaskSpec, ode_overrides: dict | None = None, *, reinit_head: bool = False,
                        require_head: bool = False):
    """A ``BertOdeForSequenceClassification`` for ``spec`` from any BERT / BertOde checkpoint, through ``from_bert``.

    A checkpoint without a sequence-classification head gets a fresh one of the task's size. One with a head must
    match the task's number of labels (or ``reinit_head`` replaces it). ``require_head`` (evaluation) refuses a
    checkpoint with no fine-tuned head.
    """
    from ..modeling_bert_ode import BertOdeForSequenceClassification

    overrides = dict(ode_overrides or {})
    config_dict = _checkpoint_config(checkpoint)
    head = _head_size(config_dict)
    name = type(checkpoint).__name__ if not isinstance(checkpoint, (str, os.PathLike)) else repr(str(checkpoint))
    if head is None and require_head:
        raise ValueError(
            f"checkpoint {name} has no fine-tuned sequence-classification head (architectures: "
            f"{config_dict.get('architectures')}); fine-tune it first (bert-ode finetune ... --save-models)"
        )
    task_fields = {
        "num_labels": spec.num_labels,
        "problem_type": "regression" if spec.is_regression else "single_label_classification",
    }
    if spec.label_names:
        task_fields["id2label"] = dict(enumerate(spec.label_names))
        task_fields["label2id"] = {label: index for index, label in enumerate(spec.label_names)}
    if head is not None and head != spec.num_labels:
        if not reinit_head:
            raise ValueError(
                f"checkpoint {name} has a classification head with {head} label(s) but task {spec.name!r} has "
                f"{spec.num_labels} ({'regression' if spec.is_regression else 'classes'}); use a checkpoint "
                "fine-tuned for this task, or reinit_head=True (--reinit-head) to train a fresh head"
            )
        model = BertOdeForSequenceClassification.from_bert(checkpoint, **overrides)
        model.classifier = torch.nn.Linear(model.config.hidden_size, spec.num_labels).to(model.dtype)
        model._init_weights(model.classifier)
        model.num_labels = spec.num_labels
        for key, value in task_fields.items():
            setattr(model.config, key, value)
        return model
    if head is not None:  # a head for this task: keep its label names
        task_fields = {"problem_type": task_fields["problem_type"]}
    return BertOdeForSequenceClassification.from_bert(checkpoint, **task_fields, **overrides)


def load_tokenizer(source):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(
            f"no tokenizer found at {str(source)!r} ({error}); pass the tokenizer's location (tokenizer= / --tokenizer)"
        ) from error


def tokenize_splits(task: TaskData, tokenizer, max_seq_length: int, splits: Sequence[str] | None = None,
                    progress: bool = True) -> dict:
    """``{split: Dataset}`` of ``input_ids``, ``attention_mask``, ``token_type_ids``, ``labels``, unpadded."""

    def encode(batch):
        pair = batch["text_pair"] if task.spec.is_pair else None
        return tokenizer(batch["text"], pair, truncation=True, max_length=max_seq_length)

    import datasets

    bars_were_on = datasets.is_progress_bar_enabled()
    if not progress:
        datasets.disable_progress_bars()
    result = {}
    try:
        for split in splits or list(task.splits):
            dataset = task[split]
            text_columns = [c for c in dataset.column_names if c != "label"]
            encoded = dataset.map(encode, batched=True, remove_columns=text_columns, desc=f"tokenizing {split}")
            result[split] = encoded.rename_column("label", "labels")
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return result


def _max_length(model_config, requested: int) -> int:
    return min(int(requested), int(model_config.max_position_embeddings))


# ---------------------------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def predict(model, dataset, tokenizer, batch_size: int = 64, bf16: bool = False, progress: bool = False):
    """``(logits (n, num_labels) float32 array, mean function evaluations per forward pass)`` in dataset order."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm
    from transformers import DataCollatorWithPadding

    collator = DataCollatorWithPadding(tokenizer)
    columns = [c for c in dataset.column_names if c in ("input_ids", "attention_mask", "token_type_ids")]
    loader = DataLoader(dataset.select_columns(columns), batch_size=batch_size, shuffle=False, collate_fn=collator)
    was_training = model.training
    model.eval()
    device = model.device
    logits, nfes = [], []
    try:
        for batch in tqdm(loader, desc="scoring", disable=not progress, leave=False):
            batch = {key: value.to(device) for key, value in batch.items()}
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                outputs = model(**batch)
            logits.append(outputs.logits.float().cpu().numpy())
            nfes.append(float(outputs.nfe))
    finally:
        model.train(was_training)
    return np.concatenate(logits), float(np.mean(nfes))


def score(model, dataset, tokenizer, spec: TaskSpec, batch_size: int = 64, bf16: bool = False,
          progress: bool = False, return_predictions: bool = False) -> dict:
    """The task's metrics on a tokenized split, plus ``nfe`` (per forward pass), ``examples`` and ``seconds``."""
    start = time.perf_counter()
    logits, nfe = predict(model, dataset, tokenizer, batch_size, bf16, progress)
    predictions = logits_to_predictions(logits, spec.is_regression)
    result = compute_metrics(spec.metrics, predictions, np.asarray(dataset["labels"]))
    result.update(nfe=nfe, examples=len(dataset), seconds=time.perf_counter() - start)
    if return_predictions:
        result["predictions"] = predictions.tolist()
        result["logits"] = logits
    return result


def _score_by_steps(model, datasets_by_split: dict, tokenizer, spec, steps: Sequence[int], batch_size, bf16,
                    progress) -> dict:
    """``{steps: {split: metrics}}``: the model scored with each step count; its own count restored afterwards."""
    trained = model.config.ode_steps
    result = {}
    try:
        for count in steps:
            model.config.ode_steps = int(count)
            result[str(count)] = {
                split: score(model, dataset, tokenizer, spec, batch_size, bf16, progress)
                for split, dataset in datasets_by_split.items()
            }
    finally:
        model.config.ode_steps = trained
    return result


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def _best_on_validation_callback(metric: str, patience: int | None):
    from transformers import TrainerCallback

    class BestOnValidation(TrainerCallback):
        """Keeps the weights of the best validation evaluation in memory; stops after ``patience`` worse ones."""

        def __init__(self):
            self.best_value, self.best_step, self.best_state, self.bad_evaluations = None, None, None, 0
            self.last_evaluated_step = -1
            self.history = []

        def on_step_end(self, args, state, control, **kwargs):
            # The last step is always a selection point, even when it does not fall on the evaluation grid.
            if state.global_step >= state.max_steps:
                control.should_evaluate = True

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            if state.global_step == self.last_evaluated_step:
                return
            self.last_evaluated_step = state.global_step
            value = float(metrics[f"eval_{metric}"])
            self.history.append({"step": state.global_step, "epoch": state.epoch, metric: value})
            if self.best_value is None or value > self.best_value:
                self.best_value, self.best_step, self.bad_evaluations = value, state.global_step, 0
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                self.bad_evaluations += 1
                if patience is not None and self.bad_evaluations >= patience:
                    control.should_training_stop = True

    return BestOnValidation()


def _train_one_seed(config: FinetuneConfig, task: TaskData, encoded: dict, tokenizer, seed: int,
                    work_dir: str) -> tuple[object, dict]:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    set_seed(seed)  # before loading: the fresh head's initialisation depends on it
    model = load_model_for_task(config.checkpoint, task.spec, config.ode_overrides, reinit_head=config.reinit_head)
    args = TrainingArguments(
        output_dir=work_dir,
        seed=seed,
        data_seed=seed,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        num_train_epochs=config.epochs,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=1,  # replaced below, once the number of steps per epoch is known
        save_strategy="no",  # selection keeps the best weights in memory (the callback)
        logging_strategy="steps",
        logging_steps=10,
        report_to="none",
        disable_tqdm=not config.progress,
        bf16=config.bf16,
        use_cpu=config.bf16 and not torch.cuda.is_available(),  # Trainer wants CPU bf16 asked for explicitly
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    steps_per_epoch = math.ceil(len(encoded["train"]) / (config.batch_size * args.world_size))
    args.eval_steps = max(1, steps_per_epoch // config.evaluations_per_epoch)
    selection = _best_on_validation_callback(task.spec.main_metric, config.early_stopping_patience)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=trainer_compute_metrics(task.spec.metrics, task.spec.is_regression),
        callbacks=[selection],
    )
    if not config.progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # with the bars off, the per-step log lines go too
    start = time.perf_counter()
    output = trainer.train()
    train_seconds = time.perf_counter() - start
    if selection.best_state is not None:
        model.load_state_dict(selection.best_state)
    return model, {
        "seed": seed,
        "best_step": selection.best_step,
        "steps": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "epochs": trainer.state.epoch,
        "early_stopped": trainer.state.global_step < trainer.state.max_steps,
        "train_loss": output.training_loss,
        "train_seconds": train_seconds,
        "selection_history": selection.history,
    }


def _model_description(model) -> dict:
    config = model.config
    return {
        "class": type(model).__name__,
        "ode_method": config.ode_method,
        "ode_steps": config.ode_steps,
        "ode_scope": config.ode_scope,
        "norm_position": config.norm_position,
        "splitting": config.splitting,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def finetune(config: FinetuneConfig | None = None, *, task_data: TaskData | None = None, **kwargs) -> dict:
    """Runs the fine-tuning protocol; returns (and writes, with ``output_dir``) the per-seed and summary results.

    Call as ``finetune(FinetuneConfig(...))`` or ``finetune(checkpoint=..., task=..., seeds=[0, 1, 2], ...)``.
    ``task_data`` reuses a task loaded once (``load_task``) across many calls, e.g. for every variant of a study.
    """
    if config is None:
        config = FinetuneConfig(**kwargs)
    elif kwargs:
        config = dataclasses.replace(config, **kwargs)
    overall_start = time.perf_counter()
    task = task_data if task_data is not None else load_task(config.task, **config.task_options())
    tokenizer = load_tokenizer(config.tokenizer or config.checkpoint)
    source_config = _checkpoint_config(config.checkpoint)
    max_length = min(config.max_seq_length, int(source_config.get("max_position_embeddings", 512)))
    encoded = tokenize_splits(task, tokenizer, max_length, progress=config.progress)

    runs, description = [], None
    for seed in config.seeds:
        with tempfile.TemporaryDirectory() as work_dir:
            model, run = _train_one_seed(config, task, encoded, tokenizer, seed, work_dir)
        description = description or _model_description(model)
        trained_steps = model.config.ode_steps
        kwargs_score = dict(batch_size=config.eval_batch_size, bf16=config.bf16, progress=config.progress)
        run["validation"] = score(model, encoded["validation"], tokenizer, task.spec, **kwargs_score)
        run["test"] = score(model, encoded["test"], tokenizer, task.spec, **kwargs_score)
        other_steps = [s for s in dict.fromkeys(config.eval_ode_steps) if s != trained_steps]
        run["by_ode_steps"] = {str(trained_steps): {"validation": run["validation"], "test": run["test"]}}
        run["by_ode_steps"].update(_score_by_steps(
            model, {"validation": encoded["validation"], "test": encoded["test"]}, tokenizer, task.spec,
            other_steps, **kwargs_score,
        ))
        if config.save_models and config.output_dir is not None:
            model_dir = Path(config.output_dir) / f"seed-{seed}"
            model.save_pretrained(model_dir)
            tokenizer.save_pretrained(model_dir)
            run["model_dir"] = str(model_dir)
        runs.append(run)
        del model

    results = {
        "kind": "finetune",
        "checkpoint": str(config.checkpoint),
        "source_model_type": source_config.get("model_type"),
        "task": _task_description(task),
        "config": _jsonable(dataclasses.asdict(config)),
        "model": description,
        "main_metric": task.spec.main_metric,
        "runs": runs,
        "summary": _summarize_runs(runs, task.spec.metrics),
        "total_seconds": time.perf_counter() - overall_start,
    }
    if config.output_dir is not None:
        write_results(results, config.output_dir)
    return results


# ---------------------------------------------------------------------------------------------------------------
# Evaluation of a fine-tuned checkpoint
# ---------------------------------------------------------------------------------------------------------------


def evaluate(
    checkpoint,
    task: str | TaskData = BUILTIN_TASK,
    *,
    split: str = "test",
    ode_steps: Sequence[int] | None = None,
    ode_overrides: dict | None = None,
    batch_size: int = 64,
    max_seq_length: int = 128,
    tokenizer=None,
    bf16: bool = False,
    progress: bool = True,
    output_dir: str | None = None,
    return_predictions: bool = False,
    **task_options,
) -> dict:
    """Scores a fine-tuned checkpoint (BertOde or plain BERT, with a sequence-classification head) on a task split.

    ``ode_steps``: the step counts to score with (``None``: the checkpoint's own). ``ode_overrides`` sets other
    config fields at load time. ``task_options`` go to ``load_task``. With ``return_predictions`` each entry of
    ``by_ode_steps`` also holds ``predictions`` (list) and ``logits`` (array; not written to JSON).
    """
    unknown = sorted(set(task_options) - set(TASK_OPTIONS))
    if unknown:
        raise ValueError(f"unknown evaluate option(s) {unknown}; task options are {', '.join(TASK_OPTIONS)}")
    if split not in ("train", "validation", "test"):
        raise ValueError(f"split={split!r} is invalid; allowed values: 'train', 'validation', 'test'")
    task_data = task if isinstance(task, TaskData) else load_task(task, **task_options)
    model = load_model_for_task(checkpoint, task_data.spec, ode_overrides, require_head=True)
    if torch.cuda.is_available():
        model.to("cuda")
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        if tokenizer is None and not isinstance(checkpoint, (str, os.PathLike)):
            raise ValueError("a checkpoint given as a model needs tokenizer=")
        tokenizer = load_tokenizer(tokenizer or checkpoint)
    encoded = tokenize_splits(task_data, tokenizer, _max_length(model.config, max_seq_length), [split],
                              progress)[split]
    steps = list(dict.fromkeys(int(s) for s in (ode_steps or [model.config.ode_steps])))
    by_steps = {}
    trained = model.config.ode_steps
    try:
        for count in steps:
            model.config.ode_steps = count
            by_steps[str(count)] = score(model, encoded, tokenizer, task_data.spec, batch_size, bf16, progress,
                                         return_predictions)
    finally:
        model.config.ode_steps = trained
    results = {
        "kind": "evaluate",
        "checkpoint": str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else type(checkpoint).__name__,
        "task": _task_description(task_data),
        "split": split,
        "model": _model_description(model),
        "main_metric": task_data.spec.main_metric,
        "by_ode_steps": by_steps,
    }
    if output_dir is not None:
        write_results(results, output_dir)
    return results


# ---------------------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------------------


def _task_description(task: TaskData) -> dict:
    spec = task.spec
    return {
        "name": spec.name,
        "num_labels": spec.num_labels,
        "regression": spec.is_regression,
        "pair": spec.is_pair,
        "metrics": list(spec.metrics),
        "label_names": list(spec.label_names) if spec.label_names else None,
        "sizes": task.sizes(),
        "source": task.source,
    }


def _summarize_runs(runs: list[dict], metrics: Sequence[str]) -> dict:
    """``{"validation"|"test": {metric: stats}, "by_ode_steps": {steps: {"test": {metric: stats}}}}``."""
    summary = {split: {m: summarize([run[split][m] for run in runs]) for m in metrics}
               for split in ("validation", "test")}
    summary["by_ode_steps"] = {
        steps: {split: {m: summarize([run["by_ode_steps"][steps][split][m] for run in runs]) for m in metrics}
                for split in ("validation", "test")}
        for steps in runs[0]["by_ode_steps"]
    }
    return summary


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "logits"}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def write_results(results: dict, output_dir) -> tuple[Path, Path]:
    """Writes ``results.json`` and ``results.md`` to ``output_dir``; returns their paths."""
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "results.json", directory / "results.md"
    json_path.write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    md_path.write_text(markdown_report(results))
    return json_path, md_path


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_report(results: dict) -> str:
    task, model = results["task"], results["model"]
    metrics = task["metrics"]
    lines = [
        f"# {'Fine-tuning' if results['kind'] == 'finetune' else 'Evaluation'}: {results['checkpoint']} on "
        f"{task['name']}",
        "",
        f"Model: {model['class']}, {model['ode_method']} x {model['ode_steps']} step(s), scope {model['ode_scope']}, "
        f"{model['norm_position']}-norm, {model['splitting']} splitting, {model['num_hidden_layers']} layers, "
        f"hidden {model['hidden_size']}, {model['parameters']:,} parameters.",
        f"Task: {task['num_labels']} {'output (regression)' if task['regression'] else 'classes'}, splits "
        + ", ".join(f"{k} {v}" for k, v in task["sizes"].items()) + f"; selection metric: {results['main_metric']}.",
        "",
    ]
    if results["kind"] == "evaluate":
        lines += [f"Split: {results['split']}", "", "| ode_steps | " + " | ".join(metrics) + " | nfe |",
                  "|---" * (len(metrics) + 2) + "|"]
        for steps, row in results["by_ode_steps"].items():
            lines.append(f"| {steps} | " + " | ".join(_fmt(row[m]) for m in metrics) + f" | {_fmt(row['nfe'])} |")
        return "\n".join(lines) + "\n"

    config = results["config"]
    lines += [
        f"Protocol: seeds {config['seeds']}, lr {config['learning_rate']}, batch {config['batch_size']}, "
        f"epochs {config['epochs']}, max_seq_length {config['max_seq_length']}; best checkpoint on validation "
        f"{results['main_metric']}, test scored once.",
        "",
        "## Summary over seeds (test)",
        "",
        "| ode_steps | metric | median | min | max | std | mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for steps, by_split in results["summary"]["by_ode_steps"].items():
        for metric in metrics:
            s = by_split["test"][metric]
            lines.append(f"| {steps} | {metric} | {s['median']:.4f} | {s['min']:.4f} | {s['max']:.4f} | "
                         f"{s['std']:.4f} | {s['mean']:.4f} |")
    lines += ["", "## Per seed", "",
              "| seed | ode_steps | best step / steps | validation " + results["main_metric"] + " | "
              + " | ".join(f"test {m}" for m in metrics) + " | nfe | train s |",
              "|---" * (len(metrics) + 6) + "|"]
    for run in results["runs"]:
        for steps, by_split in run["by_ode_steps"].items():
            lines.append(
                f"| {run['seed']} | {steps} | {run['best_step']} / {run['steps']} | "
                f"{_fmt(by_split['validation'][results['main_metric']])} | "
                + " | ".join(_fmt(by_split["test"][m]) for m in metrics)
                + f" | {_fmt(by_split['test']['nfe'])} | {run['train_seconds']:.1f} |"
            )
    return "\n".join(lines) + "\n"


__all__ = [
    "FinetuneConfig",
    "evaluate",
    "finetune",
    "load_model_for_task",
    "load_tokenizer",
    "markdown_report",
    "predict",
    "score",
    "tokenize_splits",
    "write_results",
]
