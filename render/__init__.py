"""Text -> pixels: fonts, shaping, perturbations."""
from pixelrep.render.config import MAX_PATCHES_LIMIT, Rendered, RenderConfig
from pixelrep.render.fonts import ShapingUnavailableError, raqm_available
from pixelrep.render.perturb import add_pixel_noise, add_typos, shuffle_words
from pixelrep.render.renderer import Renderer, clean_text

__all__ = ["Renderer", "RenderConfig", "Rendered", "MAX_PATCHES_LIMIT", "clean_text", "add_typos",
           "shuffle_words", "add_pixel_noise", "ShapingUnavailableError", "raqm_available"]
