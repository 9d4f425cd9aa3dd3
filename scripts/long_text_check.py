"""Do long texts embed meaningfully? STS-B dev pairs concatenated into paragraphs.

    python scripts/long_text_check.py [--model default] [--per-text 16]

Consecutive STS-B en dev pairs are joined k at a time: the k first sentences make one paragraph, the
k second sentences the other (~1,000 characters at k = 16), and the pair's gold score is the mean of
the k scores. Spearman x100 over the paragraph pairs, for the model as is and for the same model
with its canvas cut to 64 patches (what the first models read), beside word matching. Dev split only.
"""
from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from pixelrep import PixelEncoder
from pixelrep.eval.data import load_sts_file
from pixelrep.eval.models import BagOfWords
from pixelrep.eval.sts import evaluate_sts
from pixelrep.files import data_path


def paragraphs(k: int):
    dev = load_sts_file(data_path("sts/stsb/en/dev.jsonl"))
    n = len(dev.score) // k * k
    a = [" ".join(dev.sentence1[i:i + k]) for i in range(0, n, k)]
    b = [" ".join(dev.sentence2[i:i + k]) for i in range(0, n, k)]
    gold = np.asarray(dev.score[:n]).reshape(-1, k).mean(1)
    return a, b, gold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--per-text", type=int, default=16)
    args = parser.parse_args()
    a, b, gold = paragraphs(args.per_text)
    encoder = PixelEncoder.from_pretrained(args.model)
    cut = PixelEncoder(encoder.model_config, dataclasses.replace(encoder.render_config, max_patches=64))
    cut.load_state_dict(encoder.state_dict())
    report = {"pairs": len(gold), "sentences_per_text": args.per_text,
              "mean_chars": round(float(np.mean([len(t) for t in a + b])), 1),
              "mean_patches": round(float(np.mean([encoder.renderer.render(t).num_patches for t in a + b])), 1)}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the 64-patch model cuts every paragraph, by design here
        for name, model in (("model", encoder), ("model cut at 64 patches", cut), ("bow", BagOfWords())):
            report[name] = round(evaluate_sts(model, a, b, gold)["spearman"], 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
