"""`pixelrep bench train`: training throughput, model only vs end to end, and achieved TFLOP/s.

Three kinds of run, alternating, each repeated, medians reported:
  end_to_end  real sentence pairs -> DataLoader workers render and collate -> training step
  model_only  the same step on random pixels already on the device, with the shapes and masks the
              end-to-end batches had (so the ratio isolates the data pipeline)
  timm        a plain timm VisionTransformer of the same shape on full-length synthetic strips
              (no masks, no length bucketing): what a standard ViT pipeline computes
A training step is forward + InfoNCE + backward + AdamW. FLOPs are counted analytically (step_flops),
on the padded shapes: the work the hardware does.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn

from pixelrep.config import ModelConfig
from pixelrep.encoder import PixelEncoder, resolve_precision
from pixelrep.files import data_path
from pixelrep.render import RenderConfig
from pixelrep.train.config import DataConfig, HeadConfig, OptimConfig
from pixelrep.train.data import PREFETCH, BatchPlan, load_pairs, make_loader
from pixelrep.train.loop import ContrastiveModel, build_optimizer, compile_blocks, cpu_threads_beside_workers
from pixelrep.train.losses import info_nce

WARMUP_STEPS = 3


def step_flops(model_config: ModelConfig, strips: int, patches: int, head_params: int = 0) -> float:
    """Training FLOPs of one forward+backward over `strips` strips padded to `patches` patches
    (which the model reads as ceil(patches / patches_per_token) tokens).

    Matmuls: 2 FLOPs per weight and patch forward, 4 backward (input and weight gradients), except
    the patch embedding, whose input (the pixels) needs no gradient: 4. Attention: scores and their
    weighted sum, 2 x 2 x P^2 x width per layer forward, x3 with backward. The pooled projection and
    the training head run once per strip.
    """
    c = model_config
    hidden = int(c.width * c.mlp_ratio)
    embed = c.in_channels * c.patch_size ** 2 * c.patches_per_token * c.width
    blocks = c.depth * (4 * c.width ** 2 + 2 * c.width * hidden)
    per_strip = c.tokens_for(patches)
    tokens = strips * per_strip
    attention = 12 * c.depth * c.width * strips * per_strip ** 2
    return 4 * embed * tokens + 6 * blocks * tokens + 6 * (c.width * c.projection_dim + head_params) * strips + attention


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timm_model(model_config: ModelConfig) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    c = model_config
    token = (c.patch_size, c.patch_size * c.patches_per_token)
    return VisionTransformer(img_size=(c.patch_size, token[1] * c.max_tokens), patch_size=token,
                             in_chans=c.in_channels, num_classes=0, embed_dim=c.width, depth=c.depth,
                             num_heads=c.heads, mlp_ratio=c.mlp_ratio, class_token=False, global_pool="avg")


def bench_train(preset: str = "tiny", device: str | None = None, batch_size: int | None = None, steps: int = 20,
                repeats: int = 5, workers: int | None = None, max_patches: int = 64, data: str | None = None,
                precision: str = "auto", compile: bool = False, bucket_batches: int = 64, config: str | None = None) -> dict:
    """Measure and return one JSON-ready dict (see module doc). bucket_batches=1 turns length bucketing off.
    config: a stage config (name or file, as `pixelrep train` takes) whose model and render configs are
    measured instead of the preset's (e.g. "default": the bundled model's shape, word-aligned rendering).
    precision: as a stage's ("auto": bf16 autocast where native, else fp32; "bf16" on any device; "fp32")."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_gpu = dev.type == "cuda"
    batch_size = batch_size or (512 if on_gpu else 64)
    workers = (8 if on_gpu else 1) if workers is None else workers
    use_bf16 = resolve_precision(precision, dev) == "bf16"
    threads = torch.get_num_threads()
    if not on_gpu:
        torch.set_num_threads(cpu_threads_beside_workers(workers))  # as training does
    if config is not None:
        from pixelrep.train.config import load_stage

        stage = load_stage(config)
        if stage.model is None or stage.render is None:
            raise ValueError(f"config {config!r} takes its model from init_from; bench a preset instead (--preset)")
        preset, model_config, render = f"config:{stage.name}", stage.model, stage.render
        max_patches = render.max_patches
    else:
        render = RenderConfig(max_patches=max_patches)
        model_config = ModelConfig.from_preset(preset, max_patches=max_patches)
    # Real text: STS-B English training pairs (sentence1 <-> sentence2) as plain sentence pairs.
    data_config = DataConfig(sources=data or data_path("sts/stsb/en/train.jsonl"), pairs="multilingual",
                             columns={"source": "sentence1", "target": "sentence2"})
    pairs = load_pairs(data_config)
    plan = BatchPlan(pairs.lengths(), batch_size, seed=0, bucket_batches=bucket_batches)

    torch.manual_seed(0)
    model = ContrastiveModel(PixelEncoder(model_config, render), HeadConfig(), temperature=0.05).to(dev)
    if compile:
        compile_blocks(model.encoder)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-5), dev)
    head_params = sum(p.numel() for n, p in model.head.named_parameters() if n.endswith("weight"))

    def train_step(module: nn.Module, optimizer: torch.optim.Optimizer, loss_fn) -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def pixel_step(pixels: torch.Tensor, mask: torch.Tensor, n: int) -> None:
        train_step(model, optimizer, lambda: model(pixels, mask, n)["contrastive"])

    # The plain-ViT reference: full-length strips, the same head, loss and optimizer.
    timm_module = nn.ModuleDict(dict(
        vit=_timm_model(model_config),
        head=nn.Sequential(nn.Linear(model_config.width, model_config.width), nn.GELU(),
                           nn.Linear(model_config.width, model_config.width)))).to(dev)
    if compile:
        for block in timm_module["vit"].blocks:
            block.compile()
    timm_optimizer = build_optimizer(timm_module, OptimConfig(lr=1e-5), dev)
    full_width = model_config.patch_size * model_config.patches_per_token * model_config.max_tokens
    full = torch.randint(0, 256, (2 * batch_size, 1, model_config.patch_size, full_width), dtype=torch.uint8, device=dev)

    def timm_step() -> None:
        def loss():
            z = timm_module["head"](timm_module["vit"](1.0 - full.float() / 255.0))
            return info_nce(z[:batch_size], z[batch_size:], temperature=0.05)
        train_step(timm_module, timm_optimizer, loss)

    rates = {"end_to_end": [], "model_only": [], "timm": []}

    def timed(kind: str, run) -> None:
        _sync(dev)
        start = time.perf_counter()
        run()
        _sync(dev)
        rates[kind].append(steps * batch_size / (time.perf_counter() - start))

    loader = iter(make_loader(pairs, data_config, render, plan, seed=0, workers=workers, pin_memory=on_gpu))

    def untimed_steps(n: int) -> None:
        for _ in range(n):
            b = next(loader)
            pixel_step(b["pixels"].to(dev), b["mask"].to(dev), b["n"])

    runs = []   # per end-to-end run: (shape, mask) of every batch, replayed by model-only

    def end_to_end() -> None:
        batches = []
        for _ in range(steps):
            b = next(loader)
            mask = b["mask"].to(dev, non_blocking=True)
            pixel_step(b["pixels"].to(dev, non_blocking=True), mask, b["n"])
            batches.append((tuple(b["pixels"].shape), mask))
        runs.append(batches)

    untimed_steps(WARMUP_STEPS)  # worker start-up, allocator and (with compile) compilation
    for _ in range(WARMUP_STEPS):
        timm_step()
    # The kinds alternate so machine noise hits all alike. Before each end-to-end run, the batches
    # the workers rendered ahead meanwhile are used up untimed: the timed steps then wait for
    # rendering whenever it is the slower side.
    for _ in range(repeats):
        untimed_steps(PREFETCH * workers)
        timed("end_to_end", end_to_end)
        synthetic = [(torch.randint(0, 256, shape, dtype=torch.uint8, device=dev), mask) for shape, mask in runs[-1]]
        timed("model_only", lambda: [pixel_step(pixels, mask, batch_size) for pixels, mask in synthetic])
        timed("timm", lambda: [timm_step() for _ in range(steps)])
    del loader

    masks = [mask for batches in runs for _, mask in batches]
    flops = sum(step_flops(model_config, m.shape[0], m.shape[1], head_params) for m in masks)
    real_patches = float(sum(m.sum().item() for m in masks)) / sum(m.shape[0] for m in masks)
    padded_patches = statistics.mean(m.shape[1] for m in masks)
    e2e, model_only, timm_rate = (statistics.median(rates[k]) for k in ("end_to_end", "model_only", "timm"))
    # FLOPs per pair: averaged over every end-to-end batch (model-only ran the same shapes).
    flops_per_pair = flops / (repeats * steps * batch_size)
    timm_flops_per_pair = step_flops(model_config, 2 * batch_size, max_patches, head_params) / batch_size
    used_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    return dict(
        device=torch.cuda.get_device_name(dev) if on_gpu else "cpu",
        threads=used_threads, preset=preset, params=sum(p.numel() for p in model.encoder.parameters()),
        batch_size=batch_size, steps=steps, repeats=repeats, workers=workers, max_patches=max_patches,
        bf16=use_bf16, compile=compile, bucket_batches=bucket_batches,
        mean_patches=round(real_patches, 2), mean_padded_patches=round(padded_patches, 2),
        end_to_end_pairs_per_s=round(e2e, 1), model_only_pairs_per_s=round(model_only, 1),
        timm_pairs_per_s=round(timm_rate, 1),
        ratio_end_to_end_vs_model_only=round(e2e / model_only, 3),
        ratio_end_to_end_vs_timm=round(e2e / timm_rate, 3),
        end_to_end_tflops=round(e2e * flops_per_pair / 1e12, 4),
        model_only_tflops=round(model_only * flops_per_pair / 1e12, 4),
        timm_tflops=round(timm_rate * timm_flops_per_pair / 1e12, 4),
        runs_pairs_per_s={k: [round(v, 1) for v in vals] for k, vals in rates.items()},
    )
