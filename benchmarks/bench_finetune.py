"""Fine-tuning and evaluation tokens/s of bert-ode against ``Trainer`` on plain BERT, equal precision.

One process, one size (BERT-Tiny as the study uses it: hidden 128, 2 layers), the built-in BBC News task
tokenized to 128 tokens, batch 32. Timed interleaved:

* training: ``Trainer.training_step`` + AdamW step on ``BertForSequenceClassification`` (the HuggingFace
  reference) and on ``BertOdeForSequenceClassification`` (euler: BERT itself; heun: two evaluations) - the
  same Trainer step ``bert-ode finetune`` runs;
* evaluation: ``Trainer.predict`` on the reference against ``bert_ode.finetune.inference.predict`` (the loop
  ``finetune`` / ``evaluate`` score with) on the BertOde models.

Both in fp32 and in bf16 autocast (``TrainingArguments(bf16=True)``). Tokens are the non-padding tokens.

Usage: python benchmarks/bench_finetune.py [--steps 10] [--eval-examples 256]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import transformers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from bert_ode import BertOdeConfig, BertOdeForSequenceClassification
from bert_ode.data import load_builtin, prepare_tokenizer
from bert_ode.data.tasks import load_task
from bert_ode.finetune.inference import predict
from bert_ode.finetune.task_loading import tokenize_splits

SIZE = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)


def _trainer(model, tokenizer, scratch: str, bf16: bool, batch: int) -> Trainer:
    args = TrainingArguments(
        output_dir=scratch,
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=64,
        learning_rate=1e-4,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        bf16=bf16,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer))
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train()
    return trainer


def _models(vocab: int, num_labels: int) -> dict:
    common = dict(vocab_size=vocab, num_labels=num_labels, max_position_embeddings=128, **SIZE)
    torch.manual_seed(0)
    models = {"hf BERT": BertForSequenceClassification(BertConfig(**common, attn_implementation="eager"))}
    for method in ("euler", "heun"):
        torch.manual_seed(0)
        config = BertOdeConfig(**common, ode_method=method, attn_implementation="eager")
        models[f"bert-ode {method}"] = BertOdeForSequenceClassification(config)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--eval-examples", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    task = load_task(max_eval_examples=args.eval_examples)
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = prepare_tokenizer(scratch, load_builtin("austen"), vocab_size=4096)
        splits = tokenize_splits(task, tokenizer, 128, ["train", "test"], progress=False)
        train, test = splits["train"], splits["test"]
        for bf16 in (False, True):
            run(args, tokenizer, train, test, task.spec.num_labels, bf16, scratch)


def run(args, tokenizer, train, test, num_labels: int, bf16: bool, scratch: str) -> None:
    collator = DataCollatorWithPadding(tokenizer)
    models = _models(len(tokenizer), num_labels)
    trainers = {name: _trainer(model, tokenizer, scratch, bf16, args.batch) for name, model in models.items()}
    times, tokens = {name: [] for name in models}, []
    for i in range(args.warmup + args.steps):
        rows = [train[(i * args.batch + k) % len(train)] for k in range(args.batch)]
        batch = collator(rows)
        if i >= args.warmup:
            tokens.append(int(batch["attention_mask"].sum()))
        for name, trainer in trainers.items():
            start = time.perf_counter()
            with trainer.accelerator.autocast():  # what Trainer.train() wraps the step in
                trainer.training_step(trainer.model, dict(batch))
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    eval_tokens = sum(sum(row) for row in test["attention_mask"])
    eval_seconds = {}
    for name, trainer in trainers.items():
        start = time.perf_counter()
        if name.startswith("hf"):
            trainer.predict(test)
        else:
            predict(trainer.model, test, tokenizer, batch_size=64, bf16=bf16)
        eval_seconds[name] = time.perf_counter() - start
    per_step = statistics.mean(tokens)
    print(
        f"\nprecision {'bf16 autocast' if bf16 else 'fp32'}; batch {args.batch}, {per_step:.0f} real tokens "
        f"a step; evaluation on {len(test)} examples ({eval_tokens} tokens)"
    )
    print("| model | train step (ms) | train tokens/s | vs hf BERT | eval tokens/s | vs hf BERT |")
    print("|---|---|---|---|---|---|")
    base_train, base_eval = statistics.median(times["hf BERT"]), eval_seconds["hf BERT"]
    for name in models:
        step = statistics.median(times[name])
        print(
            f"| {name} | {step * 1e3:.1f} | {per_step / step:,.0f} | {base_train / step:.2f}x | "
            f"{eval_tokens / eval_seconds[name]:,.0f} | {base_eval / eval_seconds[name]:.2f}x |"
        )


if __name__ == "__main__":
    main()
