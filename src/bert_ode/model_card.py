"""Model cards (``README.md`` beside the weights) for what bert-ode saves: converted, pretrained and
fine-tuned checkpoints, and any BertOde model's ``save_pretrained``. huggingface_hub's ``ModelCard`` writes
the YAML metadata the Hub reads (library, base model as a Hub id, license, tags, datasets, metrics); the body
says what the model is, how it was made, what it is for and not for, how to load it and how to cite it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from . import __version__

AUTO_CLASS_OF = {
    "BertOdeModel": "AutoModel",
    "BertOdeForMaskedLM": "AutoModelForMaskedLM",
    "BertOdeForSequenceClassification": "AutoModelForSequenceClassification",
    "BertOdeForTokenClassification": "AutoModelForTokenClassification",
    "BertOdeForQuestionAnswering": "AutoModelForQuestionAnswering",
    "BertOdeForMultipleChoice": "AutoModelForMultipleChoice",
}
PIPELINE_OF = {
    "BertOdeModel": "feature-extraction",
    "BertOdeForMaskedLM": "fill-mask",
    "BertOdeForSequenceClassification": "text-classification",
    "BertOdeForTokenClassification": "token-classification",
    "BertOdeForQuestionAnswering": "question-answering",
    "BertOdeForMultipleChoice": None,  # no Hub pipeline
}
# The license of what bert-ode trains from scratch (the project's own); a conversion keeps its source's.
OWN_LICENSE = "apache-2.0"

LOADING = """## How to load

```python
import bert_ode  # registers BertOde with transformers' Auto classes
from transformers import AutoTokenizer, {auto_class}

model_id = "{model_id}"  # the Hub id it was pushed to, or the folder it is in
model = {auto_class}.from_pretrained(model_id)
tokenizer = AutoTokenizer.from_pretrained(model_id)
```

Without bert-ode installed, the model code saved beside the weights is used: pass `trust_remote_code=True`
to both calls (the tokenizer is transformers' own BERT WordPiece, but transformers reads the model's config
before the tokenizer's). The solver is read at every forward pass, so `model.config.ode_steps = 4` evaluates
the same weights with four steps per block."""

INTENDED_USE = (
    "Research on residual connections read as ODE integration steps: comparing integration schemes at equal "
    "compute, warm-starting them from BERT checkpoints, and fine-tuning them on downstream tasks. It is a "
    "research artefact, not a product: evaluate it on your own data before relying on it."
)
LIMITATIONS = (
    "A model trained by bert-ode on a laptop-scale budget is small and has seen little text (the card says "
    "how much): expect far weaker representations than a fully pretrained BERT, limited to the language(s) "
    "and marked by the biases of its training text. A scheme other than Euler costs more per token (the "
    "configuration says how many evaluations a block makes)."
)

CITATION = f"""## Citation

```bibtex
@software{{bert_ode,
  title = {{bert-ode: BERT whose residual connections are ODE integration steps}},
  author = {{{{The bert-ode authors}}}},
  year = {{2026}},
  version = {{{__version__}}},
  license = {{Apache-2.0}},
  note = {{The study and paper: docs/paper.md in the repository}}
}}
```"""


def describe(config) -> str:
    """A BertOde config in one sentence: scheme, steps, scope, norm, splitting, size."""
    scheme = "BERT's residual (forward Euler)" if config.ode_method == "euler" else config.ode_method
    parts = [
        f"{scheme} x {config.ode_steps} step(s) per block",
        f"{config.ode_scope} scope",
        f"{config.norm_position}-norm",
        f"{config.splitting} splitting",
    ]
    if config.ode_interval != 1.0:
        parts.append(f"each block over an interval of {config.ode_interval:g}")
    learned_step = getattr(config, "ode_learned_step", "none")
    if learned_step != "none":
        parts.append(
            f"a learned step size per {'block and channel' if learned_step == 'channel' else 'block'}"
        )
    if getattr(config, "ode_history", "carry") == "restart":
        parts.append("multistep history restarted in every block")
    if config.ode_backend != "native":
        parts.append(f"integrated by {config.ode_backend}")
    if config.continuous_depth:
        parts.append("one weight-tied layer over continuous depth")
    size = f"{config.num_hidden_layers} layers, hidden {config.hidden_size}"
    return f"an ODE-BERT ({', '.join(parts)}; {size})"


def default_title(config) -> str:
    return f"BertOde {config.ode_method}: {config.num_hidden_layers} layers, hidden {config.hidden_size}"


def _is_hub_id(text: str) -> bool:
    if not text or os.path.isabs(text) or text.startswith(".") or os.path.exists(text):
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def hub_model_id(source) -> str | None:
    """The Hub id a checkpoint stands for: the source itself when it is one (not a local folder), else the
    ``_name_or_path`` its config records or the ``base_model`` its card names, when those are; ``None`` for a
    model that exists only locally (a local path is no ``base_model`` the Hub can link)."""
    if source is None:
        return None
    text = str(source)
    if _is_hub_id(text):
        return text
    folder = Path(text)
    config = folder / "config.json"
    if config.is_file():
        try:
            recorded = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path", "")
        except (ValueError, OSError):
            recorded = ""
        if isinstance(recorded, str) and _is_hub_id(recorded):
            return recorded
    card = folder / "README.md"
    if card.is_file():
        try:
            base = ModelCard.load(card).data.base_model
        except (ValueError, OSError):
            base = None
        if isinstance(base, str) and _is_hub_id(base):
            return base
    return None


def source_license(checkpoint) -> str | None:
    """The license a local source checkpoint's card declares (a converted model keeps it), if any."""
    card = Path(str(checkpoint)) / "README.md"
    if not card.is_file():
        return None
    try:
        return ModelCard.load(card).data.license
    except (ValueError, OSError):  # a README that is not a model card
        return None


def _value(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def write_model_card(
    directory: str | os.PathLike,
    model,
    *,
    title: str | None = None,
    how_made: list[str] | None = None,
    base_model: str | None = None,
    license: str | None = None,
    datasets: list[str] | None = None,
    metrics: dict[str, float] | None = None,
    limitations: list[str] | None = None,
) -> Path:
    """Writes ``directory/README.md`` for ``model`` (a BertOde model); every other argument has a default.

    ``how_made``: sentences on how the checkpoint was made; ``base_model``: a Hub id (a local path is turned
    into the Hub id it stands for, or dropped); ``license``: the project's own when not given; ``metrics``:
    name -> value, shown in a table (the metric names go to the metadata); ``limitations``: sentences on this
    checkpoint's own limits, before the general ones.
    """
    kind = type(model).__name__
    auto_class, pipeline_tag = (
        AUTO_CLASS_OF.get(kind, "AutoModel"),
        PIPELINE_OF.get(kind, "feature-extraction"),
    )
    base = hub_model_id(base_model)
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        base_model=base,
        license=license or OWN_LICENSE,
        datasets=datasets or None,
        metrics=sorted({name.split("_", 1)[-1] for name in metrics}) if metrics else None,
        tags=["bert-ode", "bert", "ode", "custom_code"],
    )
    title = title or default_title(model.config)
    made = how_made or ["Saved with `save_pretrained`; how it was trained was not recorded with it."]
    lines = [f"# {title}", "", f"This is {describe(model.config)}, made with bert-ode {__version__}.", ""]
    lines += ["## How it was made", "", *[f"- {sentence}" for sentence in made], ""]
    if metrics:
        lines += ["## Results", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {_value(value)} |" for key, value in sorted(metrics.items())]
        lines.append("")
    lines += ["## Intended use", "", INTENDED_USE, ""]
    lines += ["## Limitations", "", *[f"- {s}" for s in [*(limitations or []), LIMITATIONS]], ""]
    lines += [LOADING.format(auto_class=auto_class, model_id=base_model_placeholder(title)), "", CITATION]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")
    path = Path(directory) / "README.md"
    staging = path.with_name(f".README.md.tmp{os.getpid()}")
    card.save(staging)
    os.replace(staging, path)
    return path


def base_model_placeholder(title: str) -> str:
    """A Hub-style id for the loading snippet: ``your-username/`` and the title as a repository name."""
    name = "".join(c if c.isalnum() or c in "-." else "-" for c in title.lower())
    return "your-username/" + "-".join(part for part in name.split("-") if part)[:80]


__all__ = [
    "AUTO_CLASS_OF",
    "PIPELINE_OF",
    "default_title",
    "describe",
    "hub_model_id",
    "source_license",
    "write_model_card",
]
