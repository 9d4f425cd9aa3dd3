"""The `pixelrep` command: each part registers its own subcommands (render, encode, train, eval, bench)."""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules exposing register(commands, bench_commands); heavy imports stay inside their handlers.
COMMAND_MODULES = ("pixelrep.render_cli", "pixelrep.encode_cli", "pixelrep.train.cli", "pixelrep.eval.cli")


def positive_int(text: str) -> int:
    """argparse type for counts (batch sizes, runs, limits): an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    from pixelrep.version import __version__

    parser = argparse.ArgumentParser(prog="pixelrep", description="Sentence representations from pixels.")
    parser.add_argument("--version", action="version", version=f"pixelrep {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = commands.add_parser("bench", help="speed and memory benchmarks (print JSON)")
    bench_commands = bench.add_subparsers(dest="bench", required=True, metavar="WHAT")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands, bench_commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback; 130 as the shell reports it
        print(f"pixelrep {args.command}: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, TypeError, RuntimeError) as e:
        # Users get one clear line; PIXELREP_DEBUG=1 shows the traceback.
        import os
        if os.environ.get("PIXELREP_DEBUG"):
            raise
        print(f"pixelrep {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
