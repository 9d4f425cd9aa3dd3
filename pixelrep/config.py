"""Model configuration, named presets (plain dicts, as timm does), and the one strict `from_dict`."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

# Presets: keyword arguments for ModelConfig. `base` matches PIXEL's encoder (ViT-B/16 shape).
# `small` reads three adjacent patches (16x48 px, ~7 characters) as one token: ~7.5 positions per
# STS-B sentence instead of ~21.5, so it reads faster than all-MiniLM-L6-v2 reads its ~14 tokens.
POOLINGS = ("mean", "weighted", "cls")

PRESETS: dict[str, dict] = {
    "tiny": dict(width=64, depth=2, heads=2, mlp_ratio=2.0),                          # ~0.1M params, for tests
    "small": dict(width=384, depth=12, heads=6, mlp_ratio=4.0, patches_per_token=3),   # ~22M params
    "base": dict(width=768, depth=12, heads=12, mlp_ratio=4.0),                        # ~86M params, PIXEL-size
}


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a PixelEncoder. Positions are sized from the render config's max_patches."""

    width: int = 384
    depth: int = 12
    heads: int = 6
    mlp_ratio: float = 4.0
    patch_size: int = 16
    patches_per_token: int = 1     # adjacent patches embedded together: 2 halves what the transformer reads
    in_channels: int = 1           # grey patches; PIXEL imports are folded from 3 channels to 1
    max_patches: int = 64
    pooling: str = "mean"          # "mean" over real tokens, "weighted" (learned weight per token), or "cls"
    cls_token: bool = False        # prepend a learned CLS token (PIXEL checkpoints have one)
    projection_dim: int = 0        # 0 = no projection after pooling
    # The output less a reference corpus's mean vector and its top principal directions (All-but-the-top,
    # Mu & Viswanath 2018), the other directions scaled by variance ** -common_whitening (0: as they are,
    # 0.5: whitened, Su et al. 2021): set by PixelEncoder.remove_common_directions, 0 = none.
    common_directions: int = 0
    common_whitening: float = 0.0
    dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True

    def __post_init__(self):
        if self.width % self.heads:
            raise ValueError(f"ModelConfig.width={self.width} is not divisible by heads={self.heads}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"ModelConfig.pooling={self.pooling!r}: use one of {', '.join(POOLINGS)}")
        if self.pooling == "cls" and not self.cls_token:
            raise ValueError("ModelConfig.pooling='cls' needs cls_token=True")
        if self.depth < 1 or self.width < 1:
            raise ValueError("ModelConfig.depth and width must be positive")
        if self.patches_per_token < 1:
            raise ValueError(f"ModelConfig.patches_per_token={self.patches_per_token} must be >= 1")
        if not 0 <= self.common_directions < self.embedding_dim:
            raise ValueError(f"ModelConfig.common_directions={self.common_directions}: use 0 (none) up to "
                             f"embedding_dim - 1 = {self.embedding_dim - 1}")
        if not 0.0 <= self.common_whitening <= 0.5:
            raise ValueError(f"ModelConfig.common_whitening={self.common_whitening}: use 0 (none) up to 0.5 (whitened)")

    @property
    def removes_common(self) -> bool:
        """Whether the output goes through a fitted mean, common directions or whitening."""
        return bool(self.common_directions or self.common_whitening)

    def tokens_for(self, num_patches: int) -> int:
        """Positions the transformer reads for a strip of num_patches (grouped patches_per_token at a time)."""
        return -(-num_patches // self.patches_per_token)

    @property
    def max_tokens(self) -> int:
        return self.tokens_for(self.max_patches)

    @property
    def embedding_dim(self) -> int:
        return self.projection_dim or self.width

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ModelConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def dataclass_in(hint) -> type | None:
    """The dataclass a type hint names (`AlignConfig | None` -> AlignConfig), or None."""
    for arg in typing.get_args(hint) or (hint,):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def from_dict(cls, data: dict, where: str | None = None, renamed: dict | None = None):
    """Build the frozen config dataclass `cls` from JSON data (a checkpoint's or a run's config.json).

    Strict, so that a typo or a config from a newer pixelrep fails loudly instead of being dropped: an
    unknown key is an error naming the known ones. Nested dataclass fields are built recursively.
    renamed: {class: {old key: new key}} for keys older files still carry, read as the new key (a dotted
    new key, "run.workers", moved into a nested config).
    where: the dotted path for messages (default: the class name).
    """
    where = where or cls.__name__
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object for {cls.__name__}")
    old_keys = (renamed or {}).get(cls, {})
    new_data: dict = {}
    for key, value in data.items():
        outer, _, inner = old_keys.get(key, key).partition(".")
        if inner:   # moved into a nested config: "workers" -> "run.workers"
            new_data[outer] = {**new_data.get(outer, {}), inner: value}
        elif isinstance(value, dict) and isinstance(new_data.get(outer), dict):
            new_data[outer] = {**value, **new_data[outer]}
        else:
            new_data[outer] = value
    data = new_data
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        place = "" if where == cls.__name__ else f" in {where}"
        raise ValueError(f"unknown {cls.__name__} keys {unknown}{place}; known: {', '.join(known)}")
    kwargs = {}
    for key, value in data.items():
        sub = dataclass_in(hints[key])
        kwargs[key] = from_dict(sub, value, f"{where}.{key}", renamed) if sub and isinstance(value, dict) else value
    try:
        return cls(**kwargs)
    except TypeError as e:  # e.g. a required field missing from a JSON object
        raise ValueError(f"{where}: {e}") from None
