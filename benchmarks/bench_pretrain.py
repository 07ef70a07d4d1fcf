"""Tokens per second of ``bert-ode pretrain``'s training step against a reference HuggingFace MLM pipeline.

Both at the same size (hidden 256, 4 layers, 4 heads, intermediate 1024, vocab 8192, batch 32 x 128), in one
process, timed interleaved (one step of each in turn), on real packed text from the built-in corpus:

* reference: ``BertForMaskedLM`` (full-vocabulary head over every position),
  ``DataCollatorForLanguageModeling`` and ``Trainer.training_step`` (fp32, AdamW) - what a HuggingFace user
  writes first;
* bert-ode: the step of ``bert_ode.training.pretrain`` - masking by ``MlmMasker``, ``SparseMlmLoss`` (MLM head
  and loss on masked positions only), bf16 autocast where the CPU supports it, AdamW, gradient clipping.

Also prints the fraction of the machine's bf16 matmul ceiling reached (model FLOPs: 6 x matmul parameters x
tokens for the encoder, plus attention, plus the MLM head on the positions each pipeline computes it for).

Usage: python benchmarks/bench_pretrain.py [--steps 12] [--threads 2] [--ceiling-gflops 860]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time

import torch
import transformers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

from bert_ode import BertOdeConfig, BertOdeForMaskedLM
from bert_ode.data import MlmMasker, load_builtin, pack_sequences, train_wordpiece
from bert_ode.training.device import cpu_supports_bf16, resolve_attention
from bert_ode.training.mlm_loss import SparseMlmLoss

SIZE = dict(
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    max_position_embeddings=128,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def train_flops(
    layers: int, hidden: int, inter: int, seq: int, tokens: int, head_positions: int, vocab: int
) -> float:
    """Forward + backward FLOPs (3 x forward, 2 per multiply-add) of the encoder, attention and the MLM
    head."""
    per_token_layer = 2 * (4 * hidden * hidden + 2 * hidden * inter)  # QKV + output, FFN up + down
    attention = 2 * 2 * seq * hidden  # scores and weighted sum, per token per layer
    head = 2 * (hidden * hidden + hidden * vocab)
    forward = tokens * layers * (per_token_layer + attention) + head_positions * head
    return 3 * forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--ceiling-gflops", type=float, default=860.0, help="measured bf16 matmul ceiling")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()

    documents = load_builtin("austen")
    tokenizer = train_wordpiece(documents, vocab_size=8192)
    blocks = pack_sequences(tokenizer, documents[:40], args.seq)
    vocab = len(tokenizer)

    # Reference: BertForMaskedLM + DataCollatorForLanguageModeling + Trainer.training_step (fp32).
    torch.manual_seed(0)
    reference = BertForMaskedLM(BertConfig(vocab_size=vocab, **SIZE, attn_implementation="sdpa"))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(
            model=reference,
            data_collator=collator,
            args=TrainingArguments(
                output_dir=scratch,
                per_device_train_batch_size=args.batch,
                learning_rate=1e-3,
                report_to=[],
                use_cpu=True,
                disable_tqdm=True,
                max_grad_norm=1.0,
            ),
        )
        trainer.create_optimizer_and_scheduler(num_training_steps=1000)
        trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train()

        def reference_step(i: int) -> None:
            rows = blocks[(i * args.batch) % (len(blocks) - args.batch) :][: args.batch]
            batch = collator([{"input_ids": row} for row in rows])
            trainer.training_step(reference, batch)
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()

        # bert-ode: the pretrain step.
        torch.manual_seed(0)
        bf16 = cpu_supports_bf16()
        attn = resolve_attention("auto", "cpu", bf16)  # what `bert-ode pretrain` picks
        model = BertOdeForMaskedLM(
            BertOdeConfig(vocab_size=vocab, **SIZE, norm_position="pre", attn_implementation=attn)
        )
        loss_module = SparseMlmLoss(model)
        optimizer = torch.optim.AdamW(loss_module.parameters(), lr=1e-3, betas=(0.9, 0.98))
        masker = MlmMasker(tokenizer, 0.15)
        masked_positions = []

        def ours_step(i: int) -> None:
            rows = blocks[(i * args.batch) % (len(blocks) - args.batch) :][: args.batch]
            batch = masker(rows, torch.Generator().manual_seed(i))
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with autocast:
                loss_sum, count, _ = loss_module(batch["input_ids"], batch["labels"])
            (loss_sum / count).backward()
            torch.nn.utils.clip_grad_norm_(loss_module.parameters(), 0.5)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            masked_positions.append(count.item())

        times = {"reference": [], "bert-ode": []}
        for i in range(args.warmup + args.steps):
            for name, step in (("reference", reference_step), ("bert-ode", ours_step)):
                start = time.perf_counter()
                step(i)
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - start)

    tokens = args.batch * args.seq
    layers, hidden, inter = SIZE["num_hidden_layers"], SIZE["hidden_size"], SIZE["intermediate_size"]
    flops = {
        "reference": train_flops(layers, hidden, inter, args.seq, tokens, tokens, vocab),
        "bert-ode": train_flops(
            layers, hidden, inter, args.seq, tokens, int(statistics.mean(masked_positions)), vocab
        ),
    }
    print(
        f"hidden {hidden}, {layers} layers, vocab {vocab}, batch {args.batch} x {args.seq}, {args.threads} "
        f"threads, {args.steps} timed steps each (interleaved), bert-ode precision "
        f"{'bf16' if bf16 else 'fp32'}"
    )
    print(
        f"| pipeline | median step (ms) | tokens/s | speed-up | model GFLOP/s | of {args.ceiling_gflops:.0f} "
        "GFLOP/s bf16 ceiling |"
    )
    print("|---|---|---|---|---|---|")
    base = statistics.median(times["reference"])
    for name in ("reference", "bert-ode"):
        median = statistics.median(times[name])
        gflops = flops[name] / median / 1e9
        print(
            f"| {name} | {median * 1e3:.0f} | {tokens / median:,.0f} | {base / median:.2f}x | {gflops:.0f} | "
            f"{gflops / args.ceiling_gflops:.1%} |"
        )


if __name__ == "__main__":
    main()
