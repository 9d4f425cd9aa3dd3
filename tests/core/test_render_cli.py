"""`pixelrep render` and `pixelrep bench render` (a shortened bench; the full one is run by hand)."""
import argparse
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from pixelrep import render_cli as cli
from pixelrep.render import raqm_available


def run(argv) -> int:
    """The `pixelrep` parser with only this part's commands (the others are tested in their parts)."""
    parser = argparse.ArgumentParser(prog="pixelrep")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench").add_subparsers(dest="bench", required=True)
    cli.register(commands, bench)
    args = parser.parse_args(argv)
    return args.func(args)


def test_render_writes_an_enlarged_png_with_the_grid(tmp_path, capsys):
    out = tmp_path / "sub" / "hello.png"
    assert run(["render", "Hello мир 世界 \U0001F600", "-o", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"num_patches", "missing_glyphs", "truncated"} <= set(info)
    assert info["missing_glyphs"] == 1 and info["missing_chars"] == ["\U0001F600"] and info["truncated"] is False
    n = info["num_patches"]
    image = np.asarray(Image.open(out))
    assert image.shape == (16 * 4 + 2, n * (16 * 4 + 1) + 1, 3)
    assert (image[:, 0] == (230, 40, 40)).all() and (image[:, 16 * 4 + 1] == (230, 40, 40)).all(), "grid lines"
    assert (image[1:-1, -(16 * 4 + 1):-1] == 0).all(), "the end patch"
    assert not list(tmp_path.glob("sub/*.tmp")), "written atomically"


def test_render_as_a_model_does(tmp_path, capsys):
    """--model renders with that model's config: the default's word cells, re-spacing and one CJK character per cell."""
    assert run(["render", "Aman is playingthe guitar. 男人", "-o", str(tmp_path / "m.png"), "--model", "default",
                "--max-patches", "128", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["words"] == ["A", "man", "is", "playing", "the", "guitar.", "男", "人"]
    assert info["num_patches"] == 8 * 3 + 1
    assert run(["render", "Aman", "-o", str(tmp_path / "p.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["words"] == []          # running text: no word cells
    with pytest.raises(Exception, match="nope"):
        run(["render", "x", "-o", str(tmp_path / "x.png"), "--model", str(tmp_path / "nope")])


def test_render_perturbations_are_seeded(tmp_path, capsys):
    text = "A man is playing a guitar on the stage tonight"
    images = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", None)):
        run(["render", text, "-o", str(tmp_path / f"{name}.png")]
            + (["--typo-rate", "0.3", "--shuffle", "local", "--seed", seed] if seed else []))
        images.append(np.asarray(Image.open(tmp_path / f"{name}.png")))
    assert np.array_equal(images[0], images[1]) and not np.array_equal(images[0], images[2])
    run(["render", "plain", "-o", str(tmp_path / "b.png")])
    assert "1 patches" not in capsys.readouterr().out


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".JPEG", "JPEG"), (".webp", "WEBP"),
                                         (".bmp", "BMP")])
def test_render_writes_the_format_of_the_suffix_with_a_normal_mode(tmp_path, suffix, fmt):
    out = tmp_path / f"x{suffix}"
    umask = os.umask(0o022)  # the usual umask: a normal file is then rw-r--r--
    try:
        run(["render", "Hello", "-o", str(out)])
    finally:
        os.umask(umask)
    with Image.open(out) as image:
        assert image.format == fmt
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_render_refuses_an_unknown_suffix_before_rendering(tmp_path):
    for name in ("x.pgn", "x"):
        with pytest.raises(ValueError, match=r"cannot tell the image format .* use one of \.png, \.jpg"):
            run(["render", "Hello", "-o", str(tmp_path / name)])
    assert not list(tmp_path.iterdir())


def test_render_json_reports_the_length_not_the_text(tmp_path, capsys):
    run(["render", "word " * 20_000, "-o", str(tmp_path / "x.png"), "--json"])
    printed = capsys.readouterr().out
    info = json.loads(printed)
    assert info["text_chars"] == 100_000 and info["truncated"] is True and len(printed) < 1000


def test_render_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="typo rate"):
        run(["render", "x", "-o", str(tmp_path / "x.png"), "--typo-rate", "2"])
    with pytest.raises(ValueError, match="max_patches"):
        run(["render", "x", "-o", str(tmp_path / "x.png"), "--max-patches", "1000"])


def test_bench_report_has_every_set_and_the_baseline(tmp_path):
    """On the bundled samples (an empty data folder), few sentences: checks the report, not the speed."""
    from pixelrep.render.bench import run_render_bench

    report = run_render_bench(data_dir=tmp_path, runs=1, limit=12, baseline_sentences=4, progress=False)
    assert set(report["sets"]) == {"en", "de", "ru", "zh", "ja", "ar"}
    for lang, r in report["sets"].items():
        if lang == "ar" and not raqm_available():
            assert "raqm" in r["skipped"]
            continue
        assert r["source"].startswith("bundled samples") and r["sentences"] == 12
        for key in ("sentences_per_s", "typo_sentences_per_s", "baseline_sentences_per_s", "ratio", "mean_patches"):
            assert r[key] > 0, (lang, key)
        assert r["missing_glyphs"] == 0
        aligned = r["word_aligned"]   # words on cell boundaries take more patches than running text
        assert aligned["mean_patches"] > r["mean_patches"] and aligned["sentences_per_s"] > 0
        assert aligned["snap_strips"] == 12 and aligned["snap_strips_per_s"] > 0
        if lang == "en":   # Latin strips moved half a pixel are put back
            assert aligned["snap_put_back_share"] >= 0.75
    json.dumps(report)
