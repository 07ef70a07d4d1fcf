"""The README's generated parts match the code they describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from bert_ode.pretrain.config import settings_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_settings_table_is_the_configs():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings table:")
    start = text.index("\n", start) + 1
    end = text.index("<!-- end of settings table -->")
    assert text[start:end].strip() == settings_reference().strip(), (
        "regenerate the README table: python -c 'from bert_ode.pretrain.config import "
        "settings_reference; print(settings_reference())'"
    )


def test_every_test_the_docs_cite_exists():
    import re

    docs = Path(__file__).resolve().parents[1] / "docs"
    cited = set()
    for page in [README, *docs.glob("*.md")]:
        cited |= set(re.findall(r"tests/(test_\w+)\.py::(test_\w+)", page.read_text(encoding="utf-8")))
    assert cited
    tests = Path(__file__).resolve().parent
    missing = [
        f"{module}::{name}"
        for module, name in sorted(cited)
        if f"def {name}(" not in (tests / f"{module}.py").read_text(encoding="utf-8")
    ]
    assert not missing, missing


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_the_papers_and_readmes_study_figures_are_the_reports():
    """Every figure with three decimals in the paper's abstract, results and discussion, and in the README's
    study section, is printed by the committed study's report: by its generated part, not by the hand-written
    reading it includes (a figure typed there would otherwise vouch for itself)."""
    import re

    root = README.parent
    study = root / "reports" / "cpu"
    report = (study / "report.md").read_text(encoding="utf-8")
    if "## Leaving the plateau" not in report:
        # The committed report predates the warmup-stable-decay study (issue 24): the paper is a draft.
        pytest.skip("reports/cpu is not yet the warmup-stable-decay study the paper is written from")
    reading = study / "reading.md"
    if reading.is_file():
        text = reading.read_text(encoding="utf-8").strip()
        assert text in report, "the report does not include reading.md: regenerate it"
        report = report.replace(text, "")
    paper = (root / "docs" / "paper.md").read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    quoted = (
        _between(paper, "## Abstract", "## 1. Introduction")
        + _between(paper, "## 5. Results", "## 7. Limitations")
        + _between(readme, "## The study:", "## Where things are")
    )
    figures = set(re.findall(r"(?<![\d.])\d+\.\d{3}(?![\d])", quoted))
    assert figures
    missing = sorted(f for f in figures if f not in report)
    assert not missing, f"figures in the paper or README that the report does not print: {missing}"


def test_the_readme_corpus_table_is_the_committed_manifest():
    import json

    from bert_ode.data.build.summary import source_table

    text = README.read_text(encoding="utf-8")
    start = text.index("\n", text.index("<!-- corpus table:")) + 1
    end = text.index("<!-- end of corpus table -->")
    manifest = json.loads(
        (README.parent / "reports" / "corpus" / "manifest.json").read_text(encoding="utf-8")
    )
    assert text[start:end].strip() == source_table(manifest).strip()
