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
