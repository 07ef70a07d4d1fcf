"""The ``bert-ode`` command: parses arguments and calls the library. No logic lives here.

``--set KEY=VALUE`` is every command's way to set any config value (dotted keys for the nested pretraining and
study configs: ``train.lr=5e-4``), read by ``config_io.parse_assignments``, the same reader as the YAML
configs'. ``finetune`` and ``evaluate``, whose configs are flat, also get one option per field, generated from
their config dataclasses by transformers' ``HfArgumentParser`` (help text and defaults come from the
dataclass, so they cannot drift). ``pretrain`` and ``compare`` have no generated options: their configs are
nested sections of dozens of keys (a YAML file plus ``--set`` is how such configs are driven, as in
Hydra-style recipes), and one option per key would be a second spelling of the same thing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from functools import partial

from huggingface_hub.errors import StrictDataclassError
from transformers import HfArgumentParser

from . import __version__, modeling_bert_ode
from .convert import save_converted
from .solvers import MaxNfeExceeded

try:
    from .finetune import EvaluateConfig, FinetuneConfig, evaluate, finetune
    from .finetune.config import split_assignments
    from .pretrain import DiskFull, pretrain
    from .study import compare
    from .utils.config_io import check_output_dir, parse_assignments
except ImportError as error:  # the model-only install (pip install bert-ode): main() says what to add
    MISSING_TRAINING_EXTRA: ImportError | None = error
    FinetuneConfig = EvaluateConfig = None  # named by the command table below, which main() then never builds
else:
    MISSING_TRAINING_EXTRA = None

# --head of ``convert``: the BertOde class to build.
HEADS = {
    "base": "BertOdeModel",
    "masked-lm": "BertOdeForMaskedLM",
    "sequence-classification": "BertOdeForSequenceClassification",
    "token-classification": "BertOdeForTokenClassification",
    "question-answering": "BertOdeForQuestionAnswering",
    "multiple-choice": "BertOdeForMultipleChoice",
}


def add_config_options(parser: HfArgumentParser, config_class, skip: tuple[str, ...] = ()) -> list[str]:
    """Every field of ``config_class`` but ``skip`` and dict-valued ones as an option; returns the field
    names.

    HfArgumentParser builds options from a whole dataclass; a view of the fields the command line sets (the
    positional checkpoint and the ``--set`` overrides are declared by hand) keeps one declaration per option.
    """
    hints = typing.get_type_hints(config_class)
    fields = []
    for f in dataclasses.fields(config_class):
        if f.name in skip or not f.init or typing.get_origin(hints[f.name]) is dict or hints[f.name] is dict:
            continue
        default = {"default": f.default} if f.default is not dataclasses.MISSING else {}
        if f.default_factory is not dataclasses.MISSING:
            default = {"default_factory": f.default_factory}
        # HfArgumentParser passes metadata on to add_argument; the range is the config's own check.
        metadata = {key: value for key, value in f.metadata.items() if key != "bounds"}
        fields.append((f.name, hints[f.name], dataclasses.field(metadata=metadata, **default)))
    view = dataclasses.make_dataclass(f"{config_class.__name__}Options", fields, kw_only=True)
    parser._add_dataclass_arguments(view)
    return [name for name, _, _ in fields]


def _add_set_option(parser, example: str) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a config value to set, e.g. {example} (repeatable)",
    )


def _options(args, names: list[str]) -> dict:
    return {name: getattr(args, name) for name in names}


# ------------------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------------------


def _add_convert(parser) -> None:
    parser.add_argument("checkpoint", help="path (or Hub name) of the BERT checkpoint")
    parser.add_argument("output_dir", help="where to save the BertOde checkpoint")
    parser.add_argument("--head", default="base", choices=list(HEADS), help="which BertOde class to build")
    _add_set_option(parser, "--set ode_method=rk4 --set ode_steps=2")
    parser.set_defaults(handler=_run_convert)


def _run_convert(args) -> None:
    check_output_dir(args.output_dir, "output_dir")  # before anything is loaded
    model_class = getattr(modeling_bert_ode, HEADS[args.head])
    model = model_class.from_bert(args.checkpoint, **parse_assignments(args.overrides))
    save_converted(model, args.output_dir, tokenizer_source=args.checkpoint)
    config = model.config
    print(
        f"saved {model_class.__name__} ({config.ode_method}, {config.ode_steps} step(s), scope "
        f"{config.ode_scope}, {config.norm_position}-norm, {config.splitting} splitting) to {args.output_dir}"
    )


def _add_checkpoint_command(parser, config_class, run, checkpoint_help: str, set_example: str) -> None:
    """A command on one checkpoint whose options are the fields of ``config_class``."""
    parser.add_argument("checkpoint", help=checkpoint_help)
    names = add_config_options(parser, config_class, skip=("checkpoint",))
    _add_set_option(
        parser,
        f"{set_example}: a field of this command (as its option) or a model config field set at load time "
        "(model.KEY, or a bare KEY that is no field here)",
    )
    parser.set_defaults(handler=lambda args: run(args, names))


def _run_finetune(args, names: list[str]) -> None:
    fields, model = split_assignments(FinetuneConfig, parse_assignments(args.overrides))
    config = FinetuneConfig(
        checkpoint=args.checkpoint, ode_overrides=model, **{**_options(args, names), **fields}
    )
    results = finetune(config)
    metric = results["main_metric"]
    for steps, by_split in results["summary"]["by_ode_steps"].items():
        s = by_split["test"][metric]
        print(
            f"ode_steps={steps}: test {metric} median {s['median']:.4f} (min {s['min']:.4f}, max "
            f"{s['max']:.4f}, std {s['std']:.4f}) over {s['n']} seed(s)"
        )
    if config.output_dir is not None:
        print(f"results: {config.output_dir}/results.md, {config.output_dir}/results.json")


def _run_evaluate(args, names: list[str]) -> None:
    fields, model = split_assignments(EvaluateConfig, parse_assignments(args.overrides))
    results = evaluate(args.checkpoint, ode_overrides=model, **{**_options(args, names), **fields})
    metric = results["main_metric"]
    for steps, row in results["by_ode_steps"].items():
        print(f"ode_steps={steps}: {results['split']} {metric} {row[metric]:.4f}, nfe {row['nfe']:.0f}")


def _add_pretrain(parser) -> None:
    parser.add_argument(
        "--config",
        default=None,
        metavar="NAME_OR_YAML",
        help="a preset (smoke, cpu, gpu) or a YAML file; default: the built-in defaults",
    )
    _add_set_option(parser, "--set model.ode_method=rk4 --set train.lr=5e-4 --set data.files=[corpus.txt]")
    parser.add_argument(
        "--output-dir", default=None, help="where the run writes (same as --set train.output_dir=...)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    parser.set_defaults(handler=_run_pretrain)


def _run_pretrain(args) -> None:
    overrides = parse_assignments(args.overrides)
    if args.output_dir:
        overrides["train.output_dir"] = args.output_dir
    result = pretrain(args.config, overrides, resume=args.resume)
    val = (
        f", validation loss {result.val_loss:.4f} (perplexity {result.val_ppl:.1f})"
        if result.val_loss
        else ""
    )
    print(
        f"pretrained {result.steps} steps ({result.tokens:,} tokens, {result.train_seconds:.0f} s, "
        f"{result.tokens_per_second:,.0f} tokens/s){val}; model and tokenizer in {result.final_dir}"
    )


def _add_compare(parser) -> None:
    parser.add_argument(
        "--preset",
        default="smoke",
        metavar="NAME_OR_YAML",
        help="smoke (a few minutes on a laptop CPU), cpu (the study on 2 cores), gpu (BERT-base "
        "scale), or a study YAML file",
    )
    _add_set_option(
        parser,
        "--set seeds=[0,1,2,3] --set name=mine "
        "--set pretrain_overrides.train.budget_tokens=4000000 --set finetune.epochs=2",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_run_compare)


def _run_compare(args) -> None:
    command = "bert-ode compare --preset " + args.preset + "".join(f" --set {o}" for o in args.overrides)
    report_dir = compare(
        args.preset, parse_assignments(args.overrides), progress=not args.no_progress, command=command
    )
    print(f"report: {report_dir / 'report.md'}")


# name -> (adds the arguments, one-line help, description)
COMMANDS = {
    "convert": (
        _add_convert,
        "convert a HuggingFace BERT checkpoint into a BertOde checkpoint",
        "Loads a BERT checkpoint (any BertModel / BertFor* save), sets the ODE fields, saves the result with "
        "the source's tokenizer. With no ODE options the result computes exactly what BERT computes.",
    ),
    "finetune": (
        partial(
            _add_checkpoint_command,
            config_class=FinetuneConfig,
            run=_run_finetune,
            checkpoint_help="BertOde or BERT checkpoint directory (or Hub name), with its tokenizer",
            set_example="--set learning_rate=1e-4 --set model.ode_method=heun",
        ),
        "fine-tune a BertOde or plain BERT checkpoint on a downstream task over several seeds",
        "Fine-tunes any BERT / BertOde checkpoint (both through the same code) on a task: the built-in BBC "
        "News topic task by default, a GLUE task, or local CSV/JSONL files. Best checkpoint selected on the "
        "validation split; the test split scored once; median and spread over seeds written to "
        "OUTPUT_DIR/results.json and results.md.",
    ),
    "evaluate": (
        partial(
            _add_checkpoint_command,
            config_class=EvaluateConfig,
            run=_run_evaluate,
            checkpoint_help="fine-tuned checkpoint directory (e.g. OUTPUT_DIR/seed-0 of finetune)",
            set_example="--set batch_size=16 --set model.ode_method=rk4",
        ),
        "score a fine-tuned BertOde or BERT checkpoint on a task split, optionally with other ode_steps",
        "Loads a checkpoint with a sequence-classification head (BertOde or plain BERT, through the same "
        "code) and reports the task's metrics and function evaluations for each --ode-steps.",
    ),
    "pretrain": (
        _add_pretrain,
        "pretrain a BertOde masked language model (built-in offline corpus by default)",
        "Masked-LM pretraining from a YAML config plus overrides. With no arguments it trains on the "
        "built-in corpus. Runs unchanged under torchrun / accelerate launch (data-parallel).",
    ),
    "compare": (
        _add_compare,
        "the study: pretrain BERT and ODE variants under one recipe, fine-tune each, write a report",
        "Runs a comparison study (configs/compare-<preset>.yaml) and writes reports/<name>/report.md with "
        "tables and plots. Finished runs are reused when the same study is run again, so an interrupted "
        "study resumes.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = HfArgumentParser(prog="bert-ode", description="ODE-BERT: BERT with ODE-solver residual blocks")
    parser.add_argument("--version", action="version", version=f"bert-ode {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=HfArgumentParser)
    for name, (add_arguments, help_line, description) in COMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_line, description=description))
    return parser


def _last_line(error: Exception) -> str:
    """``Field 'hidden_size' expected int, got str (value: 'abc')``: huggingface_hub's validation error."""
    line = str(error).strip().splitlines()[-1].strip()
    return line.split(": ", 1)[1] if line.startswith(("TypeError: ", "ValueError: ")) else line


def main(argv: list[str] | None = None) -> int:
    if MISSING_TRAINING_EXTRA is not None:
        print(
            f"bert-ode: the command line needs the training extras ({MISSING_TRAINING_EXTRA}); install them "
            "with: pip install 'bert-ode[train,data]'",
            file=sys.stderr,
        )
        return 2
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, MaxNfeExceeded) as error:
        # Bad input gets one clear line, not a stack trace (a study's failed units: one line each).
        print(f"bert-ode {args.command}: error: {error}", file=sys.stderr)
        return 2
    except StrictDataclassError as error:
        # A config field of the wrong type, as transformers' / huggingface_hub's validation words it.
        print(f"bert-ode {args.command}: error: {_last_line(error)}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as error:
        print(f"bert-ode {args.command}: error: a file that is not UTF-8 text: {error}", file=sys.stderr)
        return 2
    except DiskFull as error:
        print(f"bert-ode {args.command}: error: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
