"""Atomic checkpoints: written into a hidden staging folder, flushed to disk, then renamed into place.

A checkpoint is ``<output_dir>/checkpoints/step-0000123/`` holding the model (``save_pretrained``: config and
safetensors, loadable with ``BertOdeForMaskedLM.from_pretrained`` / ``AutoModelForMaskedLM``), the tokenizer,
the training state and, last of all, ``COMPLETE``. Only a folder with that name pattern and that marker
counts, so a checkpoint interrupted at any moment (a staging folder, or a folder copied by hand without its
marker) is never taken as the latest.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import torch

from ..convert import check_safetensors, quiet_transformers
from ..utils.disk import DiskFull, is_disk_full

CHECKPOINT_PATTERN = re.compile(r"^step-(\d{7,})$")
MARKER = "COMPLETE"
STATE_FILE = "training_state.pt"
CHECKSUMS = "CHECKSUMS"


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_atomically(final: Path, write) -> Path:
    """Calls ``write(staging_dir)``, flushes it, marks it complete and renames it to ``final``. A write that
    fails removes its staging folder (it is never a checkpoint, and a full disk needs the space back)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".staging-{final.name}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        staging.mkdir()
        write(staging)
        (staging / MARKER).write_text(json.dumps({"name": final.name}), encoding="utf-8")
        _fsync_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if (
        final.exists()
    ):  # a rewrite of the same step (e.g. a final save); the old one goes only after the new is whole
        old = final.parent / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
    _fsync_dir(final.parent)
    return final


def write_run_folder(output_dir, final: Path, write, what: str) -> Path:
    """``write_atomically`` for a run's checkpoints and final model: a full disk is one ``DiskFull`` line
    naming what was being written, the last complete checkpoint and what to do."""
    try:
        with quiet_transformers(reports=False):  # no shard bars over the pretraining bar
            return write_atomically(final, write)
    except Exception as error:
        if not is_disk_full(error):
            raise
        last = latest_checkpoint(output_dir)
        raise DiskFull(
            errno.ENOSPC,
            f"no space left on device while writing {what} to {output_dir}; the last complete checkpoint is "
            f"{last.name if last else 'none'}; free space and run again with --resume",
        ) from error


def checkpoint_dir(output_dir: str | os.PathLike, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:07d}"


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    folder = Path(output_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir() and (path / MARKER).is_file() and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1][1] if checkpoints else None


def save_checkpoint(output_dir, step: int, model, tokenizer, state: dict, keep: int | None = None) -> Path:
    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        torch.save(state, staging / STATE_FILE)
        write_checksums(staging)

    path = write_run_folder(output_dir, checkpoint_dir(output_dir, step), write, f"checkpoint {step}")
    if keep:
        for _, old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return path


def write_checksums(folder: Path) -> None:
    """``CHECKSUMS``: the SHA-256 of every file of a checkpoint, so a resume can tell a damaged one."""
    digests = {
        str(path.relative_to(folder)): _sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()
    }
    (folder / CHECKSUMS).write_text(json.dumps(digests, indent=1), encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def damage(checkpoint: Path) -> str | None:
    """Why a complete checkpoint cannot be resumed from (a file missing, changed or unreadable), or ``None``.
    Checkpoints written before checksums existed are checked by reading their weights header and state."""
    listed = checkpoint / CHECKSUMS
    if listed.is_file():
        try:
            digests = json.loads(listed.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return f"{CHECKSUMS} is unreadable"
        for name, digest in digests.items():
            path = checkpoint / name
            if not path.is_file():
                return f"{name} is missing"
            if _sha256(path) != digest:
                return f"{name} does not match its checksum"
        return None
    try:
        check_safetensors(checkpoint / "model.safetensors")
        load_training_state(checkpoint)
    except (ValueError, OSError, RuntimeError, EOFError) as error:
        return str(error).splitlines()[0]
    return None


def usable_checkpoint(output_dir: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The newest complete checkpoint that is not damaged, and one line for each newer one passed over."""
    passed_over = []
    for _, path in reversed(list_checkpoints(output_dir)):
        reason = damage(path)
        if reason is None:
            return path, passed_over
        passed_over.append(f"checkpoint {path.name} is damaged ({reason})")
    return None, passed_over


def load_training_state(checkpoint: str | os.PathLike) -> dict:
    # weights_only: tensors and plain containers only, so a checkpoint folder from elsewhere cannot run code
    # on load; a state holding any other object is refused with an error naming the file.
    path = Path(checkpoint) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} holds more than tensors and plain values, so it is not loaded (loading it could run "
            f"code): {str(error).splitlines()[0]}"
        ) from error
