"""Runs examples/tutorial.ipynb top to bottom in a Jupyter kernel and stores it with its outputs, so that it
reads on a code host. Each code cell is stamped with a hash of its source: tests/test_tutorial.py fails when a
cell was edited after the outputs were stored (run this again then).

    .venv/bin/pip install -e ".[notebook]"     # Jupyter (nbclient, ipykernel)
    .venv/bin/python scripts/run_tutorial.py   # a few minutes on a laptop CPU
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "tutorial.ipynb"
STAMP = "bert_ode_source_sha1"


def source_hash(cell) -> str:
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    return hashlib.sha1(source.encode("utf-8")).hexdigest()


def main() -> None:
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        sys.exit('run_tutorial.py needs Jupyter: .venv/bin/pip install -e ".[notebook]"')
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": "/tmp"}}
    ).execute()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.metadata[STAMP] = source_hash(cell)
    nbformat.write(notebook, NOTEBOOK)
    print(f"stored {NOTEBOOK} with its outputs")


if __name__ == "__main__":
    main()
