"""`make device-pack`: build .carry/, what a lent GPU node lacks, and check that it fits.

The node (one H100/H200, no internet, torch/timm/transformers but no `datasets`, no libfribidi, no
teacher package) takes a working tree of at most 64 MiB: the files git tracks or does not ignore,
plus the ignored paths named in `carry`. This script reads the recipe (a stage config's get_config(),
so it follows whatever train/configs/default.py says now) and writes into .carry/:

    wheels/          datasets, dill, multiprocess, libfribidi (../shared/device-wheels) and pytest
    data/train-*.jsonl.gz   a random shard of each of the recipe's training sources, sized to fit
    data/dev.jsonl.gz       the recipe's model-selection file
    data/sts/stsb/*/test.jsonl.gz, data/bench-pairs.jsonl.gz   eval suites and the training bench's pairs
    teacher/<lm>/    the teachers' vectors of every target text of the shard, computed here on the CPU
    recipe.json      the resolved stage with its paths pointing into .carry/ (pixelrep train .carry/recipe.json)
    pack.json        what was packed, the teacher's speed here, and the byte budget

It prints the byte budget (working tree + .carry <= --budget-mib, 60 MiB by default, leaving room
under the node's 64) and exits 1 when over. scripts/device_run.sh uses the result.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import random
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

MIB = 1 << 20
STS_LANGUAGES = ("en", "de", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh", "ja")
WHEELS = ("datasets-*.whl", "dill-*.whl", "multiprocess-*.whl", "libfribidi0_*.deb")
# The node may lack pytest (for `pytest -m gpu`): the versions installed here, fetched by pip (cached).
TEST_PACKAGES = ("pytest", "pluggy", "iniconfig", "pytest-timeout")
def tree_bytes(repo: Path) -> int:
    """Bytes of what the node's working tree gets without carry: tracked files and untracked ones git
    does not ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           check=True, capture_output=True).stdout.decode().split("\0")
    return sum((repo / n).stat().st_size for n in names if n and (repo / n).is_file())


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_jsonl_gz(path: Path, rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode(), mtime=0)
    path.write_bytes(data)
    return len(data)


def copy_sts(data_dir: Path, out: Path, rows: int | None) -> None:
    """STS-B test files of every language (the stsb-multi, crosslingual and robustness suites)."""
    for lang in STS_LANGUAGES:
        lines = (data_dir / "sts" / "stsb" / lang / "test.jsonl").read_text(encoding="utf-8").splitlines()
        write_jsonl_gz(out / "sts" / "stsb" / lang / "test.jsonl.gz", map(json.loads, lines[:rows]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="default", help="the recipe: a stage config name or .py/.json file")
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides of the recipe, as pixelrep train --set")
    parser.add_argument("--out", default=".carry", help="the folder to build (git-ignored; replaced)")
    parser.add_argument("--data", default=None, help="offline data (default: $PIXELREP_DATA or ../shared/data)")
    parser.add_argument("--wheels", default="../shared/device-wheels", help="what the node lacks, as files")
    parser.add_argument("--budget-mib", type=float, default=60.0, help="working tree + carry must fit in this")
    parser.add_argument("--max-texts", type=int, default=None,
                        help="at most this many teacher targets (default: as many as the budget holds)")
    parser.add_argument("--eval-rows", type=int, default=None, help="STS rows per language (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from pixelrep.files import data_path
    from pixelrep.teachers import save_teacher_vectors
    from pixelrep.train.align import TeacherTargets
    from pixelrep.train.config import apply_overrides, load_stage, to_dict
    from pixelrep.train.data import field_columns, load_pairs, pair_rows

    repo = Path(__file__).resolve().parent.parent
    out, data_dir, wheels = Path(args.out), Path(args.data or data_path()), Path(args.wheels)
    stage = apply_overrides(load_stage(args.config, prepare=True), args.overrides)
    if stage.init_from is not None:
        raise SystemExit(f"device-pack: the recipe starts from {stage.init_from!r}, which the node cannot load; "
                         f"pack a recipe that trains from scratch, or carry that model too")
    if out.exists():
        shutil.rmtree(out)
    (out / "wheels").mkdir(parents=True)
    for pattern in WHEELS:
        found = sorted(wheels.glob(pattern))
        if not found:
            raise SystemExit(f"device-pack: no {pattern} in {wheels}; pass --wheels with the folder that has them "
                             f"(see ../shared/device-wheels/README.md)")
        shutil.copy2(found[-1], out / "wheels")
    pins = [f"{name}=={version(name)}" for name in TEST_PACKAGES]
    if subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--retries", "1",
                       "--timeout", "10", "-d", str(out / "wheels"), *pins]).returncode:
        print(f"device-pack: warning: pip could not fetch {' '.join(pins)} (offline?); the node's own pytest "
              f"will run the GPU tests, if it has one (or put these wheels into {wheels})", file=sys.stderr)

    # Fixed costs first: evaluation and bench data, the dev file.
    copy_sts(data_dir, out / "data", args.eval_rows)
    bench = (data_dir / "sts" / "stsb" / "en" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    bench_rows = None if args.eval_rows is None else 4 * args.eval_rows
    write_jsonl_gz(out / "data" / "bench-pairs.jsonl.gz", map(json.loads, bench[:bench_rows]))
    dev = None
    if stage.dev is not None:
        dev = out / "data" / "dev.jsonl.gz"
        write_jsonl_gz(dev, map(json.loads, Path(stage.dev).read_text(encoding="utf-8").splitlines()))

    # The teachers, loaded as the trainer loads them (only the teachers of the heads are used).
    align = stage.align
    teachers = TeacherTargets(align).teachers if align is not None else []
    names = align.teachers if align is not None else ()
    vector_bytes = sum(t.dim + 4 + 32 for t in teachers)   # int8 vector, scale and key per text

    # Then the training shard: the same fraction of every source's pairs, as large as the budget allows.
    sources = {"data": stage.data}
    if stage.leapfrog_with is not None:
        sources["leapfrog_with"] = stage.leapfrog_with
    pairs = {name: load_pairs(d) for name, d in sources.items()}
    rng = random.Random(args.seed)
    order = {name: rng.sample(range(len(p)), len(p)) for name, p in pairs.items()}
    sample_bytes, sample_targets = 0.0, 0.0   # per pair, measured on up to 2,000 pairs of each source
    for name, p in pairs.items():
        head = order[name][:2000]
        sample_bytes += len(gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in
                                                  pair_rows(p, sources[name].pairs, head)).encode())) / len(head) * len(p)
        sample_targets += len(set(p.target_texts(head))) / len(head) * len(p)
    free = args.budget_mib * MIB - tree_bytes(repo) - folder_bytes(out) - 64 * 1024   # 64 KiB for the JSON files
    full = sample_bytes + sample_targets * vector_bytes
    fraction = min(1.0, 0.95 * free / full)
    if args.max_texts is not None:
        fraction = min(fraction, args.max_texts / sample_targets)
    if fraction <= 0:
        raise SystemExit(f"device-pack: the working tree and fixed files leave {free / MIB:.1f} MiB of "
                         f"{args.budget_mib} MiB; nothing fits for training data")

    recipe = dataclasses.replace(stage, dev=str(dev) if dev else None)
    targets: set[str] = set()
    shard = {}
    for name, p in pairs.items():
        kind = sources[name].pairs
        index = order[name][:max(stage.optim.batch_size, round(fraction * len(p)))]
        path = out / "data" / f"train-{name}.jsonl.gz"
        write_jsonl_gz(path, pair_rows(p, kind, index))
        targets |= set(p.target_texts(index))
        shard[name] = dict(pairs=len(index), of=len(p), file=str(path))
        recipe = dataclasses.replace(recipe, **{name: dataclasses.replace(
            sources[name], sources=(str(path),), columns=field_columns(kind), subset=None, split="train")})

    speed, cached = {}, {}
    if align is not None:
        texts = sorted(targets)
        for name, teacher in zip(names, teachers):
            start = time.perf_counter()
            vectors = teacher.sentence_embeddings(texts).numpy()
            # Texts in the recipe's own disk cache (align.cache_dir) are read, not run: the speed is the others'.
            cached[name] = teacher.cache.hits if getattr(teacher, "cache", None) is not None else 0
            ran = len(texts) - cached[name]
            speed[name] = round(ran / (time.perf_counter() - start), 1) if ran else None
            save_teacher_vectors(out / "teacher", name, texts, vectors, sentences_per_s=speed[name])
        recipe = dataclasses.replace(recipe, align=dataclasses.replace(
            align, teacher_vectors=str(out / "teacher"), cache_dir=None))
    (out / "recipe.json").write_text(json.dumps(to_dict(recipe), indent=2) + "\n")

    tree, carry = tree_bytes(repo), folder_bytes(out)
    shard_bytes = sum(Path(s["file"]).stat().st_size for s in shard.values())
    parts = {"wheels": folder_bytes(out / "wheels"), "teacher vectors": folder_bytes(out / "teacher"),
             "training shard": shard_bytes, "eval, bench and dev data": folder_bytes(out / "data") - shard_bytes,
             "recipe.json": (out / "recipe.json").stat().st_size}
    report = dict(config=args.config, overrides=args.overrides, recipe=str(out / "recipe.json"), shard=shard,
                  teacher_texts=len(targets), teachers=list(names), teacher_sentences_per_s_cpu=speed,
                  teacher_cache_hits=cached, bytes=dict(tree=tree, carry=carry, total=tree + carry,
                             budget=int(args.budget_mib * MIB), **{k.replace(" ", "_"): v for k, v in parts.items()}))
    (out / "pack.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"device-pack: {out} for recipe {args.config!r} ({stage.name}), teachers {list(names) or 'none'}")
    for name, s in shard.items():
        print(f"  {name:<14} {s['pairs']:>8,} of {s['of']:,} pairs")
    for name in names:
        rate = f"{speed[name]:,.0f}/s" if speed[name] else "-"
        print(f"  teacher {name}: {len(targets):,} texts, {cached[name]:,} from its disk cache, the rest at {rate} here")
    print("  byte budget:")
    print(f"    working tree (tracked + not ignored) {tree / MIB:7.2f} MiB")
    for k, v in parts.items():
        print(f"    .carry {k:<30} {v / MIB:7.2f} MiB")
    total = tree + carry
    verdict = "fits" if total <= args.budget_mib * MIB else "OVER"
    print(f"    total                                {total / MIB:7.2f} MiB of {args.budget_mib:g} MiB: {verdict}")
    if verdict == "OVER":
        print(f"device-pack: {total / MIB:.2f} MiB is over the {args.budget_mib:g} MiB budget; "
              f"lower --max-texts or shrink the tracked files", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
