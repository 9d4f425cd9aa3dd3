#!/usr/bin/env bash
# One command on a lent GPU node (README, "Training on a GPU node"): install what the node lacks from
# .carry/ (built here by `make device-pack`), then tests, benchmarks, a fixed-time training run, its
# evaluation and the model, each step's JSON into $OUT (scripts/device_run.py says which files).
#   OUT=/results scripts/device_run.sh            # on the node; about 6 minutes
#   OUT=/tmp/o CARRY=/tmp/c scripts/device_run.sh --tiny   # the same path on the CPU in a minute (tests)
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-.carry}
: "${OUT:?set OUT to the folder the results go to}"
[ -f "$CARRY/recipe.json" ] || { echo "device_run.sh: $CARRY/recipe.json is missing; run make device-pack here first" >&2; exit 2; }
CARRY=$(cd "$CARRY" && pwd)

# What the node lacks: datasets (+ dill, multiprocess), pytest, and libfribidi for Pillow's raqm layout.
# The wheels are for the node's Python 3.12 (the dry run installs them too, but keeps its own environment).
rm -rf "$CARRY/site" "$CARRY/fb"
python3 -m pip install -q --no-index --no-deps --no-compile --python-version 3.12 --target "$CARRY/site" "$CARRY"/wheels/*.whl
dpkg -x "$CARRY"/wheels/libfribidi0_*.deb "$CARRY/fb"
if [[ " $* " != *" --tiny "* ]]; then
    export PYTHONPATH=$CARRY/site${PYTHONPATH:+:$PYTHONPATH}
    export LD_LIBRARY_PATH=$CARRY/fb/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    python3 -m pip install -q --no-deps --no-build-isolation -e .
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec python3 scripts/device_run.py --carry "$CARRY" --out "$OUT" "$@"
