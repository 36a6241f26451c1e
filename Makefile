# hwbench + al. Newcomers need two targets: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= demo

.PHONY: setup demo test bench lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --upgrade  # a venv whose creation was interrupted
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole chain on the embedded data: hwbench report (theoretical + measured on this machine), then
# surrogates picked by `hwbench deploy` run active learning for next-generation models, the entropy
# analysis and a fleet day; one AL report. About 5 minutes on 2 cores, 4-7 by the host's speed (README).
# Two lanes, one per core: the steps marked (background) run one after another with their output in
# reports/demo-background.log (printed when they finish; `tail -f` it to watch), the others print their
# progress bars here. The largest step, the segmentation matrix, comes last in its lane and runs its cells
# in two worker processes at a lower priority (nice): while the background lane runs it gets the one core
# left, and both cores once that lane is done, so the two lanes end together whatever the host's speed.
# hwbench's measured latencies are one-thread process CPU time, which the other lane does not inflate.
# Each step prints its wall time; `--resume` makes a second `make demo` reuse finished work. Ctrl-C or a
# failing step stops both lanes.
DEMO_N := 8
demo: setup
	@set -e; start=$$(date +%s); mkdir -p reports; bg=; log=reports/demo-background.log; \
	trap 'test -z "$$bg" || kill $$bg 2>/dev/null || true' EXIT; trap 'exit 130' INT TERM; \
	step() { n=$$1; what=$$2; shift 2; t=$$(date +%s); echo "== $$n/$(DEMO_N) $$what"; \
	  if [ -n "$$lane" ]; then "$$@" & p=$$!; wait $$p; else "$$@"; fi; \
	  echo "   $$n/$(DEMO_N) done in $$(( $$(date +%s) - t )) s"; }; \
	echo "== background lane (log: $$log): 1/$(DEMO_N) hwbench report, 3/$(DEMO_N) al surrogate digits, 5/$(DEMO_N) al fleet, 7/$(DEMO_N) al run"; \
	( lane=bg; p=; trap 'test -z "$$p" || kill $$p 2>/dev/null; exit 143' TERM; \
	  step 1 "hwbench report: Table 2, peak/roofline, deployability, latency measured on this CPU (background)" \
	    $(VENV)/bin/hwbench report --out reports/hwbench --measure; \
	  step 3 "al surrogate digits: the same question on real scans, classifiers, 5 seeds (background)" \
	    $(VENV)/bin/al surrogate digits --out reports/al/digits --resume --jobs 1; \
	  step 5 "al fleet: two device generations x two surrogates score frames at their latency, one day (background)" \
	    $(VENV)/bin/al fleet fleet_demo --out reports/al/fleet; \
	  step 7 "al run: every strategy and random on digits, for the AL curves (paper Fig. 3) (background)" \
	    sh -c 'for s in entropy llal coreset true_loss random; do $(VENV)/bin/al run smoke_digits --strategy $$s --out reports/al/strategies/$$s --resume > /dev/null || exit 1; done'; \
	) > $$log 2>&1 & bg=$$!; \
	step 2 "al pretrain: the backbones of the surrogates and the deployment model, once, on the pretrain drives (cached in $${HWBENCH_CACHE_DIR:-~/.cache/hwbench})" \
	  $(VENV)/bin/al pretrain deeplabv3plus_resnet20 deeplabv3plus_mobilenetv3_small deeplabv3plus_resnet18 --jobs 1; \
	step 4 "al entropy: entropy histograms of models trained on the same random subset" \
	  $(VENV)/bin/al entropy entropy_demo --out reports/al/entropy --resume; \
	step 6 "al surrogate: deployable-on-TX2 surrogates pick data for a next-generation model, 12 seeds (2 workers, nice)" \
	  nice -n 10 $(VENV)/bin/al surrogate surrogate_demo --out reports/al --resume --jobs 2; \
	if kill -0 $$bg 2>/dev/null; then echo "== waiting for the background lane (tail -f $$log)"; fi; \
	if wait $$bg; then bg=; cat $$log; else bg=; cat $$log; echo "error: a background step failed (above; log: $$log)" >&2; exit 1; fi; \
	step 8 "al report" $(VENV)/bin/al report reports/al; \
	echo "demo finished in $$(( $$(date +%s) - start )) s: reports/hwbench/report.md, reports/al/report.md (and report.html), reports/al/digits/report.md"

# Tests run in one worker per core (pytest-xdist; a file's tests stay on one worker so module fixtures
# are built once). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto
test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

bench: setup
	$(PY) -m benchmarks

# docs/cli.md from the argparse parsers (tests/test_cli_reference.py fails when it is stale)
docs: setup
	$(PY) tools/cli_reference.py

lint: setup
	$(VENV)/bin/ruff check hwbench al tests benchmarks tools

clean:
	rm -rf reports runs .pytest_cache
