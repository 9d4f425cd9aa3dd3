"""Stage 0, visual: a sentence and its perturbed view (typos, word shuffles) are positives.

Starts from random weights with the `small` preset on the offline data (Debian package titles);
for the full-scale recipe start from PIXEL (init_from="Team-PIXEL/pixel-base", model/render None)
with a hub sentence set, see README, "Full-scale recipe (sketch)".
"""
from pixelrep.config import ModelConfig
from pixelrep.files import data_path
from pixelrep.render import RenderConfig
from pixelrep.train.config import DataConfig, OptimConfig, RunConfig, StageConfig


def get_config() -> StageConfig:
    return StageConfig(
        name="visual",
        init_from=None,
        model=ModelConfig.from_preset("small", max_patches=64),
        render=RenderConfig(max_patches=64),
        data=DataConfig(sources=data_path("corpus/debian-descriptions-en.jsonl.gz"), pairs="visual",
                        columns={"text": "title"}, typo_rate=0.1, shuffle_prob=0.3, shuffle_mode="local"),
        optim=OptimConfig(lr=1e-4, weight_decay=0.01, schedule="cosine", warmup_steps=100, max_steps=2000,
                          batch_size=256),
        dev=data_path("sts/stsb/en/dev.jsonl"),
        seed=0,
        run=RunConfig(eval_every=250, checkpoint_every=250),
    )
