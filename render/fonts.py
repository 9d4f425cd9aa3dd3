"""Bundled fonts, the font stack with per-character fallback, and the shaping-engine check.

The default stack is the list `default_stack` in fonts/manifest.json: Noto Sans first (Latin, Greek,
Cyrillic, the common punctuation), then one Noto font per script family. A character is drawn with
the first font of the stack whose character map (cmap) has it; which fonts have which characters is
read from the cmap tables directly, since Pillow cannot tell a real glyph from the font's .notdef box.
"""
from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import ImageFont, features

NO_FONT = 255           # coverage byte for "no font of the stack has this character"
MAX_FONTS = NO_FONT     # font indices must fit in one byte
UNICODE_SIZE = 0x110000


class ShapingUnavailableError(RuntimeError):
    """Text needs complex shaping (bidi, joining, reordering) but Pillow has no raqm layout here."""


@functools.lru_cache(maxsize=1)
def raqm_available() -> bool:
    """True when Pillow can shape with raqm (HarfBuzz + FriBiDi).

    Pillow loads libfribidi at run time; where it is missing (some GPU nodes) Pillow quietly falls
    back to its basic layout, which would draw Arabic backwards. Checked once per process.
    """
    if not features.check("raqm"):
        return False
    # Pillow downgrades the engine on the font object when raqm cannot actually be loaded.
    probe = ImageFont.truetype(_bundled_source(manifest()["default_stack"][0]), 10,
                               layout_engine=ImageFont.Layout.RAQM)
    return probe.layout_engine == ImageFont.Layout.RAQM


def shaping_unavailable_message() -> str:
    return ("this text needs complex shaping (Arabic, Hebrew, Indic, Thai, ...), but Pillow's raqm layout is "
            "not available here: install libfribidi (e.g. `apt-get install libfribidi0`) so that "
            "PIL.features.check('raqm') is True")


@functools.lru_cache(maxsize=1)
def manifest() -> dict:
    """fonts/manifest.json: every bundled font's file, family, version, licence, source and sha256."""
    return json.loads(resources.files("pixelrep.fonts").joinpath("manifest.json").read_text(encoding="utf-8"))


def bundled_font_names() -> list[str]:
    return [f["file"] for f in manifest()["fonts"]]


def _bundled_source(name: str) -> Path | BytesIO:
    """A bundled font as a path (normal installs) or its bytes (zipped installs)."""
    res = resources.files("pixelrep.fonts").joinpath(name)
    return res if isinstance(res, Path) else BytesIO(res.read_bytes())


def resolve_font(name: str) -> Path | BytesIO:
    """A bundled font file name (e.g. "NotoSans-Regular.ttf") or a path to a font file."""
    if name in bundled_font_names():
        return _bundled_source(name)
    path = Path(name).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(f"font {name!r} is neither a bundled font ({', '.join(bundled_font_names())}) "
                            "nor an existing font file")


def read_cmap(data: bytes, font_index: int = 0) -> np.ndarray:
    """Sorted codepoints that a TrueType/OpenType font (or one face of a collection) maps to a glyph.

    Reads the Unicode cmap subtables: format 12 (full range) when present, else format 4 (BMP).
    """
    offset = 0
    if data[:4] == b"ttcf":
        (num_faces,) = struct.unpack_from(">I", data, 8)
        if not 0 <= font_index < num_faces:
            raise ValueError(f"font collection has {num_faces} faces, asked for face {font_index}")
        (offset,) = struct.unpack_from(">I", data, 12 + 4 * font_index)
    (num_tables,) = struct.unpack_from(">H", data, offset + 4)
    cmap = None
    for i in range(num_tables):
        tag, _, table_offset, _ = struct.unpack_from(">4sIII", data, offset + 12 + 16 * i)
        if tag == b"cmap":
            cmap = table_offset
    if cmap is None:
        raise ValueError("font has no cmap table")
    (num_sub,) = struct.unpack_from(">H", data, cmap + 2)
    subtables = {}
    for i in range(num_sub):
        platform, encoding, sub_offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        (fmt,) = struct.unpack_from(">H", data, cmap + sub_offset)
        if (platform, encoding) in {(3, 10), (0, 4), (0, 6)} and fmt == 12:
            subtables.setdefault(12, cmap + sub_offset)
        elif (platform, encoding) in {(3, 1), (0, 3), (0, 1), (0, 0)} and fmt == 4:
            subtables.setdefault(4, cmap + sub_offset)
    if 12 in subtables:
        return _cmap_format12(data, subtables[12])
    if 4 in subtables:
        return _cmap_format4(data, subtables[4])
    raise ValueError("font has no Unicode cmap subtable of format 4 or 12")


def _cmap_format12(data: bytes, at: int) -> np.ndarray:
    (num_groups,) = struct.unpack_from(">I", data, at + 12)
    groups = np.frombuffer(data, dtype=">u4", count=3 * num_groups, offset=at + 16).reshape(-1, 3).astype(np.int64)
    spans = [np.arange(start, end + 1) for start, end, glyph in groups if glyph != 0 or end > start]
    cps = np.unique(np.concatenate(spans)) if spans else np.zeros(0, np.int64)
    # A group starting at glyph 0 maps only its first codepoint to .notdef.
    notdef = [start for start, end, glyph in groups if glyph == 0]
    return np.setdiff1d(cps, notdef)


def _cmap_format4(data: bytes, at: int) -> np.ndarray:
    (seg_x2,) = struct.unpack_from(">H", data, at + 6)
    n = seg_x2 // 2
    ends = np.frombuffer(data, ">u2", n, at + 14).astype(np.int64)
    starts = np.frombuffer(data, ">u2", n, at + 16 + seg_x2).astype(np.int64)
    deltas = np.frombuffer(data, ">i2", n, at + 16 + 2 * seg_x2).astype(np.int64)
    range_at = at + 16 + 3 * seg_x2
    range_offsets = np.frombuffer(data, ">u2", n, range_at).astype(np.int64)
    out = []
    for i in range(n):
        start, end = int(starts[i]), int(ends[i])
        if start == 0xFFFF:
            continue
        cps = np.arange(start, end + 1)
        if range_offsets[i] == 0:
            glyphs = (cps + deltas[i]) & 0xFFFF
        else:  # glyph ids live in glyphIdArray, addressed relative to this idRangeOffset entry
            where = range_at + 2 * i + int(range_offsets[i]) + 2 * (cps - start)
            raw = np.array([struct.unpack_from(">H", data, int(w))[0] for w in where], dtype=np.int64)
            glyphs = np.where(raw != 0, (raw + deltas[i]) & 0xFFFF, 0)
        out.append(cps[glyphs != 0])
    return np.unique(np.concatenate(out)) if out else np.zeros(0, np.int64)


@dataclass(frozen=True)
class FontStack:
    """The fonts of one RenderConfig, loaded at one size, and which font draws which character.

    first_font[cp] is the index of the first font that has codepoint cp (NO_FONT if none);
    covers[i] is the set of codepoints of font i (marks stay with their base's font when it has them).
    basic[i] uses Pillow's basic layout (single glyphs, hinted integer advances); raqm[i] shapes
    whole runs with HarfBuzz (None where raqm is unavailable).
    """

    names: tuple[str, ...]
    first_font: bytes
    covers: tuple[frozenset, ...]
    basic: tuple[ImageFont.FreeTypeFont, ...]
    raqm: tuple[ImageFont.FreeTypeFont | None, ...]


@functools.lru_cache(maxsize=8)
def _coverage(names: tuple[str, ...]) -> tuple[bytes, tuple[frozenset, ...]]:
    first = np.full(UNICODE_SIZE, NO_FONT, dtype=np.uint8)
    covers = []
    for i, name in enumerate(names):
        src = resolve_font(name)
        cps = read_cmap(src.getvalue() if isinstance(src, BytesIO) else src.read_bytes())
        covers.append(frozenset(cps.tolist()))
        unset = cps[first[cps] == NO_FONT]
        first[unset] = i
    return first.tobytes(), tuple(covers)


@functools.lru_cache(maxsize=8)
def load_stack(names: tuple[str, ...], size: float, use_raqm: bool) -> FontStack:
    """Load a font stack (cached per process: the CJK font's cmap alone takes ~50 ms to read)."""
    if not names:
        names = tuple(manifest()["default_stack"])
    if len(names) > MAX_FONTS - 1:
        raise ValueError(f"at most {MAX_FONTS - 1} fonts in a stack, got {len(names)}")
    first, covers = _coverage(names)

    def load(name, engine):
        src = resolve_font(name)
        if isinstance(src, BytesIO):
            src = BytesIO(src.getvalue())  # Pillow keeps reading from the object: one per font object
        return ImageFont.truetype(src, size=size, layout_engine=engine)

    basic = tuple(load(n, ImageFont.Layout.BASIC) for n in names)
    raqm = tuple(load(n, ImageFont.Layout.RAQM) for n in names) if use_raqm else (None,) * len(names)
    return FontStack(names=names, first_font=first, covers=covers, basic=basic, raqm=raqm)
