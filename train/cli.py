"""`pixelrep train CONFIG [--set k=v ...] [--output-dir DIR] [--resume]` and `pixelrep bench train`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pixelrep import strict_json


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by `pixelrep train` and `torchrun -m pixelrep.train`."""
    parser.add_argument("config", help="a config in pixelrep/train/configs (smoke, visual, topical, reasoning, "
                                       "multilingual, leapfrog, ...), the path of a .py file with get_config(), "
                                       "or a resolved config .json (a run's config.json)")
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set optim.lr=3e-5 data.split='train[:1000]'")
    parser.add_argument("--output-dir", default=None,
                        help="run folder (default: runs/<stage name>); for a schedule, the folder its phases' run "
                             "folders go under (default: $PIXELREP_RUNS or runs)")
    parser.add_argument("--until", default=None, metavar="PHASE",
                        help="a config with a schedule of phases (default): stop after this phase")
    parser.add_argument("--from", dest="start", default=None, metavar="PHASE",
                        help="a schedule: start at this phase (earlier phases' run folders may be absent)")
    parser.add_argument("--one-stage", action="store_true",
                        help="train the config's stage alone (get_config(), its first phase), not its schedule")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's latest checkpoint (a fresh start when there is none)")
    parser.add_argument("--stop-after", type=int, default=None, metavar="N",
                        help="run at most N steps now, checkpoint and exit (continue later with --resume)")
    parser.add_argument("--stop-after-seconds", type=float, default=None, metavar="S",
                        help="wall-clock budget: the first step ending after S seconds is evaluated on dev, "
                             "checkpointed and the last (best/ is the export; continue with --resume)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")


def run_train(args: argparse.Namespace) -> int:
    from pixelrep.train import distributed
    from pixelrep.train.config import apply_overrides, load_schedule, load_stage, to_dict
    from pixelrep.train.loop import TrainInterrupted, train
    from pixelrep.train.schedule import phase_range, phase_stage, run_schedule

    schedule = None if args.one_stage else load_schedule(args.config)
    if schedule is None and (args.until or args.start):
        raise ValueError(f"--from/--until: config {args.config!r} declares no schedule of phases (or --one-stage was given)")
    root = args.output_dir or os.environ.get("PIXELREP_RUNS", "runs")
    if args.print_config:   # declares only: nothing is prepared or written
        if schedule is not None:   # the stage the command would train first: the --from phase, or the first
            phases, data = schedule
            phase = phases[phase_range(phases, args.start, args.until)[0]]
            stage = phase_stage(load_stage(args.config), phase, data, Path(root), args.overrides)
        else:
            stage = apply_overrides(load_stage(args.config), args.overrides)
        print(json.dumps(to_dict(stage), indent=2))
        return 0
    try:
        if schedule is not None:   # the whole recipe; each phase resumes where it stopped
            phases, data = schedule
            results = run_schedule(load_stage(args.config, prepare=True), phases, data, root=root,
                                   overrides=args.overrides, start=args.start, until=args.until,
                                   train_kwargs=dict(stop_after=args.stop_after, stop_after_seconds=args.stop_after_seconds,
                                                     device=args.device))
            if not results:
                print("pixelrep train: every phase is finished already", file=sys.stderr)
                return 0
            result = results[-1]
        else:
            stage = apply_overrides(load_stage(args.config, prepare=True), args.overrides)
            result = train(stage, args.output_dir or f"runs/{stage.name}", resume=args.resume,
                           stop_after=args.stop_after, stop_after_seconds=args.stop_after_seconds, device=args.device)
    except TrainInterrupted as e:
        print(f"pixelrep train: {e}", file=sys.stderr)
        return 130  # the shell's code for "ended by Ctrl-C"
    finally:
        distributed.teardown()
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line, from rank 0
        summary = dict(output_dir=str(result.output_dir), step=result.step, loss=result.last_loss,
                       dev_spearman_before=result.initial_score, best_dev_spearman=result.best_score,
                       out_of_time=result.out_of_time)
        print(strict_json.dumps(summary))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from pixelrep.train.bench import bench_train

    result = bench_train(preset=args.preset, device=args.device, batch_size=args.batch_size, steps=args.steps,
                         repeats=args.repeats, workers=args.workers, max_patches=args.max_patches,
                         data=args.data, precision=args.precision, compile=args.compile, bucket_batches=args.bucket_batches,
                         config=args.config)
    if args.json:
        print(strict_json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
    return 0


def register(commands, bench_commands) -> None:
    train = commands.add_parser("train", help="train a stage (see pixelrep/train/configs)")
    add_train_arguments(train)
    train.set_defaults(func=run_train)

    bench = bench_commands.add_parser("train", help="training pairs/s: model only vs end to end, TFLOP/s")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--preset", default="tiny", help="model preset (tiny, small, base)")
    bench.add_argument("--config", default=None,
                       help="measure a stage config's model and render shape instead (e.g. default)")
    bench.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    bench.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 64 on CPU, 512 on GPU)")
    bench.add_argument("--steps", type=int, default=20, help="timed steps per run")
    bench.add_argument("--repeats", type=int, default=5, help="runs of each kind; medians are reported")
    bench.add_argument("--workers", type=int, default=None, help="rendering workers (default: 1 on CPU, 8 on GPU)")
    bench.add_argument("--max-patches", type=int, default=64)
    bench.add_argument("--data", default=None,
                       help="sentence pairs file (sentence1, sentence2); default STS-B en train from the offline data")
    bench.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                       help="as a stage's: auto = bf16 autocast where native (GPU, avx512_bf16/AMX CPU), else fp32; bf16 on any device")
    bench.add_argument("--compile", action="store_true", help="torch.compile the ViT blocks")
    bench.add_argument("--bucket-batches", type=int, default=64,
                       help="batches sorted by length together (1: no length bucketing)")
    bench.set_defaults(func=run_bench)
