"""Stage 2, reasoning: NLI premise <-> entailed hypothesis, a contradiction as hard negative.

Starts from the topical stage's best model. Offline data: SICK (4,500 pairs); at full scale use
sentence-transformers/all-nli (subset pair-class), see README, "Full-scale recipe (sketch)".
"""
import dataclasses

from pixelrep.files import data_path
from pixelrep.train.config import DataConfig, StageConfig
from pixelrep.train.configs import topical


def get_config() -> StageConfig:
    base = topical.get_config()
    return dataclasses.replace(
        base,
        name="reasoning",
        init_from="runs/topical/best",
        data=DataConfig(sources=data_path("nli/sick-train.jsonl"), pairs="reasoning"),
        optim=dataclasses.replace(base.optim, lr=3e-5, warmup_steps=20, max_steps=300, batch_size=128),
        run=dataclasses.replace(base.run, eval_every=50, checkpoint_every=50),
        seed=2,
    )
