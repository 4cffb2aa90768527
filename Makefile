# RevGAN: set-up, demo, tests, benchmarks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_FLAGS := --name demo --model paired_revgan --gpu_ids -1 --ngf 32 --ndf 32 --n_downsampling 1 --n_blocks 4 \
	--load_size 64 --crop_size 64 --n_epochs 10 --n_epochs_decay 5 --lr 0.0002 --no_dropout --num_threads 0 \
	--print_freq 240 --display_id 0 --val_freq 5 --val_fraction 0.15
DEMO3D_FLAGS := --name demo3d --model paired_revgan3d --gpu_ids -1 --ngf 8 --ndf 8 --n_blocks 4 --n_downsampling 1 \
	--netD n_layers --n_layers_D 2 --patch_size 32 --samples_per_volume 8 --n_epochs 15 --n_epochs_decay 5 \
	--lr 0.0005 --no_dropout --num_threads 0 --print_freq 960 --display_id 0 --val_freq 5 --val_fraction 0.2

.PHONY: setup demo demo3d test test-fast bench clean

# Set-up. Independent of the pip version (the venv's bundled one, or the newest when UPGRADE_PIP=1) and of pip's
# cache: visdom is source only and needs setuptools<81 to build, so its build requirements go into the venv and it is
# built without pip's isolated build environment (PIP_CONSTRAINT stopped reaching that environment in pip 26).
# LOCK: the tested versions (constraints.txt); `make setup LOCK=` installs the newest releases instead.
UPGRADE_PIP ?= 1
LOCK ?= constraints.txt
PIP := $(VENV)/bin/python -m pip
PIP_LOCK := $(if $(LOCK),-c $(CURDIR)/$(LOCK))

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-extras.txt requirements-visdom.txt $(LOCK)
	$(PYTHON) -m venv $(VENV)
	@if [ "$(UPGRADE_PIP)" = 1 ]; then echo "upgrading pip in $(VENV)"; $(PIP) install -q --upgrade pip; fi
	@$(PIP) --version
	@echo "installing requirements (the first time about 6 GB with the CUDA build of torch, a few minutes)"
	$(PIP) install -q $(PIP_LOCK) -r requirements-dev.txt
	$(PIP) install -q $(PIP_LOCK) "setuptools<81" wheel
	$(PIP) install -q $(PIP_LOCK) --no-build-isolation -r requirements-visdom.txt
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
	$(PY) scripts/benchmark_quality.py --quick

clean:
	rm -rf checkpoints/demo results/demo datasets/demo checkpoints/demo3d results/demo3d datasets/demo3d
