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
# surrogates picked by `hwbench deploy` run active learning for next-generation models, the entropy
# analysis and a fleet day; one AL report. Budget: under 5 minutes on 2 cores (README, Quick start).
# Every step is single-threaded, so the cores are shared out: `hwbench report` runs in the background
# from the start (its latencies are one-thread process CPU time, which a busy second core does not
# inflate; log in reports/hwbench.log) while the al steps print their progress here, and experiment
# cells run in parallel processes. Each step prints its wall time; `--resume` makes a second
# `make demo` reuse finished work. Ctrl-C or a failing step stops the background work too.
demo: setup
	@set -e; start=$$(date +%s); mkdir -p reports; hw=; \
	trap 'test -z "$$hw" || kill $$hw 2>/dev/null || true' EXIT; trap 'exit 130' INT TERM; \
	took() { echo "   ($$(( $$(date +%s) - $$1 )) s)"; }; \
	echo "== 1/5 hwbench report: Table 2, peak/roofline, deployability, latency measured on this CPU (in the background; log: reports/hwbench.log)"; \
	( t=$$(date +%s); trap 'kill $$p 2>/dev/null; exit 143' TERM; \
	  $(VENV)/bin/hwbench report --out reports/hwbench --measure & p=$$!; wait $$p; rc=$$?; \
	  took $$t; exit $$rc ) > reports/hwbench.log 2>&1 & hw=$$!; \
	t=$$(date +%s); echo "== 2/5 al surrogate: deployable-on-TX2 surrogates pick data for next-generation models"; \
	$(VENV)/bin/al surrogate surrogate_demo --out reports/al --resume; took $$t; \
	t=$$(date +%s); echo "== 3/5 al entropy: entropy histograms of models trained on the same random subset"; \
	$(VENV)/bin/al entropy entropy_demo --out reports/al/entropy --resume; took $$t; \
	t=$$(date +%s); echo "== 4/5 al fleet: two device generations x two surrogates score frames at their latency, one day"; \
	$(VENV)/bin/al fleet fleet_demo --out reports/al/fleet; took $$t; \
	if kill -0 $$hw 2>/dev/null; then echo "   (waiting for the background hwbench report)"; fi; \
	if wait $$hw; then hw=; echo "== 1/5 hwbench report (background) finished:"; head -n 1 reports/hwbench.log; \
	  tail -n 1 reports/hwbench.log; else hw=; cat reports/hwbench.log; exit 1; fi; \
	t=$$(date +%s); echo "== 5/5 al report"; \
	$(VENV)/bin/al report reports/al; took $$t; \
	echo "demo finished in $$(( $$(date +%s) - start )) s: reports/hwbench/report.md, reports/al/report.md (and report.html)"

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m benchmarks

lint: setup
	$(VENV)/bin/ruff check hwbench al tests benchmarks

clean:
	rm -rf reports runs .pytest_cache
