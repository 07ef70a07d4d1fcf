"""The tutorial notebook runs from top to bottom (with tiny budgets): its code cells are executed in order in
one namespace, as a kernel would."""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "tutorial.ipynb"


def test_the_tutorial_notebook_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BERT_ODE_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "__main__"}
    for number, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert not cell["outputs"], f"cell {number} is committed with outputs"
            exec(compile("".join(cell["source"]), f"tutorial.ipynb, cell {number}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "largest difference to BERT: 0.0" in printed  # the converted MiniLM is BERT, to the bit
    errors = namespace["errors"]
    assert errors["rk4"][-1] < errors["heun"][-1] < errors["euler"][-1]  # the order plot's data
    assert "test accuracy" in printed
