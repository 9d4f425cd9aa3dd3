"""Build the word lists of `pixelrep.render.segment` (render/words/) from ../shared/data.

    python scripts/build_wordlists.py [--data-dir ../shared/data]

en.txt.gz: English words, most frequent first (lower-cased letter runs, an apostrophe inside kept, seen
at least 3 times), counted over corpus/english-sentences.txt.gz and STS-B en train: the segmenter's
costs. gate-{lang}.txt.gz: the 5,000 most frequent words of each other Latin-script corpus language,
which tell an English text from one the English list would cut wrongly. Deterministic: the same data
gives the same bytes (ties broken alphabetically, gzip without a timestamp).
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
from pathlib import Path

from pixelrep.render.segment import GATE_LANGUAGES

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
MIN_COUNT = 3
GATE_WORDS = 5000
OUT = Path(__file__).resolve().parent.parent / "render" / "words"


def count(lines) -> collections.Counter:
    counts = collections.Counter()
    for line in lines:
        counts.update(w.lower() for w in WORD.findall(line))
    return counts


def ranked(counts: collections.Counter, min_count: int = 1) -> list[str]:
    return [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]


def write(path: Path, words: list[str]) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(("\n".join(words) + "\n").encode("utf-8"))
    print(f"{path}: {len(words):,} words")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    data = Path(parser.parse_args().data_dir)
    with gzip.open(data / "corpus" / "english-sentences.txt.gz", "rt", encoding="utf-8") as f:
        english = count(f)
    with open(data / "sts" / "stsb" / "en" / "train.jsonl", encoding="utf-8") as f:
        english += count(s for line in f for s in (json.loads(line)["sentence1"], json.loads(line)["sentence2"]))
    OUT.mkdir(exist_ok=True)
    write(OUT / "en.txt.gz", ranked(english, MIN_COUNT))
    for lang in GATE_LANGUAGES:
        with gzip.open(data / "corpus" / f"sentences-{lang}.txt.gz", "rt", encoding="utf-8") as f:
            write(OUT / f"gate-{lang}.txt.gz", ranked(count(f))[:GATE_WORDS])


if __name__ == "__main__":
    main()
