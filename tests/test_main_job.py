"""The main job (`make run` = ``bert-ode compare --preset warm-start``): its preset and the BERT it starts
from, shipped in the package."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoTokenizer

from bert_ode import BertOdeForMaskedLM
from bert_ode.study.config import load_study


def test_the_main_job_converts_the_shipped_bert_and_pretrains_nothing_from_scratch():
    study = load_study("warm-start")
    assert study.variants == [] and study.warm_start.checkpoint == "tiny-bert"
    names = [variant.name for variant in study.warm_start.variants]
    assert names[0] == "bert" and study.warm_start.variants[0].model == {}  # the reference: BERT itself
    assert len(study.seeds) >= 2 and study.precision == "fp32"  # verdicts need a seed spread
    assert study.warm_start.continue_tokens >= 100_000


def test_the_shipped_bert_is_past_the_word_frequency_plateau_and_loads_as_a_masked_lm():
    path = Path(load_study("warm-start").warm_start.source())
    summary = json.loads((path / "training_summary.json").read_text())
    # The study's rule for any verdict: the reference at least 1 nat below the unigram entropy.
    assert summary["val_loss"] <= summary["unigram_entropy"] - 1.0
    log = (path / "pretraining_log.csv").read_text().splitlines()
    assert log[0].startswith("step,tokens") and int(log[-1].split(",")[1]) >= summary["tokens"] - 4096
    model = BertOdeForMaskedLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.ode_method == "euler" and model.config.vocab_size == len(tokenizer)
    # Its MLM head is trained: a masked function word in plain prose is among its 5 most likely tokens.
    text = f"she was sure that he would come back {tokenizer.mask_token} see her again."
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits[0, batch["input_ids"][0].tolist().index(tokenizer.mask_token_id)]
    assert tokenizer.convert_tokens_to_ids("to") in logits.topk(5).indices.tolist()
