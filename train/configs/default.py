"""The bundled default model: all-MiniLM-L6-v2 distilled into a small pixel encoder, sized for a CPU.

One leapfrog stage from random weights, teacher-distillation losses only, alternating blocks of
- visual pairs: an English sentence and its typo'd view (10% of letters), both pulled to the teacher's
  embedding of the clean sentence: the teacher's meaning, read robustly from pixels;
- multilingual pairs: a sentence and its translation (10 languages), both pulled to the teacher's
  embedding of the English side (Reimers & Gurevych 2020), and to each other;
with the CG-VLM token term at a small weight. Model selection on STS-B en dev.

The sentence-level training files are derived from ../shared/data on first use (prepare_data):
the parallel data are aligned paragraphs, and a 64-patch strip shows only the start of a paragraph
while the teacher would read all of it, so paragraphs are split into sentences and kept where both
sides split into the same number of sentences.

After training, `python -m pixelrep.train.configs.default --export RUN_DIR/best DEST` folds the
linear sentence projector into the encoder's own projection, so `encode()` returns vectors in the
teacher's 384-d space.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
from pathlib import Path

from pixelrep.config import ModelConfig
from pixelrep.pretrained import atomic_write_bytes
from pixelrep.render import RenderConfig
from pixelrep.train.align import AlignConfig
from pixelrep.train.config import DataConfig, OptimConfig, StageConfig, data_path

LANGUAGES = ("de", "fr", "it", "es", "nl", "pt", "pl", "ru", "zh", "ja")
PAIRS_PER_LANGUAGE = 12_000
CORPUS_SENTENCES = 20_000
DERIVED = Path(os.environ.get("PIXELREP_RUNS", "runs")) / "default-data"

# A sentence ends at . ! ? (or their CJK forms) followed by space/end and, in spaced scripts, a capital.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^\sa-z])|(?<=[。！？])")


def split_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def prepare_data(out: Path = DERIVED, seed: int = 0) -> tuple[str, tuple[str, ...]]:
    """Write english.jsonl ({"text"}) and en-xx.tsv sentence pairs under `out` (once); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    english_path = out / "english.jsonl"
    parallel_paths = tuple(out / f"en-{lang}.tsv" for lang in LANGUAGES)
    english: set[str] = set()
    for path in parallel_paths:
        if path.exists():
            continue
        lang = path.stem.split("-")[1]
        pairs, seen = [], set()
        with gzip.open(data_path(f"parallel/en-{lang}.tsv.gz"), "rt", encoding="utf-8") as f:
            next(f)  # header
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) != 2:
                    continue
                en, xx = split_sentences(cols[0]), split_sentences(cols[1])
                if len(en) != len(xx):
                    continue
                for a, b in zip(en, xx):
                    if 15 <= len(a) <= 160 and 5 <= len(b) <= 200 and a not in seen:
                        seen.add(a)
                        pairs.append((a, b))
        rng.shuffle(pairs)
        atomic_write_bytes(path, "".join([f"en\t{lang}\n"] + [f"{a}\t{b}\n" for a, b in pairs[:PAIRS_PER_LANGUAGE]]).encode())
    if not english_path.exists():
        with open(data_path("sts/stsb/en/train.jsonl"), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                english.update((row["sentence1"], row["sentence2"]))
        with open(data_path("nli/sick-train.jsonl"), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                english.update((row["premise"], row["hypothesis"]))
        corpus = []
        with gzip.open(data_path("corpus/debian-descriptions-en.jsonl.gz"), "rt", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                for paragraph in doc["paragraphs"][:1]:
                    corpus += [s for s in split_sentences(paragraph)[:2] if 20 <= len(s) <= 160]
        rng.shuffle(corpus)
        english.update(corpus[:CORPUS_SENTENCES])
        atomic_write_bytes(english_path, "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in sorted(english)).encode())
    return str(english_path), tuple(map(str, parallel_paths))


def get_config() -> StageConfig:
    english, parallel = prepare_data()
    return StageConfig(
        name="default",
        # Three patches per token (as the `small` preset): a third of the positions, so 3x cheaper
        # to run, and at equal steps its training loss was lower than one patch per token's.
        model=ModelConfig(width=256, depth=6, heads=4, mlp_ratio=4.0, max_patches=64, patches_per_token=3),
        render=RenderConfig(max_patches=64),
        data=DataConfig(sources=(english,), pairs="visual", typo_rate=0.1),
        leapfrog_with=DataConfig(sources=parallel, pairs="multilingual", columns={"source": "en"}),
        leapfrog_every=100,
        # Distillation only: a pair InfoNCE between a sentence and its typo'd view is solved by matching
        # pixels and pulled STS-B dev below zero in a first run; the teacher's meaning is the signal here.
        contrastive_weight=0.0,
        align=AlignConfig(token_weight=0.1, sentence_weight=1.0, sentence_loss="infonce", cross_weight=0.2,
                          projector="linear", cache_dir=str(DERIVED.parent / "teacher-cache")),
        optim=OptimConfig(lr=5e-4, weight_decay=0.01, warmup_steps=100, schedule="cosine", max_steps=4000,
                          batch_size=64),
        dev=data_path("sts/stsb/en/dev.jsonl"),
        dev_limit=500,
        eval_every=250,
        checkpoint_every=100,
        workers=1,
        seed=0,
    )


def export(run_model: str, destination: str) -> None:
    """Fold the trained model's sentence projector into the encoder and save it as a plain PixelEncoder."""
    from pixelrep.teacher import AlignedPixelEncoder

    encoder = AlignedPixelEncoder.from_pretrained(run_model).to_pixel_encoder()
    encoder.save_pretrained(destination, metadata={
        "trained": True,
        "description": "pixelrep default: all-MiniLM-L6-v2 distilled into a 6-layer pixel encoder "
                       "(train/configs/default.py); vectors live in MiniLM's 384-d space",
        "recipe": "pixelrep train default; python -m pixelrep.train.configs.default --export runs/default/best DEST",
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Export a model trained with this recipe as the bundled default.")
    parser.add_argument("--export", nargs=2, metavar=("RUN_MODEL", "DEST"), required=True)
    args = parser.parse_args()
    export(*args.export)
