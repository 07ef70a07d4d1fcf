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
