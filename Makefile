# Everything a fresh machine needs: Python 3.11+ and pip.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/rasp-compiler: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

.PHONY: demo test bench
demo: $(BIN)/rasp-compiler
	$(BIN)/rasp-compiler demo --output out/demo.safetensors

test: $(BIN)/rasp-compiler
	$(BIN)/python -m pytest -q -n 2

bench: $(BIN)/rasp-compiler
	$(BIN)/pip install -q tracr-pypi
	$(BIN)/python benchmarks/compare_tracr.py
