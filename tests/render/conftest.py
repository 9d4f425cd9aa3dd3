"""Shared renderers: fonts load once per process, and each Renderer warms its own caches."""
import pytest

from pixelrep.render import Renderer, RenderConfig


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer(RenderConfig())


@pytest.fixture(scope="session")
def basic_renderer() -> Renderer:
    """The layout of machines without libfribidi (Pillow's basic layout, no raqm)."""
    return Renderer(RenderConfig(), layout="basic")


@pytest.fixture(scope="session")
def aligned() -> Renderer:
    """Word-aligned, as the bundled default draws (cells of 3 patches, one CJK character per cell), on a canvas long
    enough for a sentence."""
    return Renderer(RenderConfig(max_patches=128, word_align=3, chunk_chars=1))
