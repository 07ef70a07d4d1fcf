"""Pretraining: configuration errors, a smoke run, checkpoints, kill-and-resume, and a 2-process DDP run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import assert_hub_ready_card, tiny_pretraining
from huggingface_hub import ModelCard
from transformers import AutoModelForMaskedLM, AutoTokenizer

from bert_ode import BertOdeForMaskedLM
from bert_ode.cli import main as cli_main
from bert_ode.data import load_builtin
from bert_ode.pretrain import latest_checkpoint, load_config, pretrain
from bert_ode.pretrain.checkpointing import checkpoint_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "austen.txt"
    path.write_text("\n\n".join(load_builtin("austen")[:12]), encoding="utf-8")
    return path


def tiny_overrides(corpus_file, output_dir, **extra) -> dict:
    # Longer than conftest's tiny run: 40 steps with evaluations, so that learning and resuming show.
    return tiny_pretraining(
        corpus_file,
        output_dir,
        **{
            "data.validation_fraction": 0.05,
            "tokenizer.vocab_size": 400,
            "train.batch_size": 16,
            "train.max_steps": 40,
            "train.lr": 1e-2,
            "train.eval_every": 20,
            "train.eval_blocks": 64,
            "train.save_every": 10,
            "train.log_every": 5,
            **extra,
        },
    )


# --- configuration ------------------------------------------------------------------------------------------


def test_presets_load_and_any_model_field_is_one_override_away():
    for preset in ("smoke", "cpu", "gpu"):
        config = load_config(preset)
        assert config.model["norm_position"] == "pre" and config.model["hidden_dropout_prob"] == 0.0
    config = load_config("smoke", {"model.ode_method": "rk4", "model.ode_steps": 2, "train.lr": 1})
    assert config.model["ode_method"] == "rk4" and config.model["ode_steps"] == 2
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)


def test_config_typos_and_bad_values_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config key 'train\.lrr'"):
        load_config("smoke", {"train.lrr": 1e-3})
    with pytest.raises(ValueError, match=r"unknown config key 'model\.hiden_size'"):
        load_config(None, {"model.hiden_size": 64})
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"trian": {"lr": 1e-3}}))
    with pytest.raises(ValueError, match="unknown config key 'trian'"):
        load_config(tmp_path / "typo.yaml")
    (tmp_path / "typo2.yaml").write_text(yaml.safe_dump({"data": {"seq_length": 64}}))
    with pytest.raises(ValueError, match=r"unknown config key 'data\.seq_length'"):
        load_config(tmp_path / "typo2.yaml")
    with pytest.raises(ValueError, match=r"data\.seq_len=256 exceeds model\.max_position_embeddings=64"):
        load_config("smoke", {"data.seq_len": 256})
    with pytest.raises(ValueError, match="ode_method"):
        load_config("smoke", {"model.ode_method": "rk5"})
    with pytest.raises(ValueError, match=r"train\.batch_size' must be an integer"):
        load_config("smoke", {"train.batch_size": "many"})
    with pytest.raises(FileNotFoundError, match="presets: cpu, gpu, smoke"):
        load_config("no-such-preset")


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert cli_main(["pretrain", "--config", "smoke", "--set", "train.lrr=1"]) == 2
    assert "unknown config key 'train.lrr'" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    code = cli_main(
        [
            "pretrain",
            "--config",
            "smoke",
            "--output-dir",
            str(tmp_path / "run"),
            "--set",
            f"data.files=[{empty}]",
        ]
    )
    assert code == 2 and "empty" in capsys.readouterr().err


# --- a smoke run and its checkpoints ------------------------------------------------------------------------


def test_smoke_run_lowers_the_loss_and_writes_loadable_checkpoints(tmp_path, corpus_file):
    out = tmp_path / "run"
    result = pretrain(None, tiny_overrides(corpus_file, out, **{"model.ode_method": "heun"}))
    assert result.steps == 40 and result.tokens == 40 * 16 * 32
    rows = (out / "log.csv").read_text().splitlines()
    first_loss = float(rows[1].split(",")[4])
    assert result.train_loss < first_loss - 0.5  # from ~log(400) = 6 towards unigram statistics and below
    assert result.val_loss is not None and result.val_ppl == pytest.approx(
        torch.tensor(result.val_loss).exp().item()
    )
    assert list((out / "tensorboard").iterdir())
    # The final model and every checkpoint are self-contained: model, config and tokenizer.
    for folder in (result.final_dir, latest_checkpoint(out)):
        model = AutoModelForMaskedLM.from_pretrained(folder)
        assert isinstance(model, BertOdeForMaskedLM) and model.config.ode_method == "heun"
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert len(tokenizer) == model.config.vocab_size == 400
    assert torch.equal(
        model.bert.embeddings.word_embeddings.weight, result.model.bert.embeddings.word_embeddings.weight
    )
    assert len(list((out / "checkpoints").iterdir())) == 2  # keep_checkpoints
    card = ModelCard.load(result.final_dir / "README.md")
    assert_hub_ready_card(result.final_dir, base_model=None)
    assert card.data.pipeline_tag == "fill-mask" and "custom_code" in card.data.tags
    assert f"{result.tokens:,} tokens" in card.text and f"{result.val_loss:.4f}" in card.text
    with pytest.raises(ValueError, match="already holds checkpoints"):
        pretrain(None, tiny_overrides(corpus_file, out))


def test_half_written_checkpoints_are_never_the_latest(tmp_path, corpus_file):
    out = tmp_path / "run"
    pretrain(None, tiny_overrides(corpus_file, out, **{"train.max_steps": 10}))
    good = latest_checkpoint(out)
    assert good == checkpoint_dir(out, 10)
    # A staging folder left by a crash, and a later step folder without its completion marker.
    shutil.copytree(good, out / "checkpoints" / ".staging-step-0000020-999")
    partial = checkpoint_dir(out, 30)
    shutil.copytree(good, partial)
    (partial / "COMPLETE").unlink()
    assert latest_checkpoint(out) == good
    result = pretrain(None, tiny_overrides(corpus_file, out, **{"train.max_steps": 12}), resume=True)
    assert result.steps == 12


def test_sequence_longer_than_positions_and_tiny_corpus(tmp_path, corpus_file):
    with pytest.raises(ValueError, match="exceeds model.max_position_embeddings"):
        pretrain(None, tiny_overrides(corpus_file, tmp_path / "a", **{"data.seq_len": 64}))
    short = tmp_path / "short"
    short.mkdir()
    for i in range(3):
        (short / f"{i}.txt").write_text(f"Too short a corpus, part {i}.")
    with pytest.raises(ValueError, match="too small"):
        pretrain(None, tiny_overrides(short, tmp_path / "b"))


# --- kill and resume ----------------------------------------------------------------------------------------


def _run_script(overrides: dict, resume: bool) -> str:
    return textwrap.dedent(f"""
        import json, sys
        from bert_ode.pretrain import pretrain
        result = pretrain(None, {overrides!r}, resume={resume})
        print(json.dumps({{"steps": result.steps, "last_loss": result.last_loss,
                          "val_loss": result.val_loss}}))
    """)


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, corpus_file):
    import json

    steps = {"train.max_steps": 60, "train.save_every": 10, "train.eval_every": 30}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "killed"
    script = _run_script(tiny_overrides(corpus_file, out, **steps), resume=False)
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 300  # generous: a loaded CI machine is slow
    while time.time() < deadline and process.poll() is None:
        latest = latest_checkpoint(out)
        if latest is not None and latest.name >= "step-0000020":
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be killed: {process.communicate()}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = int(latest_checkpoint(out).name.split("-")[1])
    assert 20 <= killed_at < 60

    # The uninterrupted reference: a fresh subprocess like the others (same threads and kernels) that trains
    # its own tokenizer, so equal losses also show that two processes train the same tokenizer.
    reference_overrides = tiny_overrides(corpus_file, tmp_path / "reference", **steps)
    completed = subprocess.run(
        [sys.executable, "-c", _run_script(reference_overrides, False)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    reference = json.loads(completed.stdout.strip().splitlines()[-1])

    resumed = subprocess.run(
        [sys.executable, "-c", _run_script(tiny_overrides(corpus_file, out, **steps), True)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at step {killed_at}" in resumed.stderr
    outcome = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert outcome["steps"] == reference["steps"] == 60
    assert outcome["last_loss"] == pytest.approx(reference["last_loss"], rel=1e-4, abs=1e-4)
    assert outcome["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-4, abs=1e-4)
    # The log holds every step once, the resumed rows continuing where the checkpoint stood.
    logged = [int(line.split(",")[0]) for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert logged == sorted(set(logged)) and logged[-1] == 60


# --- data-parallel ------------------------------------------------------------------------------------------


def _two_process_worker(tmp_path, corpus_file) -> Path:
    """A script that pretrains 12 steps and writes its rank, world size, steps and a weight checksum."""
    overrides = tiny_overrides(
        corpus_file, tmp_path / "ddp", **{"train.max_steps": 12, "train.batch_size": 8}
    )
    worker = tmp_path / "worker.py"
    worker.write_text(
        textwrap.dedent(f"""
        import torch, torch.distributed as dist
        from bert_ode.pretrain import pretrain
        result = pretrain(None, {overrides!r})
        checksum = sum(p.detach().double().pow(2).sum() for p in result.model.parameters()).item()
        # One file per rank: the two processes' stdout lines can interleave in the launcher's forwarding.
        with open({str(tmp_path)!r} + f"/rank-{{dist.get_rank()}}.txt", "w") as handle:
            handle.write(f"RANK {{dist.get_rank()}} OF {{dist.get_world_size()}} STEPS {{result.steps}} "
                         f"CHECKSUM {{checksum!r}}")
    """)
    )
    return worker


def _assert_ranks_in_sync(tmp_path, completed):
    assert completed.returncode == 0, completed.stderr[-4000:]
    lines = sorted(path.read_text() for path in tmp_path.glob("rank-*.txt"))
    assert [line.split()[1:4] for line in lines] == [["0", "OF", "2"], ["1", "OF", "2"]]
    checksums = [line.split("CHECKSUM ")[1] for line in lines]
    assert checksums[0] == checksums[1]
    assert all(line.split()[5] == "12" for line in lines)
    # Each of the 2 processes took batch_size blocks a step: the global batch is 16.
    assert (tmp_path / "ddp" / "final" / "model.safetensors").is_file()
    assert "2 process(es)" in completed.stderr


def test_two_process_ddp_run_keeps_ranks_in_sync(tmp_path, corpus_file):
    worker = _two_process_worker(tmp_path, corpus_file)
    torchrun = Path(sys.executable).with_name("torchrun")
    rendezvous = ["--master_port", "0", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0"]
    completed = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", *rendezvous, str(worker)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    _assert_ranks_in_sync(tmp_path, completed)


def test_two_process_run_through_accelerate_launch(tmp_path, corpus_file):
    # The README's multi-process command, on CPU: accelerate starts the processes (gloo backend).
    worker = _two_process_worker(tmp_path, corpus_file)
    accelerate = Path(sys.executable).with_name("accelerate")
    completed = subprocess.run(
        [
            str(accelerate),
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            "0",
            str(worker),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"},
    )
    _assert_ranks_in_sync(tmp_path, completed)


def test_a_locked_output_folder_refuses_every_rank_of_a_two_process_run(tmp_path, corpus_file):
    import socket

    from bert_ode.pretrain.run_lock import LOCK_FILE

    worker = _two_process_worker(tmp_path, corpus_file)
    (tmp_path / "ddp").mkdir()
    (tmp_path / "ddp" / LOCK_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a live owner
    torchrun = Path(sys.executable).with_name("torchrun")
    rendezvous = ["--master_port", "0", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0"]
    completed = subprocess.run(  # a rank left waiting at a barrier would run into the timeout
        [str(torchrun), "--nproc_per_node", "2", *rendezvous, str(worker)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode != 0
    assert completed.stderr.count("is in use by another run") >= 2, completed.stderr[-3000:]
    assert not list(tmp_path.glob("rank-*.txt"))
