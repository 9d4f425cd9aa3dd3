"""pixelrep: sentence representations learned from pixels."""
from pathlib import Path as _Path

import pixelrep.render as _render


def _check_one_tree() -> None:
    """Fail loudly when pixelrep and pixelrep.render come from different trees.

    Python run from one checkout's root finds ./pixelrep first, while an editable install of another
    checkout maps pixelrep.render (a top-level folder there) to that other tree: the two would mix
    silently. Installed, render/ sits inside pixelrep/; in a checkout, beside it.
    """
    core = _Path(__file__).resolve().parent
    render = _Path(_render.__file__).resolve().parent
    if render not in (core / "render", core.parent / "render"):
        raise ImportError(f"pixelrep comes from {core} but pixelrep.render from {render}: two checkouts are "
                          f"mixed (Python run from one checkout's root while another is installed editable). "
                          f"Run from outside the checkout, or install this one: pip install -e {core.parent}")


_check_one_tree()
from pixelrep.batch import LengthBucketSampler, collate
from pixelrep.config import PRESETS, ModelConfig
from pixelrep.encoder import PixelEncoder
from pixelrep.render import Renderer, RenderConfig
from pixelrep.version import __version__

__all__ = ["PixelEncoder", "ModelConfig", "PRESETS", "Renderer", "RenderConfig", "LengthBucketSampler", "collate",
           "__version__"]
