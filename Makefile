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

# The whole chain on the embedded data: hwbench report (theoretical + measured on this machine), then
# surrogates picked by `hwbench deploy` run active learning for next-generation models, plus the
# entropy analysis; one AL report. `--resume` makes a second `make demo` reuse finished work.
demo: setup
	@start=$$(date +%s); \
	echo "== 1/5 hwbench report: Table 2, peak/roofline, deployability, latency measured on this CPU (~1 min)"; \
	$(VENV)/bin/hwbench report --out reports/hwbench --measure && \
	echo "== 2/5 al surrogate: deployable-on-TX2 surrogates pick data for next-generation models (~1-2 min)" && \
	$(VENV)/bin/al surrogate surrogate_demo --out reports/al --resume && \
	echo "== 3/5 al entropy: entropy histograms of models trained on the same random subset (~30 s)" && \
	$(VENV)/bin/al entropy entropy_demo --out reports/al/entropy --resume && \
	echo "== 4/5 al fleet: two device generations x two surrogates score frames at their latency, one day (~45 s)" && \
	$(VENV)/bin/al fleet fleet_demo --out reports/al/fleet && \
	echo "== 5/5 al report" && \
	$(VENV)/bin/al report reports/al && \
	echo "demo finished in $$(( $$(date +%s) - start )) s: reports/hwbench/report.md, reports/al/report.md (and report.html)"

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m benchmarks

lint: setup
	$(VENV)/bin/ruff check hwbench al tests benchmarks

clean:
	rm -rf reports runs .pytest_cache
