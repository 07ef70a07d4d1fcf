"""A built corpus's manifest as a table: per source, what was read, what survived cleaning and
deduplication, and its share of the training tokens (the README and the testbed report show it)."""

from __future__ import annotations


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M"


def source_table(manifest: dict) -> str:
    """The Markdown table of ``manifest``'s sources."""
    rows = []
    for source in manifest["sources"]:
        packages = ", ".join(f"{p['name']} {p['version']}" for p in source["packages"])
        rows.append(
            [
                f"`{source['name']}`",
                source["kind"],
                packages,
                _millions(source["words_read"]),
                f"{_millions(source['words'])} ({source['survived']:.0%})",
                f"{_millions(source['train_tokens'])} ({source['share_of_train_tokens']:.0%})",
            ]
        )
    header = ["source", "kind", "packages (versions)", "words read", "words kept", "training tokens"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # data imports nothing of utils
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def totals_line(manifest: dict) -> str:
    """One sentence of the manifest's totals."""
    totals = manifest["totals"]
    train, validation = totals["train_tokens"] / 1e6, totals["validation_tokens"] / 1e6
    share = totals["non_technical_share"]
    return (
        f"**{train:.1f}M training tokens** and {validation:.2f}M validation tokens in "
        f"{totals['documents']:,} documents from {len(manifest['sources'])} sources; {share:.0%} of the "
        "training tokens are not technical documentation"
    )


__all__ = ["source_table", "totals_line"]
