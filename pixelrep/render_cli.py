"""`pixelrep render` (text -> enlarged PNG with the patch grid) and `pixelrep bench render`."""
from __future__ import annotations

import argparse
from pathlib import Path

# Image formats `pixelrep render -o` writes, by file suffix.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".gif": "GIF",
                 ".tif": "TIFF", ".tiff": "TIFF"}


def register(commands, bench_commands) -> None:
    p = commands.add_parser("render", help="render text to an enlarged image with the patch grid drawn",
                            description="Render TEXT as the model sees it, enlarged, with the 16 px patch grid.")
    p.add_argument("text", help="the text to render")
    p.add_argument("-o", "--output", required=True,
                   help=f"image file to write; its suffix picks the format ({', '.join(IMAGE_FORMATS)})")
    p.add_argument("--typo-rate", type=float, default=0.0, help="typos per character before rendering (e.g. 0.1)")
    p.add_argument("--shuffle", nargs="?", const="random", choices=["random", "local"], default=None,
                   help="shuffle the words first (random, the default, or local)")
    p.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    p.add_argument("--model", default=None,
                   help="render as this model does (a folder, 'default' or a hub id): its layout, re-spacing and "
                        "cells; default: running text, RenderConfig's defaults")
    p.add_argument("--max-patches", type=int, default=None,
                   help="patches including the end patch (2..529; default 64, or the model's)")
    p.add_argument("--scale", type=int, default=4, help="enlargement factor of the PNG")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_render_command)

    b = bench_commands.add_parser("render", help="renderer sentences/s against a naive Pillow loop")
    b.add_argument("--runs", type=int, default=3, help="timed passes per measurement (median reported)")
    b.add_argument("--data-dir", type=Path, default=None,
                   help="shared data folder (default $PIXELREP_DATA or ../shared/data; bundled samples if absent)")
    b.add_argument("--typo-rate", type=float, default=0.1, help="typo rate of the perturbed passes")
    b.add_argument("--limit", type=int, default=None, help="at most this many sentences per set (a quick check)")
    b.add_argument("--json", action="store_true", help="print one compact JSON line (default: indented)")
    b.set_defaults(func=_bench_command)


def preview(rendered, scale: int = 4):
    """An RGB image of a Rendered strip, enlarged `scale` times, with 1 px red lines between patches."""
    import numpy as np
    from PIL import Image

    if scale < 1:
        raise ValueError(f"scale={scale}: use 1 or more")
    ps = rendered.pixels.shape[0]
    big = np.repeat(np.repeat(rendered.pixels, scale, axis=0), scale, axis=1)
    side = ps * scale
    n = rendered.num_patches
    out = np.empty((side + 2, n * (side + 1) + 1, 3), dtype=np.uint8)
    out[:] = (230, 40, 40)
    for k in range(n):
        x = 1 + k * (side + 1)
        out[1:side + 1, x:x + side] = big[:, k * side:(k + 1) * side, None]
    return Image.fromarray(out, "RGB")


def image_format(path: str | Path) -> str:
    """The Pillow format for an output file's suffix (.png, .jpg, ...); an unknown suffix is an error."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"cannot tell the image format of {str(path)!r} from its suffix {suffix or '(none)'!r}; "
                         f"use one of {', '.join(IMAGE_FORMATS)}")
    return IMAGE_FORMATS[suffix]


def save_preview(rendered, path: str | Path, scale: int = 4) -> Path:
    """Write preview(rendered) in the format of path's suffix, atomically, with a normal file's mode."""
    from pixelrep.files import atomic_write

    path = Path(path)
    fmt = image_format(path)
    image = preview(rendered, scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {})))
    return path


def _render_command(args: argparse.Namespace) -> int:
    from pixelrep import strict_json
    from pixelrep.render import Renderer, RenderConfig, add_typos, shuffle_words
    from pixelrep.render.renderer import clean_text

    image_format(args.output)  # a bad suffix fails before any work
    text = args.text
    if args.shuffle:
        text = shuffle_words(text, mode=args.shuffle, rng=args.seed)
    if args.typo_rate:
        text = add_typos(text, rate=args.typo_rate, rng=args.seed)
    if args.model:
        import dataclasses

        from pixelrep import PixelEncoder

        config = PixelEncoder.from_pretrained(args.model).render_config
        config = dataclasses.replace(config, max_patches=args.max_patches or config.max_patches)
    else:
        config = RenderConfig(max_patches=args.max_patches or 64)
    rendered = Renderer(config).render(text)
    path = save_preview(rendered, args.output, scale=args.scale)
    if args.json:
        print(strict_json.dumps({
            "output": str(path), "text_chars": len(clean_text(text)), "num_patches": rendered.num_patches,
            "missing_glyphs": rendered.missing_glyphs, "missing_chars": list(rendered.missing_chars),
            "truncated": rendered.truncated, "height": rendered.pixels.shape[0], "width": rendered.pixels.shape[1],
            "typo_rate": args.typo_rate, "shuffle": args.shuffle, "seed": args.seed,
            "words": [w for w, _, _ in rendered.words]}))
    else:
        missing = f", missing glyphs: {' '.join(rendered.missing_chars)!r}" if rendered.missing_glyphs else ""
        cut = ", truncated" if rendered.truncated else ""
        print(f"wrote {path}: {rendered.num_patches} patches{cut}{missing}")
    return 0


def _bench_command(args: argparse.Namespace) -> int:
    from pixelrep import strict_json
    from pixelrep.render.bench import run_render_bench

    from pixelrep.files import data_path

    report = run_render_bench(data_dir=args.data_dir or Path(data_path()), runs=args.runs, typo_rate=args.typo_rate,
                              limit=args.limit)
    print(strict_json.dumps(report, indent=None if args.json else 2))
    return 0
