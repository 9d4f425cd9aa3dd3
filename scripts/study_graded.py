"""The graded-pairs study (docs/study.md, sections 16-17): which graded pairs the export's fine-tune learns from.

    python scripts/study_graded.py start RUN_MODEL OUT         # the export before its graded step (removal only)
    python scripts/study_graded.py arm START OUT --pairs gold|silver|both [--translations N] [--steps N] [--seed S]
    python scripts/study_reading.py dev OUT --visual --scripts  # then score it on all of STS-B dev
    python scripts/study_graded.py language-directions START   # is the en-X gap a language subspace?

Gold pairs are STS-B en train's (human scores). Silver pairs are new couples of the same train sentences,
scored by a teacher's cosine (Thakur et al. 2021, "Augmented SBERT": in-domain sentences, sampled by the
teacher's nearest neighbours so that the couples span the whole range of similarity). --translations N:
graded pairs across languages from the first N translation pairs of each language (the recipe's
translation_silver_pairs). Silver scores are mapped by rank onto the gold scores' distribution, so that
one CoSENT batch can hold both kinds. Test splits are never read here.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def start(run_model: str, out: str) -> None:
    from pixelrep.aligned import AlignedPixelEncoder
    from pixelrep.train.configs import default as recipe

    encoder = AlignedPixelEncoder.from_pretrained(run_model).to_pixel_encoder()
    encoder = encoder.remove_common_directions(recipe.common_directions_texts(), recipe.COMMON_DIRECTIONS,
                                               whitening=recipe.COMMON_WHITENING, show_progress_bar=True)
    encoder.save_pretrained(out)


def held_out_rows(total: int, count: int) -> set[int]:
    """`count` rows evenly spread over `total` (STS-B's rows come in genre blocks)."""
    return {int((k + 0.5) * total / count) for k in range(count)}


def held_out(models: list[str], count: int) -> None:
    """Spearman x100 on `count` of STS-B en train's pairs (held_out_rows), for arms trained with --hold-out
    count: a second selection set beside STS-B dev, from train's own mix of genres."""
    from pixelrep.eval.models import load_model
    from pixelrep.eval.sts import evaluate_sts
    from pixelrep.train.configs import default as recipe

    gold = list(zip(*recipe.graded_pairs()))
    s1, s2, scores = zip(*[gold[i] for i in sorted(held_out_rows(len(gold), count))])
    for name in models:
        score = evaluate_sts(load_model(name)[0], list(s1), list(s2), list(scores))["spearman"]
        print(json.dumps({"model": name, f"train held-out {count}": round(score, 1)}), flush=True)


def language_directions(start_model: str, per_language: int = 1500) -> None:
    """Project out the top principal directions of translation differences (vector of the translation less
    vector of its English side, unit vectors, the first `per_language` training pairs of each language) and
    score all of STS-B dev en and en-{de,es,fr,it,nl}, and held-out retrieval, at several counts."""
    import numpy as np
    from scipy.stats import spearmanr

    from pixelrep.encoder import PixelEncoder
    from pixelrep.eval.data import load_sts_file
    from pixelrep.files import data_path
    from pixelrep.train.configs import default as recipe

    encoder = PixelEncoder.from_pretrained(start_model)

    def unit_vectors(texts):
        return encoder.encode(list(texts), batch_size=128, show_progress_bar=False).astype(np.float64)

    files = recipe.data_files()
    rows = [r for path in files["parallel"] + files["parallel_more"] for r in recipe.read_pairs(path)[:per_language]]
    _, _, directions = np.linalg.svd(unit_vectors(r[1] for r in rows) - unit_vectors(r[0] for r in rows),
                                     full_matrices=False)
    en = load_sts_file(data_path("sts/stsb/en/dev.jsonl"))
    first, second = unit_vectors(en.sentence1), unit_vectors(en.sentence2)
    others = [unit_vectors(load_sts_file(data_path(f"sts/stsb/{lang}/dev.jsonl")).sentence2)
              for lang in ("de", "es", "fr", "it", "nl")]
    held_out = [(unit_vectors(r[0] for r in pairs), unit_vectors(r[1] for r in pairs))
                for pairs in map(recipe.read_pairs, files["held_out"])]
    for count in (0, 1, 2, 4, 8, 16, 32, 64):
        keep = np.eye(directions.shape[1]) - directions[:count].T @ directions[:count]

        def unit(x):
            x = x @ keep
            return x / np.linalg.norm(x, axis=1, keepdims=True)

        def spearman(a, b):
            return 100 * spearmanr((unit(a) * unit(b)).sum(1), en.score).correlation

        out = {"directions": count, "en": spearman(first, second),
               "en-X": float(np.mean([spearman(first, other) for other in others]))}
        for lang, (a, b) in zip(recipe.MORE_LANGUAGES, held_out):
            similarity, gold = unit(a) @ unit(b).T, np.arange(len(a))
            out[f"en-{lang} retrieval"] = 50 * ((similarity.argmax(1) == gold).mean() + (similarity.argmax(0) == gold).mean())
        print(json.dumps({k: v if k == "directions" else round(float(v), 2) for k, v in out.items()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("start")
    s.add_argument("run_model")
    s.add_argument("out")
    a = sub.add_parser("arm")
    a.add_argument("start")
    a.add_argument("out")
    a.add_argument("--pairs", choices=("gold", "silver", "both"), default="both")
    a.add_argument("--translations", type=int, default=0,
                   help="add graded pairs across languages from this many translation pairs per language")
    a.add_argument("--steps", type=int, default=400)
    a.add_argument("--lr", type=float, default=2e-5)
    a.add_argument("--anchor", type=float, default=100.0)
    a.add_argument("--seed", type=int, default=0, help="the fine-tune's seed (batch order)")
    a.add_argument("--hold-out", type=int, default=0, help="leave N of STS-B en train's gold pairs out (see held-out)")
    a.add_argument("--teacher", default="e5")
    a.add_argument("--both-translated", action="store_true", help="translation couples also with both sides translated")
    a.add_argument("--neighbours", type=int, default=4, help="silver couples per sentence from its nearest neighbours")
    a.add_argument("--random", type=int, default=1, help="silver couples per sentence with a random other one")
    h = sub.add_parser("held-out")
    h.add_argument("models", nargs="+")
    h.add_argument("--hold-out", type=int, default=1000)
    d = sub.add_parser("language-directions")
    d.add_argument("start")
    args = parser.parse_args()
    if args.command == "held-out":
        held_out(args.models, args.hold_out)
        return
    if args.command == "language-directions":
        language_directions(args.start)
        return
    if args.command == "start":
        start(args.run_model, args.out)
        return

    from pixelrep.encoder import PixelEncoder
    from pixelrep.train.configs import default as recipe
    from pixelrep.train.graded import finetune_graded

    gold = list(zip(*recipe.graded_pairs()))
    held = held_out_rows(len(gold), args.hold_out)
    s1, s2, scores = (list(x) for x in zip(*[row for i, row in enumerate(gold) if i not in held]))
    pairs = ([], [], [])
    if args.pairs in ("gold", "both"):
        pairs = (s1, s2, scores)
    if args.pairs in ("silver", "both"):
        silver = recipe.silver_pairs(teacher=args.teacher, neighbours=args.neighbours, random_couples=args.random)
        pairs = tuple(a + list(b) for a, b in zip(pairs, silver))
    if args.translations:
        cross = recipe.translation_silver_pairs(per_language=args.translations, both_translated=args.both_translated)
        pairs = tuple(a + list(b) for a, b in zip(pairs, cross))
    print(f"{len(pairs[0]):,} graded pairs ({args.pairs})", file=sys.stderr)
    encoder = PixelEncoder.from_pretrained(args.start)
    tuned = finetune_graded(encoder, *pairs, steps=args.steps, batch_size=recipe.GRADED_BATCH_SIZE, lr=args.lr,
                            anchor_weight=args.anchor, seed=args.seed)
    tuned.save_pretrained(args.out)
    Path(args.out, "study-arm.json").write_text(json.dumps(vars(args), indent=1))


if __name__ == "__main__":
    main()
