"""On a GPU: bf16 agrees with fp32, compiled blocks give the same loss, fused AdamW steps as the plain
one, NCCL starts and stops in one process, a run resumes to the same weights.

Run with `PIXELREP_TEST_GPU=1 python -m pytest -m gpu tests/gpu` (tests/conftest.py hides the GPU
otherwise); scripts/device_run.sh does. Skipped without CUDA.
"""
import copy
import socket

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pixelrep import ModelConfig, PixelEncoder, RenderConfig
from pixelrep.train import distributed
from pixelrep.train.config import HeadConfig, OptimConfig
from pixelrep.train.loop import ContrastiveModel, build_optimizer, compile_blocks, train
from tests.core.helpers import SENTENCES
from tests.train.helpers import tiny_stage, write_pairs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _model(preset: str = "small") -> ContrastiveModel:
    torch.manual_seed(0)
    encoder = PixelEncoder(ModelConfig.from_preset(preset, max_patches=64), RenderConfig(max_patches=64))
    return ContrastiveModel(encoder, HeadConfig(), temperature=0.05).cuda()


def _batch(n: int = 32, patches: int = 48):
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (2 * n, 16, 16 * patches), dtype=torch.uint8, generator=g).cuda()
    mask = torch.arange(patches)[None, :] < torch.randint(8, patches + 1, (2 * n, 1), generator=g)
    return pixels, mask.cuda(), n


def test_bf16_encoding_agrees_with_fp32():
    encoder = PixelEncoder.from_pretrained("default")
    fp32 = encoder.encode(SENTENCES, device="cuda", precision="fp32")
    bf16 = encoder.encode(SENTENCES, device="cuda", precision="bf16")
    cpu = encoder.encode(SENTENCES, device="cpu", precision="fp32")
    np.testing.assert_allclose(fp32, cpu, atol=1e-3)
    assert (fp32 * bf16).sum(1).min() > 0.99   # unit vectors: cosine


def test_compiled_blocks_give_the_same_loss():
    eager = _model()
    compiled = copy.deepcopy(eager)
    compile_blocks(compiled.encoder)
    batch = _batch()
    for autocast in (False, True):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            a, b = (m(*batch)["contrastive"].float() for m in (eager, compiled))
        torch.testing.assert_close(a, b, rtol=2e-2 if autocast else 1e-4, atol=1e-4)


def test_fused_adamw_steps_as_the_plain_one():
    fused_model = _model("tiny")
    plain_model = copy.deepcopy(fused_model)
    fused = build_optimizer(fused_model, OptimConfig(lr=1e-3), torch.device("cuda"))
    assert fused.defaults["fused"] is True
    plain = build_optimizer(plain_model, OptimConfig(lr=1e-3), torch.device("cpu"))   # fused=None: the loop
    for model, optimizer in ((fused_model, fused), (plain_model, plain)):
        model(*_batch())["contrastive"].backward()
        optimizer.step()
    for (name, a), b in zip(fused_model.named_parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_nccl_starts_and_stops_in_one_process():
    with socket.socket() as s:   # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.distributed.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1,
                                         device_id=torch.device("cuda", 0))
    try:
        y = torch.ones(3, device="cuda")
        torch.distributed.all_reduce(y)
        distributed.barrier()
        assert y.tolist() == [1.0] * 3 and distributed.world_size() == 1
    finally:
        distributed.teardown()
    assert not torch.distributed.is_initialized()


def test_checkpoint_resumes_to_the_same_weights_on_gpu(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    stage = tiny_stage(data, precision="fp32", checkpoint_every=3, optim=OptimConfig(lr=2e-3, max_steps=6, batch_size=8))
    full = train(stage, tmp_path / "full", device="cuda", show_progress=False)
    part = train(stage, tmp_path / "part", device="cuda", stop_after=3, show_progress=False)
    resumed = train(stage, tmp_path / "part", device="cuda", resume=True, show_progress=False)
    assert part.step == 3 and resumed.step == full.step == 6
    a, b = (load_file(str(tmp_path / run / "final" / "model.safetensors")) for run in ("full", "part"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)
