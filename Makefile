# hwbench + al. Newcomers need two targets: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= demo

.PHONY: setup demo test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/hwbench report --out reports/hwbench
	@echo "hwbench report written to reports/hwbench/report.md"

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m benchmarks

lint: setup
	$(VENV)/bin/ruff check hwbench al tests benchmarks

clean:
	rm -rf reports runs .pytest_cache
