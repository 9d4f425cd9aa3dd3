"""pixelrep: sentence representations learned from pixels."""
from pixelrep.batch import LengthBucketSampler, collate
from pixelrep.config import PRESETS, ModelConfig
from pixelrep.encoder import PixelEncoder
from pixelrep.render import Renderer, RenderConfig

__version__ = "0.1.0"
__all__ = ["PixelEncoder", "ModelConfig", "PRESETS", "Renderer", "RenderConfig", "LengthBucketSampler", "collate",
           "__version__"]
