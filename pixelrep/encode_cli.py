"""`pixelrep encode` (sentences -> .npy) and `pixelrep bench encode`."""
from __future__ import annotations

import argparse
import sys

from pixelrep.cli import positive_int


def register(commands, bench_commands) -> None:
    enc = commands.add_parser(
        "encode", help="embed sentences (one per line) into a .npy file",
        description="Embed each line of the input (a file, or - for stdin) with a pixelrep model; row i of the "
                    "output array is line i (empty lines included).")
    enc.add_argument("--model", default="default", help="'default', a checkpoint folder, or a hub id")
    enc.add_argument("--input", default="-", help="UTF-8 text file, one sentence per line; - reads stdin (default)")
    enc.add_argument("--output", required=True, help="where to write the float32 array [lines, dim] (.npy)")
    enc.add_argument("--batch-size", type=positive_int, default=64)
    enc.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda > mps > cpu)")
    enc.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 autocast (GPUs)")
    enc.add_argument("--no-normalize", action="store_true", help="keep raw vectors instead of unit length")
    enc.set_defaults(func=_run_encode)

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
    bench.add_argument("--threads", type=positive_int, default=None,
                       help="at most N threads per model (torch, OpenMP, tokenizers); the issue's speeds use 1")
    bench.set_defaults(func=_run_bench)


def _run_encode(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from pixelrep.encoder import PixelEncoder
    from pixelrep.pretrained import atomic_write

    text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text(encoding="utf-8")
    lines = read_lines(text)
    model = PixelEncoder.from_pretrained(args.model)
    emb = model.encode(lines, batch_size=args.batch_size, device=args.device, normalize=not args.no_normalize,
                       precision=args.precision)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:   # a file object, so numpy does not append .npy to the temp name
            np.save(f, emb)
    atomic_write(out, write)
    print(f"wrote {emb.shape[0]} x {emb.shape[1]} float32 embeddings to {out}", file=sys.stderr)
    return 0


def read_lines(text: str) -> list[str]:
    """One sentence per line: split on \\n only (not on Unicode line separators inside a sentence)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()    # the newline that ends the last line
    return [line.removesuffix("\r") for line in lines]


def _run_bench(args: argparse.Namespace) -> int:
    from pixelrep import strict_json
    from pixelrep.bench_encode import bench_encode, load_sentences

    sentences, source = load_sentences(args.data_dir, limit=args.limit)
    result = bench_encode(sentences, source=source, presets=args.presets, runs=args.runs,
                          batch_size=args.batch_size, device=args.device,
                          baselines=[] if args.no_baseline else args.baselines, threads=args.threads)
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
