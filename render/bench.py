"""`pixelrep bench render`: sentences per second of the renderer against a naive Pillow loop.

Sets: 2,000 English STS-B test sentences, 500 each of German, Russian, Chinese and Japanese STS-B
test sentences and 500 Arabic user-interface strings (../shared/data, or $PIXELREP_DATA); the
bundled samples (render/samples) stand in when the data is absent. One process, one thread.
Per set: a cold pass (fresh caches), then `runs` warm passes (median reported), then `runs`
passes with fresh typos (rate 0.1, a new seed each pass, add_typos timed too), and the baseline:
one ImageDraw.text call per sentence with the set's main font, as a naive renderer would do.
Each set is also rendered word-aligned (RenderConfig.word_align, cells of WORD_ALIGN patches, on a
canvas of WORD_ALIGN_MAX_PATCHES, as the default model reads): its patches per sentence and speed, and the
grid snapper's (RenderConfig.snap_to_grid) on SNAP_SENTENCES of its strips moved half a pixel (the visual
suite's `shift` kind, seeded): strips per second, and the share it puts back within one grey level on average;
and the cell aligner's (pixelrep.render.cells) on the same sentences drawn as continuous text: strips per second,
and the share it lays out exactly as the word-aligned renderer draws them.
"""
from __future__ import annotations

import gzip
import json
import dataclasses
import os
import platform
import re
import statistics
import time
from importlib import resources
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw

from pixelrep.render.config import RenderConfig
from pixelrep.render.fonts import ShapingUnavailableError, raqm_available
from pixelrep.render.cells import aligner_for
from pixelrep.render.grid import GridSnapper
from pixelrep.render.visual import perturb_rendered
from pixelrep.render.perturb import add_typos
from pixelrep.render.renderer import LEFT_PAD, Renderer

SET_SIZES = {"en": 2000, "de": 500, "ru": 500, "zh": 500, "ja": 500, "ar": 500}
PIXEL_REFERENCE_PER_S = 5_100
TARGET_EN_PER_S = 10_000
WORD_ALIGN, WORD_ALIGN_MAX_PATCHES = 3, 512
SNAP_SENTENCES = 200


def _sts_sentences(data_dir: Path, lang: str, n: int) -> list[str]:
    out: list[str] = []
    with open(data_dir / "sts" / "stsb" / lang / "test.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out += [row["sentence1"], row["sentence2"]]
            if len(out) >= n:
                break
    return out[:n]


def _arabic_sentences(data_dir: Path, n: int) -> list[str]:
    """Arabic UI strings of four or more words without format codes: the closest to sentences there is."""
    out: list[str] = []
    with gzip.open(data_dir / "parallel" / "en-ar.ui.tsv.gz", "rt", encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            ar = line.rstrip("\n").split("\t")[1]
            if len(ar.split()) >= 4 and not re.search(r"[%_{}<>&\\]", ar):
                out.append(ar)
                if len(out) >= n:
                    break
    return out


def load_sets(data_dir: Path, limit: int | None = None) -> dict[str, tuple[list[str], str]]:
    """{lang: (sentences, source)} from the shared data when present, else the bundled samples.

    limit caps the sentences per set (quick checks); the default sizes are SET_SIZES.
    """
    sets = {}
    for lang, n in SET_SIZES.items():
        n = min(n, limit) if limit else n
        try:
            if lang == "ar":
                sents, source = _arabic_sentences(data_dir, n), str(data_dir / "parallel" / "en-ar.ui.tsv.gz")
            else:
                sents, source = _sts_sentences(data_dir, lang, n), str(data_dir / "sts" / "stsb" / lang / "test.jsonl")
        except FileNotFoundError:
            text = resources.files("pixelrep.render").joinpath("samples", f"{lang}.txt").read_text(encoding="utf-8")
            sents, source = text.splitlines()[:n], f"bundled samples/{lang}.txt"
        sets[lang] = (sents, source)
    return sets


def _per_s(fn, sentences: list[str]) -> tuple[float, float]:
    """(wall, cpu) sentences per second of one pass; cpu time is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(sentences)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(sentences) / wall, len(sentences) / max(cpu, 1e-9)


def _main_font(renderer: Renderer, sentences: list[str]) -> int:
    """The font that draws most characters of the set: what a single-font renderer would use."""
    counts = np.bincount([renderer.fonts.first_font[ord(ch)] for s in sentences for ch in s if not ch.isspace()],
                         minlength=len(renderer.fonts.names) + 1)
    return int(np.argmax(counts[:len(renderer.fonts.names)]))


def _baseline(renderer: Renderer, font_index: int):
    """One ImageDraw.text call per sentence onto the full canvas, with Pillow's default layout."""
    c = renderer.config
    font = renderer.fonts.raqm[font_index] or renderer.fonts.basic[font_index]
    size = ((c.max_patches - 1) * c.patch_size, c.patch_size)
    baseline = round(c.patch_size / 2 + 0.3 * c.font_size)

    def run(sentences):
        for s in sentences:
            im = Image.new("L", size, 255)
            ImageDraw.Draw(im).text((LEFT_PAD, baseline), s, font=font, fill=0, anchor="ls")
            np.asarray(im)
    return run


def _word_aligned(config: RenderConfig, sentences: list[str], runs: int, typo_rate: float) -> dict:
    """Patches per sentence and sentences/s (warm, and with fresh typos) of word-aligned rendering, one CJK character
    per cell as the bundled default draws; snapping moved strips and laying continuous lines out in cells."""
    renderer = Renderer(dataclasses.replace(config, word_align=WORD_ALIGN, max_patches=WORD_ALIGN_MAX_PATCHES, chunk_chars=1))
    render_all = lambda sents: [renderer.render(s) for s in sents]  # noqa: E731
    rendered = render_all(sentences)
    warm = [_per_s(render_all, sentences) for _ in range(runs)]
    typo = []
    for run in range(runs):
        rng = np.random.default_rng(run)
        typo.append(_per_s(lambda sents: [renderer.render(add_typos(s, typo_rate, rng)) for s in sents], sentences))
    snapper = GridSnapper(renderer)
    moved = [perturb_rendered(r, "shift", 0.5, rng=i) for i, r in enumerate(rendered[:SNAP_SENTENCES])]
    snap = [_per_s(lambda strips: [snapper(m) for m in strips], moved) for _ in range(runs)]
    back = [np.abs(snapper(m).pixels.astype(int) - r.pixels).mean() < 1 for m, r in zip(moved, rendered)]
    aligner = aligner_for(renderer.config)
    continuous = Renderer(dataclasses.replace(renderer.config, word_align=0))
    lines = [continuous.text_area(r) for r in map(continuous.render, sentences[:SNAP_SENTENCES])]
    lay_out = [_per_s(lambda strips: [aligner(m) for m in strips], lines) for _ in range(runs)]
    exact = [np.array_equal(aligner(m), renderer.text_area(r))
             for m, r in zip(lines, rendered) if not r.truncated]
    return {"word_align": WORD_ALIGN, "max_patches": WORD_ALIGN_MAX_PATCHES,
            "mean_patches": round(float(np.mean([r.num_patches for r in rendered])), 2),
            "truncated": sum(r.truncated for r in rendered),
            "sentences_per_s": round(statistics.median(w[0] for w in warm), 1),
            "typo_sentences_per_s": round(statistics.median(t[0] for t in typo), 1),
            "snap_strips": len(moved), "snap_strips_per_s": round(statistics.median(x[0] for x in snap), 1),
            "snap_put_back_share": round(float(np.mean(back)), 3) if back else None,
            "cells_strips": len(lines), "cells_strips_per_s": round(statistics.median(x[0] for x in lay_out), 1),
            "cells_exact_share": round(float(np.mean(exact)), 3) if exact else None}


def run_render_bench(data_dir: Path, runs: int = 3, typo_rate: float = 0.1,
                     baseline_sentences: int = 500, config: RenderConfig | None = None,
                     limit: int | None = None, progress: bool = True) -> dict:
    """Benchmark every set; returns the JSON-ready report (see the module docstring)."""
    from tqdm.auto import tqdm

    if runs < 1:
        raise ValueError(f"runs={runs}: use 1 or more (3 gives a median)")
    config = config or RenderConfig()
    sets = load_sets(data_dir, limit)
    report = {"benchmark": "render", "runs": runs, "typo_rate": typo_rate, "render_config": config.to_dict(),
              "raqm": raqm_available(), "pillow": PIL.__version__, "python": platform.python_version(),
              "machine": platform.machine(), "cpus": os.cpu_count(), "sets": {}}
    for lang, (sentences, source) in tqdm(sets.items(), desc="bench render", disable=not progress):
        renderer = Renderer(config)  # fonts load here (cached per process), not inside the timing
        try:
            renderer.render(sentences[0])
        except ShapingUnavailableError as e:  # Arabic where Pillow has no raqm
            report["sets"][lang] = {"sentences": len(sentences), "source": source, "skipped": str(e)}
            continue
        renderer = Renderer(config)  # the cold pass starts from empty caches
        render_all = lambda sents: [renderer.render(s) for s in sents]  # noqa: E731
        cold = _per_s(render_all, sentences)
        warm = [_per_s(render_all, sentences) for _ in range(runs)]
        typo = []
        for run in range(runs):
            rng = np.random.default_rng(run)  # fresh typos every pass: no pass can reuse another's words
            typo.append(_per_s(lambda sents: [renderer.render(add_typos(s, typo_rate, rng)) for s in sents], sentences))
        base_sents = sentences[:baseline_sentences]
        main_font = _main_font(renderer, sentences)
        base = [_per_s(_baseline(renderer, main_font), base_sents) for _ in range(runs)]
        rendered = render_all(sentences)
        med = lambda xs, k: round(statistics.median(x[k] for x in xs), 1)  # noqa: E731
        report["sets"][lang] = {
            "sentences": len(sentences), "source": source,
            "mean_patches": round(float(np.mean([r.num_patches for r in rendered])), 2),
            "truncated": sum(r.truncated for r in rendered),
            "missing_glyphs": sum(r.missing_glyphs for r in rendered),
            "sentences_per_s": med(warm, 0), "cpu_sentences_per_s": med(warm, 1),
            "cold_sentences_per_s": round(cold[0], 1),
            "typo_sentences_per_s": med(typo, 0), "typo_cpu_sentences_per_s": med(typo, 1),
            "baseline_sentences": len(base_sents),
            "baseline_sentences_per_s": med(base, 0), "baseline_cpu_sentences_per_s": med(base, 1),
            "baseline_font": renderer.fonts.names[main_font],
        }
        report["sets"][lang]["word_aligned"] = _word_aligned(config, sentences, runs, typo_rate)
        r = report["sets"][lang]
        r["ratio"] = round(r["sentences_per_s"] / r["baseline_sentences_per_s"], 2)
        r["typo_ratio"] = round(r["typo_sentences_per_s"] / r["baseline_sentences_per_s"], 2)
    en = report["sets"]["en"]["sentences_per_s"]
    # PIXEL's PangoCairo renderer did ~5,100 English sentences/s on one core of the development
    # machine (measured for the issue, not in this run); the target is twice that.
    report["target"] = {"en_sentences_per_s": TARGET_EN_PER_S, "pixel_reference_per_s": PIXEL_REFERENCE_PER_S,
                        "met": en >= TARGET_EN_PER_S}
    return report
