# RevGAN: set-up, demo, tests, benchmarks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_FLAGS := --name demo --model paired_revgan --gpu_ids -1 --ngf 32 --ndf 32 --n_downsampling 1 --n_blocks 4 \
	--load_size 64 --crop_size 64 --n_epochs 10 --n_epochs_decay 5 --lr 0.0002 --no_dropout --num_threads 0 \
	--print_freq 240 --display_id 0
DEMO3D_FLAGS := --name demo3d --model paired_revgan3d --gpu_ids -1 --ngf 8 --ndf 8 --n_blocks 4 --n_downsampling 1 \
	--netD n_layers --n_layers_D 2 --patch_size 32 --samples_per_volume 8 --n_epochs 15 --n_epochs_decay 5 \
	--lr 0.0005 --no_dropout --num_threads 0 --print_freq 960 --display_id 0

.PHONY: setup demo demo3d test test-fast bench clean

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

demo3d: setup
	$(PY) train.py $(DEMO3D_FLAGS)
	$(PY) test.py --name demo3d --model paired_revgan3d --gpu_ids -1
	@echo "3D demo results: results/demo3d/test_latest/index.html (volumes under volumes/)"

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) scripts/benchmark_reversible.py
	$(PY) scripts/benchmark_reversible.py --iunet --batch 4 --channels 16 --size 128 --steps 2
	$(PY) scripts/benchmark_models.py --size 64 --steps 3
	$(PY) scripts/benchmark_models.py --dims 3 --size 64 --ngf 16 --steps 3
	$(PY) scripts/benchmark_models.py --precision --size 128 --ngf 16 --steps 3

clean:
	rm -rf checkpoints/demo results/demo datasets/demo checkpoints/demo3d results/demo3d datasets/demo3d
