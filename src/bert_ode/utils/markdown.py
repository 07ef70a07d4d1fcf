"""Markdown for reports: one table helper and one number format, shared by every report the project writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def fmt(value, digits: int = 4) -> str:
    """A cell: floats to ``digits`` decimals, ``None`` as ``-``, anything else as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    """Lines of a Markdown table; cells that are not strings go through ``fmt``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(cell if isinstance(cell, str) else fmt(cell) for cell in row) + " |")
    return lines
