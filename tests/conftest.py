"""Shared helpers of the bert_ode tests: tiny configs (STYLE.md item 9), quiet and single-threaded torch."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

import bert_ode  # noqa: E402

# Two CPU cores are shared with other work: one thread per test process keeps timings predictable.
torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

# The tiny BERT of transformers' own BertModelTester.
TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
)

METHODS = tuple(bert_ode.TABLEAUX)  # euler, midpoint, heun, rk3, rk4, rk2-gated


def tiny_config_dict(**overrides) -> dict:
    """Keyword arguments of a tiny BERT / BertOde config; Strang splitting gets an even intermediate size."""
    config = dict(TINY)
    if overrides.get("splitting") == "strang" and "intermediate_size" not in overrides:
        config["intermediate_size"] = 38
    config.update(overrides)
    return config


# The model of a pretraining run that takes seconds (the pretraining, streaming, fault and throughput tests).
TINY_PRETRAIN_MODEL = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=32,
)


def write_austen(path, documents: int = 4):
    """The first ``documents`` documents of the built-in Austen corpus as one text file at ``path``."""
    from bert_ode.data import load_builtin

    if not path.exists():
        path.write_text("\n\n".join(load_builtin("austen")[:documents]), encoding="utf-8")
    return path


def tiny_pretraining(corpus, output_dir, **extra) -> dict:
    """Overrides of a pretraining run on ``corpus`` that takes seconds: the tiny model, blocks of 32 tokens, a
    300-token vocabulary, 4 steps of 8 blocks, fp32 on one thread, no evaluation and no progress bar.
    ``extra`` (dotted keys) changes any of it; ``model.<field>`` keys add to the tiny model; ``corpus=None``:
    the data comes from ``extra``."""
    return {
        **({"data.files": [str(corpus)]} if corpus is not None else {}),
        "data.seq_len": 32,
        "tokenizer.vocab_size": 300,
        "model": dict(TINY_PRETRAIN_MODEL),
        "train.output_dir": str(output_dir),
        "train.batch_size": 8,
        "train.max_steps": 4,
        "train.eval_every": 0,
        "train.save_every": 2,
        "train.precision": "fp32",
        "train.num_threads": 1,
        "train.progress_bar": False,
        **extra,
    }


def tiny_ode_config(**overrides) -> bert_ode.BertOdeConfig:
    return bert_ode.BertOdeConfig(**tiny_config_dict(**overrides))


def random_batch(batch: int = 3, seq: int = 7, vocab: int = 99, seed: int = 0, pad_rows: bool = True):
    """``input_ids``, ``attention_mask``, ``token_type_ids``; with ``pad_rows`` later rows end in padding."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, vocab, (batch, seq), generator=generator)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    if pad_rows:
        for row in range(1, batch):
            real = max(2, seq - 2 * row)
            attention_mask[row, real:] = 0
            input_ids[row, real:] = 0
    token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
    token_type_ids[:, seq // 2 :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def max_diff_at_real_tokens(a: torch.Tensor, b: torch.Tensor, attention_mask: torch.Tensor) -> float:
    """Largest absolute difference over the real (unpadded) positions of ``(batch, seq, ...)`` tensors."""
    real = attention_mask.bool()
    return (a[real] - b[real]).abs().max().item()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def assert_one_line_error(capsys, code: int, expected_code: int, *words: str) -> str:
    """A command's bad-input contract: the exit code, no traceback, the error in one line (the last of stderr;
    a run that fails after it started may have printed its start-up line before), the words that name the
    problem."""
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    lines = err.splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert "Traceback" not in err and len(errors) == 1 and lines[-1] == errors[0], err
    assert all(word in errors[0] for word in words), err
    return errors[0]


def assert_hub_ready_card(folder, base_model=None) -> None:
    """A model card the Hub accepts and a user can act on: metadata huggingface_hub parses (license an id,
    base_model a Hub id or absent, never a local path), a title that is not the folder's name, the sections
    a reader looks for, no bookkeeping counts posing as metrics. Where the Hub answers, its own validator
    (``ModelCard.validate``) too; offline that part is skipped, the rest still holds."""
    import os
    from pathlib import Path

    from huggingface_hub import ModelCard
    from huggingface_hub.utils import validate_repo_id

    folder = Path(folder)
    card = ModelCard.load(folder / "README.md")
    data = card.data
    assert data.library_name == "transformers" and "bert-ode" in data.tags
    assert data.license and data.license == data.license.lower() and " " not in data.license, data.license
    assert data.base_model == base_model, data.base_model
    if data.base_model is not None:
        validate_repo_id(data.base_model)
        assert not os.path.isabs(data.base_model)
    title = next(line for line in card.text.splitlines() if line.startswith("# "))
    assert title != f"# {folder.name}" and "/" not in title, title
    for section in (
        "## How it was made",
        "## Intended use",
        "## Limitations",
        "## How to load",
        "## Citation",
    ):
        assert section in card.text, section
    assert str(folder.resolve()) not in card.text  # no local path in the card
    assert not any(word in card.text for word in ("_examples |", "_seconds |", "_nfe |"))
    try:
        card.validate()
    except ValueError:
        raise
    except Exception:  # noqa: BLE001 - no route to the Hub here: the offline checks above stand
        pass
