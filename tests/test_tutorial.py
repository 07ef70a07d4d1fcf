"""The tutorial notebook runs from top to bottom (with tiny budgets): its code cells are executed in order in
one namespace, as a kernel would. It is committed with the outputs of a full run (scripts/run_tutorial.py),
and every code cell's stored outputs belong to its current source."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"


def _run_tutorial_module():
    spec = importlib.util.spec_from_file_location("run_tutorial", ROOT / "scripts" / "run_tutorial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stored_outputs_are_those_of_the_current_cells():
    runner = _run_tutorial_module()
    cells = [c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    for number, cell in enumerate(cells):
        assert cell["metadata"].get(runner.STAMP) == runner.source_hash(cell), (
            f"code cell {number} changed after its outputs were stored: run scripts/run_tutorial.py"
        )
        assert cell["execution_count"], f"code cell {number} was not run when the outputs were stored"
    printed = "".join(
        "".join(output.get("text", ""))
        for cell in cells
        for output in cell["outputs"]
        if output["output_type"] == "stream"
    )
    assert "largest difference to BERT: 0.0" in printed and "test accuracy" in printed
    assert any(o["output_type"] == "display_data" for cell in cells for o in cell["outputs"])  # the plot


def test_the_tutorial_notebook_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BERT_ODE_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "__main__"}
    for number, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"tutorial.ipynb, cell {number}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "largest difference to BERT: 0.0" in printed  # the converted MiniLM is BERT, to the bit
    assert "save_pretrained wrote a model card: # " in printed
    errors = namespace["errors"]
    assert errors["rk4"][-1] < errors["heun"][-1] < errors["euler"][-1]  # the order plot's data
    assert "test accuracy after fine-tuning" in printed and "test accuracy" in printed
    assert (Path(namespace["workdir"]) / "classifier" / "README.md").is_file()  # Trainer.save_model's card
