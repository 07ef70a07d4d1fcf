"""Downstream tasks: the built-in BBC News task, GLUE on local GLUE-shaped files, local CSV/JSONL, bad
input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bert_ode.data.tasks import GLUE_TASKS, load_task


def _sst2_frame(n, seed=0):
    words = ["good", "great", "bad", "awful", "fine", "dull"]
    return pd.DataFrame(
        {
            "sentence": [f"{words[(i + seed) % 6]} movie number {i}" for i in range(n)],
            "label": [int(words[(i + seed) % 6] in ("good", "great", "fine")) for i in range(n)],
            "idx": range(n),
        }
    )


def test_builtin_bbc_news_task_is_deterministic_and_stratified():
    task = load_task()
    assert task.spec.name == "bbc-news" and task.spec.num_labels == 5 and not task.spec.is_pair
    assert task.spec.label_names == ("business", "entertainment", "politics", "sports", "tech")
    sizes = task.sizes()
    # 2225 articles, 100 of them repeats of others: dropped before splitting, so no test article is seen in
    # training
    assert sum(sizes.values()) == 2125 and sizes["validation"] > 200 and sizes["test"] > 200
    texts = {split: set(task[split]["text"]) for split in sizes}
    assert not texts["train"] & texts["test"] and not texts["validation"] & texts["test"]
    for split in sizes:  # stratified: every class in every split
        assert set(task[split]["label"]) == set(range(5))
    again = load_task(max_train_examples=50, max_eval_examples=20)
    assert again.sizes() == {"train": 50, "validation": 20, "test": 20}
    assert load_task(max_train_examples=50, max_eval_examples=20)["test"]["text"] == again["test"]["text"]


def test_glue_sst2_from_local_parquet(tmp_path):
    _sst2_frame(60).to_parquet(tmp_path / "train.parquet")
    _sst2_frame(12, seed=1).to_parquet(tmp_path / "validation.parquet")
    task = load_task("SST-2", data_dir=tmp_path)
    assert task.spec == GLUE_TASKS["sst2"] and task.spec.metrics == ("accuracy",)
    # GLUE's test labels are hidden: the official validation split is the test set, selection data comes from
    # train
    assert task["test"]["text"] == _sst2_frame(12, seed=1)["sentence"].tolist()
    assert task.sizes() == {"train": 54, "validation": 6, "test": 12}
    assert not set(task["validation"]["text"]) & set(task["train"]["text"])


def test_glue_mrpc_hub_layout_jsonl_and_stsb_csv(tmp_path):
    mrpc = tmp_path / "mrpc"
    mrpc.mkdir()
    rows = [{"sentence1": f"a {i}", "sentence2": f"b {i}", "label": i % 2, "idx": i} for i in range(20)]
    for name, part in (
        ("train-00000-of-00001.jsonl", rows),
        ("validation-00000-of-00001.jsonl", rows[:6]),
        ("test-00000-of-00001.jsonl", [{**r, "label": -1} for r in rows[:4]]),
    ):
        (mrpc / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    task = load_task("mrpc", data_dir=tmp_path)  # the Hub layout: <data_dir>/<config>/<split>-*.jsonl
    assert task.spec.is_pair and task.spec.metrics == ("f1", "accuracy")
    assert task["test"]["text_pair"] == [f"b {i}" for i in range(6)]

    pd.DataFrame(
        {
            "sentence1": [f"s {i}" for i in range(20)],
            "sentence2": [f"t {i}" for i in range(20)],
            "label": [i / 4 for i in range(20)],
        }
    ).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"sentence1": ["x", "y"], "sentence2": ["z", "w"], "label": [0.5, 4.2]}).to_csv(
        tmp_path / "validation.csv", index=False
    )
    stsb = load_task("stsb", data_dir=tmp_path)
    assert stsb.spec.is_regression and stsb.spec.metrics == ("pearson", "spearman")
    assert stsb["test"]["label"] == [0.5, 4.2]


def test_glue_mnli_uses_validation_matched(tmp_path):
    frame = pd.DataFrame(
        {"premise": [f"p {i}" for i in range(12)], "hypothesis": ["h"] * 12, "label": [0, 1, 2] * 4}
    )
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame[:3].to_csv(tmp_path / "validation_matched.csv", index=False)
    frame[3:5].to_csv(tmp_path / "validation_mismatched.csv", index=False)
    task = load_task("mnli", data_dir=tmp_path)
    assert task["test"]["text"] == ["p 0", "p 1", "p 2"] and task.spec.num_labels == 3


def test_local_csv_with_string_labels_and_pair_column(tmp_path):
    path = tmp_path / "mytask.csv"
    pd.DataFrame(
        {
            "question": [f"q{i}" for i in range(40)],
            "passage": [f"p{i}" for i in range(40)],
            "answer": ["yes", "no"] * 20,
        }
    ).to_csv(path, index=False)
    task = load_task(str(path), text_column="question", text_pair_column="passage", label_column="answer")
    assert task.spec.name == "mytask" and task.spec.label_names == ("no", "yes") and task.spec.is_pair
    assert sum(task.sizes().values()) == 40 and task.sizes()["test"] == 4
    assert set(task["train"]["label"]) == {0, 1}


def test_local_jsonl_directory_with_train_and_test(tmp_path):
    for split, n in (("train", 30), ("test", 6)):
        (tmp_path / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": f"{split} {i}", "label": i % 3}) + "\n" for i in range(n))
        )
    task = load_task("local", data_dir=tmp_path)
    assert task.sizes() == {"train": 27, "validation": 3, "test": 6} and task.spec.num_labels == 3
    assert task.spec.metrics == ("accuracy", "macro_f1")


def test_bad_input_gives_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'glue-sst3'"):
        load_task("glue-sst3")
    path = tmp_path / "data.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "target": [0, 1, 0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="label column 'label' not found.*target"):
        load_task(str(path))
    with pytest.raises(ValueError, match="text column 'body' not found"):
        load_task(str(path), text_column="body", label_column="target")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(ValueError, match="empty"):
        load_task(str(empty))
    _sst2_frame(20).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(ValueError, match="needs a train file and a validation file"):
        load_task("sst2", data_dir=tmp_path)
    bad = _sst2_frame(6)
    bad["label"] = [0, 1, 2, 0, 1, 2]
    bad.to_csv(tmp_path / "validation.csv", index=False)
    with pytest.raises(ValueError, match="2 classes .* label\\(s\\) \\[2\\]"):
        load_task("sst2", data_dir=tmp_path)
    with pytest.raises(ValueError, match="label column 'label' not found"):
        pd.DataFrame({"sentence": ["a"] * 4, "y": [0] * 4}).to_csv(tmp_path / "train.csv", index=False)
        load_task("sst2", data_dir=tmp_path)


def _rotten_tomatoes_file(tmp_path, movies=30, reviews_per_movie=6):
    import bz2

    rows = []
    for movie in range(movies):
        rows.append(("plot", f"The plot of film {movie}: a hero leaves home.", f"Film {movie}", True))
        for review in range(reviews_per_movie):
            fresh = (movie + review) % 3 != 0
            word = "wonderful" if fresh else "tedious"
            rows.append(
                (
                    "fresh" if fresh else "rotten",
                    f"A {word} film, take {movie}-{review}.",
                    f"Film {movie}",
                    True,
                )
            )
    rows.append(("fresh", "A wonderful film, take 0-1.", "Film 0", True))  # a repeat: one copy is kept
    rows.append(("fresh", "Both ways.", "Film 1", True))  # the same text with both labels: dropped
    rows.append(("rotten", "Both ways.", "Film 2", True))
    frame = pd.DataFrame(rows, columns=["category", "text", "movie_name", "has_plot_and_reviews"])
    path = tmp_path / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "wt", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)
    return path


def test_rotten_tomatoes_is_split_by_movie_without_plots_repeats_or_ambiguous_texts(tmp_path):
    from bert_ode.data.sentiment import read_reviews

    path = _rotten_tomatoes_file(tmp_path)
    task = load_task("rotten-tomatoes", data_dir=tmp_path)
    assert task.spec.name == "rotten-tomatoes" and task.spec.label_names == ("rotten", "fresh")
    assert task.spec.metrics == ("accuracy", "macro_f1")
    assert sum(task.sizes().values()) == 30 * 6  # 30 plots, the repeat and both "Both ways." out
    reviews = read_reviews(path)
    movie_of = dict(zip(reviews["text"], reviews["movie"], strict=True))
    movies = {split: {movie_of[text] for text in task[split]["text"]} for split in task.sizes()}
    assert len(movies["test"]) == 3 and len(movies["validation"]) == 3 and len(movies["train"]) == 24
    assert not movies["train"] & movies["test"] and not movies["train"] & movies["validation"]
    for split in task.sizes():  # labels as the file has them: fresh 1, rotten 0
        for text, label in zip(task[split]["text"], task[split]["label"], strict=True):
            assert label == int("wonderful" in text)
    again = load_task("rotten-tomatoes", data_dir=path)  # the file itself is accepted too
    assert again["test"]["text"] == task["test"]["text"]
    other = load_task("rotten-tomatoes", data_dir=tmp_path, split_seed=1)
    assert {movie_of[t] for t in other["test"]["text"]} != movies["test"]


def test_rotten_tomatoes_without_its_file_names_what_to_pass(tmp_path):
    with pytest.raises(
        ValueError, match=r"no rotten_tomatoes_corpus_full.csv.bz2 at .*; data_dir= must name"
    ):
        load_task("rotten-tomatoes", data_dir=tmp_path)
    (tmp_path / "rotten_tomatoes_corpus_full.csv.bz2").write_bytes(b"not bz2")
    with pytest.raises(ValueError, match="cannot read"):
        load_task("rotten-tomatoes", data_dir=tmp_path)
