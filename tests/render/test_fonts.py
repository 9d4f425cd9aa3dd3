"""Bundled fonts: manifest, licences, size, character maps, the raqm check."""
import hashlib
from importlib import resources

import pytest

from pixelrep.render import fonts


def test_manifest_matches_the_bundled_files():
    folder = resources.files("pixelrep.fonts")
    m = fonts.manifest()
    assert sorted(m["default_stack"]) == sorted(f["file"] for f in m["fonts"])
    total = 0
    for entry in m["fonts"]:
        data = folder.joinpath(entry["file"]).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"] and entry["source"] and entry["licence"].startswith("OFL")
        assert fonts.read_cmap(data).size == entry["codepoints"], entry["file"]
    assert "Open Font License" in folder.joinpath("LICENSE-OFL.txt").read_text(encoding="utf-8")
    assert total < 30 * 2**20, "fonts/ stays under 30 MB"


def test_read_cmap_reports_only_mapped_codepoints():
    cps = set(fonts.read_cmap(fonts.resolve_font("NotoSans-Regular.ttf").read_bytes()).tolist())
    assert {ord(c) for c in "AZaz09éßЖωĞ"} <= cps
    assert ord("中") not in cps and 0x1F600 not in cps
    with pytest.raises(ValueError, match="cmap"):
        fonts.read_cmap(b"\x00\x01\x00\x00" + b"\x00" * 8)


def test_stack_falls_back_per_character():
    stack = fonts.load_stack((), 13.0, False)
    name = lambda ch: stack.names[stack.first_font[ord(ch)]]  # noqa: E731
    assert name("a") == "NotoSans-Regular.ttf"
    assert name("ب") == "NotoSansArabic-Regular.ttf"
    assert name("क") == "NotoSansDevanagari-Regular.ttf"
    assert name("中") == name("한") == name("か") == "NotoSansCJKsc-Subset.otf"
    assert stack.first_font[0x1F600] == fonts.NO_FONT


def test_unknown_font_names_the_bundled_ones():
    with pytest.raises(FileNotFoundError, match="NotoSans-Regular.ttf"):
        fonts.resolve_font("Arial.ttf")


def test_raqm_check_is_a_bool():
    assert isinstance(fonts.raqm_available(), bool)
    assert "libfribidi" in fonts.shaping_unavailable_message()
