# RevGAN: set-up, demo, tests, benchmarks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_FLAGS := --name demo --model paired_revgan --gpu_ids -1 --ngf 16 --n_blocks 4 --load_size 64 --crop_size 64 \
	--n_epochs 10 --n_epochs_decay 5 --lr 0.0005 --no_dropout --num_threads 0 --print_freq 240 --display_id 0

.PHONY: setup demo test test-fast bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/.ci/constraints.txt $(VENV)/bin/pip install -q --upgrade pip
	PIP_CONSTRAINT=$(CURDIR)/.ci/constraints.txt $(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) train.py $(DEMO_FLAGS)
	$(PY) test.py --name demo --model paired_revgan --gpu_ids -1 --load_size 64 --crop_size 64
	@echo "demo results: results/demo/test_latest/index.html"

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) scripts/benchmark_reversible.py

clean:
	rm -rf checkpoints/demo results/demo datasets/demo
