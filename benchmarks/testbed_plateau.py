"""reports/testbed/plateau.md from the constant-rate curves ``benchmarks/testbed_plateau.sh`` copied to
reports/testbed/plateau/*.csv: each run's validation loss at fixed token counts, and where (if anywhere) it
came 1 nat below the unigram entropy of the validation blocks (read from a testbed record: the same blocks),
and the curves drawn in reports/testbed/plateau.png.

Usage: python benchmarks/testbed_plateau.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

FOLDER = Path("reports/testbed/plateau")
POINTS = (4e6, 8e6, 16e6, 24e6, 32e6, 40e6, 48e6)


def at(curve: list[tuple[int, float]], tokens: float) -> str:
    """The loss of the last evaluation at or before ``tokens`` (within 5%), or "-" past the run's end."""
    before = [loss for t, loss in curve if t <= tokens * 1.001]
    return f"{before[-1]:.3f}" if before and curve[-1][0] >= 0.95 * tokens else "-"


REFERENCE = ("L2-lr2e-3-48M", "L2-lr2e-3-seed-1-48M", "L6-lr1e-3-48M")


def plot(curves: dict[str, list[tuple[int, float]]], unigram: float, path: Path) -> None:
    """Validation loss against tokens (log scale): the initialisation's runs beside the reference runs (BERT's
    recipe, two seeds and 6 layers), and every other recipe change beside the first reference run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {
        "the initialisation's scale": [n for n in curves if "init" in n or n in REFERENCE],
        "other recipe changes (2 layers)": [n for n in curves if "init" not in n and n not in REFERENCE[1:]],
    }
    colours = dict(zip(curves, plt.get_cmap("tab20").colors * 2, strict=False))  # one per run, both panels
    figure, all_axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axes, (title, names) in zip(all_axes, panels.items(), strict=True):
        for name in names:
            curve = curves[name]
            style = "--" if name in REFERENCE else "-"
            axes.plot(
                [t / 1e6 for t, _ in curve],
                [v for _, v in curve],
                style,
                label=name,
                linewidth=1.2,
                color=colours[name],
            )
        axes.axhline(unigram, color="grey", linestyle=":", label="unigram entropy")
        axes.axhline(unigram - 1, color="black", linestyle="--", linewidth=0.8, label="1 nat below it")
        axes.set(xscale="log", xlabel="training tokens (millions)", title=title)
        axes.legend(fontsize=7)
    all_axes[0].set(ylabel="validation MLM loss (nats)", ylim=(None, unigram + 0.3))
    figure.suptitle("Where BERT leaves the plateau on the built corpus (constant rate)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    record = next(Path("reports/testbed/records").glob("constant--*.json"))
    unigram = json.loads(record.read_text())["unigram_entropy"]
    rows, curves = [], {}
    for path in sorted(FOLDER.glob("*.csv")):
        with open(path, newline="") as handle:
            curve = [(int(r["tokens"]), float(r["val_loss"])) for r in csv.DictReader(handle)]
        curves[path.stem] = curve
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
    plot(curves, unigram, FOLDER.parent / "plateau.png")
    print(table)


if __name__ == "__main__":
    main()
