"""`pixelrep bench train`: the FLOP count and one quick run."""
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from pixelrep.config import ModelConfig
from pixelrep.encoder import PixelEncoder
from pixelrep.render import RenderConfig
from pixelrep.train.bench import bench_train, step_flops
from pixelrep.train.config import HeadConfig
from pixelrep.train.loop import ContrastiveModel
from tests.train.helpers import sentences


@pytest.mark.parametrize("projection_dim,per_token", [(0, 1), (32, 1), (0, 3)])
def test_flop_count_matches_torch_counter(projection_dim, per_token):
    cfg = ModelConfig.from_preset("tiny", max_patches=16, projection_dim=projection_dim, patches_per_token=per_token)
    model = ContrastiveModel(PixelEncoder(cfg, RenderConfig(max_patches=16)), HeadConfig(), temperature=0.05)
    pixels, mask = torch.randint(0, 256, (8, 16, 160), dtype=torch.uint8), torch.ones(8, 10, dtype=torch.bool)
    with FlopCounterMode(display=False) as counter:
        model(pixels, mask, 4)["contrastive"].backward()
    head = sum(p.numel() for n, p in model.head.named_parameters() if n.endswith("weight"))
    attention = 12 * cfg.depth * cfg.width * 8 * (-(-10 // per_token)) ** 2
    counted = counter.get_total_flops()
    if counter.get_flop_counts()["Global"].get(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu) is None:
        counted += attention  # this torch's counter skips CPU flash attention: compare the rest
    # The loss's similarity matmuls (8 x 4 x d) are the only work the formula leaves out.
    assert abs(step_flops(cfg, 8, 10, head) - counted) / counted < 0.01


def test_bench_runs_and_reports(tmp_path):
    path = tmp_path / "pairs.jsonl"
    s = sentences(80)
    path.write_text("".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in zip(s[:40], s[40:])))
    result = bench_train(preset="tiny", device="cpu", batch_size=8, steps=2, repeats=1, workers=0, max_patches=16,
                         data=str(path))
    json.dumps(result)
    assert result["device"] == "cpu" and result["batch_size"] == 8
    for key in ("end_to_end_pairs_per_s", "model_only_pairs_per_s", "timm_pairs_per_s", "end_to_end_tflops"):
        assert result[key] > 0, key
    assert result["ratio_end_to_end_vs_model_only"] == pytest.approx(
        result["end_to_end_pairs_per_s"] / result["model_only_pairs_per_s"], rel=0.01)
    assert 1 <= result["mean_patches"] <= result["mean_padded_patches"] <= 16


def test_bench_measures_a_stage_configs_shape(tmp_path):
    # --config: the model and render configs of a stage (here a run's config.json), not a preset's.
    from pixelrep.train.config import save_json
    from tests.train.helpers import tiny_stage, write_pairs

    stage = tiny_stage(write_pairs(tmp_path / "pairs.jsonl"), model=ModelConfig.from_preset("tiny", max_patches=24,
                                                                                            patches_per_token=3),
                       render=RenderConfig(max_patches=24, word_align=3))
    save_json(stage, tmp_path / "config.json")
    path = tmp_path / "sts.jsonl"
    s = sentences(40)
    path.write_text("".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in zip(s[:20], s[20:])))
    result = bench_train(config=str(tmp_path / "config.json"), device="cpu", batch_size=8, steps=1, repeats=1,
                         workers=0, data=str(path))
    assert result["preset"] == "config:tiny" and result["max_patches"] == 24 and result["end_to_end_pairs_per_s"] > 0
