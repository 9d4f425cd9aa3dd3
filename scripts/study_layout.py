"""docs/study.md, sections 24 and 26: lines drawn as continuous text, read as given and laid out in the model's cells.

Per language, STS-B (dev or test) drawn by the model's own renderer with word_align=0 (the same font, size and front
end), then English in other typefaces (system fonts, skipped where absent; with en among the languages): encode() for
comparison, encode_images with layout="cells" (as given) and "auto" (laid out; pixelrep.render.cells). With
--retrieval, translation retrieval on the held-out en-{ar,tr,ko} pairs (no STS data in those languages; the recipe
never trains on them), the other side read the same three ways. JSON on stdout.

    python scripts/study_layout.py --split dev [--model default] [--languages en de ru zh] [--retrieval ar ko] > out.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

import numpy as np
import torch
from scipy.stats import spearmanr

from pixelrep import PixelEncoder
from pixelrep.eval.data import load_sts_file
from pixelrep.files import data_path
from pixelrep.render import Renderer

LANGUAGES = ("en", "de", "es", "fr", "pl", "ru", "zh", "ja")
TYPEFACES = {"DejaVu Sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
             "DejaVu Serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"}


def _spearman(a: np.ndarray, b: np.ndarray, gold) -> float:
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return round(100 * float(spearmanr(cosine, gold).correlation), 2)


def _lines(renderer: Renderer, texts) -> list[np.ndarray]:
    return [renderer.text_area(r) for r in renderer.render_batch(list(texts))]


def _read(encoder: PixelEncoder, renderer: Renderer, pairs) -> dict:
    first, second = _lines(renderer, pairs.sentence1), _lines(renderer, pairs.sentence2)
    return {layout: _spearman(encoder.encode_images(first, layout=layout, snap_to_grid=False),
                              encoder.encode_images(second, layout=layout, snap_to_grid=False), pairs.score)
            for layout in ("cells", "auto")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--model", default="default")
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--retrieval", nargs="*", default=[], help="held-out translation pairs to retrieve: ar tr ko")
    args = parser.parse_args()
    encoder = PixelEncoder.from_pretrained(args.model)
    continuous = Renderer(dataclasses.replace(encoder.render_config, word_align=0))
    out = {"split": args.split, "model": args.model, "threads": torch.get_num_threads(), "languages": {}, "typefaces": {}}
    for lang in args.languages:
        pairs = load_sts_file(data_path(f"sts/stsb/{lang}/{args.split}.jsonl"))
        encoded = _spearman(encoder.encode(list(pairs.sentence1)), encoder.encode(list(pairs.sentence2)), pairs.score)
        read = _read(encoder, continuous, pairs)
        out["languages"][lang] = {"encode": encoded, "continuous, as given": read["cells"], "continuous, in cells": read["auto"]}
    if args.retrieval:
        from pixelrep.train.configs.default import MORE_LANGUAGES, data_files, read_pairs
        from study_reading import retrieval_accuracy   # this script's folder is on sys.path

        held_out = dict(zip(MORE_LANGUAGES, data_files()["held_out"]))
        out["retrieval"] = {}
        for lang in args.retrieval:
            rows = read_pairs(held_out[lang])
            english = encoder.encode([r[0] for r in rows])
            lines = _lines(continuous, [r[1] for r in rows])
            out["retrieval"][f"en-{lang}"] = {
                "pairs": len(rows), "encode": round(retrieval_accuracy(english, encoder.encode([r[1] for r in rows])), 2),
                **{name: round(retrieval_accuracy(english, encoder.encode_images(lines, layout=layout, snap_to_grid=False)), 2)
                   for name, layout in (("continuous, as given", "cells"), ("continuous, in cells", "auto"))}}
    english = load_sts_file(data_path(f"sts/stsb/en/{args.split}.jsonl"))
    for name, font in TYPEFACES.items() if "en" in args.languages else ():
        if not os.path.exists(font):
            continue
        read = _read(encoder, Renderer(dataclasses.replace(encoder.render_config, word_align=0, fonts=(font,))), english)
        aligned = Renderer(dataclasses.replace(encoder.render_config, fonts=(font,)))
        drawn = _spearman(encoder.encode_images(_lines(aligned, english.sentence1), snap_to_grid=False),
                          encoder.encode_images(_lines(aligned, english.sentence2), snap_to_grid=False), english.score)
        out["typefaces"][name] = {"word-aligned drawing": drawn, "continuous, as given": read["cells"],
                                  "continuous, in cells": read["auto"]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
