"""`torchrun --nproc_per_node=N -m pixelrep.train CONFIG [--set k=v ...]` (or plain `python -m pixelrep.train`)."""
import argparse
import sys

from pixelrep.train.cli import add_train_arguments, run_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelrep.train", description="Train a pixelrep stage.")
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
