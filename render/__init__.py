"""Text -> pixels: fonts, shaping, perturbations."""
from pixelrep.render.config import MAX_PATCHES_LIMIT, Rendered, RenderConfig
from pixelrep.render.renderer import Renderer

__all__ = ["Renderer", "RenderConfig", "Rendered", "MAX_PATCHES_LIMIT"]
