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
import importlib
import sys
import typing

from huggingface_hub.errors import StrictDataclassError
from transformers import HfArgumentParser

from bert_ode_cli import COMMANDS, DESCRIPTION, command_listing, installed_version

from .solvers import MaxNfeExceeded
from .utils.config_io import check_output_dir, parse_assignments
from .utils.disk import DiskFull

TRAINING_EXTRAS = "pip install 'bert-ode[train,data]'"

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
    fields, switches = [], []
    for f in dataclasses.fields(config_class):
        if f.name in skip or not f.init or typing.get_origin(hints[f.name]) is dict or hints[f.name] is dict:
            continue
        if hints[f.name] in (bool, bool | None):
            switches.append(f)
            continue
        default = {"default": f.default} if f.default is not dataclasses.MISSING else {}
        if f.default_factory is not dataclasses.MISSING:
            default = {"default_factory": f.default_factory}
        # HfArgumentParser passes metadata on to add_argument; the range is the config's own check.
        metadata = {key: value for key, value in f.metadata.items() if key != "bounds"}
        fields.append((f.name, hints[f.name], dataclasses.field(metadata=metadata, **default)))
    view = dataclasses.make_dataclass(f"{config_class.__name__}Options", fields, kw_only=True)
    parser._add_dataclass_arguments(view)
    for f in switches:
        _add_switch(parser, f)
    return [name for name, _, _ in fields] + [f.name for f in switches]


# Fields kept for older command lines: accepted, not shown in --help.
HIDDEN_OPTIONS = ("bf16",)


def _add_switch(parser, f: dataclasses.Field) -> None:
    """A bool field as ``--name`` / ``--no-name`` (argparse's own BooleanOptionalAction): HfArgumentParser
    would show ``--name [NAME]`` plus a ``--no_name`` whose help repeats the field's."""
    help_text = argparse.SUPPRESS if f.name in HIDDEN_OPTIONS else f.metadata.get("help")
    parser.add_argument(
        f"--{f.name.replace('_', '-')}",
        dest=f.name,
        action=argparse.BooleanOptionalAction,
        default=f.default,
        help=help_text,
    )


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown where they say something: not for ``None``, an empty list or ``--set``."""

    def _get_help_string(self, action):
        if action.default in (None, []) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


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
    from . import modeling_bert_ode
    from .convert import describe_new_parameters, save_converted

    check_output_dir(args.output_dir, "output_dir")  # before anything is loaded
    model_class = getattr(modeling_bert_ode, HEADS[args.head])
    model = model_class.from_bert(args.checkpoint, **parse_assignments(args.overrides))
    random, _ = describe_new_parameters(model.new_parameters)
    if random:
        print(
            f"convert: newly initialised, the source has no weights for them: {', '.join(random)} "
            "(random until trained; the model card says so too)",
            file=sys.stderr,  # a notice, not a result: `convert ... > log` keeps it on the terminal
        )
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


def _add_finetune(parser) -> None:
    from .finetune import FinetuneConfig

    _add_checkpoint_command(
        parser,
        config_class=FinetuneConfig,
        run=_run_finetune,
        checkpoint_help="BertOde or BERT checkpoint directory (or Hub name), with its tokenizer",
        set_example="--set learning_rate=1e-4 --set model.ode_method=heun",
    )


def _add_evaluate(parser) -> None:
    from .finetune import EvaluateConfig

    _add_checkpoint_command(
        parser,
        config_class=EvaluateConfig,
        run=_run_evaluate,
        checkpoint_help="fine-tuned checkpoint directory (e.g. OUTPUT_DIR/seed-0 of finetune)",
        set_example="--set batch_size=16 --set model.ode_method=rk4",
    )


def _run_finetune(args, names: list[str]) -> None:
    from .finetune import FinetuneConfig, finetune
    from .finetune.config import split_assignments

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
    from .finetune import EvaluateConfig, evaluate
    from .finetune.config import split_assignments

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
    from .pretrain import pretrain

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
        help="smoke (from scratch, a few minutes on a laptop CPU), warm-start (ODE conversions of the "
        "shipped pretrained BERT: the main job), cpu (the study on 2 cores), gpu (BERT-base scale), or a "
        "study YAML file",
    )
    _add_set_option(
        parser,
        "--set seeds=[0,1,2,3] --set name=mine "
        "--set pretrain_overrides.train.budget_tokens=4000000 --set finetune.epochs=2",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run no unit: rewrite the report from the finished records (the study's records folder, or the "
        "records kept in the report's results.json)",
    )
    parser.set_defaults(handler=_run_compare)


def _run_compare(args) -> None:
    from .study import compare

    command = "bert-ode compare --preset " + args.preset + "".join(f" --set {o}" for o in args.overrides)
    command += " --report-only" if args.report_only else ""
    report_dir = compare(
        args.preset,
        parse_assignments(args.overrides),
        progress=not args.no_progress,
        command=command,
        report_only=args.report_only,
    )
    print(f"report: {report_dir / 'report.md'}")


def _add_testbed(parser) -> None:
    parser.add_argument(
        "--preset",
        default="testbed",
        metavar="NAME_OR_YAML",
        help="the testbed study (a preset or YAML file)",
    )
    _add_set_option(parser, '--set "only=[bert-L6-lr*]" --set only_seeds=[0]')
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--report-only", action="store_true", help="run no unit: rewrite the report from the records"
    )
    parser.set_defaults(handler=_run_testbed)


def _run_testbed(args) -> None:
    from .study.testbed import run_testbed

    command = "bert-ode testbed" + ("" if args.preset == "testbed" else f" --preset {args.preset}")
    report = run_testbed(
        args.preset,
        parse_assignments(args.overrides),
        report_only=args.report_only,
        progress=not args.no_progress,
        command=command + " --report-only",
    )
    print(f"report: {report}")


def _add_corpus(parser) -> None:
    parser.add_argument("action", choices=["build"], help="build: fetch, clean, deduplicate, split, write")
    parser.add_argument("output_dir", help="where the shards, the tokenizer and manifest.json go")
    parser.add_argument(
        "--cache", default=None, help="where downloaded packages are kept (default ~/.cache/bert-ode/corpus)"
    )
    parser.add_argument("--vocab-size", type=int, default=4096, help="the WordPiece tokenizer trained on it")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    parser.add_argument(
        "--compare-to",
        default=None,
        metavar="MANIFEST",
        help="list the package versions that differ from this manifest (e.g. reports/corpus/manifest.json) "
        "instead of from the output folder's previous build",
    )
    parser.set_defaults(handler=_run_corpus)


def _run_corpus(args) -> None:
    from .data.build import build_corpus
    from .data.build.held_out import task_texts

    if args.vocab_size < 8:
        raise ValueError(f"--vocab-size={args.vocab_size} must be at least 8")
    manifest = build_corpus(
        args.output_dir,
        cache=args.cache,
        held_out=task_texts(),
        vocab_size=args.vocab_size,
        progress=not args.no_progress,
        compare_to=args.compare_to,
    )
    totals = manifest["totals"]
    print(
        f"corpus: {totals['train_tokens']:,} training and {totals['validation_tokens']:,} validation tokens "
        f"from {len(manifest['sources'])} sources; manifest: {args.output_dir}/manifest.json"
    )


# command -> the package it runs, imported before its parser is built: a missing training extra is then one
# clear line, whatever the command imports first
STACKS = {
    "finetune": "finetune",
    "evaluate": "finetune",
    "pretrain": "pretrain",
    "compare": "study",
    "testbed": "study",
    "corpus": "data",
}

# name -> what declares its arguments (help lines and descriptions: bert_ode_cli.COMMANDS)
ARGUMENTS = {
    "convert": _add_convert,
    "finetune": _add_finetune,
    "evaluate": _add_evaluate,
    "pretrain": _add_pretrain,
    "compare": _add_compare,
    "testbed": _add_testbed,
    "corpus": _add_corpus,
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` that one: declaring a command's options imports its
    config classes (the training stack for all but ``convert``), so a command loads nothing it does not
    use."""
    parser = HfArgumentParser(prog="bert-ode", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"bert-ode {installed_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=HfArgumentParser)
    for name, (help_line, description) in COMMANDS.items():
        if only in (None, name):
            if name in STACKS:
                importlib.import_module(f"{__package__}.{STACKS[name]}")
            command = subparsers.add_parser(
                name, help=help_line, description=description, formatter_class=HelpFormatter
            )
            ARGUMENTS[name](command)
    return parser


def _last_line(error: Exception) -> str:
    """``Field 'hidden_size' expected int, got str (value: 'abc')``: huggingface_hub's validation error."""
    line = str(error).strip().splitlines()[-1].strip()
    return line.split(": ", 1)[1] if line.startswith(("TypeError: ", "ValueError: ")) else line


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    if command is None:
        command_listing().parse_args(argv[:1])  # --version, --help or a bad command: answers and exits
    try:
        parser = build_parser(only=command)
    except ImportError as error:  # the model-only install (pip install bert-ode) runs convert, not this
        print(
            f"bert-ode {command}: error: this command needs the training extras ({error}); install them "
            f"with: {TRAINING_EXTRAS}",
            file=sys.stderr,
        )
        return 2
    args = parser.parse_args(argv)
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
