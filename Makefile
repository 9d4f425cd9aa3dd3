# The README's two commands. Each installs what it needs on a fresh machine, then runs.
PYTHON ?= python3
DATA ?= ../shared/data
OUT ?= out
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install install-test demo test test-all

# torch 2.14.1 + torchvision 0.29.1 are the builds this project is tested with (a local wheel here).
install:
	$(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PYTHON) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PYTHON) -m pip install -q -e ".[extras]"

install-test: install
	$(PYTHON) -m pip install -q -e ".[test,extras,train]"

# Main job: render an example, encode with the bundled default model, evaluate every STS suite.
demo: install
	mkdir -p $(OUT)
	pixelrep render "Pixels read any script: Ein Mann spielt Gitarre. 一个男人在弹吉他。 رجل يعزف على الغيتار" -o $(OUT)/example.png --json
	printf 'A man is playing a guitar.\nEin Mann spielt Gitarre.\nA woman slices an onion.\n' | pixelrep encode --model default --input - --output $(OUT)/example.npy
	pixelrep eval sts --model default --suite all --data-dir $(DATA)/sts --out $(OUT)/eval

test: install-test
	$(PYTHON) -m pytest -q

# Slow tests too (real MiniLM, long training runs); GPU tests need a CUDA device.
test-all: install-test
	$(PYTHON) -m pytest -q -m "not gpu"

# What a lent GPU node lacks, in the ignored .carry/: wheels (datasets, pytest), libfribidi, a training
# shard of the default recipe and its teacher's vectors; prints the byte budget (working tree + .carry
# <= 60 MiB of the node's 64) and fails when over. Then: scripts/device_run.sh (README, "Training on a GPU node").
.PHONY: device-pack
device-pack: install-test
	$(PYTHON) scripts/device_pack.py --config default --data $(DATA) --out .carry
