"""BERT checkpoint -> BertOde model. Parameter names are shared, so conversion is loading with another
config."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from pathlib import Path

from safetensors import SafetensorError, safe_open
from transformers import AutoTokenizer, PreTrainedConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

from .configuration_bert_ode import BertOdeConfig
from .model_card import source_license, write_model_card

CONVERTIBLE_MODEL_TYPES = ("bert", "bert_ode")
# Arguments of `from_pretrained` that are not config fields.
_LOADING_KWARGS = ("attn_implementation", "dtype", "device_map")
# A checkpoint folder holds one of these (transformers' names).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Keys of a saved config that describe the file, not the model.
_FILE_KEYS = ("model_type", "architectures", "auto_map", "transformers_version", "_name_or_path")


def _config_fields() -> set[str]:
    fields = {f.name for f in dataclasses.fields(BertOdeConfig)}
    return fields | {"num_labels", "id2label", "label2id", "output_attentions"}


def _looks_like_a_path(name: str) -> bool:
    """Whether a checkpoint name that does not exist was meant as a local path (a Hub id is ``name`` or
    ``owner/name``)."""
    return name.startswith(("/", ".", "~")) or name.endswith("/") or name.count("/") > 1 or "\\" in name


def check_checkpoint(checkpoint) -> None:
    """One clear ``ValueError`` for a local checkpoint that cannot load: not found, not a directory, not a
    checkpoint (no ``config.json``, or one that is not JSON, or no weights), or corrupt weights (naming the
    file). A name that is not a local path is left to the Hub."""
    if not isinstance(checkpoint, (str, os.PathLike)):
        return  # a loaded model
    name = str(checkpoint)
    path = Path(name).expanduser()
    if not path.exists():
        if _looks_like_a_path(name):
            raise ValueError(f"checkpoint {name!r} not found: no such directory")
        return
    if not path.is_dir():
        raise ValueError(
            f"checkpoint {name!r} is a file, not a checkpoint directory (a folder with config.json and "
            "model.safetensors)"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{name!r} is not a checkpoint: it has no config.json")
    try:
        json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{name!r} is not a checkpoint: {config_file} is not valid JSON ({error})") from None
    if not any((path / weights).is_file() for weights in WEIGHT_FILES):
        raise ValueError(f"{name!r} is not a checkpoint: it has none of {', '.join(WEIGHT_FILES)}")
    for weights in _safetensors_files(path):
        check_safetensors(weights)


def _safetensors_files(path: Path) -> list[Path]:
    """The checkpoint's safetensors files: the single file, or the shards its index lists."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
            raise ValueError(f"corrupt weights index {index}: {type(error).__name__}: {error}") from None
        return [path / shard for shard in shards]
    single = path / "model.safetensors"
    return [single] if single.is_file() else []


def check_safetensors(file: Path) -> None:
    """Raises a ``ValueError`` naming ``file`` unless its header is whole (a truncated, empty or garbage file
    fails here, not inside the loader)."""
    try:
        with safe_open(str(file), framework="np") as handle:
            handle.keys()
    except (SafetensorError, OSError) as error:
        raise ValueError(f"corrupt weights file {file}: {error}") from None


def read_checkpoint_config(checkpoint) -> dict:
    """The config of a checkpoint (a path, a Hub name or a loaded model) as a dict, checked to load."""
    if isinstance(checkpoint, PreTrainedModel):
        config_dict = checkpoint.config.to_dict()
        config_dict.setdefault("model_type", getattr(checkpoint.config, "model_type", ""))
        config_dict["architectures"] = [type(checkpoint).__name__]
        return config_dict
    check_checkpoint(checkpoint)
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(str(checkpoint))
    except (OSError, ValueError) as error:
        raise ValueError(
            f"checkpoint {str(checkpoint)!r} not found: no such local directory, and no Hub model of that "
            f"name could be loaded ({error})"
        ) from None
    if not config_dict:  # an existing directory without config.json reads as an empty config
        raise ValueError(f"{str(checkpoint)!r} is not a checkpoint: it has no config.json")
    return config_dict


def _check_is_bert(config_dict: dict, checkpoint) -> None:
    model_type = config_dict.get("model_type")
    if model_type not in CONVERTIBLE_MODEL_TYPES:
        name = type(checkpoint).__name__ if isinstance(checkpoint, PreTrainedModel) else repr(str(checkpoint))
        raise ValueError(
            f"{name} is not a BERT checkpoint: its model_type is {model_type!r}; "
            f"from_bert converts model types {', '.join(map(repr, CONVERTIBLE_MODEL_TYPES))}"
        )


def check_overrides(overrides: dict) -> None:
    """Refuses an unknown field or a bad value among ``overrides`` of a checkpoint's config, before anything
    is loaded or tokenised (fields that must agree with each other or with the checkpoint are checked when
    its config is built)."""
    unknown = sorted(set(overrides) - _config_fields() - set(_LOADING_KWARGS))
    if unknown:
        raise ValueError(
            f"unknown config field(s) {unknown}; see BertOdeConfig for the fields that can be set"
        )
    for key, value in overrides.items():
        BertOdeConfig.check_field(key, value)


def convert_bert(model_class, checkpoint, **overrides):
    """Loads ``checkpoint`` (a path, a Hub name, or a loaded BERT model) into ``model_class`` with ODE fields
    set."""
    check_overrides(overrides)
    loading_kwargs = {key: overrides.pop(key) for key in _LOADING_KWARGS if key in overrides}
    config_dict = read_checkpoint_config(checkpoint)
    _check_is_bert(config_dict, checkpoint)

    base = {key: value for key, value in config_dict.items() if key not in _FILE_KEYS}
    _check_sizes_kept(base, overrides)
    config = BertOdeConfig(**{**base, **overrides})
    if isinstance(checkpoint, PreTrainedModel):
        # One loading path for both cases: HuggingFace's, which maps head/base prefixes and initialises what
        # is new.
        with tempfile.TemporaryDirectory() as directory:
            checkpoint.save_pretrained(directory)
            return _load(model_class, directory, config, loading_kwargs)
    return _load(model_class, str(checkpoint), config, loading_kwargs)


# Fields that set the shape of a checkpoint's weights: a conversion keeps the checkpoint's values (its weights
# have those shapes), or transformers would load some of them as fresh random tensors.
SIZE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)


def _check_sizes_kept(source: dict, overrides: dict) -> None:
    """Refuses, before any weight is loaded, an override that changes the checkpoint's sizes."""
    changed = [
        f"{name}={overrides[name]!r} (the checkpoint's is {source[name]!r})"
        for name in SIZE_FIELDS
        if name in overrides and name in source and overrides[name] != source[name]
    ]
    if changed:
        raise ValueError(
            f"a conversion keeps the checkpoint's sizes, but {', '.join(changed)} would change them; the "
            f"sizes are {', '.join(SIZE_FIELDS)}: drop these overrides (or pretrain a new model)"
        )


def _load(model_class, path: str, config: BertOdeConfig, loading_kwargs: dict):
    """The model, with ``new_parameters``: the names the checkpoint had no weights for (initialised anew)."""
    if config.splitting == "lie" or _source_splitting(path) == "strang":
        model, new = _quiet_load(model_class, path, config, loading_kwargs)
    else:
        # Strang splitting has two half-size feed-forwards where BERT has one: load as Lie, split the units.
        lie_model, new = _quiet_load(model_class, path, _replace(config, splitting="lie"), loading_kwargs)
        model = model_class(config).to(dtype=lie_model.dtype)
        model.load_state_dict(split_feed_forward(lie_model.state_dict(), model.state_dict()))
    model.new_parameters = new
    return model


@contextlib.contextmanager
def quiet_transformers(reports: bool = True):
    """Without transformers' progress bars ("Loading weights", "Writing model shards") and, with ``reports``,
    its warnings (the load-report table); as they were afterwards. For loads and saves that bert-ode's own
    output already describes: their bars would tangle with a run's progress bar."""
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    if reports:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _quiet_load(model_class, path: str, config: BertOdeConfig, loading_kwargs: dict):
    """``from_pretrained`` without transformers' load-report table (a conversion expects new and dropped
    weights: ``new_parameters`` and ``describe_new_parameters`` say which, in one line)."""
    with quiet_transformers():
        model, info = model_class.from_pretrained(
            path, config=config, output_loading_info=True, **loading_kwargs
        )
    return model, sorted(info["missing_keys"])


# Parameter name fragments -> what they are, for the line that names a conversion's new weights.
_NEW_PARTS = {
    "cls.": "the masked-LM head",
    "classifier.": "the classification head",
    "qa_outputs.": "the question-answering head",
    "pooler.": "the pooler",
    "gate": "the RK2 gates",
    "coefficients": "the learned multistep coefficients",
    "ema.": "the PCformer EMA coefficients",
    "step_size.": "the learned step sizes",
    "encoder.LayerNorm": "the pre-norm final LayerNorm",
    "time_embedding": "the continuous-depth time embedding",
}
# What a scheme adds and initialises as it prescribes (not randomly): no warning needed.
_EXPECTED_NEW = {
    "the RK2 gates",
    "the learned multistep coefficients",
    "the PCformer EMA coefficients",
    "the learned step sizes",
    "the continuous-depth time embedding",
}


def describe_new_parameters(names: list[str]) -> tuple[list[str], list[str]]:
    """(new parts a user must know of: heads and the like, random until trained; new parts a scheme adds and
    initialises itself, e.g. ab2-learned's coefficients at BERT's (1, 0)), each as ``"what (n tensors)"``."""
    counts: dict[str, int] = {}
    for name in names:
        what = next((label for part, label in _NEW_PARTS.items() if part in name), name)
        counts[what] = counts.get(what, 0) + 1
    described = {what: f"{what} ({count} tensor{'s' if count > 1 else ''})" for what, count in counts.items()}
    random = [text for what, text in described.items() if what not in _EXPECTED_NEW]
    return random, [text for what, text in described.items() if what in _EXPECTED_NEW]


def _source_splitting(path: str) -> str:
    config_dict, _ = PreTrainedConfig.get_config_dict(path)
    return config_dict.get("splitting", "lie")


def _replace(config: BertOdeConfig, **changes) -> BertOdeConfig:
    return BertOdeConfig(**{**config.to_dict(), **changes})


_FFN_KEY = re.compile(r"^(?P<layer>.*layer\.\d+\.)(?P<module>intermediate|output)\.(?P<param>.+)$")


def split_feed_forward(lie_state: dict, strang_state: dict) -> dict:
    """Warm start for Strang splitting: BERT's feed-forward units are shared out between the two half steps.

    The first half of the units goes to the feed-forward before attention (``macaron_*``), the second half to
    the one after. Output weights are doubled because each half step is scaled by 1/2, so that the two half
    steps add up to BERT's feed-forward on the same input. The layer is not equivalent to BERT (the halves see
    different inputs), but it starts near it. ``macaron_output.LayerNorm`` keeps its fresh initialisation.
    """
    new_state = dict(strang_state)
    for key, value in lie_state.items():
        match = _FFN_KEY.match(key)
        if match is None or match["param"].startswith("LayerNorm"):
            if key in new_state:
                new_state[key] = value
            continue
        layer, module, param = match["layer"], match["module"], match["param"]
        if module == "intermediate":  # dense.weight (inner, hidden), dense.bias (inner,): split the rows
            first, second = value.chunk(2, dim=0)
        elif param == "dense.weight":  # (hidden, inner): split the columns, doubled for the half step
            first, second = (2 * half for half in value.chunk(2, dim=1))
        else:  # output.dense.bias: each half step adds half of it
            first = second = value
        new_state[f"{layer}macaron_{module}.{param}"] = first.clone()
        new_state[f"{layer}{module}.{param}"] = second.clone()
    return new_state


def save_converted(model, output_dir: str | os.PathLike, tokenizer_source: str | None = None) -> None:
    """Saves a converted model, with the source's tokenizer files when there are any and a model card (the
    source as base model, its license kept, newly initialised weights named)."""
    model.save_pretrained(output_dir)
    if tokenizer_source is not None:
        random, scheme = describe_new_parameters(getattr(model, "new_parameters", []))
        how = [
            f"Converted from the BERT checkpoint `{tokenizer_source}` with `bert-ode convert`: the "
            "source's parameters unchanged, its residual connections replaced by the ODE steps above (with "
            "Euler and one step it computes exactly what the source computes)."
        ]
        if scheme:
            added = ", ".join(scheme)
            how.append(f"Added by the scheme, initialised as it prescribes (docs/mathematics.md): {added}.")
        limits = (
            [
                f"Newly initialised, because the source has no weights for them: {', '.join(random)}. "
                "They are random until trained: outputs that depend on them (e.g. fill-mask predictions "
                "from a new masked-LM head) mean nothing before fine-tuning or further pretraining."
            ]
            if random
            else []
        )
        write_model_card(
            output_dir,
            model,
            title=f"{Path(str(tokenizer_source)).name} as an ODE-BERT ({model.config.ode_method})",
            how_made=how,
            base_model=str(tokenizer_source),
            license=source_license(tokenizer_source) or "unknown",
            limitations=limits,
        )
    if tokenizer_source is not None and os.path.isdir(tokenizer_source):
        try:
            AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(output_dir)
        except (OSError, ValueError):
            pass  # a checkpoint without tokenizer files converts all the same


__all__ = [
    "check_checkpoint",
    "check_overrides",
    "quiet_transformers",
    "check_safetensors",
    "convert_bert",
    "describe_new_parameters",
    "read_checkpoint_config",
    "save_converted",
    "split_feed_forward",
]
