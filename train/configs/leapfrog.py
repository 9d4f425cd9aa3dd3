"""Stage 4, leapfrog (Pixel-Linguist): alternate multilingual and reasoning blocks, ending on reasoning.

Starts from the multilingual stage's best model; `data` is the reasoning set (it gets the last
block), `leapfrog_with` the parallel set.
"""
import dataclasses

from pixelrep.train.config import StageConfig
from pixelrep.train.configs import multilingual, reasoning


def get_config() -> StageConfig:
    base = reasoning.get_config()
    return dataclasses.replace(
        base,
        name="leapfrog",
        init_from="runs/multilingual/best",
        leapfrog_with=multilingual.parallel_data(),
        leapfrog_every=100,
        optim=dataclasses.replace(base.optim, lr=3e-5, warmup_steps=20, max_steps=800, batch_size=128),
        run=dataclasses.replace(base.run, eval_every=100, checkpoint_every=100),
        seed=4,
    )
