"""The README's generated parts match the code they describe."""

from __future__ import annotations

from pathlib import Path

from bert_ode.training.pretrain_config import settings_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_settings_table_is_the_configs():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings table:")
    start = text.index("\n", start) + 1
    end = text.index("<!-- end of settings table -->")
    assert text[start:end].strip() == settings_reference().strip(), (
        "regenerate the README table: python -c 'from bert_ode.training.pretrain_config import "
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
