"""Run folders under faults: one run at a time (a live lock refuses, a stale one is taken over), and the
staging folders of killed checkpoint writes are removed by the next run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from conftest import tiny_pretraining, write_austen

from bert_ode.pretrain import latest_checkpoint, pretrain
from bert_ode.pretrain.run_lock import LOCK_FILE


def _overrides(tmp_path, **extra) -> dict:
    return tiny_pretraining(write_austen(tmp_path / "austen.txt"), tmp_path / "run", **extra)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    other = os.getppid()  # a live process that is not this one
    (run / LOCK_FILE).write_text(f"{socket.gethostname()} {other}\n")
    with pytest.raises(ValueError, match=rf"run is in use by another run \(process {other} on "):
        pretrain(None, _overrides(tmp_path))
    assert not (run / "checkpoints").exists()  # nothing was written
    assert (run / LOCK_FILE).read_text().split()[1] == str(other)  # the owner's lock is left alone


def test_a_stale_lock_is_taken_over_and_released_at_the_end(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(f"{socket.gethostname()} {_dead_pid()}\n")
    result = pretrain(None, _overrides(tmp_path))
    assert result.steps == 4 and not (run / LOCK_FILE).exists()


def test_staging_folders_of_killed_writes_are_removed_by_the_resumed_run(tmp_path):
    pretrain(None, _overrides(tmp_path))
    run = tmp_path / "run"
    litter = [run / "checkpoints" / ".staging-step-0000006-4242", run / ".staging-final-4242"]
    for folder in litter:
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"half written")
    result = pretrain(None, _overrides(tmp_path, **{"train.max_steps": 6}), resume=True)
    assert result.steps == 6 and latest_checkpoint(run).name == "step-0000006"
    assert not any(folder.exists() for folder in litter)
    assert not list(run.rglob(".staging-*"))


def test_the_saved_tokenizer_truncates_to_the_models_positions(tmp_path):
    from transformers import AutoTokenizer

    result = pretrain(None, _overrides(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(result.final_dir)
    assert tokenizer.model_max_length == 32  # model.max_position_embeddings
    encoded = tokenizer("word " * 500, truncation=True)
    assert len(encoded["input_ids"]) == 32


# --- damaged checkpoints, data cache and a full disk --------------------------------------------------------


def _finished_run(tmp_path, **extra):
    """A 4-step run with checkpoints at steps 2 and 4 (keep 2), and the result of resuming it untouched."""
    overrides = _overrides(tmp_path, **{"train.keep_checkpoints": 2, **extra})
    pretrain(None, overrides)
    return overrides


def _corrupt(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a write cut off half way


@pytest.mark.parametrize("damaged", ["model.safetensors", "training_state.pt", "CHECKSUMS"])
def test_resume_passes_over_a_damaged_latest_checkpoint_to_the_previous_one(tmp_path, capfd, damaged):
    overrides = _finished_run(tmp_path)
    latest = latest_checkpoint(tmp_path / "run")
    assert latest.name == "step-0000004" and (latest / "CHECKSUMS").is_file()
    if damaged == "CHECKSUMS":
        (latest / "CHECKSUMS").write_text("{not json")
    else:
        _corrupt(latest / damaged)
    capfd.readouterr()
    result = pretrain(None, overrides, resume=True)
    err = capfd.readouterr().err
    assert f"checkpoint step-0000004 is damaged ({damaged}" in err
    assert "resuming at step 2" in err  # the previous checkpoint, whose steps are trained again
    assert result.steps == 4 and (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_resume_with_every_checkpoint_damaged_is_one_clear_error(tmp_path):
    overrides = _finished_run(tmp_path, **{"train.report_to": []})
    assert not (tmp_path / "run" / "tensorboard").exists()  # no trackers asked for: the CSV log only
    for checkpoint in (tmp_path / "run" / "checkpoints").iterdir():
        _corrupt(checkpoint / "model.safetensors")
    with pytest.raises(ValueError, match=r"no usable checkpoint in .*step-0000004 is damaged.*step-0000002"):
        pretrain(None, overrides, resume=True)


def test_a_damaged_data_cache_is_rebuilt(tmp_path, capfd):
    overrides = _finished_run(tmp_path)
    (cache,) = (tmp_path / "run" / "data-cache").glob("blocks-*.pt")
    reference = cache.read_bytes()
    _corrupt(cache)
    capfd.readouterr()
    pretrain(None, overrides, resume=True)
    assert "rebuilding the damaged data cache" in capfd.readouterr().err
    assert cache.read_bytes() == reference


@pytest.mark.parametrize("raised", ["oserror", "safetensors"])
def test_a_full_disk_is_one_line_naming_the_last_complete_checkpoint(tmp_path, monkeypatch, capsys, raised):
    import errno

    from safetensors import SafetensorError

    from bert_ode.cli import main
    from bert_ode.modeling_bert_ode import BertOdeForMaskedLM

    saved = {"count": 0}
    original = BertOdeForMaskedLM.save_pretrained

    def fills_the_disk(self, *args, **kwargs):
        saved["count"] += 1
        if saved["count"] == 2:  # the checkpoint at step 4: step 2's is complete
            if raised == "oserror":
                raise OSError(errno.ENOSPC, "No space left on device")
            raise SafetensorError(
                "Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                'message: "No space left on device" })'
            )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertOdeForMaskedLM, "save_pretrained", fills_the_disk)
    config = tmp_path / "tiny.yaml"
    import yaml

    from bert_ode.utils.config_io import nest

    config.write_text(yaml.safe_dump(nest(_overrides(tmp_path))))
    assert main(["pretrain", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "bert-ode pretrain: error: no space left on device while writing checkpoint 4 to "
        f"{tmp_path / 'run'}; the last complete checkpoint is step-0000002; free space and run again with "
        "--resume"
    )
    assert not list((tmp_path / "run" / "checkpoints").glob(".staging-*"))  # its space is given back
