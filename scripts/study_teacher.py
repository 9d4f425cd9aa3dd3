"""The teacher from the start (docs/study.md, section 32): USE-m3 against multilingual-e5-small, each
distilled into a fresh student by the recipe's first phase, at equal student CPU.

    python scripts/study_teacher.py data OUT                  # a seeded sample of the first phase's texts
    python scripts/study_teacher.py vectors OUT --part 0/2    # e5's vectors of its targets, into the cache
    python scripts/study_teacher.py vectors OUT --part 1/2    #   (one process per core, side by side)
    python scripts/study_teacher.py train OUT ARM [--seed S]  # one arm (use-m3 | e5), one CPU thread
    python scripts/study_teacher.py train OUT ARM --second-phase   # its final/ on, as the lineage's 2nd phase
    python scripts/study_teacher.py recipe-vectors --part 0/2 # e5's vectors of the whole recipe's targets

e5 reads ~23 sentences per CPU-second on a CPU without AVX-512 (USE-m3 ~1,200), so its vectors are computed
once, ahead, for a fixed sample of the phase's texts, and both arms train on that same sample: equal data,
equal steps, and equal student CPU (the teacher costs nothing during training once its vectors are cached).
Scored with `python scripts/study_reading.py dev OUT/ARM/final OUT/ARM/best`; test splits are never read.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ENGLISH, LEXICON, PER_LANGUAGE = 24_000, 24_000, 2_400
ARMS = ("use-m3", "e5")
STEPS = 1_000   # the recipe's first phase, as the bundle's lineage began


def sample(src: Path, dest: Path, count: int, header: bool) -> None:
    """`count` rows of `src` drawn without replacement (seed 0), in their file order; a header line kept."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    head, rows = (lines[:1], lines[1:]) if header else ([], lines)
    keep = sorted(random.Random(0).sample(range(len(rows)), min(count, len(rows))))
    dest.write_text("".join(head + [rows[i] for i in keep]), encoding="utf-8")


def pilot_config(out: Path):
    """The recipe's first phase (`pixelrep train default`) on the sample in `out`/data."""
    from pixelrep.train.configs import default as recipe

    cfg = recipe.get_config()

    def on_sample(data):
        return replace(data, sources=tuple(str(out / "data" / Path(s).name) for s in data.sources))

    return replace(cfg, data=on_sample(cfg.data), leapfrog_with=on_sample(cfg.leapfrog_with))


def target_texts(*data) -> list[str]:
    """The distinct alignment targets (train.data.Pairs.target_texts, as the trainer pulls them) of every pair of
    the DataConfigs `data`, sorted."""
    from pixelrep.train.data import load_pairs

    texts: set[str] = set()
    for d in data:
        pairs = load_pairs(d)
        texts.update(pairs.target_texts(range(len(pairs))))
    return sorted(texts)


def make_data(out: Path) -> None:
    from pixelrep.train.configs import default as recipe

    cfg, pilot = recipe.get_config(), pilot_config(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for src, dest, count in zip(cfg.data.sources, pilot.data.sources, (ENGLISH, LEXICON)):
        sample(Path(src), Path(dest), count, header=False)
    for src, dest in zip(cfg.leapfrog_with.sources, pilot.leapfrog_with.sources):
        sample(Path(src), Path(dest), PER_LANGUAGE, header=True)
    print(f"sampled into {out / 'data'}")


def embed_share(model, texts: list[str], part: str, desc: str) -> None:
    """The teacher `model`'s vectors of share `part` (k/n: every n-th text from the k-th) of `texts`, into its
    disk cache, 512 at a time; texts already cached are skipped, so a stopped run resumes."""
    from tqdm import tqdm

    k, n = map(int, part.split("/"))
    texts = texts[k::n]
    if model.cache is not None and texts:
        texts = [t for t, cached in zip(texts, model.cache.get(texts)[1]) if not cached]
    for start in tqdm(range(0, len(texts), 512), desc=f"{desc} {part}", unit="batch"):
        model.sentence_embeddings(texts[start: start + 512])


def vectors(out: Path, teacher: str, part: str) -> None:
    """Teacher vectors of every target text of the pilot (visual texts, English sides), share `part` (k/n)."""
    from pixelrep.teachers.text import load_teacher

    cfg = pilot_config(out)
    texts = target_texts(cfg.data, cfg.leapfrog_with)
    embed_share(load_teacher(teacher, cache_dir=cfg.align.cache_dir), texts, part, teacher)


# The recipe's training texts in the order the lineage's phases first need them (BY_HAND, then default7/8's
# parallel_more); lexicon-en and sentences-en, which the later phases train on, are parts of lexicon and sentences.
RECIPE_ORDER = ("english", "lexicon", "parallel", "sentences", "parallel_more")


def recipe_vectors(teacher: str, part: str) -> None:
    """A teacher's vectors of every target text of the whole recipe (train/configs/default.py, the files
    prepare() writes), share `part` (k/n), into the recipe's teacher cache: what the lineage with this teacher
    needs before it trains at student speed. Resumable: texts already cached are skipped."""
    from pixelrep.teachers.text import load_teacher
    from pixelrep.train.configs import default as recipe

    files, cfg = recipe.data_files(), recipe.get_config()
    model = load_teacher(teacher, cache_dir=cfg.align.cache_dir)
    seen: set[str] = set()
    for name in RECIPE_ORDER:
        pairs = not isinstance(files[name], str)   # en-xx.tsv tables are read as the translation blocks read them
        data = replace(cfg.leapfrog_with if pairs else cfg.data, sources=files[name] if pairs else (files[name],))
        texts = [t for t in target_texts(data) if t not in seen]
        seen.update(texts)
        embed_share(model, texts, part, f"{teacher} {name}")


def train(out: Path, arm: str, steps: int, seed: int, second_phase: bool = False) -> None:
    """One arm: the first phase (OUT/ARM-sSEED), or with second_phase the lineage's second phase (its lr, warm-up
    and steps: BY_HAND[1]) continuing that run's final/ on the same sample (OUT/ARM-sSEED-2)."""
    from pixelrep.train.configs import default as recipe

    if not (out / "data").is_dir():
        raise SystemExit(f"{out / 'data'}: run `study_teacher.py data {out}` first")
    cfg = pilot_config(out)
    run = out / f"{arm}-s{seed}"
    if second_phase:
        phase = recipe.BY_HAND[1]
        schedule = [f"init_from={run}/final", f"optim.max_steps={phase.max_steps}", f"optim.lr={phase.lr}",
                    f"optim.warmup_steps={phase.warmup_steps}"]
        run = out / f"{arm}-s{seed}-2"
    else:
        schedule = [f"optim.max_steps={steps}"]
    sets = [f"data.sources={','.join(cfg.data.sources)}", f"leapfrog_with.sources={','.join(cfg.leapfrog_with.sources)}",
            f"align.teacher={arm}", *schedule, f"seed={seed}", "workers=0"]
    command = ["pixelrep", "train", "default", "--one-stage", "--output-dir", str(run), "--resume", "--set", *sets]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data")
    d.add_argument("out", type=Path)
    v = sub.add_parser("vectors")
    v.add_argument("out", type=Path)
    v.add_argument("--teacher", default="e5")
    v.add_argument("--part", default="0/1", help="k/n: this process's share of the texts")
    r = sub.add_parser("recipe-vectors")
    r.add_argument("--teacher", default="e5")
    r.add_argument("--part", default="0/1", help="k/n: this process's share of the texts")
    t = sub.add_parser("train")
    t.add_argument("out", type=Path)
    t.add_argument("arm", choices=ARMS)
    t.add_argument("--steps", type=int, default=STEPS, help="first phase only (the second has the lineage's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--second-phase", action="store_true", help="continue ARM-sSEED/final as the lineage's 2nd phase")
    args = parser.parse_args()
    if args.command == "data":
        make_data(args.out)
    elif args.command == "vectors":
        vectors(args.out, args.teacher, args.part)
    elif args.command == "recipe-vectors":
        recipe_vectors(args.teacher, args.part)
    else:
        train(args.out, args.arm, args.steps, args.seed, args.second_phase)


if __name__ == "__main__":
    sys.exit(main())
