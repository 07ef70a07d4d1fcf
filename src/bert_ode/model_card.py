"""Model cards (``README.md`` beside the weights) for what bert-ode saves: converted, pretrained and
fine-tuned checkpoints. huggingface_hub's ``ModelCard`` writes the YAML metadata the Hub reads (library, base
model, license, tags, datasets, metrics); the body says what the model is, how it was made and how to load
it."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

LOADING = """## How to load

```python
import bert_ode  # registers BertOde with transformers' Auto classes
from transformers import AutoTokenizer, {auto_class}

model = {auto_class}.from_pretrained("{path}")
tokenizer = AutoTokenizer.from_pretrained("{path}")
```

Without bert-ode installed, the model code saved beside the weights is used:
`{auto_class}.from_pretrained("{path}", trust_remote_code=True)`. The solver is read at every forward pass, so
`model.config.ode_steps = 4` evaluates the same weights with four steps per block."""


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
    if config.ode_backend != "native":
        parts.append(f"integrated by {config.ode_backend}")
    if config.continuous_depth:
        parts.append("one weight-tied layer over continuous depth")
    size = f"{config.num_hidden_layers} layers, hidden {config.hidden_size}"
    return f"an ODE-BERT ({', '.join(parts)}; {size})"


def source_license(checkpoint) -> str | None:
    """The license a local source checkpoint's card declares (a converted model keeps it), if any."""
    card = Path(str(checkpoint)) / "README.md"
    if not card.is_file():
        return None
    try:
        return ModelCard.load(card).data.license
    except (ValueError, OSError):  # a README that is not a model card
        return None


def write_model_card(
    directory: str | os.PathLike,
    model,
    *,
    how_made: list[str],
    auto_class: str,
    pipeline_tag: str | None,
    base_model: str | None = None,
    license: str | None = None,
    datasets: list[str] | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Writes ``directory/README.md``; ``how_made``: sentences on how the checkpoint was made."""
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        base_model=base_model,
        license=license,
        datasets=datasets or None,
        metrics=sorted(metrics) if metrics else None,
        tags=["bert-ode", "bert", "ode", "custom_code"],
    )
    name = Path(directory).resolve().name
    lines = [f"# {name}", "", f"This is {describe(model.config)}, made with bert-ode.", ""]
    lines += ["## How it was made", "", *[f"- {sentence}" for sentence in how_made], ""]
    if metrics:
        lines += ["## Results", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4f} |" for key, value in sorted(metrics.items())]
        lines.append("")
    lines.append(LOADING.format(auto_class=auto_class, path=str(directory)))
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")
    path = Path(directory) / "README.md"
    staging = path.with_name(f".README.md.tmp{os.getpid()}")
    card.save(staging)
    os.replace(staging, path)
    return path


__all__ = ["describe", "source_license", "write_model_card"]
