"""Grow a trained PixelEncoder deeper without changing what it computes, to continue training it.

    python scripts/grow_depth.py runs/default6/final runs/grown6 --depth 6

New blocks are inserted evenly between the old ones (timm-style pre-norm residual blocks). Each is a copy
of the block before it with its two output projections (attention and MLP) zeroed, so at the start it adds
nothing to the residual stream: the grown model's embeddings equal the source's (checked before writing),
and training opens the new blocks from there. Alignment heads (align_head.*) are copied along.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import shutil
from pathlib import Path

import torch

from pixelrep import PixelEncoder


def grow(encoder: PixelEncoder, depth: int) -> PixelEncoder:
    old = list(encoder.vit.blocks)
    if depth <= len(old):
        raise ValueError(f"--depth {depth} must exceed the model's depth {len(old)}")
    grown = PixelEncoder(dataclasses.replace(encoder.model_config, depth=depth), encoder.render_config)
    grown.load_state_dict({k: v for k, v in encoder.state_dict().items() if ".blocks." not in k}, strict=False)
    # Old block i goes to position slots[i]; the gaps take zeroed copies of the block before them.
    slots = [round(i * depth / len(old)) for i in range(len(old))]
    blocks, last = [], None
    for pos in range(depth):
        if pos in slots:
            last = old[slots.index(pos)]
            blocks.append(copy.deepcopy(last))
        else:
            new = copy.deepcopy(last)
            for proj in (new.attn.proj, new.mlp[2]):
                torch.nn.init.zeros_(proj.weight)
                torch.nn.init.zeros_(proj.bias)
            blocks.append(new)
    grown.vit.blocks = torch.nn.ModuleList(blocks)
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--depth", type=int, required=True)
    args = parser.parse_args()
    encoder = PixelEncoder.from_pretrained(args.source)
    grown = grow(encoder, args.depth)
    probe = ["A man is playing a guitar.", "Ein Hund läuft im Park.", "short"]
    diff = abs(grown.encode(probe, precision="fp32") - encoder.encode(probe, precision="fp32")).max()
    if diff > 1e-5:
        raise RuntimeError(f"the grown model's embeddings moved by {diff:.2e}: growth must preserve the function")
    grown.save_pretrained(args.output)
    for name in ("align_head.json", "align_head.safetensors"):
        if (Path(args.source) / name).is_file():
            shutil.copy2(Path(args.source) / name, Path(args.output) / name)
    print(f"wrote {args.output}: depth {len(encoder.vit.blocks)} -> {args.depth}, embeddings unchanged (max diff {diff:.1e})")


if __name__ == "__main__":
    main()
