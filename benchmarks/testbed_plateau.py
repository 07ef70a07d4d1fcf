"""reports/testbed/plateau.md from the constant-rate curves ``benchmarks/testbed_plateau.sh`` copied to
reports/testbed/plateau/*.csv: each run's validation loss at fixed token counts, and where (if anywhere) it
came 1 nat below the unigram entropy of the validation blocks (read from a testbed record: the same blocks).

Usage: python benchmarks/testbed_plateau.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

FOLDER = Path("reports/testbed/plateau")
POINTS = (4e6, 8e6, 16e6, 24e6, 48e6)


def at(curve: list[tuple[int, float]], tokens: float) -> str:
    """The loss of the last evaluation at or before ``tokens`` (within 5%), or "-" past the run's end."""
    before = [loss for t, loss in curve if t <= tokens * 1.001]
    return f"{before[-1]:.3f}" if before and curve[-1][0] >= 0.95 * tokens else "-"


def main() -> None:
    record = next(Path("reports/testbed/records").glob("constant--*.json"))
    unigram = json.loads(record.read_text())["unigram_entropy"]
    rows = []
    for path in sorted(FOLDER.glob("*.csv")):
        with open(path, newline="") as handle:
            curve = [(int(r["tokens"]), float(r["val_loss"])) for r in csv.DictReader(handle)]
        escape = next((t for t, loss in curve if loss <= unigram - 1), None)
        left = "not by its end" if escape is None else f"{escape / 1e6:.1f}M"
        rows.append([path.stem, *(at(curve, p) for p in POINTS), f"{curve[-1][0] / 1e6:.1f}M", left])
    header = ["run", *(f"loss at {p / 1e6:g}M" for p in POINTS), "ran to", "1 nat below unigram at"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = (FOLDER.parent / "plateau.md").read_text() if (FOLDER.parent / "plateau.md").is_file() else ""
    start, end = "<!-- plateau table -->", "<!-- end of plateau table -->"
    bar = f"Unigram entropy of the validation blocks: {unigram:.3f} nats (the bar: {unigram - 1:.3f})."
    table = f"{start}\n{bar}\n\n"
    table += "\n".join(lines) + f"\n{end}"
    if start in text:
        text = text[: text.index(start)] + table + text[text.index(end) + len(end) :]
    else:
        text += "\n" + table + "\n"
    (FOLDER.parent / "plateau.md").write_text(text)
    print(table)


if __name__ == "__main__":
    main()
