"""The transformers features the README's table lists as working with BertOde, each tried here: pipelines,
layer-level gradient checkpointing, resizing the vocabulary. (Remote code per head: test_save_load; export and
compile: test_compile; the attention switch and output_attentions: test_model_behaviour; Trainer:
test_model_behaviour and test_finetune.)"""

from __future__ import annotations

import pytest
import torch
from conftest import random_batch, tiny_ode_config
from transformers import pipeline

import bert_ode
from bert_ode.data import train_wordpiece


def _saved(tmp_path, model_class, **overrides):
    """A tiny model of ``model_class`` saved with a tokenizer of its vocabulary size."""
    torch.manual_seed(0)
    model = model_class(tiny_ode_config(ode_method="heun", **overrides)).eval()
    words = [f"w{i}" for i in range(model.config.vocab_size)] + ["the cat sat"]
    tokenizer = train_wordpiece(words, vocab_size=model.config.vocab_size, min_frequency=1)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return model, tokenizer


def test_fill_mask_and_text_classification_pipelines(tmp_path):
    mlm, tokenizer = _saved(tmp_path / "mlm", bert_ode.BertOdeForMaskedLM)
    filled = pipeline("fill-mask", model=str(tmp_path / "mlm"))(f"the {tokenizer.mask_token} sat", top_k=3)
    assert len(filled) == 3 and all(0 <= guess["score"] <= 1 for guess in filled)
    with torch.no_grad():  # the pipeline's best guess is the model's own argmax at the mask
        encoded = tokenizer(f"the {tokenizer.mask_token} sat", return_tensors="pt")
        logits = mlm(**encoded).logits[0, encoded["input_ids"][0].tolist().index(tokenizer.mask_token_id)]
    assert filled[0]["token"] == int(logits.argmax())
    _saved(tmp_path / "cls", bert_ode.BertOdeForSequenceClassification, num_labels=3)
    (labels,) = pipeline("text-classification", model=str(tmp_path / "cls"), top_k=None)(["the cat sat"])
    assert len(labels) == 3 and abs(sum(label["score"] for label in labels) - 1) < 1e-5


def test_layer_gradient_checkpointing_keeps_the_gradients():
    torch.manual_seed(0)
    config = tiny_ode_config(ode_method="rk4", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = bert_ode.BertOdeForMaskedLM(config).train()
    batch = random_batch()
    labels = batch["input_ids"].clone()

    def gradients():
        model.zero_grad()
        model(**batch, labels=labels).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    plain = gradients()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-6)
    model.gradient_checkpointing_disable()
    with pytest.warns(FutureWarning):  # the older name, deprecated by transformers 5.25, still works
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    again = gradients()
    for name in plain:
        torch.testing.assert_close(again[name], plain[name], rtol=1e-5, atol=1e-6)


def test_resize_token_embeddings_resizes_the_tied_output():
    model = bert_ode.BertOdeForMaskedLM(tiny_ode_config())
    model.resize_token_embeddings(120)
    assert model.config.vocab_size == 120
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model(input_ids=torch.tensor([[1, 119, 3]])).logits.shape == (1, 3, 120)
