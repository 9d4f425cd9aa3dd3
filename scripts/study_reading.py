"""The reading study (issue 11): which recipe makes a small pixel encoder read, at equal CPU budget.

    python scripts/study_reading.py run ARM [--steps N] [--seed S]   # one arm, one CPU thread
    python scripts/study_reading.py report                           # prints the table, writes docs/study.png
    python scripts/study_reading.py words [--teacher use-m3]         # what averaged teacher word vectors score
    python scripts/study_reading.py dev MODEL [MODEL ...] [--visual] [--scripts] [--common-directions 3 --whitening 0.25]
                                                                     # whole STS-B dev: en by thirds, en-X
    python scripts/study_reading.py lexicon MODEL [MODEL ...]        # lexicon learned per language (en, de, tr, ar)

Every arm is the bundled default's recipe (train/configs/default.py) with a few `--set` overrides,
trained by the real CLI (`pixelrep train default`) into runs/study/ARM-sS with one thread and
rendering in the same process, so two arms can run side by side on two cores. Selection uses dev
data only: the recipe's dev mix (STS-B en dev rows 0-499 and en-{de,es,fr,it,nl} dev pairs), whose
two parts the report also scores separately on the best checkpoint. The dev mix's English rows are
the first third of STS-B dev, which is all image captions (39 characters on average; news and forum
rows follow), so `dev` scores whole models on all 1,500 dev pairs too. Test splits are never read here.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNS = Path(os.environ.get("PIXELREP_RUNS", "runs")) / "study"
DOCS = Path("docs")

# name -> (what it tests, overrides of the default stage). Paths come from prepare().
ARMS: dict[str, tuple[str, list[str]]] = {
    "continuous": ("running text (PIXEL's rendering), English sentences + translations, mean pooling",
                   ["render.word_align=0", "model.pooling=mean", "data.sources={english}"]),
    "aligned": ("word-aligned rendering, otherwise as continuous",
                ["model.pooling=mean", "data.sources={english}"]),
    "aligned+lexicon": ("word-aligned, and 74k frequent words of 11 languages as texts of their own",
                        ["model.pooling=mean"]),
    "default": ("aligned+lexicon with learned weighted pooling (the recipe as shipped)", []),
    "lexicon-only": ("words only (the lexicon, with typos), 256 a step: word image -> teacher vector",
                     ["data.sources={lexicon}", "leapfrog_with=none", "leapfrog_every=0", "optim.batch_size=256"]),
    "default-minilm": ("the recipe with all-MiniLM-L6-v2 (English only) as teacher instead of USE-m3",
                       ["align.teacher=sentence-transformers/all-MiniLM-L6-v2"]),
    "default-two-teachers": ("the recipe with two sentence heads: USE-m3 (exported space) and all-MiniLM-L6-v2",
                             ["align.teacher=use-m3,sentence-transformers/all-MiniLM-L6-v2"]),
    "default-lr2e-4": ("the recipe at a lower peak learning rate (keep the lexical signal)", ["optim.lr=2e-4"]),
}


def run_arm(arm: str, steps: int, seed: int, eval_every: int) -> Path:
    from pixelrep.train.configs.default import prepare

    data = prepare()
    out = RUNS / f"{arm}-s{seed}"
    overrides = [o.format(english=data["english"], lexicon=data["lexicon"]) for o in ARMS[arm][1]]
    overrides += [f"optim.max_steps={steps}", f"seed={seed}", f"run.eval_every={eval_every}", "run.workers=0",
                  f"run.checkpoint_every={eval_every}", f"optim.warmup_steps={min(100, steps // 10)}"]
    if "leapfrog_every=0" not in overrides:
        overrides.append(f"leapfrog_every={min(100, steps // 10)}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "pixelrep", "train", "default", "--one-stage", "--output-dir", str(out),
           "--resume", *[a for o in overrides for a in ("--set", o)]]
    start = time.time()
    subprocess.run(cmd, env=env, check=True)
    (out / "study.json").write_text(json.dumps(dict(arm=arm, seed=seed, steps=steps, overrides=overrides,
                                                    wall_s=round(time.time() - start))) + "\n")
    return out


def _dev_parts(model_dir: Path) -> dict:
    """STS-B en dev (the 500 selection rows) and en-X dev Spearman of a saved model, separately."""
    from pixelrep import PixelEncoder
    from pixelrep.eval.data import load_sts_file
    from pixelrep.eval.sts import evaluate_sts
    from pixelrep.train.configs.default import DEV_MIX_PARTS, prepare

    dev = load_sts_file(prepare()["dev"])
    enc = PixelEncoder.from_pretrained(str(model_dir))
    return {k: round(evaluate_sts(enc, dev.sentence1[s], dev.sentence2[s], dev.score[s])["spearman"], 1)
            for k, s in DEV_MIX_PARTS.items()}


def report() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pixelrep.train.runs import read_run

    rows, fig = [], plt.figure(figsize=(8, 4.5))
    # The arms, then runs that continued one of them (runs/default continues an arm, runs/default2
    # continues runs/default, runs/minilm-en continues runs/default3, ...), each plotted after the steps
    # of the run it started from (a parent sorts before its children by name).
    runs = [(folder, 0) for folder in sorted(p for p in RUNS.glob("*-s*") if p.is_dir())]
    offsets = {folder.resolve(): 0 for folder, _ in runs}
    for folder in sorted(p for p in RUNS.parent.iterdir() if (p / "config.json").is_file()):
        init = read_run(folder).stage.init_from
        parent = Path(init).parent.resolve() if init else None
        if parent in offsets:   # started from the parent's best/ (its step in the metadata) or final/
            start = read_run(parent).model_step(Path(init).name)
            offset = offsets[parent] + (start or read_run(parent).stage.optim.max_steps)
            offsets[folder.resolve()] = offset
            runs.append((folder, offset))
    for folder, offset in runs:
        run = read_run(folder)
        stage = run.stage
        curve = [((step + offset) * stage.optim.batch_size / 1000, score) for step, score in run.dev_curve()]
        if not curve:
            continue
        meta = json.loads((folder / "study.json").read_text()) if (folder / "study.json").is_file() else {}
        name = folder.name if not offset else f"{folder.name} (continues {Path(stage.init_from).parent.name})"
        plt.plot(*zip(*curve), marker=".", label=name)
        best = max(curve, key=lambda c: c[1])
        parts = _dev_parts(folder / "best") if (folder / "best").is_dir() else {}
        teacher = "+".join(stage.align.teachers)
        what = (f"{Path(stage.init_from).parent.name}/{Path(stage.init_from).name} continued at lr "
                f"{stage.optim.lr:g}, teacher {teacher.rsplit('/', 1)[-1]}, "
                f"{stage.data.typo_rate:.0%} typos"
                f" on {', '.join(Path(p).stem for p in stage.data.sources)}"
                if offset else ARMS[folder.name.rsplit("-s", 1)[0]][0])
        rows.append((name, what, curve[0][1], best[1], best[0], curve[-1][0], parts.get("en"), parts.get("en-X"),
                     meta.get("wall_s")))
    plt.xlabel("thousand texts seen (anchors; each also seen with typos)")
    plt.ylabel("dev mix Spearman x100")
    plt.axhline(47.2, color="grey", ls="--", lw=1)
    plt.text(0, 48, "word matching (bag of words) on STS-B en dev", color="grey", fontsize=8)
    plt.ylim(0, 100)
    plt.legend(fontsize=7)
    plt.title("Learning curves on 1 CPU thread per arm")
    DOCS.mkdir(exist_ok=True)
    fig.savefig(DOCS / "study.png", dpi=120, bbox_inches="tight")
    lines = ["| arm | what | dev mix at 0 | best dev mix | at k texts | k texts run | STS-B en dev (best) | en-X dev (best) | wall s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join("" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v) for v in r) + " |"
              for r in rows]
    print("\n".join(lines))


def word_average(teacher_name: str) -> dict:
    """STS-B dev Spearman x100 of a bag of teacher word vectors: each space-separated word encoded alone,
    averaged plainly or with SIF weights a / (a + p(word)) (Arora et al. 2017; p from 200k corpus
    sentences). The ceiling of a model that only learns word image -> teacher vector, and how much
    weighting words is worth."""
    import collections
    import gzip

    import numpy as np
    from scipy.stats import spearmanr

    from pixelrep.eval.data import load_sts_file
    from pixelrep.teachers import load_teacher
    from pixelrep.files import data_path

    counts = collections.Counter()
    with gzip.open(data_path("corpus/english-sentences.txt.gz"), "rt", encoding="utf-8") as f:
        for i, line in zip(range(200_000), f):
            counts.update(line.split())
    total = sum(counts.values())
    teacher = load_teacher(teacher_name, threads=1)
    en = load_sts_file(data_path("sts/stsb/en/dev.jsonl"))
    out = {"teacher": teacher_name}
    for lang in ("en", "de", "fr"):
        other = en if lang == "en" else load_sts_file(data_path(f"sts/stsb/{lang}/dev.jsonl"))
        a, b = list(en.sentence1), list(other.sentence2)
        words = sorted({w for s in a + b for w in s.split()})
        vectors = dict(zip(words, teacher.encode(words)))
        for name, sif in (("mean", None), ("sif", 1e-4)):
            def embed(s):
                ws = s.split()
                weights = np.array([sif / (sif + counts[w] / total) if sif else 1.0 for w in ws])
                return (np.stack([vectors[w] for w in ws]) * weights[:, None]).sum(0)
            ex, ey = np.stack([embed(x) for x in a]), np.stack([embed(y) for y in b])
            sims = (ex * ey).sum(1) / np.linalg.norm(ex, axis=1) / np.linalg.norm(ey, axis=1)
            out[f"en-{lang} {name}"] = round(spearmanr(sims, en.score).correlation * 100, 1)
    print(json.dumps(out))
    return out


def cosine_matrix(a, b):
    """Cosine of every row of a with every row of b."""
    import numpy as np

    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    return a @ b.T


def lexicon_by_language(models: list[str], n: int = 1000) -> list[dict]:
    """How well each model learned the lexicon it trained on, per language (issue 20: why Arabic reads
    below word matching). Per language, its n most frequent corpus words (all in the recipe's lexicon),
    each encoded alone: the median cosine to USE-m3's vector of the same word, and how often that vector
    is the nearest of the n (x100). And per held-out language, the share of the word tokens of the held-out
    pairs that the lexicon holds exactly: clitics written into the word (Arabic w-, al-, bi-, li-; Turkish
    suffixes) make fewer tokens repeat."""
    import numpy as np

    from pixelrep.eval.models import load_model
    from pixelrep.files import data_path
    from pixelrep.teachers import load_teacher
    from pixelrep.train.configs import default as recipe

    files = recipe.data_files()
    lexicon = [json.loads(line)["text"] for line in open(files["lexicon"], encoding="utf-8")]
    words = {"en": lexicon[:n]}
    for lang in ("de", "tr", "ar"):
        words[lang] = recipe._frequent_words(recipe._lines(data_path(f"corpus/sentences-{lang}.txt.gz")), n)
    known = set(lexicon)
    coverage = {}
    for lang, path in zip(recipe.MORE_LANGUAGES, files["held_out"]):
        rows = recipe.read_pairs(path)
        for side, key in ((0, "en"), (1, lang)):
            tokens = [w for r in rows for w in r[side].split(" ") if w]
            coverage[f"{key} lexicon coverage" if side else f"en (of en-{lang}) lexicon coverage"] = \
                100.0 * sum(w in known for w in tokens) / len(tokens)
    print(json.dumps({k: round(v, 1) for k, v in coverage.items()}), flush=True)
    teacher = load_teacher("use-m3", threads=1)
    results = []
    for name in models:
        model = load_model(name)[0]
        out = {"model": name}
        for lang, ws in words.items():
            sim = cosine_matrix(model.encode(ws), teacher.encode(ws))
            out[f"{lang} cosine"] = float(np.median(np.diag(sim)))
            out[f"{lang} top-1"] = 100.0 * float((sim.argmax(axis=1) == np.arange(len(ws))).mean())
        results.append({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()})
        print(json.dumps(results[-1]), flush=True)
    return results


# `dev --visual`: the visual suite's middle setting of each kind the training augmentations aim at, on
# STS-B en dev (character kinds at rate 0.3; image kinds at the suite's middle level).
DEV_VISUAL_TEXT = ("homoglyphs", "case", "leetspeak", "split-words", "merge-words")
DEV_VISUAL_IMAGE = {"blur": 1.0, "low-res": 0.5, "rotate": 6, "shift": 1.0}


# Every script read (issue 20): STS-B dev in the dev languages written in other scripts or without spaces,
# and, where ../shared/data has no STS data, translation retrieval on pairs the recipe never trains on.
DEV_SCRIPT_LANGUAGES = ("ru", "zh", "ja")


def translation_retrieval(encoder, english, other) -> float:
    """Top-1 accuracy x100 of finding each sentence's translation among all the other side's sentences
    (cosine), averaged over both directions."""
    return retrieval_accuracy(encoder.encode(list(english)), encoder.encode(list(other)))


def retrieval_accuracy(english, other) -> float:
    """translation_retrieval on vectors: row i of `english` and of `other` are translations."""
    import numpy as np

    sim = cosine_matrix(english, other)
    gold = np.arange(len(sim))
    return 50.0 * (float((sim.argmax(axis=1) == gold).mean()) + float((sim.argmax(axis=0) == gold).mean()))


def load_as_exported(name: str, common_directions: int, whitening: float = 0.0):
    """A model as load_model reads it; with common_directions, a training run's best/ or final/ also loses
    the mean and that many principal directions of its vectors of the recipe's export texts, as the
    recipe's export ships it (docs/study.md, section 12), the rest scaled by variance ** -whitening (section 15)."""
    from pixelrep.aligned import ALIGN_CONFIG
    from pixelrep.eval.models import load_model
    from pixelrep.train.configs.default import common_directions_texts

    model = load_model(name)[0]
    if (common_directions or whitening) and (Path(name) / ALIGN_CONFIG).is_file():
        model = model.remove_common_directions(common_directions_texts(), common_directions, whitening=whitening)
    return model


def score_dev(models: list[str], visual: bool = False, scripts: bool = False, common_directions: int = 0,
              whitening: float = 0.0) -> list[dict]:
    """Spearman x100 of saved models on all of STS-B dev: English (1,500 pairs, and by thirds: the rows
    come in genre blocks, captions first), en-{de,es,fr,it,nl} (sentence1 English, sentence2 in X), and
    English with 10% character typos (as the test suite's robustness task, seed 0) and the drop to it;
    with `visual`, English under the DEV_VISUAL kinds at 30% (as the visual suite draws them, seed 0) and
    the image kinds; with `scripts`, STS-B dev in DEV_SCRIPT_LANGUAGES and translation retrieval (x100)
    on the recipe's held-out en-{ar,tr,ko} pairs (prepare() writes them). common_directions, whitening: see
    load_as_exported."""
    from pixelrep.eval.data import load_sts_file
    from pixelrep.eval.sts import CachedEncoder, evaluate_sts
    from pixelrep.eval.suites import add_typos_to_pairs
    from pixelrep.files import data_path

    en = load_sts_file(data_path("sts/stsb/en/dev.jsonl"))
    cross = {lang: load_sts_file(data_path(f"sts/stsb/{lang}/dev.jsonl")) for lang in ("de", "es", "fr", "it", "nl")}
    en_typos = add_typos_to_pairs(en, 0.1, seed=0)
    thirds = {"en 0-499": slice(0, 500), "en 500-999": slice(500, 1000), "en 1000-1499": slice(1000, 1500)}
    results = []
    for name in models:
        # A run's best/ is scored as exported (projector folded in); the cache encodes the English
        # sentence1, scored 9 times, once.
        encoder = CachedEncoder(load_as_exported(name, common_directions, whitening))
        out = {"model": name, "en": evaluate_sts(encoder, en.sentence1, en.sentence2, en.score)["spearman"]}
        for part, s in thirds.items():
            out[part] = evaluate_sts(encoder, en.sentence1[s], en.sentence2[s], en.score[s])["spearman"]
        scores = [evaluate_sts(encoder, en.sentence1, other.sentence2, en.score)["spearman"] for other in cross.values()]
        out["en-X"] = sum(scores) / len(scores)
        out["en typos 0.1"] = evaluate_sts(encoder, en_typos.sentence1, en_typos.sentence2, en.score)["spearman"]
        out["drop"] = out["en"] - out["en typos 0.1"]
        if visual:
            from pixelrep.eval.sts import PerturbedPixelEncoder
            from pixelrep.eval.suites import perturb_pairs
            from pixelrep.render import TEXT_PERTURBATIONS

            for kind in DEV_VISUAL_TEXT:
                p = perturb_pairs(en, TEXT_PERTURBATIONS[kind], 0.3, seed=0, label=kind)
                out[f"en {kind} 0.3"] = evaluate_sts(encoder, p.sentence1, p.sentence2, en.score)["spearman"]
            for kind, level in DEV_VISUAL_IMAGE.items():
                image = PerturbedPixelEncoder(encoder.model, kind, level, seed=0)
                out[f"en {kind} {level:g}"] = evaluate_sts(image, en.sentence1, en.sentence2, en.score)["spearman"]
        if scripts:
            from pixelrep.train.configs.default import MORE_LANGUAGES, data_files, read_pairs

            for lang in DEV_SCRIPT_LANGUAGES:
                other = load_sts_file(data_path(f"sts/stsb/{lang}/dev.jsonl"))
                out[lang] = evaluate_sts(encoder, other.sentence1, other.sentence2, other.score)["spearman"]
            for lang, path in zip(MORE_LANGUAGES, data_files()["held_out"]):
                rows = read_pairs(path)
                out[f"en-{lang} retrieval"] = translation_retrieval(encoder, [r[0] for r in rows], [r[1] for r in rows])
        results.append({k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()})
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("arm", choices=sorted(ARMS))
    r.add_argument("--steps", type=int, default=1500)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--eval-every", type=int, default=100)
    sub.add_parser("report")
    w = sub.add_parser("words")
    w.add_argument("--teacher", default="use-m3")
    lex = sub.add_parser("lexicon")
    lex.add_argument("models", nargs="+", help="as for dev")
    d = sub.add_parser("dev")
    d.add_argument("models", nargs="+", help="'default', 'bow' (word matching), saved model folders, or training runs' best/ and final/")
    d.add_argument("--visual", action="store_true", help="also English dev under visual perturbations (DEV_VISUAL_*)")
    d.add_argument("--scripts", action="store_true", help="also STS-B dev in ru, zh, ja and retrieval on held-out en-{ar,tr,ko} pairs")
    d.add_argument("--common-directions", type=int, default=0, metavar="K",
                   help="score training runs' best/ and final/ with K common directions removed, as the recipe's "
                        "export does (its COMMON_DIRECTIONS, 3); 0: as they are")
    d.add_argument("--whitening", type=float, default=0.0, metavar="P",
                   help="with it, the other principal directions scaled by variance ** -P (the recipe's "
                        "COMMON_WHITENING, 0.25)")
    args = parser.parse_args()
    if args.command == "run":
        run_arm(args.arm, args.steps, args.seed, args.eval_every)
    elif args.command == "words":
        word_average(args.teacher)
    elif args.command == "lexicon":
        lexicon_by_language(args.models)
    elif args.command == "dev":
        score_dev(args.models, visual=args.visual, scripts=args.scripts, common_directions=args.common_directions,
                  whitening=args.whitening)
    else:
        report()


if __name__ == "__main__":
    main()
