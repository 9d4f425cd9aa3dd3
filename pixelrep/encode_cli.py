"""`pixelrep encode` (sentences -> .npy); `pixelrep bench encode` lives with eval (it loads eval's baselines)."""
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
    enc.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                     help="auto: bf16 where the device computes it natively (CUDA, CPUs with avx512_bf16 or AMX), else fp32")
    enc.add_argument("--no-normalize", action="store_true", help="keep raw vectors instead of unit length")
    enc.set_defaults(func=_run_encode)



def _run_encode(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pixelrep.encoder import PixelEncoder
    from pixelrep.files import atomic_write_bytes, npy_bytes

    text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text(encoding="utf-8")
    lines = read_lines(text)
    model = PixelEncoder.from_pretrained(args.model)
    emb = model.encode(lines, batch_size=args.batch_size, device=args.device, normalize=not args.no_normalize,
                       precision=args.precision)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, npy_bytes(emb))
    print(f"wrote {emb.shape[0]} x {emb.shape[1]} float32 embeddings to {out}", file=sys.stderr)
    return 0


def read_lines(text: str) -> list[str]:
    """One sentence per line: split on \\n only (not on Unicode line separators inside a sentence)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()    # the newline that ends the last line
    return [line.removesuffix("\r") for line in lines]
