"""`pixelrep eval sts`: STS suites for a pixel model and sentence-transformers baselines in one run."""
from __future__ import annotations

import argparse

from pixelrep.cli import positive_int
from pixelrep.eval.suites import SUITE_CHOICES, VISUAL_IMAGE_LEVELS, VISUAL_KINDS, VISUAL_RATES


def register(commands, bench_commands) -> None:
    """Add `eval` (with `sts`) to the pixelrep command. eval has no benchmark of its own."""
    ev = commands.add_parser("eval", help="evaluate models (STS suites)")
    what = ev.add_subparsers(dest="eval", required=True, metavar="WHAT")
    sts = what.add_parser(
        "sts", help="STS suites: Spearman x100 of cosine similarity on test sets",
        description="Evaluate a model (and baselines, in the same run) on STS test sets. Prints a markdown "
                    "table and writes results.json, results.md and sts.png to --out.")
    sts.add_argument("--model", required=True,
                     help="pixelrep model: 'default', a checkpoint folder, or a hub id")
    sts.add_argument("--suite", nargs="+", default=["all"], metavar="SUITE", choices=SUITE_CHOICES,
                     help=f"one or more of {', '.join(SUITE_CHOICES)} (default: all)")
    sts.add_argument("--data-dir", default=None,
                     help="folder with DIR/stsb/{lang}/test.jsonl, DIR/sts12/*.jsonl, DIR/sickr/test.jsonl, "
                          "DIR/sts17/{pair}.jsonl (default: the Hugging Face hub)")
    sts.add_argument("--out", default="out/eval", help="output folder (default: out/eval)")
    sts.add_argument("--baseline", nargs="+", default=[], metavar="PATH_OR_ID",
                     help="models to compare: 'minilm' (bundled all-MiniLM-L6-v2), 'use-m3' (the multilingual USE "
                          "teacher, train extra), 'wordllama', 'e5' (baselines extra), an ST folder or hub id; 'bow' (word "
                          "matching) is always added unless --no-bow")
    sts.add_argument("--no-bow", action="store_true",
                     help="leave out the bag-of-words baseline (cosine of word counts) reported beside every model")
    sts.add_argument("--batch-size", type=positive_int, default=64)
    sts.add_argument("--limit", type=positive_int, default=None,
                     help="only N pairs of each task, evenly spread over it (quick runs)")
    sts.add_argument("--seed", type=int, default=0, help="seed of the robustness typos and the visual perturbations")
    sts.add_argument("--visual-kinds", nargs="+", default=list(VISUAL_KINDS), metavar="KIND", choices=VISUAL_KINDS,
                     help=f"kinds of the visual suite (default: all): {', '.join(VISUAL_KINDS)}; the image kinds "
                          f"({', '.join(VISUAL_IMAGE_LEVELS)}) change the rendering, so only pixel models take them")
    sts.add_argument("--visual-rates", nargs="+", type=_rate, default=list(VISUAL_RATES), metavar="R",
                     help="rates of the visual suite's character kinds: the fraction of eligible characters "
                          f"changed (default: {' '.join(f'{r:g}' for r in VISUAL_RATES)})")
    sts.set_defaults(func=_run_sts)


def _rate(value: str) -> float:
    rate = float(value)
    if not 0 < rate <= 1:
        raise argparse.ArgumentTypeError(f"{value}: use a fraction of eligible characters in (0, 1], e.g. 0.3")
    return rate


def _run_sts(args: argparse.Namespace) -> int:
    from pixelrep.eval.models import PIXEL, SENTENCE_TRANSFORMERS, load_model
    from pixelrep.eval.report import text_report
    from pixelrep.eval.runner import run_sts

    models, infos = {}, {}
    # Plain word matching beside every model: a score means reading only where it clears this floor.
    baselines = args.baseline + (["bow"] if "bow" not in args.baseline and not args.no_bow else [])
    for spec, default_kind in [(args.model, PIXEL)] + [(b, SENTENCE_TRANSFORMERS) for b in baselines]:
        if spec in models:
            raise ValueError(f"model {spec!r} given twice")
        model, info = load_model(spec, default=default_kind)
        models[spec], infos[spec] = model, info
    results = run_sts(models, suite=args.suite, data_dir=args.data_dir, out_dir=args.out,
                      batch_size=args.batch_size, limit=args.limit, seed=args.seed, visual_kinds=args.visual_kinds,
                      visual_rates=args.visual_rates, infos=infos)
    print(text_report(results))
    print(f"\nwrote {args.out}/results.json, results.md, sts.png" + (", visual.png" if "visual" in args.suite
                                                                      or "all" in args.suite else ""))
    return 0
