"""The steps of scripts/device_run.sh, after it installed what the node lacks from .carry/.

In order, each step's JSON into $OUT (at most 8 files come back from a node, 16 MiB each):
    device.json     the machine, the pack it got, and every step's status and seconds (rewritten at the end)
    gpu-tests.json  a. pytest -m gpu: one record per test
    bench.json      b. pixelrep bench train: base (ViT-B/16, 64 patches, bf16, compiled, batch 512), end to end
                       and model-only, against the plain timm ViT; small; the recipe's shape (length bucketing)
    train.json      c. the recipe (.carry/recipe.json) for a fixed wall-clock budget, GPU scale, and the
                       teacher's speed (its vectors, packed on the CPU, are looked up here)
    eval.json       c. pixelrep eval sts (stsb-multi, crosslingual, robustness) of the trained model
    model.tar[.NN]  d. the trained model (float16, projector folded in), its config and log, in parts < 15 MiB
A failed step is recorded (ok false, the end of its output) and the next steps still run.
--tiny runs the same steps on the CPU with tiny shapes and a few steps: the test suite's dry run.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

PART_BYTES = 15 << 20
MAX_FILES = 8


def write(out: Path, name: str, record: dict) -> None:
    from pixelrep import strict_json

    (out / name).write_text(strict_json.dumps(record, indent=2) + "\n")


def run(cmd: list[str], env: dict | None = None) -> tuple[int, str]:
    """Run a command, its stderr passing through; returns (exit code, stdout), stdout echoed too."""
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    print(done.stdout, end="", flush=True)
    return done.returncode, done.stdout


def last_json(stdout: str) -> dict:
    """The last line of a command's stdout that is a JSON object (our CLIs print one)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in the output: {stdout[-300:]!r}")


def device_info(carry: Path) -> dict:
    import torch
    from PIL import features

    info = dict(python=platform.python_version(), torch=torch.__version__, cpus=os.cpu_count(),
                cuda=torch.cuda.is_available(), raqm=features.check("raqm"))
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}")
    info["pack"] = json.loads((carry / "pack.json").read_text())
    return info


def gpu_tests(work: Path, tiny: bool) -> dict:
    """a. pytest -m gpu (skipped without CUDA, as in the --tiny dry run)."""
    xml = work / "gpu-tests.xml"
    # PIXELREP_TEST_GPU=1: tests/conftest.py hides the GPU from every other test.
    rc, _ = run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "tests/gpu", f"--junitxml={xml}"],
                env={**os.environ, "PIXELREP_TEST_GPU": "1"})
    tests = []
    for case in ET.parse(xml).iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        detail = next((c.get("message", "") for c in case if c.tag in ("failure", "error", "skipped")), "")
        tests.append(dict(name=case.get("name"), outcome=outcome, seconds=float(case.get("time", 0)),
                          message=detail[:500]))
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "error", "skipped")}
    # Exit code 5: nothing collected/run; on the CPU every test is skipped, which is the expected result.
    return dict(ok=rc == 0 and counts["failed"] == counts["error"] == 0, exit_code=rc, **counts, tests=tests)


def bench(carry: Path, tiny: bool) -> dict:
    """b. Training throughput: base against timm, small, the recipe's shape (length bucketing on)."""
    data = str(carry / "data" / "bench-pairs.jsonl.gz")
    if tiny:   # the recipe's (tiny) shape only: the same code path as the presets
        common = ["--device", "cpu", "--batch-size", "8", "--steps", "1", "--repeats", "1", "--workers", "0"]
        kinds = {"recipe": ["--config", str(carry / "recipe.json")]}
    else:      # compiling costs ~a minute per shape: base only, as the reference point
        common = ["--device", "cuda", "--batch-size", "512", "--workers", "12", "--repeats", "3", "--steps", "10"]
        kinds = {"base": ["--preset", "base", "--max-patches", "64", "--compile"],
                 "small": ["--preset", "small"],
                 "recipe": ["--config", str(carry / "recipe.json")]}
    results, ok = {}, True
    for name, extra in kinds.items():
        rc, stdout = run([sys.executable, "-m", "pixelrep", "bench", "train", "--json", "--data", data, *common, *extra])
        try:
            results[name] = last_json(stdout)
        except ValueError as e:
            results[name], ok = dict(error=str(e), exit_code=rc), False
    return dict(ok=ok, runs=results)


def teacher_speed(carry: Path, batch: int, rounds: int = 20) -> dict:
    """Sentences/s of the teacher as the trainer sees it: lookups of the packed vectors, per teacher."""
    from pixelrep.train.config import load_stage
    from pixelrep.teachers import TeacherVectors

    stage = load_stage(str(carry / "recipe.json"))
    if stage.align is None:
        return {}
    with gzip.open(stage.data.sources[0], "rt", encoding="utf-8") as f:
        texts = [next(iter(json.loads(line).values())) for _, line in zip(range(batch), f)]
    out = {}
    for name in stage.align.teachers:
        teacher = TeacherVectors(stage.align.teacher_vectors, name)
        for _ in range(rounds):
            teacher.sentence_embeddings(texts)
        out[name] = dict(device_lookup_sentences_per_s=round(teacher.served / teacher.seconds, 1),
                         packing_cpu_sentences_per_s=teacher.meta.get("sentences_per_s"), texts=teacher.meta["count"])
    return out


def train(carry: Path, work: Path, tiny: bool, seconds: float, batch: int, workers: int, bench_runs: dict) -> dict:
    """c. The recipe at GPU scale for a wall-clock budget; max_steps from the bench of the recipe's shape."""
    from pixelrep.train.config import load_stage

    recipe = load_stage(str(carry / "recipe.json"))
    if tiny:
        steps, sets, device = 4, ["optim.batch_size=8", "run.workers=0", "run.compile=false", "run.log_every=1"], "cpu"
    else:
        # 70% of the measured end-to-end rate: dev evaluations, checkpoints, compilation and the
        # alignment terms are not in the bench. The time budget stops the run if this is still too many;
        # without a bench (--only train) a guess of 2,000 pairs/s.
        rate = bench_runs.get("recipe", {}).get("end_to_end_pairs_per_s") or 2000.0
        steps = max(50, int(0.7 * rate * seconds / batch))
        sets, device = [f"optim.batch_size={batch}", f"run.workers={workers}", "precision=bf16", "run.compile=true",
                        "pad_multiple=8", "run.log_every=10"], "cuda"
    # Warmup keeps the recipe's share of the steps; about 8 dev evaluations pick best/.
    warmup = max(1, round(steps * recipe.optim.warmup_steps / recipe.optim.max_steps))
    every = max(1, steps // 8)
    sets += [f"optim.max_steps={steps}", f"optim.warmup_steps={warmup}", f"run.eval_every={every}",
             f"run.checkpoint_every={every}"]
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)   # a rerun trains afresh
    start = time.perf_counter()
    rc, stdout = run([sys.executable, "-m", "pixelrep", "train", str(carry / "recipe.json"), "--output-dir",
                      str(run_dir), "--device", device, "--stop-after-seconds", str(seconds), "--set", *sets])
    wall = time.perf_counter() - start
    from pixelrep.train.runs import CONFIG_FILE, read_run

    log = read_run(run_dir).log if (run_dir / CONFIG_FILE).is_file() else []
    rates = [r["pairs_per_s"] for r in log if "pairs_per_s" in r]
    record = dict(ok=rc == 0, exit_code=rc, train_seconds=round(wall, 1), budget_seconds=seconds, sets=sets,
                  summary=last_json(stdout) if rc == 0 else None,
                  median_pairs_per_s=statistics.median(rates) if rates else None,
                  dev=[r for r in log if "dev_spearman" in r], last=log[-1] if log else None)
    record["teacher"] = teacher_speed(carry, 8 if tiny else batch)
    return record


def export_and_eval(carry: Path, work: Path, tiny: bool) -> dict:
    """c. Fold the sentence projector into the best model, store it in float16, evaluate it."""
    from pixelrep.eval.models import load_model
    from pixelrep.pretrained import read_config

    best, model = work / "run" / "best", work / "model"
    encoder = load_model(str(best))[0]   # as exported: a sentence projector is folded in
    summary = read_config(best)["metadata"]
    encoder.save_pretrained(model, dtype="float16", metadata={
        "trained": True, "description": "pixelrep recipe trained on a lent GPU node (scripts/device_run.sh)",
        **{k: summary[k] for k in ("step", "dev_spearman") if k in summary}})
    cmd = [sys.executable, "-m", "pixelrep", "eval", "sts", "--model", str(model), "--suite", "stsb-multi",
           "crosslingual", "robustness", "--data-dir", str(carry / "data" / "sts"), "--out", str(work / "eval"),
           "--batch-size", "256"]
    rc, _ = run(cmd + (["--limit", "20"] if tiny else []))
    results = work / "eval" / "results.json"
    return dict(ok=rc == 0 and results.is_file(), exit_code=rc,
                results=json.loads(results.read_text()) if results.is_file() else None)


def pack_model(work: Path, out: Path) -> dict:
    """d. The model folder, the run's config and log, as one tar in parts that fit the return limits."""
    tar = work / "model.tar"
    with tarfile.open(tar, "w") as t:
        t.add(work / "model", arcname="model")
        for name in ("config.json", "log.jsonl"):
            if (work / "run" / name).is_file():
                t.add(work / "run" / name, arcname=f"run/{name}")
    data = tar.read_bytes()
    parts = [data[i:i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]
    room = MAX_FILES - len(list(out.iterdir()))   # the step JSON files are there already
    if len(parts) > room:
        return dict(ok=False, error=f"the model tar is {len(data) / 2**20:.1f} MiB: {len(parts)} parts, room for {room}")
    names = ["model.tar"] if len(parts) == 1 else [f"model.tar.{i:02d}" for i in range(len(parts))]
    for name, part in zip(names, parts):
        (out / name).write_bytes(part)
    return dict(ok=True, files=names, bytes=len(data), join="cat model.tar.* > model.tar; tar xf model.tar")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The device run's steps (see scripts/device_run.sh).")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny shapes, a few steps (the dry run)")
    parser.add_argument("--carry", default=os.environ.get("CARRY", ".carry"))
    parser.add_argument("--out", default=os.environ.get("OUT"))
    # Not inside the carry: the node replaces carried paths on every call, and a rerun (--only eval) needs the run.
    parser.add_argument("--work", default="runs/device", help="scratch folder: the run, the exported model")
    parser.add_argument("--train-seconds", type=float, default=150.0, help="the training step's wall-clock budget")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=12, help="rendering processes (the node has 16 cores)")
    parser.add_argument("--only", default="gpu-tests,bench,train,eval",
                        help="the steps to run, e.g. train,eval for a rerun when little device time is left "
                             "(eval includes saving the model)")
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("set $OUT or pass --out: the folder the results go to")
    carry, out = Path(args.carry), Path(args.out)
    if not (carry / "recipe.json").is_file():
        parser.error(f"{carry}/recipe.json is missing: run `make device-pack` first (it builds {carry}/)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    info = device_info(carry)
    print(f"device: {info.get('gpu', 'cpu')}, {info['cpus']} cpus, torch {info['torch']}, raqm {info['raqm']}", flush=True)
    write(out, "device.json", info)
    status = {}

    def step(name: str, file: str | None, fn) -> dict:
        t = time.perf_counter()
        try:
            record = fn()
        except Exception as e:   # a broken step must not cost the later ones their device time
            record = dict(ok=False, error=f"{type(e).__name__}: {e}")
        record["seconds"] = round(time.perf_counter() - t, 1)
        status[name] = dict(ok=record["ok"], seconds=record["seconds"])
        if file:
            write(out, file, record)
        print(f"step {name}: {'ok' if record['ok'] else 'FAILED'} in {record['seconds']} s", flush=True)
        return record

    only = set(args.only.split(","))
    if "gpu-tests" in only:
        step("gpu-tests", "gpu-tests.json", lambda: gpu_tests(work, args.tiny))
    bench_runs = step("bench", "bench.json", lambda: bench(carry, args.tiny)).get("runs", {}) if "bench" in only else {}
    if "train" in only:
        step("train", "train.json", lambda: train(carry, work, args.tiny, args.train_seconds, args.batch_size,
                                                  args.workers, bench_runs))
    if "eval" in only:
        if (work / "run" / "best").is_dir():
            step("eval", "eval.json", lambda: export_and_eval(carry, work, args.tiny))
            step("model", None, lambda: pack_model(work, out))
        else:
            status["eval"] = dict(ok=False, error=f"{work / 'run' / 'best'} is missing: train first (a recipe "
                                                 f"without a dev file has no best/)")
    write(out, "device.json", {**info, "steps": status, "seconds": round(time.perf_counter() - start, 1)})
    return 0 if all(s["ok"] for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
