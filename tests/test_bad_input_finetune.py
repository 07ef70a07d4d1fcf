"""Bad input to fine-tuning and evaluation (``bert-ode finetune`` / ``evaluate`` and ``bert_ode.finetune``):
one clear error naming the field or the data's problem, before any training."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error

from bert_ode.cli import main
from bert_ode.data.tasks import check_trainable, load_task
from bert_ode.finetune.config import FinetuneConfig, split_assignments


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("weight_decay", -1.0, r"weight_decay=-1\.0 is invalid; it must be >= 0"),
        ("warmup_ratio", 5.0, r"warmup_ratio=5\.0 is invalid; it must be in \[0, 1\]"),
        ("early_stopping_patience", -1, r"early_stopping_patience=-1 is invalid; it must be >= 1"),
        ("early_stopping_patience", 0, r"early_stopping_patience=0 is invalid"),
        ("report_to", ["bogus"], r"report_to: unknown tracker 'bogus'; allowed: none, tensorboard, wandb"),
    ],
)
def test_finetuning_values_out_of_range_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(checkpoint="unused", **{field: value})


def _local_task(tmp_path, rows: dict[str, list]) -> str:
    folder = tmp_path / "task"
    folder.mkdir()
    for split, labels in rows.items():
        lines = [
            json.dumps({"text": f"example {i} {label}", "label": label}) for i, label in enumerate(labels)
        ]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return str(folder)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"train": [0] * 6, "validation": [0, 1], "test": [0, 1]}, "has one class only"),
        ({"train": ["a", "b"] * 3, "validation": ["a", "b"], "test": ["a", "c"]}, r"test split .* \['c'\]"),
        ({"train": [0, 1] * 3, "validation": [0, 2], "test": [0, 1]}, r"validation split .* \[2\]"),
        (
            {"train": [0, "pos", 0, "pos"], "validation": [0, "pos"], "test": [0, "pos"]},
            "labels .* mix kinds",
        ),
    ],
)
def test_fine_tuning_data_a_classifier_cannot_learn_from_is_refused_before_training(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        check_trainable(load_task(_local_task(tmp_path, rows)))


def test_finetune_configs_check_types_and_ranges_on_construction_and_on_assignment():
    with pytest.raises(ValueError, match="config key 'seeds' must be a list, got 5"):
        FinetuneConfig(checkpoint="unused", seeds=5)
    with pytest.raises(ValueError, match="config key 'seeds' must be a list, got '012'"):
        FinetuneConfig(checkpoint="unused", seeds="012")
    config = FinetuneConfig(checkpoint="unused")
    with pytest.raises(ValueError, match=r"batch_size=0 is invalid; it must be >= 1"):
        config.batch_size = 0
    assert config.batch_size == 32  # the refused value was not kept
    config.learning_rate = 1  # an int where a float goes is lossless
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)


def test_set_reaches_the_fields_of_finetune_and_evaluate_and_the_model_at_load_time(capsys):
    fields, model = split_assignments(
        FinetuneConfig, {"learning_rate": 1e-4, "model.ode_method": "heun", "ode_steps": 2}
    )
    assert fields == {"learning_rate": 1e-4} and model == {"ode_method": "heun", "ode_steps": 2}
    assert main(["finetune", "unused", "--set", "learning_rate=0", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        "bert-ode finetune: error: learning_rate=0.0 is invalid; it must be > 0"
    )
    assert main(["evaluate", "unused", "--set", "batch_size=0", "--no-progress"]) == 2
    assert "batch_size=0 is invalid; it must be >= 1" in capsys.readouterr().err


def test_labels_mixing_numbers_and_strings_are_refused_naming_the_kinds(tmp_path, capsys):
    task = _local_task(tmp_path, {"train": [1, "1", 0, "0"] * 5, "validation": [0, 1], "test": [0, 1]})
    with pytest.raises(ValueError, match=r"mix kinds \(int, str\)"):
        load_task(task)
    code = main(["finetune", "unused", "--task", task, "--no-progress"])
    assert_one_line_error(capsys, code, 2, "mix kinds (int, str)")


def test_a_tokenizer_path_that_does_not_exist_is_not_found(tmp_path, capsys):
    missing = str(tmp_path / "nowhere" / "tokenizer")
    code = main(["finetune", "unused", "--tokenizer", missing, "--no-progress"])
    assert_one_line_error(capsys, code, 2, f"tokenizer from {missing!r}: not found")


def test_evaluate_refuses_a_head_whose_classes_have_other_names(tmp_path, capsys):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "example", "neg", "pos"]))
    head = tmp_path / "head"
    config = BertConfig(
        vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(head)
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(head)
    task = _local_task(
        tmp_path, {"train": ["neg", "pos"] * 4, "validation": ["neg", "pos"], "test": ["neg", "pos"]}
    )
    code = main(["evaluate", str(head), "--task", task, "--no-progress"])
    assert_one_line_error(capsys, code, 2, "['negative', 'positive']", "['neg', 'pos']")


def test_a_task_file_that_does_not_exist_is_not_found_rather_than_an_unknown_task(tmp_path, capsys):
    code = main(["finetune", "unused", "--task", "missing.csv", "--no-progress"])
    assert_one_line_error(capsys, code, 2, "task file 'missing.csv' not found")
    code = main(["finetune", "unused", "--task", "sst3", "--no-progress"])
    assert_one_line_error(capsys, code, 2, "unknown task 'sst3'", "bbc-news")


def test_a_bad_model_override_is_refused_before_the_task_is_tokenised(capsys, monkeypatch):
    import bert_ode.finetune.protocol as protocol

    def never(*args, **kwargs):
        raise AssertionError("the task was tokenised before the override was checked")

    monkeypatch.setattr(protocol, "tokenize_splits", never)
    code = main(["finetune", "unused", "--set", "model.ode_stpes=2", "--no-progress"])
    assert_one_line_error(capsys, code, 2, "unknown config field(s) ['ode_stpes']")
    code = main(["finetune", "unused", "--set", "model.ode_method=rk5", "--no-progress"])
    assert_one_line_error(capsys, code, 2, "ode_method='rk5'")


def _classifier(tmp_path):
    """A tiny fine-tuned-looking BERT classifier with its tokenizer, and a task for it."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "example", "neg", "pos"]))
    head = tmp_path / "head"
    config = BertConfig(
        vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=2,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(head)
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(head)
    task = _local_task(tmp_path, {"train": [0, 1] * 4, "validation": [0, 1], "test": [0, 1]})
    return head, task


def test_evaluate_refuses_weights_a_set_adds_unless_allowed(tmp_path, capsys):
    head, task = _classifier(tmp_path)
    out = tmp_path / "scores"
    args = ["evaluate", str(head), "--task", task, "--no-progress", "--output-dir", str(out)]
    code = main([*args, "--set", "model.ode_method=rk2-gated"])
    assert_one_line_error(
        capsys, code, 2, "add weights checkpoint", "the RK2 gates (4 tensors)", "--allow-new"
    )
    assert not out.exists()  # nothing written where it refused
    assert main([*args, "--set", "model.ode_method=heun"]) == 0  # a fixed scheme adds nothing: scored
    capsys.readouterr()
    assert main([*args, "--set", "model.ode_learned_step=block", "--allow-new-weights"]) == 0
    captured = capsys.readouterr()
    assert "untrained: the learned step sizes (2 tensors)" in captured.err
    assert "untrained" not in captured.out


def test_finetune_names_the_weights_its_set_adds(tmp_path, capsys):
    head, task = _classifier(tmp_path)
    args = ["finetune", str(head), "--task", task, "--no-progress", "--epochs", "1", "--seeds", "0"]
    code = main([*args, "--set", "model.ode_method=ab2-learned", "--output-dir", str(tmp_path / "ft")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [line for line in captured.err.splitlines() if "newly initialised" in line]
    assert lines == [
        "finetune: newly initialised, the checkpoint has no weights for them: the learned multistep "
        "coefficients (2 tensors) (trained from here with the rest)"
    ]


def test_a_csv_label_column_mixing_numbers_and_words_is_refused(tmp_path, capsys):
    folder = tmp_path / "csv-task"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        (folder / f"{split}.csv").write_text("text,label\na b,0\nc d,1\ne f,pos\ng h,0\ni j,1\n")
    out = tmp_path / "ft"
    code = main(["finetune", "unused", "--task", str(folder), "--no-progress", "--output-dir", str(out)])
    assert_one_line_error(
        capsys, code, 2, "label column 'label'", "mixes numbers ['0', '1'] and words ['pos']", "0..K-1"
    )
    assert not out.exists()
