"""Small synthetic training data and stages for the train tests (tiny model, seconds on CPU)."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from pixelrep.config import ModelConfig
from pixelrep.render import RenderConfig
from pixelrep.train.config import DataConfig, OptimConfig, RunConfig, StageConfig

RUN_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}

WORDS = ("red green blue small large old new quick slow happy dog cat bird horse man woman child runs jumps "
         "sleeps eats reads plays sings park river house garden street morning evening").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 7))) for _ in range(n)]


def write_pairs(path, n: int = 96, seed: int = 0):
    """jsonl with `en` a sentence and `xx` its words reversed in capitals (a stand-in translation)."""
    with open(path, "w") as f:
        for s in sentences(n, seed):
            f.write(json.dumps({"en": s, "xx": " ".join(reversed(s.split())).upper()}) + "\n")
    return path


def write_nli(path, n: int = 64, seed: int = 0):
    """jsonl NLI rows: each premise entails its capitalised copy; every other one has a contradiction."""
    with open(path, "w") as f:
        for i, s in enumerate(sentences(n, seed)):
            f.write(json.dumps({"premise": s, "hypothesis": s.upper(), "label": "entailment"}) + "\n")
            if i % 2:
                f.write(json.dumps({"premise": s, "hypothesis": f"no {s}", "label": "contradiction"}) + "\n")
    return path


def tiny_stage(data_file, **changes) -> StageConfig:
    """A stage over `data_file` (write_pairs layout) with the tiny preset, 8 steps of 8 pairs. `changes`
    may name run controls too (checkpoint_every=2): they go into stage.run."""
    stage = StageConfig(
        name="tiny",
        model=ModelConfig.from_preset("tiny", max_patches=16),
        render=RenderConfig(max_patches=16),
        data=DataConfig(sources=str(data_file), pairs="multilingual", columns={"source": "en", "target": "xx"}),
        optim=OptimConfig(lr=2e-3, warmup_steps=2, max_steps=8, batch_size=8),
        run=RunConfig(log_every=1, workers=0), seed=0)
    controls = {k: changes.pop(k) for k in [k for k in changes if k in RUN_FIELDS]}
    return dataclasses.replace(stage, run=dataclasses.replace(stage.run, **controls), **changes)


def tiny_lm(folder) -> str:
    """A random 2-layer BERT (hidden 32) whose WordPiece vocabulary spells any lowercase text, saved as a hub model."""
    import torch
    from transformers import BertConfig, BertModel

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters,
                                *("##" + c for c in letters)]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run ~50x slower with two threads on shared, busy cores; one thread, restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def heads_and_targets(config, width: int, teachers, pooled_dim: int | None = None):
    """AlignmentHeads sized for `teachers` and the TeacherTargets that feed them, as the loop builds them."""
    from pixelrep.train.align import AlignmentHeads, TeacherTargets

    targets = TeacherTargets(config, teachers=teachers)
    return AlignmentHeads(config, width=width, pooled_dim=pooled_dim, **targets.dims), targets
