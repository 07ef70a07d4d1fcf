"""Fine-tuning and evaluation: learning on the built-in task, BERT = euler BertOde through the same path,
GLUE-shaped local data, other ode_steps at evaluation, bad input, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_hub_ready_card
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

import bert_ode
from bert_ode.cli import main
from bert_ode.data.tasks import load_task
from bert_ode.finetune import FinetuneConfig, evaluate, finetune
from bert_ode.finetune.task_loading import load_model_for_task, tokenize_splits

TINY_MODEL = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=128,
)
QUICK = dict(progress=False, batch_size=16, max_seq_length=64)


@pytest.fixture(scope="module")
def tokenizer():
    """A small WordPiece tokenizer trained on the BBC training texts (about a second)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(
        load_task()["train"]["text"], trainers.WordPieceTrainer(vocab_size=2000, special_tokens=special)
    )
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


@pytest.fixture(scope="module")
def ode_checkpoint(tokenizer, tmp_path_factory):
    """A tiny, untrained BertOde MLM checkpoint (as pretraining saves one) with its tokenizer."""
    path = tmp_path_factory.mktemp("bertode")
    torch.manual_seed(0)
    config = bert_ode.BertOdeConfig(
        vocab_size=len(tokenizer), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **TINY_MODEL
    )
    bert_ode.BertOdeForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def bert_classifier(tokenizer, tmp_path_factory):
    """A tiny plain-transformers BertForSequenceClassification with a 5-label head (random weights)."""
    path = tmp_path_factory.mktemp("bert")
    torch.manual_seed(1)
    model = BertForSequenceClassification(BertConfig(vocab_size=len(tokenizer), num_labels=5, **TINY_MODEL))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_finetune_learns_builtin_task_and_evaluates_with_other_steps(ode_checkpoint, tmp_path):
    output = tmp_path / "run"
    results = finetune(
        FinetuneConfig(
            checkpoint=ode_checkpoint,
            seeds=[0],
            epochs=10,
            learning_rate=1e-3,
            max_train_examples=400,
            max_eval_examples=100,
            eval_ode_steps=[2],
            save_models=True,
            output_dir=str(output),
            report_to=["tensorboard"],
            **QUICK,
        )
    )
    run = results["runs"][0]
    # 5 balanced-ish topics: chance is 0.2, the majority class 0.26
    assert run["test"]["accuracy"] >= 0.4, run["selection_history"]
    # the selected checkpoint is the best on validation, never chosen by test
    assert run["validation"]["accuracy"] == pytest.approx(
        max(h["accuracy"] for h in run["selection_history"])
    )
    assert set(run["by_ode_steps"]) == {"1", "2"}
    assert run["by_ode_steps"]["2"]["test"]["nfe"] == 2 * run["by_ode_steps"]["1"]["test"]["nfe"] == 8
    on_disk = json.loads((output / "results.json").read_text())
    assert on_disk["summary"]["test"]["accuracy"]["median"] == run["test"]["accuracy"]
    table = (output / "results.md").read_text()
    assert "| 2 | accuracy |" in table and "## Per seed" in table
    assert list((output / "logs" / "seed-0").glob("events.out.tfevents.*"))  # report_to: tensorboard

    # the saved model has a card with what it scored, and its sequence length travels with its tokenizer
    from huggingface_hub import ModelCard

    card = ModelCard.load(output / "seed-0" / "README.md")
    assert_hub_ready_card(output / "seed-0", base_model=None)  # its source exists only here: no Hub id
    assert card.data.pipeline_tag == "text-classification" and card.data.metrics == ["accuracy", "macro_f1"]
    assert f"| test_accuracy | {run['test']['accuracy']:.4f} |" in card.text
    assert json.loads((output / "seed-0" / "tokenizer_config.json").read_text())["model_max_length"] == 64

    # evaluate the saved model with other step counts, through the same loading path (and its length: 64)
    evaluated = evaluate(str(output / "seed-0"), ode_steps=[1, 3], max_eval_examples=100, progress=False)
    assert evaluated["by_ode_steps"]["1"]["accuracy"] == pytest.approx(run["test"]["accuracy"])
    assert (
        evaluated["by_ode_steps"]["3"]["nfe"] == 12 and 0 <= evaluated["by_ode_steps"]["3"]["accuracy"] <= 1
    )


def test_plain_bert_and_converted_euler_bertode_predict_identically(bert_classifier, tokenizer, tmp_path):
    converted = tmp_path / "converted"
    bert_ode.BertOdeForSequenceClassification.from_bert(bert_classifier).save_pretrained(converted)
    tokenizer.save_pretrained(converted)
    task = load_task(max_eval_examples=40)
    exact = dict(return_predictions=True, progress=False, precision="fp32")  # the reference computes in fp32
    through_bert = evaluate(bert_classifier, task, **exact)["by_ode_steps"]["1"]
    through_ode = evaluate(str(converted), task, **exact)["by_ode_steps"]["1"]
    assert through_bert["predictions"] == through_ode["predictions"]
    np.testing.assert_allclose(through_bert["logits"], through_ode["logits"], atol=1e-5)

    # ... and both equal what transformers' own BertForSequenceClassification computes
    reference = BertForSequenceClassification.from_pretrained(bert_classifier).eval()
    encoded = tokenize_splits(task, tokenizer, 128, ["test"], progress=False)["test"]
    batch = tokenizer.pad(
        [{k: row[k] for k in ("input_ids", "token_type_ids", "attention_mask")} for row in encoded],
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = reference(**batch).logits.numpy()
    np.testing.assert_allclose(through_bert["logits"], logits, atol=1e-5)
    assert through_bert["predictions"] == logits.argmax(-1).tolist()


def test_glue_shaped_local_data_classification_and_regression(ode_checkpoint, tmp_path):
    words = ["good", "great", "bad", "awful"]
    for split, n in (("train", 48), ("validation", 16)):
        pd.DataFrame(
            {
                "sentence": [f"{words[i % 4]} film {i}" for i in range(n)],
                "label": [int(i % 4 < 2) for i in range(n)],
                "idx": range(n),
            }
        ).to_parquet(tmp_path / f"{split}.parquet")
    results = finetune(
        checkpoint=ode_checkpoint,
        task="sst2",
        data_dir=str(tmp_path),
        seeds=[0, 1],
        epochs=1,
        ode_overrides={"ode_method": "heun"},
        output_dir=str(tmp_path / "sst2-results"),
        **QUICK,
    )
    assert results["task"]["sizes"] == {"train": 43, "validation": 5, "test": 16}
    assert results["model"]["ode_method"] == "heun" and results["runs"][0]["test"]["nfe"] == 8
    assert results["summary"]["test"]["accuracy"]["n"] == 2

    stsb = tmp_path / "stsb"
    stsb.mkdir()
    for split, n in (("train", 40), ("validation", 10)):
        (stsb / f"{split}.jsonl").write_text(
            "".join(
                json.dumps(
                    {"sentence1": f"a {i}", "sentence2": f"b {i % 3}", "label": (i % 6) * 1.0, "idx": i}
                )
                + "\n"
                for i in range(n)
            )
        )
    results = finetune(
        checkpoint=ode_checkpoint,
        task="stsb",
        data_dir=str(tmp_path),
        seeds=[0],
        epochs=1,
        output_dir=str(tmp_path / "stsb-results"),
        **QUICK,
    )
    assert results["task"]["regression"] and results["main_metric"] == "pearson"
    assert set(results["runs"][0]["test"]) >= {"pearson", "spearman", "nfe"}


def test_trainer_skips_solver_outputs_at_evaluation(ode_checkpoint, tokenizer, tmp_path):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    task = load_task(max_train_examples=8, max_eval_examples=8)
    model = load_model_for_task(ode_checkpoint, task.spec)
    encoded = tokenize_splits(task, tokenizer, 32, ["test"], progress=False)["test"]
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path / "trainer"), report_to="none", use_cpu=True, disable_tqdm=True
        ),
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    output = trainer.predict(encoded)
    # nfe and solver_stats are config.keys_to_ignore_at_inference: the predictions are the logits alone
    assert isinstance(output.predictions, np.ndarray) and output.predictions.shape == (8, 5)


def test_bad_input_errors(bert_classifier, ode_checkpoint, tmp_path):
    path = tmp_path / "binary.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}).to_csv(
        path, index=False
    )
    binary = load_task(str(path))
    with pytest.raises(ValueError, match="head with 5 label\\(s\\) but task 'binary' has 2"):
        load_model_for_task(bert_classifier, binary.spec)
    model = load_model_for_task(bert_classifier, binary.spec, reinit_head=True)
    assert model.classifier.out_features == 2 and model.config.num_labels == 2
    with pytest.raises(ValueError, match="has no fine-tuned sequence-classification head"):
        evaluate(ode_checkpoint, progress=False)
    with pytest.raises(ValueError, match="unknown task 'sst3'"):
        finetune(checkpoint=ode_checkpoint, task="sst3", **QUICK)
    with pytest.raises(ValueError, match="label column 'missing' not found"):
        finetune(checkpoint=ode_checkpoint, task=str(path), label_column="missing", **QUICK)
    with pytest.raises(ValueError, match="epochs"):
        FinetuneConfig(checkpoint=ode_checkpoint, epochs=0)
    with pytest.raises(ValueError, match="eval_ode_steps"):
        FinetuneConfig(checkpoint=ode_checkpoint, eval_ode_steps=[0])


def test_cli_finetune_and_evaluate(ode_checkpoint, tmp_path, capsys):
    output = tmp_path / "cli"
    code = main(
        [
            "finetune",
            ode_checkpoint,
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--max-train-examples",
            "64",
            "--max-eval-examples",
            "32",
            "--max-seq-length",
            "32",
            "--eval-ode-steps",
            "2",
            "--save-models",
            "--output-dir",
            str(output),
            "--no-progress",
        ]
    )
    assert code == 0 and (output / "results.md").is_file()
    assert "ode_steps=2: test accuracy median" in capsys.readouterr().out
    code = main(
        [
            "evaluate",
            str(output / "seed-0"),
            "--ode-steps",
            "1",
            "2",
            "--max-eval-examples",
            "32",
            "--no-progress",
            "--output-dir",
            str(tmp_path / "eval"),
        ]
    )
    assert code == 0 and "ode_steps=2: test accuracy" in capsys.readouterr().out
    assert main(["finetune", ode_checkpoint, "--task", "nope", "--no-progress"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_devices_come_from_accelerate_apple_mps_included(monkeypatch):
    from bert_ode.utils import device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not device.has_accelerator_device() or torch.backends.mps.is_available()
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device.has_accelerator_device()  # make_accelerator then lets accelerate pick the MPS device
