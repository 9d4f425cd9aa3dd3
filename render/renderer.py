"""PLACEHOLDER renderer (naive, DejaVu only) so other parts can be built; being replaced by the fast,
every-script renderer. Interface is final: Renderer(config).render(text) / render_batch(texts)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pixelrep.render.config import Rendered, RenderConfig


class Renderer:
    def __init__(self, config: RenderConfig | None = None):
        self.config = config or RenderConfig()
        self.font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", size=self.config.font_size)

    def render(self, text: str) -> Rendered:
        if not isinstance(text, str):
            raise TypeError(f"render() takes str, got {type(text).__name__}")
        c = self.config
        ps = c.patch_size
        width = int(self.font.getlength(text)) + 2 if text else 0
        text_patches = -(-width // ps)
        truncated = text_patches > c.max_patches - 1
        text_patches = min(text_patches, c.max_patches - 1)
        n = text_patches + 1
        img = Image.new("L", (n * ps, ps), 255)
        if text:
            ImageDraw.Draw(img).text((1, ps / 2), text, font=self.font, fill=0, anchor="lm")
        pixels = np.asarray(img).copy()
        pixels[:, text_patches * ps:] = 0
        return Rendered(pixels=pixels, num_patches=n, truncated=truncated)

    def render_batch(self, texts, workers: int = 0) -> list[Rendered]:
        out = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
            out.append(self.render(t))
        return out
