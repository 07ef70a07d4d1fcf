"""The API reference (docs/api, Sphinx autodoc) builds from the docstrings without a warning, and documents
the names a user reaches for: a renamed or undocumented public name fails here, not on a reader's screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api"


def test_the_api_reference_builds_from_the_docstrings(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-q",
            "-W",
            "--keep-going",
            "-E",
            str(DOCS),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-5000:]
    model = (tmp_path / "model.html").read_text(encoding="utf-8")
    for name in (
        "BertOdeConfig",
        "from_bert",
        "ButcherTableau",
        "describe_new_parameters",
        "write_model_card",
    ):
        assert name in model, name
    training = (tmp_path / "training.html").read_text(encoding="utf-8")
    for name in ("PretrainConfig", "FinetuneConfig", "StudyConfig", "compare"):
        assert name in training, name
