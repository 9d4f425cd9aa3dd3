"""Rebuild the run folder the bundled default was exported from (the last LINEAGE phase's kept checkpoint,
runs/default8/final), so that the recipe's later phases can continue it without re-running the lineage.

`python -m pixelrep.train.configs.default --export` folds the trained sentence projector into the
encoder's projection; this undoes it: the encoder without a projection, and that projection saved as the
linear sentence projector (align_head.*), as the training run had them, without the common directions the
export removed. The weights are the bundled float16 values, upcast (the run's float32 weights are not in git).

    python scripts/unfold_default.py [--model default] [--out runs/default8/final]
"""
from __future__ import annotations

import argparse
import dataclasses

import torch.nn as nn

from pixelrep import PixelEncoder
from pixelrep.aligned import save_align_head
from pixelrep.train.configs.default import LINEAGE


def unfold(model: str, out: str) -> None:
    folded = PixelEncoder.from_pretrained(model)
    projection = folded.vit.projection
    if projection is None:
        raise ValueError(f"{model} has no folded projection to unfold")
    teacher = folded.metadata.get("teacher")
    if not teacher:
        raise ValueError(f"{model}'s metadata names no teacher: it was not exported from an aligned run")
    # The common directions were fitted after training (the recipe's export): the run never had them.
    encoder = PixelEncoder(dataclasses.replace(folded.model_config, projection_dim=0, common_directions=0,
                                               common_whitening=0.0),
                           folded.render_config)
    encoder.load_state_dict({k: v for k, v in folded.state_dict().items()
                             if not k.startswith(("vit.projection.", "vit.common_"))})
    head = nn.Linear(projection.in_features, projection.out_features)
    head.load_state_dict(projection.state_dict())
    metadata = {k: v for k, v in folded.metadata.items() if k != "common_directions"}
    encoder.save_pretrained(out, metadata={**metadata, "unfolded_from": model})
    save_align_head(out, {"sentence": head}, projector="linear", teachers=(teacher,))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    kept = LINEAGE[-1]
    parser.add_argument("--out", default=f"runs/{kept.name}/{kept.kept}")
    args = parser.parse_args()
    unfold(args.model, args.out)
