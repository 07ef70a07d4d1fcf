"""The offline corpus build on small fixtures: each reader against hand-written pages (a man page, an HTML
page, a POD page, a fortune file), the cleaning rules (code, a non-English copy, licence text), repeated and
near-duplicate pages, text held out for the downstream tasks, the mix caps, the split by document, a
manifest that is the same bytes twice, and the one-line error without a package client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bert_ode.data import load_corpus
from bert_ode.data.build import MissingClient, Package, Source, build_corpus, formats
from bert_ode.data.build.assemble import _Document, apply_caps, is_validation_document
from bert_ode.data.build.clean import clean, why_not_prose
from bert_ode.data.build.dedup import HeldOut, NearDuplicates, ParagraphFilter
from bert_ode.data.build.fetch import check_clients
from bert_ode.data.build.formats import html_page, man_page, pod, roff

PROSE = (
    "The river ran past the old mill, and the children who lived in the village would sit on its bank in the "
    "long evenings of summer, watching the water turn the wheel that had ground their grandfathers' corn."
)

MAN = r""".\" Copyright (c) 1993 Someone
.TH SIGNAL 7 2023-02-05 "Linux man-pages 6.03"
.SH NAME
signal \- overview of signals
.SH SYNOPSIS
.nf
.B #include <signal.h>
.BI "int kill(pid_t " pid ", int " sig );
.fi
.SH DESCRIPTION
A process can change the disposition of a signal using
.BR sigaction (2)
or
.BR signal (2),
and the entries in the table below specify what the default is for each of them.
.PP
.EX
int main(void) { return kill(getpid(), SIGTERM); }
.EE
"""


def test_a_man_page_keeps_its_running_text_and_leaves_out_synopsis_and_examples(tmp_path):
    ((name, text),) = roff(MAN, "signal.7")
    assert "signal - overview of signals" in text
    assert "using sigaction(2) or signal(2), and the entries in the table below" in text
    assert "#include" not in text and "kill(pid_t" not in text and "getpid" not in text
    assert "Copyright" not in text and "SIGNAL 7" not in text
    page = tmp_path / "signal.7"
    page.write_text(MAN)
    assert man_page(page) == [("signal.7", text)]


def test_an_html_page_keeps_paragraphs_and_leaves_out_navigation_code_and_tables(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Nav title</title><style>p {color: red}</style></head><body>"
        '<div class="related"><a href="x">next</a> | <a>previous</a></div><nav>Home Contents</nav>'
        f"<h1>Chapter one</h1><p>{PROSE}</p><pre>for i in range(3):\n    print(i)</pre>"
        "<table><tr><td>cell one</td><td>cell two</td></tr></table>"
        "<ul><li>An item of a list that is written in words</li></ul>"
        '<div class="highlight">x = 1</div><footer>Copyright 2024</footer></body></html>'
    )
    ((_, text),) = html_page(page)
    assert text.split("\n\n") == ["Chapter one", PROSE, "An item of a list that is written in words"]


def test_pod_keeps_text_paragraphs_and_leaves_out_verbatim_code(tmp_path):
    page = tmp_path / "perlintro.pod"
    page.write_text(
        "=head1 NAME\n\nperlintro - a brief introduction\n\n=head1 DESCRIPTION\n\n"
        "This is B<bold> and L<perlsyn|perlsyn> and C<code> in E<lt>textE<gt>.\n\n"
        '    my $x = "verbatim";\n    print $x;\n\n=begin html\n\n<p>raw</p>\n\n=end html\n\n=cut\n'
    )
    ((_, text),) = pod(page)
    assert text.split("\n\n") == [
        "NAME",
        "perlintro - a brief introduction",
        "DESCRIPTION",
        "This is bold and perlsyn and code in <text>.",
    ]


def test_cleaning_takes_out_code_other_languages_and_licences_and_counts_them():
    code = "if (x == 1) { return y[0] <= z; } else { $a = @b; } #define X_Y 1 || 2 && 3"
    german = (
        "Der Fluss floss an der alten Mühle vorbei, und die Kinder, die im Dorf lebten, saßen an den "
        "langen Sommerabenden an seinem Ufer."
    )
    licence = (
        "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
        "associated documentation files."
    )
    assert why_not_prose(PROSE) is None
    assert why_not_prose(code) == "symbols"
    assert why_not_prose(german) == "not English"
    assert why_not_prose(licence) == "licence"
    assert why_not_prose("Next | Previous | Up") == "short"
    dropped = {}
    assert clean("\n\n".join([PROSE, code, german, licence]), dropped) == PROSE
    assert dropped == {
        "symbols": len(code.split()),
        "not English": len(german.split()),
        "licence": len(licence.split()),
    }


def test_repeated_paragraphs_near_duplicate_pages_and_held_out_text_are_taken_out():
    other = PROSE.replace("river", "stream").replace("mill", "forge")
    paragraphs = ParagraphFilter()
    assert paragraphs(f"{PROSE}\n\n{other}") == (f"{PROSE}\n\n{other}", 0)
    # the same paragraph again, in other case and spacing: out
    assert paragraphs(PROSE.upper().replace(" ", "  ")) == ("", len(PROSE.split()))
    page = " ".join([PROSE] * 3 + [other] * 3)
    near = NearDuplicates()
    assert not near.is_duplicate(page)
    assert near.is_duplicate(page + " The end.")  # the same page shipped again with a line added
    assert not near.is_duplicate("An entirely different page about stars, comets and the planets. " * 5)
    task_text = "Review: " + " ".join(PROSE.split()[3:17]) + " A must see."  # 14 words around "mill"
    held = HeldOut([task_text])
    assert held(f"{PROSE}\n\n{other}") == (other, len(PROSE.split()))  # shares 13 words with the task


def _doc(source, i, words):
    return _Document(source, f"{source}-{i}", "w " * words, words)


def test_caps_leave_no_source_above_its_share_and_religious_text_below_a_quarter():
    kept = {
        "bible": [_doc("bible", i, 100) for i in range(60)],  # 6,000 words
        "novels": [_doc("novels", i, 100) for i in range(30)],  # 3,000
        "news": [_doc("news", i, 100) for i in range(30)],  # 3,000
        "essays": [_doc("essays", i, 100) for i in range(30)],  # 3,000
    }
    kinds = {"bible": "religious", "novels": "prose", "news": "prose", "essays": "prose"}
    removed = apply_caps(kept, kinds, religious=0.25, single=0.30)
    words = {name: sum(d.words for d in docs) for name, docs in kept.items()}
    total = sum(words.values())
    assert words["bible"] <= 0.25 * total + 100 and removed["bible"] == 6000 - words["bible"]
    assert all(words[n] <= 0.30 * total + 100 for n in words) and removed["novels"] == 0
    # two sources cannot both hold under 30%: the single-source cap is not applied rather than emptying both
    pair = {
        "novels": [_doc("novels", i, 100) for i in range(3)],
        "news": [_doc("news", i, 100) for i in range(5)],
    }
    assert apply_caps(pair, kinds, religious=0.25, single=0.30) == {"novels": 0, "news": 0}


def test_the_split_is_by_document():
    ids = [f"pkg/file-{i}.html#page" for i in range(2000)]
    validation = [i for i in ids if is_validation_document(i, 0.05)]
    assert 50 < len(validation) < 150  # about 5%
    assert validation == [i for i in ids if is_validation_document(i, 0.05)]  # the same every time


def _fixture_fetcher(versions):
    """A registry of two packages on disk: fortune files, and an HTML manual."""

    def fetch(name, registry, cache):
        root = cache / f"{name}-{versions[name]}"
        if name == "quotes":
            (root / "fortunes").mkdir(parents=True, exist_ok=True)
            for n in range(8):
                entries = [
                    f"{PROSE} This is entry {k} of file {n}, and it is about {n * k} things."
                    for k in range(6)
                ]
                (root / "fortunes" / f"file{n}").write_text("\n%\n".join(entries))
        else:
            (root / "html").mkdir(parents=True, exist_ok=True)
            for n in range(6):
                sentence = (
                    f"Chapter {n} tells how the tools work, and why the {n}th step of them is needed here."
                )
                (root / "html" / f"ch{n}.html").write_text(f"<p>{sentence * 8}</p><pre>code();</pre>")
            (root / "html" / "copy.html").write_text((root / "html" / "ch1.html").read_text())
        return Package(name, registry, versions[name], "public-domain", root)

    return fetch


SOURCES = (
    Source("quotes", "debian", ("quotes",), "fortunes", ("fortunes/*",), "prose", "quotations"),
    Source("manual", "npm", ("manual",), "html", ("html/*.html",), "technical", "a manual"),
)


def test_a_build_writes_the_same_bytes_twice_and_says_what_changed(tmp_path):
    versions = {"quotes": "1.0", "manual": "2.0"}
    common = dict(sources=SOURCES, vocab_size=200, progress=False, validation_fraction=0.2)
    first = build_corpus(
        tmp_path / "a", cache=tmp_path / "cache", fetcher=_fixture_fetcher(versions), **common
    )
    build_corpus(tmp_path / "b", cache=tmp_path / "cache", fetcher=_fixture_fetcher(versions), **common)
    for name in ["manifest.json", *[s["path"] for s in first["shards"]]]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manual = next(s for s in first["sources"] if s["name"] == "manual")
    assert manual["documents_read"] == 7 and manual["documents"] == 6  # the copied page is out
    # an exact copy goes with its paragraphs (the near-duplicate test above covers a changed copy)
    assert manual["words_repeated"] > 0 and manual["packages"][0]["version"] == "2.0"
    assert first["changed_since_last_build"] == []
    counts = {s["name"]: s for s in first["sources"]}
    tokens = sum(s["train_tokens"] for s in counts.values())
    assert tokens == first["totals"]["train_tokens"] > 0
    # every document is in exactly one split, whole: no document's text is on both sides
    rows = {
        split: [json.loads(line) for p in (tmp_path / "a" / split).glob("*.jsonl.gz") for line in _lines(p)]
        for split in ("train", "validation")
    }
    assert rows["validation"] and {r["id"] for r in rows["train"]}.isdisjoint(
        {r["id"] for r in rows["validation"]}
    )
    assert all(is_validation_document(r["id"], 0.2) for r in rows["validation"])
    # pretraining reads it as built: the train shards train, the validation shards validate
    corpus = load_corpus(
        files=[str(tmp_path / "a" / "train")], validation_files=[str(tmp_path / "a" / "validation")]
    )
    assert len(corpus.validation) >= len(rows["validation"]) and corpus.train
    # another package version: the manifest names the change
    versions["manual"] = "2.1"
    again = build_corpus(
        tmp_path / "a", cache=tmp_path / "cache", fetcher=_fixture_fetcher(versions), **common
    )
    assert again["changed_since_last_build"] == ["manual: 2.0 -> 2.1"]
    # against another build's manifest (e.g. the committed one) instead of the folder's previous build
    versions["quotes"] = "1.1"
    third = build_corpus(
        tmp_path / "c",
        cache=tmp_path / "cache",
        fetcher=_fixture_fetcher(versions),
        compare_to=tmp_path / "b" / "manifest.json",
        **common,
    )
    assert third["changed_since_last_build"] == ["manual: 2.0 -> 2.1", "quotes: 1.0 -> 1.1"]
    assert third["compared_with"] == str(tmp_path / "b" / "manifest.json")
    with pytest.raises(ValueError, match=r"--compare-to .*nope.json: no such manifest"):
        build_corpus(tmp_path / "d", compare_to=tmp_path / "nope.json", **common)
    assert not (tmp_path / "d").exists()  # refused before anything was fetched or written


def _lines(path: Path) -> list[str]:
    import gzip

    return gzip.decompress(path.read_bytes()).decode().splitlines()


def test_without_a_package_client_the_build_is_one_line_naming_it(monkeypatch, tmp_path):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None if name == "npm" else "/usr/bin/" + name)
    with pytest.raises(MissingClient, match=r"needs npm on PATH .* point data.files at text of your own"):
        check_clients({"npm", "debian"})
    import os

    env = {"PATH": "/nonexistent", "HOME": os.environ.get("HOME", str(tmp_path))}
    command = Path(sys.executable).parent / "bert-ode"
    result = subprocess.run(
        [str(command), "corpus", "build", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert "corpus build needs" in result.stderr and "data.files" in result.stderr


def test_validation_files_need_files():
    with pytest.raises(ValueError, match="data.validation_files needs data.files"):
        load_corpus(validation_files=["x"])


RST = """.. _tut-intro:

An Informal Introduction
========================

In the following examples, input and output are distinguished by the presence or absence of prompts: see
:func:`print` and `the tutorial <https://docs.python.org/>`_. For example::

   >>> print("this line is code")
   this line is code

.. note::

   A directive's body is markup the reader leaves out, however much it reads like prose to the cleaner.

+------+------+
| cell | cell |
+------+------+

Numbers are the ``int`` kind of thing that the interpreter acts on, and it is **simple** to use them.
"""


def test_an_rst_page_keeps_headings_and_text_and_leaves_out_code_directives_and_tables(tmp_path):
    page = tmp_path / "introduction.rst.txt"
    page.write_text(RST)
    ((name, text),) = formats.rst_page(page)
    assert name == "introduction.rst"
    assert text.split("\n\n") == [
        "An Informal Introduction",
        "In the following examples, input and output are distinguished by the presence or absence of "
        "prompts: see print and the tutorial. For example:",
        "Numbers are the int kind of thing that the interpreter acts on, and it is simple to use them.",
    ]


def _dictd_number(value: int) -> str:
    digits = ""
    while True:
        digits = formats._DICTD_DIGITS[value % 64] + digits
        value //= 64
        if not value:
            return digits


def test_a_dictd_dictionary_gives_one_document_per_letter_without_its_metadata(tmp_path):
    import gzip

    entries = [
        ("00-database-info", "00-database-info\n   This file was converted by dictfmt; not prose.\n"),
        ("abacus", "abacus\n   <hardware> A frame of {beads} on wires.\n\n   (1994-11-08)\n"),
        ("acme", 'acme\n /ak\'mee/, n.\n\n   The supplier of gadgets.\n\n   ["A citation", 1988].\n'),
        ("bee", "bee\n   An insect that makes honey\n   and lives in a hive.\n"),
    ]
    data, index = b"", []
    for word, body in entries:
        raw = body.encode()
        index.append(f"{word}\t{_dictd_number(len(data))}\t{_dictd_number(len(raw))}")
        data += raw
    (tmp_path / "test.dict.dz").write_bytes(gzip.compress(data))
    (tmp_path / "test.index").write_text("\n".join(index) + "\n")
    assert formats.dictd(tmp_path / "test.dict.dz") == []  # read through its index only
    assert formats.dictd(tmp_path / "test.index") == [
        ("test-a", "A frame of beads on wires.\n\nThe supplier of gadgets."),
        ("test-b", "An insect that makes honey and lives in a hive."),
    ]


def test_wordnet_glosses_are_grouped_by_lexicographer_file_without_the_licence(tmp_path):
    lines = [
        "  1 This software and database is being provided to you, the LICENSEE, by Princeton University",
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known  ",
        "01234567 05 n 02 dog 0 domestic_dog 0 001 @ 00001740 n 0000 | a member of the genus Canis; "
        '"the dog barked all night"  ',
        "00001930 03 n 01 physical_entity 0 001 @ 00001740 n 0000 | an entity that has physical existence  ",
    ]
    (tmp_path / "data.noun").write_text("\n".join(lines) + "\n")
    assert formats.wordnet_glosses(tmp_path / "index.noun") == []
    assert formats.wordnet_glosses(tmp_path / "data.noun") == [
        (
            "noun-03",
            "entity: that which is perceived or known. "
            "physical entity: an entity that has physical existence.",
        ),
        ("noun-05", 'dog: a member of the genus Canis; "the dog barked all night".'),
    ]


def test_a_plain_text_file_keeps_its_paragraphs_and_cuts_a_speech_on_one_line_at_sentence_ends(tmp_path):
    sentence = "The state of the union is strong, and the work before us is greater than the work behind us. "
    speech = sentence * 40  # 19 words a sentence, 760 words on one line
    page = tmp_path / "1850_speech.txt"
    page.write_text("A short first paragraph\nwrapped over two lines.\n\n" + speech + "\n")
    ((name, text),) = formats.plain(page)
    paragraphs = text.split("\n\n")
    assert name == "1850_speech.txt" and paragraphs[0] == "A short first paragraph wrapped over two lines."
    pieces = paragraphs[1:]
    assert " ".join(pieces) == speech.strip()  # nothing lost, cut only between sentences
    assert all(piece.endswith("us.") for piece in pieces)
    # 8 sentences (152 words) reach PIECE_WORDS: 40 sentences are 5 pieces of 8
    assert [len(piece.split()) for piece in pieces] == [152] * 5


MAIL = """From someone@example.org  Thu Aug 22 14:44:26 2002
Return-Path: <someone@example.org>
Subject: Re: [list] Nothing like mama used to make
Content-Type: text/plain; charset=US-ASCII

On Thu, 22 Aug 2002, Somebody Else wrote:
>  in adding cream to spaghetti carbonara, which has the same effect on pasta as
>  making a pizza a deep-pie;

I just had to jump in here as Carbonara is one of my favourites to make and ask
what you are supposed to use instead of cream.

Stew
--
Stewart, of the Scottish Microelectronics Centre
"""


def test_an_email_keeps_its_own_words_without_headers_quotes_attribution_or_signature(tmp_path):
    message = tmp_path / "00930.txt"
    message.write_text(MAIL)
    assert formats.mail(message) == [
        (
            "00930.txt",
            "I just had to jump in here as Carbonara is one of my favourites to make and ask what you are "
            "supposed to use instead of cream.\n\nStew",
        )
    ]
    html_only = tmp_path / "html.txt"
    html_only.write_text("Subject: offer\nContent-Type: text/html\n\n<p>Buy now</p>\n")
    assert formats.mail(html_only) == []
