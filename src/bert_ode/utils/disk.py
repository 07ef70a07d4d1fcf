"""A full disk, told apart from other write errors. Light on purpose (no torch): the command line catches
``DiskFull`` before it knows whether the command that raised it was loaded."""

from __future__ import annotations

import errno


class DiskFull(OSError):
    """No space left on the device while writing a checkpoint; the message says what to do."""


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC, raised by Python's file functions or reported inside a library's own error (safetensors
    wraps it in a ``SafetensorError`` whose text carries the OS error)."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    text = str(error)
    return "No space left on device" in text or "StorageFull" in text


__all__ = ["DiskFull", "is_disk_full"]
