"""torchrun with 2 gloo processes gives the same training as 1 process with the same global batch."""
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from pixelrep.train.config import DataConfig, to_dict
from pixelrep.train.loop import train
from tests.train.helpers import tiny_stage, write_nli


def test_two_gloo_processes_match_one_process(tmp_path):
    # NLI pairs with hard negatives on half the rows: gathered embeddings and negative masks both matter.
    data = write_nli(tmp_path / "nli.jsonl")
    stage = tiny_stage(data, data=DataConfig(sources=str(data), pairs="reasoning"), checkpoint_every=0)
    config = tmp_path / "stage.py"
    config.write_text("import json\nfrom pixelrep.train.config import from_dict\n\n\ndef get_config():\n"
                      f"    return from_dict(json.loads({json.dumps(json.dumps(to_dict(stage)))}))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "pixelrep.train", str(config), "--output-dir", str(tmp_path / "two"), "--device", "cpu"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])   # one line, from rank 0 only
    assert summary["step"] == 8

    train(stage, tmp_path / "one", show_progress=False)
    # Losses and gradient norms (Adam would hide a wrongly scaled gradient in the weights) agree closely;
    # weights too, up to rounding that Adam amplifies where the true gradient is ~0 (the key bias).
    logs = [[json.loads(line) for line in (tmp_path / d / "log.jsonl").read_text().splitlines()] for d in ("one", "two")]
    assert len(logs[0]) == len(logs[1]) == 8
    for a, b in zip(*logs):
        assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["grad_norm"] / b["grad_norm"] - 1) < 1e-4, (a, b)
    one, two = (load_file(str(tmp_path / d / "final" / "model.safetensors")) for d in ("one", "two"))
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-4, msg=k)
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints" / "step-00000008").iterdir()) == \
        ["model.safetensors", "optimizer.safetensors", "rng-0.safetensors", "rng-1.safetensors", "state.json"]
