"""Fine-tuning on downstream tasks, the same code for BertOde and plain BERT checkpoints.

The protocol (``finetune``): one hyperparameter set, several seeds; the model is evaluated on the validation
split during training and the best checkpoint on it is kept (early stopping after ``early_stopping_patience``
evaluations without improvement); the test split is scored once, at the end, for the report. The median and
the spread (min, max, std) over seeds are reported, as JSON and as a Markdown table. ``eval_ode_steps`` scores
the selected model again with other step counts (``config.ode_steps`` is read at every forward pass).

Training runs on HuggingFace ``Trainer``: it brings progress bars, mixed precision, and the device / DDP
handling of ``accelerate`` (``torchrun`` / ``accelerate launch`` work unchanged), and it skips the model's
``nfe`` and ``solver_stats`` outputs at evaluation through ``config.keys_to_ignore_at_inference``.
Best-checkpoint selection is a callback that keeps the best weights in memory rather than writing a checkpoint
per evaluation. The final scoring is the plain inference loop of ``inference.py``, shared with ``evaluate``,
which also records the function evaluations per forward pass.

The other parts of the package: ``config`` (settings), ``task_loading`` (model, tokenizer, tokenized splits),
``inference`` (scoring), ``evaluate`` (scoring a fine-tuned checkpoint), ``results`` (the records) and
``report`` (``results.json`` / ``results.md``); the package's ``__init__`` is its public face.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    DataCollatorWithPadding,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback

from ..data.tasks import TaskData, check_trainable
from ..model_card import default_title, source_license, write_model_card
from ..utils.device import ComputeInfo, inference_device, resolve_precision
from ..utils.metrics import trainer_compute_metrics
from .config import FinetuneConfig
from .inference import score_by_ode_steps
from .report import write_results
from .results import (
    FinetuneResults,
    FinetuneSummary,
    ModelDescription,
    SeedRun,
    TaskDescription,
)
from .task_loading import (
    checkpoint_config,
    checkpoint_name,
    load_model_for_task,
    load_task_tokenizer,
    tokenize_splits,
    untrained_by_overrides,
)


class BestOnValidation(TrainerCallback):
    """Keeps the weights of the best validation evaluation in memory; stops after ``patience`` worse ones."""

    def __init__(self, metric: str, patience: int | None):
        self.metric, self.patience = metric, patience
        self.best_value, self.best_step, self.best_state, self.bad_evaluations = None, None, None, 0
        self.last_evaluated_step = -1
        self.history: list[dict[str, float]] = []

    def on_step_end(self, args, state, control, **kwargs):
        # The last step is always a selection point, even when it does not fall on the evaluation grid.
        if state.global_step >= state.max_steps:
            control.should_evaluate = True

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if state.global_step == self.last_evaluated_step:
            return
        self.last_evaluated_step = state.global_step
        value = float(metrics[f"eval_{self.metric}"])
        self.history.append({"step": state.global_step, "epoch": state.epoch, self.metric: value})
        if self.best_value is None or value > self.best_value:
            self.best_value, self.best_step, self.bad_evaluations = value, state.global_step, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad_evaluations += 1
            if self.patience is not None and self.bad_evaluations >= self.patience:
                control.should_training_stop = True


def tensorboard_callback(config: FinetuneConfig, seed: int) -> list:
    """A TensorBoard callback logging under ``output_dir/logs/seed-<seed>`` (``report_to`` with
    tensorboard)."""
    if "tensorboard" not in config.report_to:
        return []
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    folder = Path(config.output_dir or "finetune-logs") / "logs" / f"seed-{seed}"
    return [TensorBoardCallback(tb_writer=SummaryWriter(str(folder)))]


def _training_arguments(
    config: FinetuneConfig, seed: int, work_dir: str, train_examples: int, bf16: bool
) -> TrainingArguments:
    args = TrainingArguments(
        output_dir=work_dir,
        seed=seed,
        data_seed=seed,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        num_train_epochs=config.epochs,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the training steps
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=1,  # replaced below, once the number of steps per epoch is known
        save_strategy="no",  # selection keeps the best weights in memory (BestOnValidation)
        logging_strategy="steps",
        logging_steps=10,
        # TensorBoard is added as a callback writing under output_dir (tensorboard_callback); the Trainer's
        # own would write into its temporary work folder.
        report_to=[name for name in config.report_to if name != "tensorboard"] or "none",
        disable_tqdm=not config.progress,
        bf16=bf16,  # the resolved precision: auto never picks a bf16 the hardware only emulates
        use_cpu=bf16 and not torch.cuda.is_available(),  # Trainer wants CPU bf16 asked for explicitly
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    steps_per_epoch = math.ceil(train_examples / (config.batch_size * args.world_size))
    args.eval_steps = max(1, steps_per_epoch // config.evaluations_per_epoch)
    return args


def _train_one_seed(
    config: FinetuneConfig, task: TaskData, encoded: dict, tokenizer, seed: int, work_dir: str, bf16: bool
) -> tuple[PreTrainedModel, dict]:
    """The model selected on validation, and the ``SeedRun`` fields that describe its training."""
    set_seed(seed)  # before loading: the fresh head's initialisation depends on it
    model = load_model_for_task(
        config.checkpoint, task.spec, config.ode_overrides, reinit_head=config.reinit_head
    )
    untrained = untrained_by_overrides(model)
    if untrained and seed == config.seeds[0]:
        print(
            f"finetune: newly initialised, the checkpoint has no weights for them: {', '.join(untrained)} "
            "(trained from here with the rest)",
            file=sys.stderr,
        )
    selection = BestOnValidation(task.spec.main_metric, config.early_stopping_patience)
    trainer = Trainer(
        model=model,
        args=_training_arguments(config, seed, work_dir, len(encoded["train"]), bf16),
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=trainer_compute_metrics(task.spec.metrics, task.spec.is_regression),
        callbacks=[selection, *tensorboard_callback(config, seed)],
    )
    if not config.progress:
        trainer.remove_callback(PrinterCallback)  # with the bars off, the per-step log lines go too
    start = time.perf_counter()
    output = trainer.train()
    train_seconds = time.perf_counter() - start
    if selection.best_state is not None:
        model.load_state_dict(selection.best_state)
    state = trainer.state
    return model, {
        "seed": seed,
        "best_step": selection.best_step,
        "steps": state.global_step,
        "max_steps": state.max_steps,
        "epochs": state.epoch,
        "early_stopped": state.global_step < state.max_steps,
        "train_loss": output.training_loss,
        "train_seconds": train_seconds,
        "selection_history": selection.history,
    }


def _run_seed(config: FinetuneConfig, task: TaskData, encoded: dict, tokenizer, seed: int, bf16: bool):
    """Trains one seed and scores its selected model, with its own step count and each of
    ``eval_ode_steps``."""
    with tempfile.TemporaryDirectory() as work_dir:
        model, training = _train_one_seed(config, task, encoded, tokenizer, seed, work_dir, bf16)
    trained_steps = model.config.ode_steps
    steps = dict.fromkeys([trained_steps, *config.eval_ode_steps])
    scored_splits = {"validation": encoded["validation"], "test": encoded["test"]}
    options = {"batch_size": config.eval_batch_size, "bf16": bf16, "progress": config.progress}
    by_steps = score_by_ode_steps(model, scored_splits, tokenizer, task.spec, steps, **options)
    own = by_steps[str(trained_steps)]
    run = SeedRun(**training, validation=own["validation"], test=own["test"], by_ode_steps=by_steps)
    if config.save_models and config.output_dir is not None:
        model_dir = Path(config.output_dir) / f"seed-{seed}"
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        _write_card(model_dir, model, config, task, run)
        run.model_dir = str(model_dir)
    return model, run


def _write_card(model_dir: Path, model, config: FinetuneConfig, task: TaskData, run: SeedRun) -> None:
    """A saved fine-tuned model's card: its source, the task and protocol, and what it scored."""
    source = config.checkpoint if isinstance(config.checkpoint, (str, os.PathLike)) else None
    how = [
        f"Fine-tuned from `{source or checkpoint_name(config.checkpoint)}` with `bert-ode finetune` on the "
        f"task `{task.spec.name}` ({len(task['train']):,} training examples): {config.epochs:g} epoch(s) at "
        f"learning rate {config.learning_rate:g}, batch {config.batch_size}, sequences of up to "
        f"{config.max_seq_length} tokens, seed {run.seed}; the model of the best validation "
        f"{task.spec.main_metric} was kept (step {run.best_step}).",
    ]
    bookkeeping = ("examples", "seconds", "nfe", "runtime", "samples_per_second", "steps_per_second")
    metrics = {f"validation_{key}": value for key, value in run.validation.items()}
    metrics |= {f"test_{key}": value for key, value in run.test.items()}
    nfe = run.test.get("nfe")
    if nfe is not None:
        how.append(f"Vector-field evaluations per forward pass on the test split: {nfe:g}.")
    write_model_card(
        model_dir,
        model,
        title=f"{default_title(model.config)}, fine-tuned on {task.spec.name} (seed {run.seed})",
        how_made=how,
        base_model=str(source) if source is not None else None,
        license=source_license(source) if source is not None else None,
        metrics={
            key: float(value)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and not key.endswith(bookkeeping)
        },
    )


def finetune(
    config: FinetuneConfig | None = None, *, task_data: TaskData | None = None, **kwargs
) -> FinetuneResults:
    """Runs the fine-tuning protocol; returns (and writes, with ``output_dir``) the per-seed and summary
    results.

    Call as ``finetune(FinetuneConfig(...))`` or ``finetune(checkpoint=..., task=..., seeds=[0, 1, 2], ...)``.
    ``task_data`` reuses a task loaded once (``load_task``) across many calls, e.g. for every variant of a
    study.
    """
    if config is None:
        config = FinetuneConfig(**kwargs)
    elif kwargs:
        config = dataclasses.replace(config, **kwargs)
    start = time.perf_counter()
    task = task_data if task_data is not None else config.load_task()
    check_trainable(task)
    tokenizer = load_task_tokenizer(config.tokenizer or config.checkpoint)
    source_config = checkpoint_config(config.checkpoint)
    max_length = min(config.max_seq_length, int(source_config.get("max_position_embeddings", 512)))
    encoded = tokenize_splits(task, tokenizer, max_length, progress=config.progress)
    tokenizer.model_max_length = max_length  # saved with the models: evaluate truncates as training did

    dtype = resolve_precision(config.precision, inference_device())
    runs, model_description = [], None
    for seed in config.seeds:
        model, run = _run_seed(config, task, encoded, tokenizer, seed, dtype == torch.bfloat16)
        model_description = model_description or ModelDescription.of(model)
        runs.append(run)
        del model

    results = FinetuneResults(
        checkpoint=str(config.checkpoint),
        source_model_type=source_config.get("model_type"),
        task=TaskDescription.of(task),
        config=config,
        model=model_description,
        main_metric=task.spec.main_metric,
        runs=runs,
        summary=FinetuneSummary.of(runs, list(task.spec.metrics)),
        total_seconds=time.perf_counter() - start,
        compute=ComputeInfo.of(dtype, inference_device()),
    )
    if config.output_dir is not None:
        write_results(results, config.output_dir)
    return results


__all__ = ["BestOnValidation", "finetune"]
