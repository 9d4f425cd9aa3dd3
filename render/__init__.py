"""Text -> pixels: fonts, shaping, perturbations."""
from pixelrep.render.cells import CellAligner
from pixelrep.render.config import MAX_PATCHES_LIMIT, Rendered, RenderConfig
from pixelrep.render.grid import GridSnapper
from pixelrep.render.fonts import ShapingUnavailableError, raqm_available
from pixelrep.render.perturb import add_pixel_noise, add_typos, shuffle_words
from pixelrep.render.renderer import Renderer, clean_text
from pixelrep.render.visual import (IMAGE_PERTURBATIONS, LAYOUT_PERTURBATIONS, TEXT_PERTURBATIONS, add_accents, add_bidi_controls,
                                    add_case_noise, add_homoglyphs, add_leetspeak, add_zero_width, blur, jpeg,
                                    low_resolution, merge_words, perturb_pixels, perturb_rendered, perturb_text,
                                    rotate_patches, shift, split_words, to_fullwidth, to_math_letters)

__all__ = ["Renderer", "RenderConfig", "Rendered", "MAX_PATCHES_LIMIT", "clean_text", "add_typos",
           "shuffle_words", "add_pixel_noise", "ShapingUnavailableError", "raqm_available",
           # visual perturbations: character kinds (text, rate, rng) and image kinds (pixels, level)
           "TEXT_PERTURBATIONS", "perturb_text", "add_homoglyphs", "add_accents", "add_leetspeak", "split_words",
           "merge_words", "add_zero_width", "add_bidi_controls", "to_fullwidth", "to_math_letters", "add_case_noise",
           "IMAGE_PERTURBATIONS", "perturb_pixels", "perturb_rendered", "blur", "jpeg", "low_resolution", "rotate_patches", "shift",
           "LAYOUT_PERTURBATIONS",
           # strips drawn off the pixel grid moved back onto it (RenderConfig.snap_to_grid); continuous lines laid out
           # in a word-aligned renderer's cells (PixelEncoder.encode_images)
           "GridSnapper", "CellAligner"]
