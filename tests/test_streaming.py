"""True streaming (data.streaming with a dataset): blocks packed as training goes, one shard per process, and
a resume that continues with the very next block."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest
import torch
from conftest import tiny_pretraining

from bert_ode.data import load_builtin, train_wordpiece
from bert_ode.pretrain import pretrain
from bert_ode.pretrain.config import DataConfig
from bert_ode.pretrain.streaming import StreamingBlocks, open_stream


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """A local dataset of 400 short documents (more than the runs below read)."""
    text = " ".join(load_builtin("austen")[:100])
    documents = [text[start : start + 600] for start in range(0, 400 * 600, 600)]
    assert len(documents[-1]) == 600
    path = tmp_path_factory.mktemp("stream") / "dataset"
    datasets.Dataset.from_dict({"text": documents}).save_to_disk(str(path))
    return path


def _data(dataset_dir, **extra) -> DataConfig:
    return DataConfig(
        dataset=str(dataset_dir),
        streaming=True,
        seq_len=32,
        validation_documents=20,
        tokenizer_documents=60,
        **extra,
    )


def test_a_restored_stream_continues_with_the_next_block(dataset_dir):
    data = _data(dataset_dir)
    tokenizer = train_wordpiece(load_builtin("austen")[:3], vocab_size=300)
    stream = open_stream(data)
    first = StreamingBlocks(stream, tokenizer, 32, rank=0, world_size=1, skip=20)
    head = first.take(0, 7)
    state = first.state_dict()
    expected = first.take(7, 9)
    again = StreamingBlocks(stream, tokenizer, 32, rank=0, world_size=1, skip=20)
    again.load_state_dict(state)
    assert torch.equal(again.take(7, 9), expected)
    assert head.shape == (7, 32) and (head[:, 0] == tokenizer.cls_token_id).all()
    # Two shards read different documents.
    shard = StreamingBlocks(stream, tokenizer, 32, rank=1, world_size=2, skip=20)
    assert not torch.equal(shard.take(0, 7), head)


def _overrides(dataset_dir, output_dir, **extra) -> dict:
    streamed = {
        "data.dataset": str(dataset_dir),
        "data.streaming": True,
        "data.max_documents": 300,  # the dataset holds 400
        "data.validation_documents": 20,
        "data.tokenizer_documents": 60,
        "train.max_steps": 6,
        "train.save_every": 3,
        "train.report_to": [],
    }
    return tiny_pretraining(None, output_dir, **{**streamed, **extra})


def test_a_streamed_run_resumes_exactly_where_its_checkpoint_stood(dataset_dir, tmp_path, capfd):
    out = tmp_path / "run"
    whole = pretrain(None, _overrides(dataset_dir, out))
    assert "streamed" in capfd.readouterr().err
    # Back to the checkpoint at step 3, as if the run had been killed after it: the resumed run must read the
    # same blocks from there and end where the uninterrupted run ended.
    shutil.rmtree(out / "checkpoints" / "step-0000006")
    shutil.rmtree(out / "final")
    resumed = pretrain(None, _overrides(dataset_dir, out), resume=True)
    assert "resuming at step 3" in capfd.readouterr().err
    assert resumed.steps == whole.steps == 6
    assert resumed.last_loss == pytest.approx(whole.last_loss, rel=1e-6, abs=1e-6)
    assert resumed.val_loss == pytest.approx(whole.val_loss, rel=1e-6, abs=1e-6)


def test_a_two_process_streamed_run_reads_one_shard_each(dataset_dir, tmp_path):
    out = tmp_path / "ddp"
    worker = tmp_path / "worker.py"
    worker.write_text(
        textwrap.dedent(f"""
        import torch, torch.distributed as dist
        from bert_ode.pretrain import pretrain
        from bert_ode.pretrain.checkpointing import latest_checkpoint, load_training_state
        result = pretrain(None, {_overrides(dataset_dir, out)!r})
        checksum = sum(p.detach().double().pow(2).sum() for p in result.model.parameters()).item()
        with open({str(tmp_path)!r} + f"/rank-{{dist.get_rank()}}.txt", "w") as handle:
            handle.write(f"{{result.steps}} {{checksum!r}}")
        if dist.get_rank() == 0:
            streams = load_training_state(latest_checkpoint({str(out)!r}))["streams"]
            assert len(streams) == 2 and streams[0] != streams[1], streams
    """)
    )
    torchrun = Path(sys.executable).with_name("torchrun")
    rendezvous = ["--master_port", "0", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0"]
    completed = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", *rendezvous, str(worker)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    ranks = sorted(path.read_text().split() for path in tmp_path.glob("rank-*.txt"))
    assert len(ranks) == 2 and ranks[0] == ranks[1] and ranks[0][0] == "6"  # in sync
