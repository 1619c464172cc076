# Everything a fresh machine needs: Python 3.11+ and pip. `make demo` and `make test`
# create .venv and install the package into it first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

.PHONY: demo test bench clean
demo: $(STAMP)
	$(BIN)/rasp-compiler demo --output out/demo.safetensors
	@echo "The CLI is $(BIN)/rasp-compiler; 'source $(BIN)/activate' puts rasp-compiler on your PATH."

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python -m pip install -q tracr-pypi
	$(BIN)/python benchmarks/compare_tracr.py

clean:
	rm -rf $(VENV) out
