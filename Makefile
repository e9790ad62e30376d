# `make demo` and `make test` set up a fresh machine themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_RESULTS ?= results

.PHONY: setup browser test demo bench clean

# uv installs in ~15 s what pip took 3m21 to resolve, install and compile. It does not read pip's
# configuration, so the local wheel folders and indexes pip is pointed at (where a machine keeps
# torch's CPU wheel; without one torch==2.13.0 comes from PyPI) are passed on, all indexes weighed
# together as pip weighs them.
# uv compiles no bytecode (pip compiled all 270 packages, most of its 3m21) and this machine sets
# PYTHONDONTWRITEBYTECODE, which would leave every import uncompiled (`import tdw.warehouse.indexer`
# 18 s instead of 9): make's commands write .pyc files on first import, for what is really imported.
unexport PYTHONDONTWRITEBYTECODE

PIP_SETTING = $(shell $(PYTHON) -m pip config get global.$(1) 2>/dev/null)
UV_INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python --index-strategy unsafe-best-match \
	$(foreach f,$(or $(PIP_FIND_LINKS),$(call PIP_SETTING,find-links)),--find-links $(f)) \
	$(foreach i,$(or $(PIP_EXTRA_INDEX_URL),$(call PIP_SETTING,extra-index-url)),--extra-index-url $(i))

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(UV_INSTALL) -e '.[test]'
	# devinterp's SGLD sampler, the reference tests/test_llc.py checks our LLC estimator against; its
	# package requires datasets, transformers, xarray and zarr, which the sampler never imports
	$(UV_INSTALL) --no-deps devinterp==2.0.1
	touch $(STAMP)

setup: $(STAMP)

# The browser tests drive Debian's chromium (nothing downloads a browser) and the report tests read
# PDFs with poppler's pdftotext: installed here when missing and running as root; otherwise one
# line says how.
browser:
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
		else \
			echo "make test: the tests need Debian's$$missing: run 'sudo apt-get install$$missing'" >&2; exit 1; \
		fi; \
	fi

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15

DEMO_RUN := $(DEMO_RESULTS)/modular_addition/p53_seed999
DEMO_DB ?= warehouse/tdw.duckdb
DEMO_PORT ?= 5006

# The embedded default: p=53, half the pairs for training, lr 3e-3; turns near epoch 1000, groks by ~1500-1800.
demo: $(STAMP)
	$(BIN)/tdw train --p 53 --seed 999 --train-frac 0.5 --lr 3e-3 --epochs 3000 \
		--checkpoints 0:100:10,100:3000:50 --results $(DEMO_RESULTS)
	$(BIN)/tdw analyze $(DEMO_RUN)
	$(BIN)/tdw index --results $(DEMO_RESULTS) --db $(DEMO_DB)
	$(BIN)/tdw sql --db $(DEMO_DB) "select variant, memorization_epoch, turn_epoch, grok_epoch, turn_to_grok, key_frequencies, key_frequency_rule, specialized_fraction from variant_summary"
	$(BIN)/tdw serve --db $(DEMO_DB) --results $(DEMO_RESULTS) --port $(DEMO_PORT)

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(UV_INSTALL) -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/turn_methods.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/late_training.py
	$(BIN)/python benchmarks/analysis_throughput.py --checkpoints 40 --workers 2
	$(BIN)/python benchmarks/trajectory_pca.py
	$(BIN)/python benchmarks/analysis_growth.py
	$(BIN)/python benchmarks/llc_cost.py
	$(BIN)/python benchmarks/llc_settings.py
	$(BIN)/python benchmarks/warehouse_scale.py
	$(BIN)/python benchmarks/trace_input.py --results $(DEMO_RESULTS) --db $(DEMO_DB)
	$(BIN)/python benchmarks/sweep_throughput.py
	$(BIN)/python benchmarks/thread_slots.py
	$(BIN)/python benchmarks/gpu_training.py
	$(BIN)/python benchmarks/dashboard_latency.py --db $(DEMO_DB)
	$(BIN)/python benchmarks/export_gif.py --db $(DEMO_DB)

clean:
	rm -rf $(VENV) *.egg-info
