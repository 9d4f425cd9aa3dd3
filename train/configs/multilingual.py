"""Stage 3, multilingual: a sentence and its human translation are positives (en-de, en-fr, en-it, ...).

Starts from the reasoning stage's best model. Model selection stays on English STS-B dev.
"""
import dataclasses

from pixelrep.files import data_path
from pixelrep.train.config import DataConfig, StageConfig
from pixelrep.train.configs import reasoning

LANGUAGES = ("de", "fr", "it", "es", "nl", "pl", "pt", "ru", "zh", "ja")


def parallel_data() -> DataConfig:
    """Debian description translations, English side as source, the other column as target."""
    return DataConfig(sources=tuple(data_path(f"parallel/en-{lang}.tsv.gz") for lang in LANGUAGES),
                      pairs="multilingual", columns={"source": "en"})


def get_config() -> StageConfig:
    base = reasoning.get_config()
    return dataclasses.replace(
        base,
        name="multilingual",
        init_from="runs/reasoning/best",
        data=parallel_data(),
        optim=dataclasses.replace(base.optim, lr=5e-5, warmup_steps=100, max_steps=2000, batch_size=256),
        run=dataclasses.replace(base.run, eval_every=250, checkpoint_every=250),
        seed=3,
    )
