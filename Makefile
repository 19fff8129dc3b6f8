# The README's two commands are `make sim` and `make test`; each brings .venv up to date first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.qfab-installed

.PHONY: sim test lint bench fuzz clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(PY) -m qfab.editable
	$(PY) -m qfab.sim.toolchain
	@touch $(STAMP)

# The built-in example: the digits CNN (int8 QDQ) on eight test images, in Verilator: the
# accelerator alone, then the whole SoC with its firmware driving it.
DIGITS := examples/digits/digits_int8.onnx --input examples/digits/sample_images.npy
sim: $(STAMP)
	$(VENV)/bin/qfab sim $(DIGITS)
	$(VENV)/bin/qfab sim --soc $(DIGITS)

test: $(STAMP) lint
	$(PY) -m pytest -q -n auto

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m bench

# The long mutation fuzz campaign (make test runs a short fixed-seed sample of it).
FUZZ_MUTANTS ?= 10000
fuzz: $(STAMP)
	$(PY) tests/fuzz/fuzz_run.py -n $(FUZZ_MUTANTS) --seed 1 --tracebacks

clean:
	rm -rf $(VENV) build *.egg-info
