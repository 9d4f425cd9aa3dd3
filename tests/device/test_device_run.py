"""make device-pack and scripts/device_run.sh, dry run: a tiny recipe packed as for a GPU node, then the
device script's steps on the CPU (--tiny), each step's JSON checked."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pixelrep.config import ModelConfig
from pixelrep.render import RenderConfig
from pixelrep.train.config import AlignConfig
from pixelrep.train.config import DataConfig, OptimConfig, save_json
from tests.train.helpers import tiny_lm, tiny_stage, write_pairs

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO.parent / "shared" / "device-wheels"


@pytest.fixture(scope="module")
def packed(tmp_path_factory, shared_data):
    """A tiny distillation recipe (visual + parallel data, a toy BERT teacher, STS dev) packed into a carry."""
    if not WHEELS.is_dir():
        pytest.skip(f"no device wheels at {WHEELS}")
    tmp = tmp_path_factory.mktemp("device")
    data = write_pairs(tmp / "pairs.jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    dev = tmp / "dev.jsonl"
    dev.write_text("".join(json.dumps({"sentence1": r["en"], "sentence2": r["xx"], "score": i % 6}) + "\n"
                           for i, r in enumerate(rows[:24])))
    stage = tiny_stage(
        data, model=ModelConfig.from_preset("tiny", max_patches=24, patches_per_token=3),
        render=RenderConfig(max_patches=24, word_align=3), dev=str(dev), contrastive_weight=0.0,
        data=DataConfig(sources=str(data), pairs="visual", columns={"text": "en"}, typo_rate=0.1),
        leapfrog_with=tiny_stage(data).data, leapfrog_every=2,
        align=AlignConfig(teacher=tiny_lm(tmp / "lm"), token_weight=0.0, cross_weight=0.2, sentence_loss="infonce"),
        optim=OptimConfig(lr=2e-3, warmup_steps=1, max_steps=8, batch_size=8))
    save_json(stage, tmp / "recipe.json")
    carry = tmp / "carry"
    done = subprocess.run([sys.executable, "scripts/device_pack.py", "--config", str(tmp / "recipe.json"), "--out",
                           str(carry), "--data", str(shared_data), "--wheels", str(WHEELS), "--eval-rows", "20"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, carry, done.stdout


def test_pack_holds_what_the_node_lacks_and_fits(packed):
    tmp, carry, stdout = packed
    assert "byte budget" in stdout and ": fits" in stdout
    report = json.loads((carry / "pack.json").read_text())
    assert report["bytes"]["total"] <= report["bytes"]["budget"] == 60 << 20
    assert {p.name.split("-")[0] for p in (carry / "wheels").iterdir()} >= {"datasets", "dill", "multiprocess",
                                                                              "libfribidi0_1.0.8"}
    recipe = json.loads((carry / "recipe.json").read_text())
    # Every path the recipe reads is in the carry; the teacher is its vectors, never the model.
    paths = [*recipe["data"]["sources"], *recipe["leapfrog_with"]["sources"], recipe["dev"],
             recipe["align"]["teacher_vectors"]]
    assert all(Path(p).exists() and Path(p).is_relative_to(carry) for p in paths)
    assert recipe["align"]["cache_dir"] is None and report["teacher_texts"] == 96   # every English side
    assert len(list((carry / "data" / "sts" / "stsb").glob("*/test.jsonl.gz"))) == 11


@pytest.mark.slow
def test_device_script_dry_run_writes_every_steps_json(packed):
    tmp, carry, _ = packed
    out = tmp / "out"
    env = {**os.environ, "OUT": str(out), "CARRY": str(carry)}
    done = subprocess.run(["scripts/device_run.sh", "--tiny", "--work", str(tmp / "work")], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bench.json", "device.json", "eval.json", "gpu-tests.json", "model.tar", "train.json"]
    records = {name: json.loads((out / name).read_text()) for name in files if name.endswith(".json")}
    assert all(s["ok"] for s in records["device.json"]["steps"].values())
    assert records["gpu-tests.json"]["skipped"] == 5   # no CUDA here
    assert records["bench.json"]["runs"]["recipe"]["end_to_end_pairs_per_s"] > 0
    train = records["train.json"]
    assert train["summary"]["step"] == 4 and train["teacher"]
    assert records["eval.json"]["results"]
