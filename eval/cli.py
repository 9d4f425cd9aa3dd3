"""`pixelrep eval sts`: STS suites for a pixel model and sentence-transformers baselines in one run."""
from __future__ import annotations

import argparse

from pixelrep.cli import positive_int
from pixelrep.eval.suites import SUITE_CHOICES, VISUAL_IMAGE_LEVELS, VISUAL_KINDS, VISUAL_RATES


def register(commands, bench_commands) -> None:
    """Add `eval` (with `sts`) and `bench encode` (the pixel model beside the text baselines) to the pixelrep command."""
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
    bench = bench_commands.add_parser(
        "encode", help="encode throughput and peak memory vs text baselines (MiniLM, WordLlama, e5, USE-m3)",
        description="Sentences/s (rendering included) and peak RSS of PixelEncoder presets on the STS-B English "
                    "test sentences, and of text baselines in the same process, with the ratios.")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--data-dir", default=None,
                       help="folder holding sts/stsb/en/test.jsonl (default: $PIXELREP_DATA or ../shared/data)")
    bench.add_argument("--presets", nargs="+", default=["tiny", "small", "default"],
                       help="model presets (random weights) or models to load ('default', a folder) to measure")
    bench.add_argument("--runs", type=positive_int, default=3, help="timed runs per model (median reported)")
    bench.add_argument("--batch-size", type=positive_int, default=64)
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--limit", type=positive_int, default=None, help="only the first N sentences")
    # Names checked by bench_encode (importing its BASELINES here would import torch for every command).
    bench.add_argument("--baselines", nargs="+", default=["minilm"], metavar="NAME",
                       help="text models to measure beside: minilm, wordllama, e5, use-m3 (default: minilm; "
                            "wordllama and e5 need the baselines extra, use-m3 the train extra)")
    bench.add_argument("--no-baseline", action="store_true", help="no text baselines")
    bench.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                       help="the pixel models' encode precision (auto, encode()'s default: bf16 where the device "
                            "computes it natively, else fp32)")
    bench.add_argument("--threads", type=positive_int, default=None,
                       help="at most N threads per model (torch, OpenMP, tokenizers); the issue's speeds use 1")
    bench.set_defaults(func=_run_bench)


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


def _run_bench(args: argparse.Namespace) -> int:
    from pixelrep import strict_json
    from pixelrep.eval.bench_encode import bench_encode, load_sentences

    sentences, source = load_sentences(args.data_dir, limit=args.limit)
    result = bench_encode(sentences, source=source, presets=args.presets, runs=args.runs,
                          batch_size=args.batch_size, device=args.device,
                          baselines=[] if args.no_baseline else args.baselines, threads=args.threads,
                          precision=args.precision)
    if args.json:
        print(strict_json.dumps(result, indent=2))
        return 0
    print(f"{result['sentences']} sentences from {source}, {result['runs']} runs, device {result['device']}, "
          f"{result['torch_threads']} torch threads")
    for name, m in result["models"].items():
        print(f"  {name:26s} {m['sentences_per_s']:9.1f} sentences/s  (cold {m['cold_sentences_per_s']:.1f})  "
              f"peak RSS {m['peak_rss_mb']:.0f} MB (+{m['peak_rss_delta_mb']:.0f} MB)")
    for key, value in result.get("ratios", {}).items():
        print(f"  {key}: {value:.2f}x")
    return 0
