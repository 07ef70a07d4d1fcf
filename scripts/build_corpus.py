#!/usr/bin/env python
"""Rebuilds the built-in offline corpora shipped in ``src/bert_ode/data/corpora/``.

Provenance (both Debian packages, installed with ``apt-get install -y r-cran-janeaustenr python3.11-doc``):

* ``austen.jsonl.gz``: Jane Austen's six completed novels (public domain; the Project Gutenberg texts as
  packaged by the R package janeaustenr, Debian ``r-cran-janeaustenr``). The package keeps them in an R
  lazy-load database: ``data/Rdata.rdx`` (a gzip'd, R-serialised index of offsets) and ``data/Rdata.rdb`` (one
  record per novel: a 4-byte length and a zlib stream of an R-serialised character vector, one element per
  line). This script reads both with a minimal reader of R's XDR serialisation format (no R needed).
* ``python-docs.jsonl.gz``: the reStructuredText sources of the Python 3.11 documentation (Debian
  ``python3.11-doc``, ``/usr/share/doc/python3.11/html/_sources``), reduced to their prose: code blocks,
  directives and heading underlines are dropped, inline roles are reduced to their text. Licensed under the
  PSF License Agreement; ``python-docs.LICENSE.txt`` (written next to it) carries the notice.

Each output line is ``{"source": ..., "text": ...}``: one document (a chapter of a novel, one documentation
page) that the loader splits deterministically into train / validation chunks.

Usage: ``python scripts/build_corpus.py [--out src/bert_ode/data/corpora]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import struct
import zlib
from pathlib import Path

AUSTEN_DIR = Path("/usr/lib/R/site-library/janeaustenr/data")
PYDOC_DIR = Path("/usr/share/doc/python3.11/html/_sources")
PYDOC_LICENSE = Path("/usr/share/doc/python3.11/html/_sources/license.rst.txt")
PYDOC_COPYRIGHT = Path("/usr/share/doc/python3.11-doc/copyright")


class _RReader:
    """Reads the subset of R's XDR serialisation (format 2 or 3) that character vectors and lists need."""

    _NIL_LIKE = {
        254,
        253,
        242,
        241,
        251,
        250,
    }  # NILVALUE, GLOBALENV, EMPTYENV, BASEENV, MISSINGARG, BASENAMESPACE

    def __init__(self, data: bytes):
        self.data, self.pos, self.refs = data, 0, []

    def _int(self) -> int:
        (value,) = struct.unpack(">i", self.data[self.pos : self.pos + 4])
        self.pos += 4
        return value

    def read(self):
        if self.data[:2] != b"X\n":
            raise ValueError("not an XDR R serialisation")
        self.pos = 2
        version = self._int()
        self._int(), self._int()  # writer and minimal reader versions
        if version == 3:
            length = self._int()  # then the native encoding's name
            self.pos += length
        return self._item()

    def _item(self):
        flags = self._int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind in self._NIL_LIKE:
            return None
        if kind == 255:  # reference to an earlier symbol
            return self.refs[(flags >> 8) - 1]
        if kind == 1:  # symbol
            symbol = self._item()
            self.refs.append(symbol)
            return symbol
        if kind == 2:  # pairlist: [(tag, value), ...]
            if has_attr:
                self._item()
            tag = self._item() if has_tag else None
            head, tail = self._item(), self._item()
            return [(tag, head)] + (tail or [])
        if kind == 9:  # CHARSXP
            length = self._int()
            if length == -1:
                return None
            text = self.data[self.pos : self.pos + length].decode("utf-8", "replace")
            self.pos += length
            return text
        if kind in (10, 13, 14, 16, 19):  # logical, integer, double, character, list
            length = self._int()
            if kind in (16, 19):
                value = [self._item() for _ in range(length)]
            else:
                code, size = ("d", 8) if kind == 14 else ("i", 4)
                value = list(
                    struct.unpack(f">{length}{code}", self.data[self.pos : self.pos + size * length])
                )
                self.pos += size * length
            attributes = dict(self._item()) if has_attr else {}
            return (value, attributes) if attributes else value
        raise ValueError(f"unsupported R type {kind}")


def austen_documents() -> list[dict]:
    index, _ = _RReader(gzip.decompress((AUSTEN_DIR / "Rdata.rdx").read_bytes())).read()
    offsets, attributes = index[0]
    database = (AUSTEN_DIR / "Rdata.rdb").read_bytes()
    documents = []
    for name, (offset, length) in zip(attributes["names"], offsets, strict=True):
        record = database[offset : offset + length]
        lines = _RReader(zlib.decompress(record[4:])).read()
        lines = lines[0] if isinstance(lines, tuple) else lines
        novel = "\n".join(line or "" for line in lines)
        # One document per chapter; headings such as "CHAPTER I" / "Chapter 12" start a new one.
        chapters = re.split(r"\n\s*(?:CHAPTER|Chapter)\s+[0-9IVXLC]+\.?\s*\n", novel)
        for number, chapter in enumerate(chapters):
            text = re.sub(
                r"[ \t]*\n[ \t]*(?!\n)", " ", chapter.strip()
            )  # unwrap lines, keep paragraph breaks
            text = re.sub(r"\n{2,}", "\n\n", text).replace("_", "")
            if len(text) > 200:
                documents.append({"source": f"austen/{name}/{number:03d}", "text": text})
    return documents


_ROLE = re.compile(r":[\w:.-]+:`(?:[^`<]*<)?~?!?([^`>]*)>?`")
_LITERAL = re.compile(r"``([^`]*)``")


def _rst_prose(source: str) -> str:
    paragraphs, current, in_block = [], [], False
    for line in source.splitlines() + [""]:
        stripped = line.strip()
        if in_block:
            if stripped and not line[:1].isspace():
                in_block = False
            else:
                continue
        if not stripped or line[:1].isspace() or stripped.startswith(".."):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            in_block = stripped.startswith("..") or (bool(stripped) and line[:1].isspace())
            continue
        if re.fullmatch(r"([=\-~^*#\"'+`:.])\1{2,}", stripped):  # heading underline / overline
            continue
        current.append(stripped)
        if stripped.endswith("::"):
            paragraphs.append(" ".join(current)[:-1])
            current, in_block = [], True
    text = "\n\n".join(p for p in paragraphs if len(p.split()) >= 4)
    text = _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))
    return text.replace("*", "")


def python_doc_documents() -> list[dict]:
    documents = []
    for path in sorted(PYDOC_DIR.rglob("*.rst.txt")):
        relative = path.relative_to(PYDOC_DIR).as_posix()
        if relative.startswith(("whatsnew/changelog", "license")):
            continue  # the changelog is a list of issue titles; the license travels separately
        text = _rst_prose(path.read_text(encoding="utf-8", errors="replace"))
        if len(text) > 200:
            documents.append({"source": f"python-docs/{relative.removesuffix('.rst.txt')}", "text": text})
    return documents


def write_jsonl_gz(documents: list[dict], path: Path) -> None:
    payload = "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in documents).encode("utf-8")
    # mtime=0 keeps the file byte-identical across rebuilds.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    print(
        f"{path}: {len(documents)} documents, {len(payload) / 1e6:.2f} MB of text, "
        f"{path.stat().st_size / 1e6:.2f} MB gzip'd"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/bert_ode/data/corpora"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(austen_documents(), args.out / "austen.jsonl.gz")
    write_jsonl_gz(python_doc_documents(), args.out / "python-docs.jsonl.gz")
    notice = (
        "The corpus python-docs.jsonl.gz is derived from the Python 3.11 documentation sources (Debian "
        "package\npython3.11-doc). Copyright (c) 2001-2023 Python Software Foundation; all rights reserved. "
        "Distributed under\nthe PSF License Agreement, reproduced below together with the Debian copyright "
        "file.\n\n"
    )
    (args.out / "python-docs.LICENSE.txt").write_text(
        notice
        + PYDOC_LICENSE.read_text(encoding="utf-8")
        + "\n\n"
        + PYDOC_COPYRIGHT.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    (args.out / "austen.LICENSE.txt").write_text(
        "austen.jsonl.gz: the six novels of Jane Austen (1775-1817), public domain; Project Gutenberg texts "
        "as\npackaged by the R package janeaustenr (Debian r-cran-janeaustenr). Rebuilt by "
        "scripts/build_corpus.py.\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
