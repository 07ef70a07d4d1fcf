"""The ``bert-ode`` command: parses arguments and calls the library. No logic lives here."""

from __future__ import annotations

import argparse
import sys


def _add_convert(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a HuggingFace BERT checkpoint into a BertOde checkpoint",
        description="Loads a BERT checkpoint (any BertModel / BertFor* save), sets the ODE fields, saves the result "
        "with the source's tokenizer. With no ODE options the result computes exactly what BERT computes.",
    )
    parser.add_argument("checkpoint", help="path (or Hub name) of the BERT checkpoint")
    parser.add_argument("output_dir", help="where to save the BertOde checkpoint")
    parser.add_argument(
        "--head",
        default="base",
        choices=["base", "masked-lm", "sequence-classification", "token-classification", "question-answering",
                 "multiple-choice"],
        help="which BertOde class to build (default: the bare encoder)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a config field to set, e.g. --set ode_method=rk4 --set ode_steps=2 (repeatable)",
    )
    parser.set_defaults(handler=_run_convert)


def _run_convert(args) -> None:
    from .convert import save_converted
    from .modeling_bert_ode import (
        BertOdeForMaskedLM,
        BertOdeForMultipleChoice,
        BertOdeForQuestionAnswering,
        BertOdeForSequenceClassification,
        BertOdeForTokenClassification,
        BertOdeModel,
    )

    model_class = {
        "base": BertOdeModel,
        "masked-lm": BertOdeForMaskedLM,
        "sequence-classification": BertOdeForSequenceClassification,
        "token-classification": BertOdeForTokenClassification,
        "question-answering": BertOdeForQuestionAnswering,
        "multiple-choice": BertOdeForMultipleChoice,
    }[args.head]
    model = model_class.from_bert(args.checkpoint, **parse_overrides(args.overrides))
    save_converted(model, args.output_dir, tokenizer_source=args.checkpoint)
    config = model.config
    print(
        f"saved {model_class.__name__} ({config.ode_method}, {config.ode_steps} step(s), scope {config.ode_scope}, "
        f"{config.norm_position}-norm, {config.splitting} splitting) to {args.output_dir}"
    )


def parse_overrides(items: list[str]) -> dict:
    """``["ode_steps=2", "ode_method=rk4"]`` -> ``{"ode_steps": 2, "ode_method": "rk4"}`` (values parsed as YAML)."""
    import yaml

    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: expected FIELD=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _add_finetune(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a BertOde or plain BERT checkpoint on a downstream task over several seeds",
        description="Fine-tunes any BERT / BertOde checkpoint (both through the same code) on a task: the built-in "
        "BBC News topic task by default, a GLUE task, or local CSV/JSONL files. Best checkpoint selected on the "
        "validation split; the test split scored once; median and spread over seeds written to "
        "OUTPUT_DIR/results.json and results.md.",
    )
    parser.add_argument("checkpoint", help="BertOde or BERT checkpoint directory (or Hub name), with its tokenizer")
    parser.add_argument("--task", default="bbc-news",
                        help="bbc-news (default, offline), a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte), "
                        "or a path to a CSV / TSV / JSON(L) / Parquet file or directory")
    parser.add_argument("--data-dir", help="local GLUE-shaped directory, or the directory of a local task")
    parser.add_argument("--data-files", nargs="+", help="local data file(s), split deterministically")
    parser.add_argument("--text-column", help="text column of a local task")
    parser.add_argument("--text-pair-column", help="second text column of a local sentence-pair task")
    parser.add_argument("--label-column", default="label", help="label column of a local task (default: label)")
    parser.add_argument("--regression", action="store_true", default=None, help="the local task's label is a number")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the deterministic data splits")
    parser.add_argument("--max-train-examples", type=int, help="deterministic subsample of train (quick runs)")
    parser.add_argument("--max-eval-examples", type=int, help="deterministic subsample of validation and test")
    parser.add_argument("--output-dir", default="finetune-results", help="where results.json / results.md go")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed (default 0 1 2)")
    parser.add_argument("--learning-rate", "--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--evaluations-per-epoch", type=int, default=2, help="validation evaluations per epoch")
    parser.add_argument("--early-stopping-patience", type=int,
                        help="stop after this many validation evaluations without improvement (default: never)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="config field set at load time, e.g. --set ode_method=heun --set ode_steps=2")
    parser.add_argument("--eval-ode-steps", nargs="+", type=int, default=[],
                        help="also score the selected model with these ode_steps")
    parser.add_argument("--reinit-head", action="store_true",
                        help="replace a classification head of the wrong size by a fresh one")
    parser.add_argument("--save-models", action="store_true", help="save each seed's model to OUTPUT_DIR/seed-N")
    parser.add_argument("--tokenizer", help="tokenizer location, if not with the checkpoint")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPUs with AVX-512 bf16, GPUs)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")

    def run(args) -> None:
        from .training.finetune import FinetuneConfig, finetune

        fields = {k: v for k, v in vars(args).items() if k not in ("command", "handler", "overrides")}
        results = finetune(FinetuneConfig(ode_overrides=parse_overrides(args.overrides), **fields))
        metric = results["main_metric"]
        for steps, by_split in results["summary"]["by_ode_steps"].items():
            s = by_split["test"][metric]
            print(f"ode_steps={steps}: test {metric} median {s['median']:.4f} (min {s['min']:.4f}, max "
                  f"{s['max']:.4f}, std {s['std']:.4f}) over {s['n']} seed(s)")
        print(f"results: {args.output_dir}/results.md, {args.output_dir}/results.json")

    parser.set_defaults(handler=run)


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a fine-tuned BertOde or BERT checkpoint on a task split, optionally with other ode_steps",
        description="Loads a checkpoint with a sequence-classification head (BertOde or plain BERT, through the "
        "same code) and reports the task's metrics and function evaluations for each --ode-steps.",
    )
    parser.add_argument("checkpoint", help="fine-tuned checkpoint directory (e.g. OUTPUT_DIR/seed-0 of finetune)")
    parser.add_argument("--task", default="bbc-news", help="bbc-news (default), a GLUE task, or a local data path")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--ode-steps", nargs="+", type=int, help="step counts to score with (default: the model's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="config field set at load time, e.g. --set ode_method=rk4")
    parser.add_argument("--data-dir", help="local GLUE-shaped directory, or the directory of a local task")
    parser.add_argument("--data-files", nargs="+", help="local data file(s)")
    parser.add_argument("--text-column")
    parser.add_argument("--text-pair-column")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--regression", action="store_true", default=None)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--max-eval-examples", type=int)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--tokenizer", help="tokenizer location, if not with the checkpoint")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--output-dir", help="write results.json / results.md here")

    def run(args) -> None:
        from .training.finetune import evaluate

        fields = {k: v for k, v in vars(args).items() if k not in ("command", "handler", "overrides", "checkpoint")}
        results = evaluate(args.checkpoint, ode_overrides=parse_overrides(args.overrides), **fields)
        metric = results["main_metric"]
        for steps, row in results["by_ode_steps"].items():
            print(f"ode_steps={steps}: {args.split} {metric} {row[metric]:.4f}, nfe {row['nfe']:.0f}")

    parser.set_defaults(handler=run)


def _add_pretrain(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain a BertOde masked language model (built-in offline corpus by default)",
        description="Masked-LM pretraining from a YAML config plus overrides. With no arguments it trains on the "
        "built-in corpus. Runs unchanged under torchrun / accelerate launch (data-parallel).",
    )
    parser.add_argument("--config", default=None, metavar="NAME_OR_YAML",
                        help="a preset (smoke, cpu, gpu) or a YAML file; default: the built-in defaults")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key, e.g. --set model.ode_method=rk4 --set train.lr=5e-4 "
                        "--set data.files=[corpus.txt] (repeatable)")
    parser.add_argument("--output-dir", default=None, help="where the run writes (same as --set train.output_dir=...)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    parser.set_defaults(handler=_run_pretrain)


def _run_pretrain(args) -> None:
    from .training.pretrain import pretrain

    overrides = parse_overrides(args.overrides)
    if args.output_dir:
        overrides["train.output_dir"] = args.output_dir
    result = pretrain(args.config, overrides, resume=args.resume)
    val = f", validation loss {result.val_loss:.4f} (perplexity {result.val_ppl:.1f})" if result.val_loss else ""
    print(f"pretrained {result.steps} steps ({result.tokens:,} tokens, {result.train_seconds:.0f} s, "
          f"{result.tokens_per_second:,.0f} tokens/s){val}; model and tokenizer in {result.final_dir}")


def _add_compare(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="the study: pretrain BERT and ODE variants under one recipe, fine-tune each, write a report",
        description="Runs a comparison study (configs/compare-<preset>.yaml) and writes reports/<name>/report.md "
        "with tables and plots. Finished runs are reused when the same study is run again, so an interrupted "
        "study resumes.",
    )
    parser.add_argument("--preset", default="smoke", metavar="NAME_OR_YAML",
                        help="smoke (a few minutes on a laptop CPU; default), cpu (the study on 2 cores, about an "
                        "hour), gpu (BERT-base scale), or a study YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a study key, e.g. --set seeds=[0,1,2,3] --set name=mine "
                        "--set pretrain_overrides.train.budget_tokens=4000000 --set finetune.epochs=2 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def run(args) -> None:
        from .training.compare import compare

        command = "bert-ode compare --preset " + args.preset + "".join(f" --set {o}" for o in args.overrides)
        report_dir = compare(args.preset, parse_overrides(args.overrides), progress=not args.no_progress,
                             command=command)
        print(f"report: {report_dir / 'report.md'}")

    parser.set_defaults(handler=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bert-ode", description="ODE-BERT: BERT with ODE-solver residual blocks")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_convert(subparsers)
    _add_finetune(subparsers)
    _add_evaluate(subparsers)
    _add_pretrain(subparsers)
    _add_compare(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        # Bad input gets one clear line, not a stack trace.
        print(f"bert-ode {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
