"""The training loop: one stage, one or many processes (torchrun), resumable at any checkpoint.

    train(stage, "runs/visual")              # fresh run
    train(stage, "runs/visual", resume=True) # continue from runs/visual/checkpoints/latest

The run folder gets config.json (the resolved stage), log.jsonl (one record per log/eval step),
checkpoints/, best/ (best STS-B dev Spearman so far, when a dev file is set) and final/, the last two
written with PixelEncoder.save_pretrained (the training head is left out: it is for training only).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from pixelrep import strict_json
from pixelrep.encoder import PixelEncoder, resolve_precision
from pixelrep.train import checkpoint, distributed
from pixelrep.train.config import DataConfig, HeadConfig, OptimConfig, StageConfig, from_dict, save_json, to_dict
from pixelrep.train.data import BatchPlan, Pairs, load_pairs, make_loader, micro_batches
from pixelrep.train.losses import info_nce
from pixelrep.train.runs import CONFIG_FILE, LOG_FILE


# --------------------------------------------------------------------------- model


def build_head(config: HeadConfig, dim: int) -> nn.Module:
    """The training-only projection head (SimCSE-style): the loss sees head(pooled), inference sees pooled."""
    if config.kind == "none":
        return nn.Identity()
    out = config.dim or dim
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out))


class ContrastiveModel(nn.Module):
    """Encoder + training head (+ alignment heads). forward() returns the named loss terms, so the
    cross-rank gather runs inside DistributedDataParallel's forward."""

    def __init__(self, encoder: PixelEncoder, head: HeadConfig, temperature: float, align=None,
                 contrastive_weight: float = 1.0):
        super().__init__()
        self.encoder = encoder
        # Without the pair loss the head would get no gradient (and DDP would wait for it): none then.
        self.head = build_head(head if contrastive_weight else HeadConfig(kind="none"), encoder.model_config.embedding_dim)
        self.temperature = temperature
        self.align = align
        self.contrastive_weight = contrastive_weight

    def forward(self, pixels: torch.Tensor, mask: torch.Tensor, n: int, negative_rows: torch.Tensor | None = None,
                align_targets: dict | None = None) -> dict[str, torch.Tensor]:
        """Rows of pixels: n anchors, n positives, then hard negatives for `negative_rows` (None: no
        negatives in this stage); align_targets: the rows' TeacherTargets (tensors only), with alignment."""
        vit = self.encoder.vit
        features = vit.forward_features(pixels, mask)
        pooled = vit.pool(features, mask)
        z = self.head(pooled)
        negative = negative_mask = None
        if negative_rows is not None:
            negative = z.new_zeros(n, z.shape[1]).index_copy(0, negative_rows, z[2 * n:])
            negative_mask = torch.zeros(n, dtype=torch.bool, device=z.device)
            negative_mask[negative_rows] = True
        losses = {}
        if self.contrastive_weight:
            losses["contrastive"] = self.contrastive_weight * info_nce(z[:n], z[n:2 * n], negative, negative_mask,
                                                                        self.temperature)
        if self.align is not None:
            losses.update(self.align.losses(features, vit.token_mask(mask), pooled, align_targets,
                                            patches_per_token=self.encoder.model_config.patches_per_token))
        return losses


def compile_blocks(encoder: PixelEncoder) -> None:
    """torch.compile each transformer block in place (regional compilation: one block's graph is
    compiled once and reused by all; state_dict keys are unchanged)."""
    for block in encoder.vit.blocks:
        block.compile()


def build_encoder(stage: StageConfig) -> PixelEncoder:
    """A fresh encoder, or the stage's init_from checkpoint (with the stage's model/render configs if set)."""
    if stage.init_from is None:
        return PixelEncoder(stage.model, stage.render)
    loaded = PixelEncoder.from_pretrained(stage.init_from)
    if stage.model is None and stage.render is None:
        return loaded
    encoder = PixelEncoder(stage.model or loaded.model_config, stage.render or loaded.render_config)
    try:
        encoder.load_state_dict(loaded.state_dict())
    except RuntimeError as e:
        raise ValueError(f"the weights of {stage.init_from} do not fit stage {stage.name!r}'s model config: {e}") from None
    return encoder


def no_weight_decay(model: nn.Module) -> set[str]:
    """Full names of the parameters that the modules inside `model` exclude from weight decay (their
    no_weight_decay(), as timm's models declare it), so the optimizer need not guess parameter names."""
    names = set()
    for prefix, module in model.named_modules():
        if callable(getattr(module, "no_weight_decay", None)):
            names |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
    return names


def build_optimizer(model: nn.Module, optim: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases and norms (1-D) and on what the model declares (no_weight_decay():
    positions, the CLS token), as timm and nanoGPT."""
    skip = no_weight_decay(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name in skip else decay).append(p)
    groups = [dict(params=decay, weight_decay=optim.weight_decay), dict(params=no_decay, weight_decay=0.0)]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, eps=optim.eps,
                             fused=True if device.type == "cuda" else None)


def lr_at(step: int, optim: OptimConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine/linear/constant."""
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    progress = (step - optim.warmup_steps) / max(1, optim.max_steps - optim.warmup_steps)
    floor = optim.min_lr_ratio
    if optim.schedule == "cosine":
        scale = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    elif optim.schedule == "linear":
        scale = 1 - (1 - floor) * progress
    else:
        scale = 1.0
    return optim.lr * scale


def source_at(step: int, stage: StageConfig) -> str:
    """Which data feeds step `step`: "data", or "leapfrog_with" in alternating blocks that end on "data"."""
    if stage.leapfrog_with is None:
        return "data"
    block, last = step // stage.leapfrog_every, (stage.optim.max_steps - 1) // stage.leapfrog_every
    return "data" if (last - block) % 2 == 0 else "leapfrog_with"


# --------------------------------------------------------------------------- run


@dataclass
class TrainResult:
    output_dir: Path
    step: int
    final_dir: Path
    best_dir: Path | None
    best_score: float | None     # best dev Spearman x100
    initial_score: float | None  # dev Spearman x100 before training (fresh runs)
    last_loss: float | None      # mean loss of the last logged steps; None when no step ran
    out_of_time: bool = False    # stopped by stop_after_seconds before max_steps


class TrainInterrupted(Exception):
    """Ctrl-C stopped the run. `step` is the checkpoint that --resume continues from (None: none yet)."""

    def __init__(self, step: int | None):
        self.step = step
        where = f"at step {step}; resume with --resume" if step else "before the first checkpoint; nothing to resume"
        super().__init__(f"interrupted {where}")


class _StopOnCtrlC:
    """The first Ctrl-C asks the loop to stop at the end of the current step (after a checkpoint);
    a second one interrupts at once, and the last complete checkpoint stands. Single process only:
    torchrun ranks would stop at different steps."""

    def __init__(self, enabled: bool, checkpoints: Path, bar=None):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.checkpoints, self.bar = checkpoints, bar
        self.requested = False
        self.previous = None

    def __enter__(self):
        if self.enabled:
            self.previous = signal.signal(signal.SIGINT, self._request)
        return self

    def __exit__(self, kind, error, traceback):
        if self.enabled:
            signal.signal(signal.SIGINT, self.previous)
        if kind is KeyboardInterrupt:
            if self.bar is not None:
                self.bar.close()  # now, so that the message below is the last line
            raise TrainInterrupted(_checkpoint_step(self.checkpoints)) from None

    def _request(self, signum, frame):
        self.requested = True
        # Not the handler from before: a process started in the background of a script inherits SIGINT
        # ignored, and the second Ctrl-C (or kill -INT) would then be lost. __exit__ restores that one.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    @contextmanager
    def children_ignore(self):
        """Processes started inside (rendering workers) ignore Ctrl-C: the terminal sends it to them too,
        and a worker that quit would break the step the loop is finishing. A Ctrl-C meanwhile is lost."""
        if not self.enabled:
            yield
            return
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, handler)


def resolve_stage(stage: StageConfig, encoder: PixelEncoder) -> StageConfig:
    """The stage with the model and render configs it actually trains (from init_from when unset)."""
    return dataclasses.replace(stage, model=encoder.model_config, render=encoder.render_config)


def _flatten(d: dict, prefix: str = "") -> dict:
    """{"optim": {"lr": 1}} -> {"optim.lr": 1}."""
    flat = {}
    for k, v in d.items():
        flat.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {prefix + k: v})
    return flat


def _check_same_config(saved: dict, stage: StageConfig, out: Path) -> None:
    """A resumed run must train what the saved config.json says (the run controls, stage.run, aside)."""
    # Through from_dict first, so that keys renamed since the run began (align.lm) compare as today's.
    saved, now = _flatten(to_dict(from_dict(saved))), _flatten(to_dict(stage))
    differ = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k) and not k.startswith("run."))
    if differ:
        raise ValueError(f"cannot resume {out}: the config differs from its config.json in {', '.join(differ)}; "
                         f"pass the same config and --set options, or choose another output dir")


def _save_model(model: ContrastiveModel, folder: Path, metadata: dict) -> None:
    """Encoder (+ alignment projectors) via save_pretrained into `folder`, swapped in atomically."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.encoder.save_pretrained(tmp, metadata={"trained": metadata["step"] > 0, **metadata})
    if model.align is not None:
        model.align.save_pretrained(tmp)
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _dev_spearman(encoder: PixelEncoder, dev, device: torch.device) -> float:
    """STS dev Spearman x100 (encode() switches to eval mode and back)."""
    from pixelrep.eval.sts import evaluate_sts

    result = evaluate_sts(_OnDevice(encoder, device), dev.sentence1, dev.sentence2, dev.score, batch_size=128)
    return float(result["spearman"])


class _OnDevice:
    """encode() pinned to this rank's device (evaluate_sts calls encode without one)."""

    def __init__(self, encoder: PixelEncoder, device: torch.device):
        self.encoder, self.device = encoder, device

    def encode(self, sentences, **kwargs):
        return self.encoder.encode(sentences, device=self.device, **kwargs)


class _Log:
    """JSONL log (+ TensorBoard when installed) on rank 0.

    A resumed run first drops the records written after its checkpoint (they are written again).
    """

    def __init__(self, folder: Path, enabled: bool, resume_step: int | None = None):
        self.enabled = enabled
        path = folder / LOG_FILE
        if enabled and resume_step is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        self.file = open(path, "a") if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:
                pass

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(strict_json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def _checkpoint_step(root: Path) -> int | None:
    """The step of the checkpoint a resumed run would start from, None when there is none."""
    latest = checkpoint.latest_checkpoint(root) if root.exists() else None
    return json.loads((latest / "state.json").read_text())["step"] if latest else None


def _past(deadline: float | None, device: torch.device) -> bool:
    """Whether the wall-clock budget is spent; under torchrun rank 0's clock decides for all ranks."""
    if deadline is None:
        return False
    late = time.monotonic() >= deadline
    if distributed.world_size() == 1:
        return late
    flag = torch.tensor(float(late), device=device)
    torch.distributed.broadcast(flag, src=0)
    return bool(flag)


def cpu_threads_beside_workers(workers: int) -> int:
    """Torch threads for a CPU run: one core left to each rendering worker.

    Oversubscribed cores slow torch's intra-op threads far more than they gain (10x measured here).
    """
    return max(1, torch.get_num_threads() - workers)


def train(stage: StageConfig, output_dir: str | os.PathLike, *, resume: bool = False, stop_after: int | None = None,
          stop_after_seconds: float | None = None, device: str | None = None, show_progress: bool = True) -> TrainResult:
    """Run one stage into `output_dir`; under torchrun every rank calls this.

    resume: continue from the latest checkpoint in output_dir (a fresh start when there is none).
    stop_after: run at most this many steps now, checkpoint and return (for jobs with a time limit;
    continue later with resume=True).
    stop_after_seconds: a wall-clock budget from the call on (fixed-time runs, e.g. a GPU lent for minutes):
    the first step that ends past it is the last; it is evaluated on dev (so best/ has seen it) and
    checkpointed, and the result says out_of_time. The learning-rate schedule still follows max_steps.
    Ctrl-C (single process) checkpoints the step in progress and raises TrainInterrupted.
    """
    threads = torch.get_num_threads()
    try:
        return _train(stage, Path(output_dir), resume, stop_after, stop_after_seconds, device, show_progress)
    finally:
        torch.set_num_threads(threads)


def _train(stage: StageConfig, out: Path, resume: bool, stop_after: int | None, stop_after_seconds: float | None,
           device: str | None, show_progress: bool) -> TrainResult:
    """The loop, read top to bottom: set up, then step / log / evaluate / checkpoint until done."""
    deadline = None if stop_after_seconds is None else time.monotonic() + stop_after_seconds
    run = _setup(stage, out, resume, device)
    stage, info = run.stage, run.info
    if stage.dev is not None and not run.resumed:
        _evaluate(run, bar=None)   # the score before training: best/ starts as the initial model

    total = stage.optim.max_steps
    end = total if stop_after is None else min(total, run.step + stop_after)
    bar = None
    if info.is_main and show_progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=run.step, desc=f"train {stage.name}", dynamic_ncols=True)
    window = _Window(info.device)
    run.model.train()
    # Ctrl-C: the step in progress ends with a checkpoint (see _StopOnCtrlC)
    with _StopOnCtrlC(enabled=info.world_size == 1, checkpoints=run.ckpt_root, bar=bar) as stop:
        while run.step < end:
            source = source_at(run.step, stage)
            lr, grad_norm = _step(run, source, window, stop)
            if bar is not None:
                bar.update(1)
            out_of_time = _past(deadline, info.device)

            if run.step % stage.run.log_every == 0 or run.step == end or out_of_time:
                _log_window(run, window, lr, grad_norm, source, bar)
            paused = time.perf_counter()  # evaluation and checkpoints do not count against pairs/s
            if stage.dev is not None and (_every(run.step, stage.run.eval_every) or run.step == total or out_of_time):
                _evaluate(run, bar)
            if _every(run.step, stage.run.checkpoint_every) or run.step == end or stop.requested or out_of_time:
                checkpoint.save_checkpoint(run.ckpt_root, run.step, run.model, run.optimizer, run.state(),
                                           keep=stage.run.keep_checkpoints)
            window.start += time.perf_counter() - paused
            if stop.requested or out_of_time:
                break
    return _finish(run, bar, end, interrupted=stop.requested)


# --------------------------------------------------------------------------- the loop's pieces


@dataclass
class _Run:
    """What a run holds between steps: the resolved stage, the model and its optimizer, the data, and
    the state a checkpoint saves (step, data positions, best dev score)."""

    stage: StageConfig
    out: Path
    info: distributed.DistInfo
    model: ContrastiveModel
    train_model: nn.Module            # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    autocast: object                  # a context factory: bf16 autocast (stage.precision), else nothing
    targets: object | None            # TeacherTargets with alignment: the batch's texts -> target vectors
    sources: dict[str, DataConfig]    # "data" and, leapfrogging, "leapfrog_with"
    pairs: dict[str, Pairs]
    plans: dict[str, BatchPlan]
    dev: object | None                # the dev set (rank 0)
    log: "_Log"
    ckpt_root: Path
    resumed: bool
    step: int                         # optimizer steps done
    positions: dict                   # [epoch, step in epoch] per data source
    best_score: float | None          # best dev Spearman x100 so far, at best_step
    best_step: int | None
    initial_score: float | None       # dev Spearman x100 before training
    loaders: dict = field(default_factory=dict)   # the one source's batch iterator in use
    last_loss: float | None = None

    def state(self) -> dict:
        """What a checkpoint's state.json holds besides the step."""
        return dict(positions=self.positions, best_score=self.best_score, best_step=self.best_step,
                    initial_score=self.initial_score)


def _setup(stage: StageConfig, out: Path, resume: bool, device: str | None) -> _Run:
    """Process group and device, model and optimizer (restored from the latest checkpoint when resuming),
    teachers, data plans, dev set, log. The order of the seeded steps is part of the result: the same
    seed gives the same initial weights on every rank, and resumed runs match uninterrupted ones."""
    info = distributed.setup(device)
    if info.device.type == "cpu":
        torch.set_num_threads(cpu_threads_beside_workers(stage.run.workers))
    ckpt_root = out / "checkpoints"
    latest = checkpoint.latest_checkpoint(ckpt_root) if ckpt_root.exists() else None
    if latest is not None and not resume:
        raise ValueError(f"{out} already holds checkpoints; pass resume (--resume) to continue, "
                         f"or choose another output dir")

    # Same initial weights on every rank (DDP also broadcasts rank 0's); dropout differs per rank.
    torch.manual_seed(stage.seed)
    encoder = build_encoder(stage)
    stage = resolve_stage(stage, encoder)
    align = targets = None
    if stage.align is not None:
        from pixelrep.aligned import ALIGN_CONFIG
        from pixelrep.train.align import AlignmentHeads, TeacherTargets

        targets = TeacherTargets(stage.align)   # loads the teachers (or their precomputed vectors)
        align = AlignmentHeads(stage.align, width=stage.model.width, pooled_dim=stage.model.embedding_dim,
                               **targets.dims)
        if stage.init_from and (Path(stage.init_from) / ALIGN_CONFIG).is_file():
            align.load_pretrained(stage.init_from)  # carry the projectors over from the previous stage
    model = ContrastiveModel(encoder, stage.head, stage.temperature, align,
                             stage.contrastive_weight).to(info.device)
    torch.manual_seed(stage.seed + 1 + info.rank)
    optimizer = build_optimizer(model, stage.optim, info.device)

    config_file = out / CONFIG_FILE
    if latest is not None and config_file.is_file():
        _check_same_config(json.loads(config_file.read_text()), stage, out)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_json(stage, config_file)
    distributed.barrier()

    step, positions = 0, {"data": [0, 0], "leapfrog_with": [0, 0]}   # [epoch, step in epoch] per data source
    best_score = best_step = initial_score = None
    if latest is not None:
        saved = checkpoint.load_checkpoint(latest, model, optimizer)
        step, positions = saved["step"], saved["positions"]
        best_score, best_step, initial_score = saved["best_score"], saved["best_step"], saved["initial_score"]

    # Data: pairs and plans for each source (the same on every rank), loaders made when first needed.
    sources = {"data": stage.data}
    if stage.leapfrog_with is not None:
        sources["leapfrog_with"] = stage.leapfrog_with
    pairs = {name: load_pairs(d) for name, d in sources.items()}
    plans = {name: BatchPlan(p.lengths(), stage.optim.batch_size, seed=stage.seed,
                             bucket_batches=sources[name].bucket_batches) for name, p in pairs.items()}
    for plan in plans.values():  # checks the split over ranks early, with a clear message
        micro_batches(plan.epoch(0)[0], 0, info.world_size, stage.optim.grad_accum)

    dev = None
    if stage.dev is not None and info.is_main:
        from pixelrep.eval.data import load_sts_file

        dev = load_sts_file(stage.dev)
        if stage.dev_limit:
            dev = dev.head(stage.dev_limit)

    if stage.run.compile:
        compile_blocks(model.encoder)
    train_model: nn.Module = model
    if info.world_size > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None,
            find_unused_parameters=align is not None)
    use_bf16 = resolve_precision(stage.precision, info.device) == "bf16"   # "auto": bf16 where native
    autocast = (lambda: torch.autocast(info.device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext
    log = _Log(out, info.is_main, resume_step=step if latest is not None else None)
    return _Run(stage=stage, out=out, info=info, model=model, train_model=train_model, optimizer=optimizer,
                autocast=autocast, targets=targets, sources=sources, pairs=pairs, plans=plans, dev=dev, log=log,
                ckpt_root=ckpt_root, resumed=latest is not None, step=step, positions=positions,
                best_score=best_score, best_step=best_step, initial_score=initial_score)


def _batches(run: _Run, source: str, stop: "_StopOnCtrlC"):
    """The batch iterator of `source`, started at its saved position when it is first needed. One source at
    a time: switching stops the other's workers (its position is kept)."""
    if source not in run.loaders:
        run.loaders.clear()
        epoch, in_epoch = run.positions[source]
        stage, info = run.stage, run.info
        with stop.children_ignore():
            run.loaders[source] = iter(make_loader(
                run.pairs[source], run.sources[source], stage.render, run.plans[source], seed=stage.seed,
                rank=info.rank, world_size=info.world_size, grad_accum=stage.optim.grad_accum, start_epoch=epoch,
                start_step=in_epoch, workers=stage.run.workers, pad_multiple=stage.pad_multiple,
                keep_texts=run.targets is not None, word_max=stage.align.word_max if stage.align and stage.align.word_weight else 0,
                pin_memory=info.device.type == "cuda"))
    return run.loaders[source]


def _step(run: _Run, source: str, window: "_Window", stop: "_StopOnCtrlC") -> tuple[float, torch.Tensor]:
    """One optimizer step on `source` (grad_accum micro-steps); returns the lr and the gradient norm."""
    stage, info = run.stage, run.info
    batches = _batches(run, source, stop)
    lr = lr_at(run.step, stage.optim)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    accum = stage.optim.grad_accum
    for k in range(accum):
        batch = next(batches)
        if [batch["epoch"], batch["step"]] != run.positions[source]:
            raise RuntimeError(f"data position out of sync: got {batch['epoch']}/{batch['step']}, "
                               f"expected {run.positions[source]}")
        negative_rows = batch["negative_rows"]
        # The teachers' vectors join the batch here, outside the model step, which sees tensors only.
        align_targets = None if run.targets is None else run.targets(batch["texts"], batch["targets"], info.device,
                                                                      words=batch.get("words"))
        # Gradients are averaged over ranks only on the last micro-step.
        sync = k == accum - 1 or info.world_size == 1
        with nullcontext() if sync else run.train_model.no_sync():
            with run.autocast():
                terms = run.train_model(batch["pixels"].to(info.device, non_blocking=True),
                                        batch["mask"].to(info.device, non_blocking=True), batch["n"],
                                        None if negative_rows is None else negative_rows.to(info.device),
                                        align_targets)
                loss = sum(terms.values())
            (loss / accum).backward()
        window.add(loss, terms, accum)
    window.steps += 1
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), stage.optim.grad_clip or float("inf"))
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    epoch, in_epoch = run.positions[source]
    run.positions[source] = [epoch + 1, 0] if in_epoch + 1 == len(run.plans[source]) else [epoch, in_epoch + 1]
    return lr, grad_norm


class _Window:
    """Loss sums since the last log line, kept on the device: no host sync per step."""

    def __init__(self, device: torch.device):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.steps, self.loss, self.terms = 0, torch.zeros((), device=self.device), {}
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], accum: int) -> None:
        """One micro-step's loss and terms (a step's micro-steps add up to its mean)."""
        self.loss += loss.detach() / accum
        for t, v in terms.items():
            self.terms[t] = self.terms.get(t, 0.0) + v.detach() / accum


def _log_window(run: _Run, window: _Window, lr: float, grad_norm: torch.Tensor, source: str, bar) -> None:
    """One log.jsonl record: the mean loss (and terms) of the steps since the last one, averaged over ranks."""
    n = window.steps
    run.last_loss = float(distributed.all_reduce_mean(window.loss)) / n
    elapsed = time.perf_counter() - window.start
    run.log.write(dict(step=run.step, loss=run.last_loss, lr=lr, grad_norm=float(grad_norm),
                       pairs_per_s=n * run.stage.optim.batch_size / elapsed, source=source,
                       epoch=run.positions[source][0],
                       **{f"loss_{t}": float(distributed.all_reduce_mean(v)) / n for t, v in window.terms.items()}))
    if bar is not None:
        bar.set_postfix(loss=f"{run.last_loss:.4f}", lr=f"{lr:.2e}")
    window.reset()


def _evaluate(run: _Run, bar) -> None:
    """Score the dev set on rank 0 and keep best/ (the initial model counts, as step 0); all ranks wait."""
    if run.info.is_main:
        score = _dev_spearman(run.model.encoder, run.dev, run.info.device)
        if run.best_score is None or score > run.best_score:
            run.best_score, run.best_step = score, run.step
            _save_model(run.model, run.out / "best", dict(stage=run.stage.name, step=run.step, dev_spearman=score))
        if run.step == 0:
            run.initial_score = score
        run.log.write(dict(step=run.step, dev_spearman=score, best_dev_spearman=run.best_score,
                           best_step=run.best_step))
        if bar is not None:
            bar.write(f"step {run.step}: dev Spearman {score:.2f} (best {run.best_score:.2f} at step {run.best_step})")
    distributed.barrier()


def _finish(run: _Run, bar, end: int, interrupted: bool) -> TrainResult:
    """Stop the loaders, write final/ when the stage is done, and say where the run stands."""
    run.loaders.clear()
    if bar is not None:
        bar.close()
    total = run.stage.optim.max_steps
    if run.info.is_main and run.step == total:
        _save_model(run.model, run.out / "final", dict(stage=run.stage.name, step=run.step))
    distributed.barrier()
    run.log.close()
    if interrupted and run.step < end:
        raise TrainInterrupted(run.step)
    return TrainResult(output_dir=run.out, step=run.step, final_dir=run.out / "final",
                       best_dir=run.out / "best" if run.stage.dev is not None else None,
                       best_score=run.best_score, initial_score=run.initial_score, last_loss=run.last_loss,
                       out_of_time=run.step < end and not interrupted)


def _every(step: int, every: int) -> bool:
    """Whether `step` is one of every `every` steps (0: never)."""
    return bool(every) and step % every == 0
