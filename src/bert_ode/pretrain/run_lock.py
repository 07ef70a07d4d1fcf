"""One run at a time per output folder, and no litter from runs that were killed.

A run holds ``output_dir/.lock`` (its host and process id) from start to end. A second run into the same
folder is refused with a message naming the owner; a lock whose process is gone (same host, no such pid) is
stale and is taken over. Holding the lock, a run knows that every staging folder in its output folder
(``.staging-*``, left by a kill during a checkpoint write) is dead, and removes it.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

LOCK_FILE = ".lock"


def _owner_alive(host: str, pid: int) -> bool:
    if host != socket.gethostname():
        return True  # another machine's process cannot be checked from here: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


class RunLock:
    """``with RunLock(output_dir):`` the folder is this process's until the block ends."""

    def __init__(self, output_dir: str | os.PathLike):
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / LOCK_FILE
        self.token = f"{socket.gethostname()} {os.getpid()}"

    def __enter__(self) -> RunLock:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(self.token + "\n")
            remove_dead_staging(self.output_dir)
            return self

    def _take_over_if_stale(self) -> None:
        try:
            host, pid = self.path.read_text(encoding="utf-8").split()
            owner = (host, int(pid))
        except (OSError, ValueError):
            owner = None  # vanished or half-written: check again
        if owner is not None and _owner_alive(*owner):
            raise ValueError(
                f"{self.output_dir} is in use by another run (process {owner[1]} on {owner[0]}); wait for "
                "it to end, or choose another train.output_dir"
            )
        if owner is not None:
            self.path.unlink(missing_ok=True)  # its process is gone: a stale lock

    def __exit__(self, *exc) -> None:
        try:
            if self.path.read_text(encoding="utf-8").strip() == self.token:
                self.path.unlink()
        except OSError:
            pass


def remove_dead_staging(output_dir: Path) -> list[Path]:
    """Removes the staging folders of interrupted checkpoint writes (call only while holding the lock)."""
    removed = []
    for folder in (output_dir, output_dir / "checkpoints"):
        for staging in folder.glob(".staging-*") if folder.is_dir() else ():
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed
