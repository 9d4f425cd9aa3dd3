"""Atomic training checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder `checkpoints/step-00001000/` holding
  model.safetensors      the training module (encoder, training head, alignment projectors)
  optimizer.safetensors  AdamW moments and step counts, keyed "<param index>.<name>"
  rng-<rank>.safetensors each rank's torch RNG state (dropout), so a resumed run draws the same numbers
  state.json             step, data positions, best dev score, optimizer hyper-parameters
It is written under a temporary name and renamed when complete, then `checkpoints/latest` (a one-line
file, itself replaced atomically) points at it: a run killed at any moment leaves the previous
checkpoint intact. Every rank writes its RNG file, so the run folder must be on a filesystem all
ranks share (as usual for torchrun jobs).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pixelrep import strict_json
from pixelrep.files import atomic_write_bytes
from pixelrep.train import distributed

LATEST = "latest"


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Split an optimizer state dict into flat tensors and JSON-ready parameter groups."""
    sd = optimizer.state_dict()
    tensors = {}
    for index, state in sd["state"].items():
        for name, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {index}.{name} is {type(value).__name__}; only tensors are saved")
            tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for group in groups:
        if "betas" in group:  # JSON turned the tuple into a list
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def save_checkpoint(root: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict, keep: int) -> Path | None:
    """Write checkpoint `step` under `root` (every rank calls this; rank 0 writes all but RNG files).

    Returns the checkpoint folder on rank 0, None elsewhere. Keeps the newest `keep` checkpoints.
    """
    rank = distributed.rank()
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    distributed.barrier()
    save_file(rng_state(), str(tmp / f"rng-{rank}.safetensors"))
    if rank == 0:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        tensors, groups = optimizer_tensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        record = {**state, "step": step, "world_size": distributed.world_size(), "optimizer_param_groups": groups}
        (tmp / "state.json").write_text(strict_json.dumps(record, indent=2) + "\n")
    distributed.barrier()  # every rank's RNG file is in place
    if rank != 0:
        return None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_bytes(root / LATEST, (final.name + "\n").encode())
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The folder `latest` points at, or None when there is no complete checkpoint."""
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    folder = root / pointer.read_text().strip()
    if not (folder / "state.json").is_file():
        raise FileNotFoundError(f"{pointer} points at {folder}, which is not a complete checkpoint")
    return folder


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, optimizer and this rank's RNG; return the saved state (step, positions, ...)."""
    state = json.loads((folder / "state.json").read_text())
    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}/model.safetensors does not fit this stage's model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    load_optimizer(optimizer, load_file(str(folder / "optimizer.safetensors")), state.pop("optimizer_param_groups"))
    rng_file = folder / f"rng-{distributed.rank()}.safetensors"
    if rng_file.is_file():
        set_rng_state(load_file(str(rng_file)))
    else:
        print(f"note: {rng_file.name} not in {folder} (saved with {state['world_size']} ranks); "
              f"this rank's random numbers start afresh", flush=True)
    return state
