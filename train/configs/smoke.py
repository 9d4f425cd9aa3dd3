"""Smoke: a tiny model trained in seconds on CPU from the offline data, end to end (tests, CI).

NLI pairs from SICK with hard negatives, STS-B dev subset for model selection. No training head:
with 80 steps from random weights the pooled embedding learns faster without one.
"""
from pixelrep.config import ModelConfig
from pixelrep.files import data_path
from pixelrep.render import RenderConfig
from pixelrep.train.config import DataConfig, HeadConfig, OptimConfig, RunConfig, StageConfig


def get_config() -> StageConfig:
    return StageConfig(
        name="smoke",
        model=ModelConfig.from_preset("tiny", max_patches=32),
        render=RenderConfig(max_patches=32),
        data=DataConfig(sources=data_path("nli/sick-train.jsonl"), pairs="reasoning"),
        optim=OptimConfig(lr=2e-3, warmup_steps=5, max_steps=80, batch_size=32),
        head=HeadConfig(kind="none"),
        dev=data_path("sts/stsb/en/dev.jsonl"),
        dev_limit=300,
        seed=0,
        run=RunConfig(eval_every=20, checkpoint_every=20, log_every=5, workers=1),
    )
