"""Rebuild the run folder the bundled default was exported from (the last LINEAGE phase's kept checkpoint,
runs/default8/final), so that the recipe's later phases can continue it without re-running the lineage.

`python -m pixelrep.train.configs.default --export` folds the trained sentence projector into the
encoder's projection; this undoes it: the encoder without a projection, and that projection saved as the
linear sentence projector (align_head.*), as the training run had them, without the common directions the
export removed. The weights are the bundled float16 values, upcast (the run's float32 weights are not in git).

Since the export also fine-tunes on graded pairs after the removal (train/graded.py), the bundle's weights
are no longer the run's: the run is rebuilt from the last bundle exported without that step, read from git
(UNGRADED_BUNDLE, commit 48f737e; a shallow clone needs `git fetch --unshallow` first).

    python scripts/unfold_default.py [--model DIR | --git-revision 48f737e] [--out runs/default8/final]
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import tarfile
import tempfile
from io import BytesIO

import torch.nn as nn

from pixelrep import PixelEncoder
from pixelrep.aligned import save_align_head
from pixelrep.train.configs.default import LINEAGE


# The last bundle the recipe exported without the graded fine-tune: default8/final, folded, less the removal.
UNGRADED_BUNDLE = "48f737e"


def bundle_at(revision: str, directory: str) -> str:
    """pixelrep/default as committed at `revision`, extracted into directory; returns its path."""
    try:
        archive = subprocess.run(["git", "archive", revision, "pixelrep/default"], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"git cannot read pixelrep/default at {revision} ({error}); run this from a full clone "
                           f"(`git fetch --unshallow`) or pass --model DIR") from error
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return f"{directory}/pixelrep/default"


def unfold(model: str, out: str) -> None:
    folded = PixelEncoder.from_pretrained(model)
    if "graded_pairs" in folded.metadata:
        raise ValueError(f"{model} was fine-tuned on graded pairs after its export's removal, so its weights are not "
                         f"a training run's; unfold the bundle before that step: --git-revision {UNGRADED_BUNDLE}")
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
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="an exported model folder (without the graded fine-tune)")
    source.add_argument("--git-revision", default=UNGRADED_BUNDLE, help="read pixelrep/default at this commit")
    kept = LINEAGE[-1]
    parser.add_argument("--out", default=f"runs/{kept.name}/{kept.kept}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        unfold(args.model or bundle_at(args.git_revision, tmp), args.out)
