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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bert-ode", description="ODE-BERT: BERT with ODE-solver residual blocks")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_convert(subparsers)
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
