"""Stage 1, topical: a document's title and each paragraph, and its consecutive paragraphs, are positives.

Starts from the visual stage's best model.
"""
import dataclasses

from pixelrep.files import data_path
from pixelrep.train.config import DataConfig, StageConfig
from pixelrep.train.configs import visual


def get_config() -> StageConfig:
    base = visual.get_config()
    return dataclasses.replace(
        base,
        name="topical",
        init_from="runs/visual/best",
        model=None,     # the checkpoint's
        render=None,
        data=DataConfig(sources=data_path("corpus/debian-descriptions-en.jsonl.gz"), pairs="topical"),
        optim=dataclasses.replace(base.optim, lr=5e-5, max_steps=2000),
        seed=1,
    )
