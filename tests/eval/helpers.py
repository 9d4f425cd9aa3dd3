"""Test doubles for eval: a deterministic text encoder and STS rows."""
import json
import zlib
from pathlib import Path

import numpy as np


class HashingEncoder:
    """Bag of character trigrams hashed into 64 dims: similar strings get similar vectors, no weights."""

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.calls: list[list[str]] = []

    def encode(self, sentences, batch_size=64, show_progress_bar=None, **kwargs):
        self.calls.append(list(sentences))
        out = np.zeros((len(sentences), self.dim))
        for i, s in enumerate(sentences):
            padded = f"  {s.lower()} "
            for j in range(len(padded) - 2):
                out[i, zlib.crc32(padded[j:j + 3].encode()) % self.dim] += 1.0
        return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


BASE_PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A woman cuts an onion.", 4.2),
    ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.4),
    ("Two kids are swimming.", "Children swim in a pool.", 3.5),
    ("The stock market fell today.", "A man is eating pasta.", 0.0),
    ("A plane is taking off.", "An airplane departs.", 4.0),
    ("Someone is cooking rice.", "A person plays the piano.", 0.6),
    ("The girl is riding a horse.", "A girl rides a horse.", 5.0),
]


def stsb_rows(lang: str) -> list[dict]:
    # "Translations": the same rows with a language tag, so alignment is checkable.
    return [dict(sentence1=f"[{lang}] {a}", sentence2=f"[{lang}] {b}", score=s) for a, b, s in BASE_PAIRS]
