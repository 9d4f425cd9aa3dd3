"""The training loop: CPU smoke run from the offline data, exact resume, schedules, leapfrog."""
import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from pixelrep import PixelEncoder
from pixelrep import encoder as encoder_module
from pixelrep.config import ModelConfig
from pixelrep.render import RenderConfig
from pixelrep.train.config import DataConfig, OptimConfig, apply_overrides, load_stage
from pixelrep.train.loop import lr_at, source_at, train
from tests.train.helpers import tiny_lm, tiny_stage, write_pairs


def test_smoke_run_learns_from_the_offline_data(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELREP_DATA", str(shared_data))
    stage = load_stage("smoke")
    result = train(stage, tmp_path / "run", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == stage.optim.max_steps // stage.run.log_every
    assert sum(losses[-3:]) < sum(losses[:3]) - 0.5, losses
    # The same dev subset before and after: training beats the untrained model.
    assert result.initial_score is not None and result.best_score > result.initial_score + 3, result
    assert [r["step"] for r in records if "dev_spearman" in r] == [0, 20, 40, 60, 80]

    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["optim"]["max_steps"] == 80 and saved["model"]["width"] == stage.model.width
    for folder in ("best", "final"):
        enc = PixelEncoder.from_pretrained(tmp_path / "run" / folder)  # strict: the training head is left out
        assert enc.encode(["A man plays a guitar."]).shape == (1, stage.model.embedding_dim)
    assert not any(k.startswith("head") for k in load_file(str(tmp_path / "run" / "final" / "model.safetensors")))
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step-00000080"
    # Read back through the public reader, as scripts do.
    from pixelrep.train.runs import read_run
    run = read_run(tmp_path / "run")
    assert run.stage.optim == stage.optim and [s for s, _ in run.dev_curve()] == [0, 20, 40, 60, 80]
    assert run.model_step("final") == 80 and run.model_step("best") in (0, 20, 40, 60, 80)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step-*")) == ["step-00000060", "step-00000080"]


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    # Dropout and typos draw random numbers: the resume must restore the RNG and the data position;
    # leapfrog blocks of 3 steps (data, parallel, data) are cut in the middle of the parallel one.
    stage = tiny_stage(data, model=ModelConfig.from_preset("tiny", max_patches=16, dropout=0.1),
                       data=DataConfig(sources=str(data), pairs="visual", columns={"text": "en"}, typo_rate=0.2),
                       leapfrog_with=tiny_stage(data).data, leapfrog_every=3, checkpoint_every=4)
    full = train(stage, tmp_path / "full", show_progress=False)
    part = train(stage, tmp_path / "part", stop_after=5, show_progress=False)
    assert part.step == 5 and not (tmp_path / "part" / "final").exists()
    # As if killed after logging step 5 but before its checkpoint was complete: resume from step 4.
    shutil.rmtree(tmp_path / "part" / "checkpoints" / "step-00000005")
    (tmp_path / "part" / "checkpoints" / "latest").write_text("step-00000004\n")
    with pytest.raises(ValueError, match="already holds checkpoints; pass resume"):
        train(stage, tmp_path / "part", show_progress=False)
    with pytest.raises(ValueError, match="differs from its config.json in optim.lr"):
        train(apply_overrides(stage, ["optim.lr=1e-3"]), tmp_path / "part", resume=True, show_progress=False)
    # A different worker count must not change the batches.
    resumed = train(dataclasses.replace(stage, run=dataclasses.replace(stage.run, workers=1)), tmp_path / "part", resume=True, show_progress=False)
    assert resumed.step == full.step == 8
    final = [tmp_path / run / "checkpoints" / "step-00000008" for run in ("full", "part")]
    a, b = (load_file(str(f / "model.safetensors")) for f in final)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    positions = [json.loads((f / "state.json").read_text())["positions"] for f in final]
    assert positions[0] == positions[1] == {"data": [0, 5], "leapfrog_with": [0, 3]}
    # The log is whole again: steps 1..8 once each, with the uninterrupted run's losses.
    logs = [[json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()] for run in ("full", "part")]
    assert [r["step"] for r in logs[1]] == list(range(1, 9))
    assert [r["source"] for r in logs[1]] == ["data"] * 3 + ["leapfrog_with"] * 3 + ["data"] * 2
    assert [r["loss"] for r in logs[1]] == pytest.approx([r["loss"] for r in logs[0]], abs=1e-6)


def test_time_budget_stops_with_an_evaluated_checkpoint(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    dev = tmp_path / "dev.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()][:20]
    dev.write_text("".join(json.dumps({"sentence1": r["en"], "sentence2": r["xx"], "score": i % 6})
                           + "\n" for i, r in enumerate(rows)))
    # A budget of 0 s: the first step is the last, evaluated so best/ has seen it, and checkpointed.
    result = train(tiny_stage(data, dev=str(dev)), tmp_path / "run", stop_after_seconds=0, show_progress=False)
    assert result.step == 1 and result.out_of_time and not (tmp_path / "run" / "final").exists()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "dev_spearman" in r] == [0, 1] and result.last_loss is not None
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step-00000001"
    # The run continues from there; with time to spare it ends as usual.
    result = train(tiny_stage(data, dev=str(dev)), tmp_path / "run", resume=True, stop_after_seconds=600,
                   show_progress=False)
    assert result.step == 8 and not result.out_of_time and (tmp_path / "run" / "final").is_dir()


def test_next_stage_starts_from_the_previous_one(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    first = train(tiny_stage(data, optim=OptimConfig(max_steps=2, batch_size=8)), tmp_path / "a", show_progress=False)
    second = tiny_stage(data, name="next", init_from=str(first.final_dir), model=None, render=None,
                        optim=OptimConfig(lr=0.0, max_steps=1, batch_size=8))
    train(second, tmp_path / "b", show_progress=False)
    before, after = (load_file(str(d / "model.safetensors")) for d in (first.final_dir, tmp_path / "b" / "final"))
    assert all(torch.equal(before[k], after[k]) for k in before)  # lr 0: the weights came through unchanged
    assert json.loads((tmp_path / "b" / "config.json").read_text())["model"]["width"] == 64


def test_alignment_heads_train_with_the_stage(tmp_path):
    from pixelrep.aligned import ALIGN_CONFIG
    from pixelrep.train.config import AlignConfig

    data = write_pairs(tmp_path / "pairs.jsonl")
    align = AlignConfig(teacher=tiny_lm(tmp_path / "lm"), cache_dir=str(tmp_path / "cache"))
    stage = tiny_stage(data, align=align, optim=OptimConfig(lr=2e-3, max_steps=4, batch_size=8))
    train(stage, tmp_path / "a", show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    # Parallel pairs share their English target, so the cross term is on too.
    assert {"loss_contrastive", "loss_align_token", "loss_align_sentence", "loss_align_cross"} <= records[-1].keys()
    terms = [k for k in records[-1] if k.startswith("loss_")]
    assert records[-1]["loss"] == pytest.approx(sum(records[-1][k] for k in terms), rel=1e-5)
    assert (tmp_path / "a" / "final" / ALIGN_CONFIG).is_file()
    # Distillation only: the pair InfoNCE is off and the loss is the alignment terms alone.
    distill = tiny_stage(data, align=align, contrastive_weight=0.0, optim=OptimConfig(lr=2e-3, max_steps=2, batch_size=8))
    train(distill, tmp_path / "d", show_progress=False)
    last = json.loads((tmp_path / "d" / "log.jsonl").read_text().splitlines()[-1])
    assert "loss_contrastive" not in last and "loss_align_sentence" in last
    # The next stage carries the projectors over (lr 0: they arrive unchanged).
    follow = tiny_stage(data, align=align, init_from=str(tmp_path / "a" / "final"), model=None, render=None,
                        optim=OptimConfig(lr=0.0, max_steps=1, batch_size=8))
    train(follow, tmp_path / "b", show_progress=False)
    before, after = (load_file(str(tmp_path / d / "final" / "align_head.safetensors")) for d in ("a", "b"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_the_word_term_trains_with_the_stage_and_resumes_exactly(tmp_path):
    from safetensors.torch import load_file as load
    from pixelrep.train.config import AlignConfig

    data = write_pairs(tmp_path / "pairs.jsonl")
    align = AlignConfig(teacher=tiny_lm(tmp_path / "lm"), token_weight=0.0, word_weight=1.0, word_max=4,
                        cache_dir=str(tmp_path / "cache"))
    stage = tiny_stage(data, align=align, model=ModelConfig.from_preset("tiny", max_patches=32),
                       render=RenderConfig(max_patches=32, word_align=2), contrastive_weight=0.0,
                       optim=OptimConfig(lr=2e-3, max_steps=4, batch_size=8), checkpoint_every=2)
    train(stage, tmp_path / "a", show_progress=False)
    last = json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[-2])
    assert last["loss_align_word"] > 0 and "loss_align_sentence" in last
    assert any(k.startswith("word.") for k in load(str(tmp_path / "a" / "final" / "align_head.safetensors")))
    # Stopped after step 2 and resumed: the word rows are part of the seeded batch, so the weights match.
    train(stage, tmp_path / "b", stop_after=2, show_progress=False)
    train(stage, tmp_path / "b", show_progress=False, resume=True)
    a, b = (load(str(tmp_path / d / "final" / "model.safetensors")) for d in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_learning_rate_schedules():
    cosine = OptimConfig(lr=1.0, warmup_steps=10, max_steps=110, schedule="cosine", min_lr_ratio=0.1)
    assert lr_at(0, cosine) == pytest.approx(0.1) and lr_at(9, cosine) == pytest.approx(1.0)
    assert lr_at(60, cosine) == pytest.approx(0.55) and lr_at(110, cosine) == pytest.approx(0.1)
    linear = dataclasses.replace(cosine, schedule="linear")
    assert lr_at(60, linear) == pytest.approx(0.55) and lr_at(35, linear) == pytest.approx(0.775)
    assert lr_at(100, dataclasses.replace(cosine, schedule="constant")) == 1.0


def test_leapfrog_alternates_and_ends_on_the_main_data():
    stage = apply_overrides(load_stage("leapfrog"), ["optim.max_steps=40", "leapfrog_every=10"])
    blocks = [source_at(s, stage) for s in range(0, 40, 10)]
    assert blocks == ["leapfrog_with", "data", "leapfrog_with", "data"]
    assert {source_at(s, stage) for s in range(30, 40)} == {"data"}
    short = apply_overrides(stage, ["optim.max_steps=25"])  # a short last block still goes to the main data
    assert [source_at(s, short) for s in (0, 9, 10, 19, 20, 24)] == ["data", "data", "leapfrog_with", "leapfrog_with",
                                                                       "data", "data"]
    assert source_at(0, load_stage("reasoning")) == "data"


def test_the_model_names_its_no_weight_decay_parameters():
    """build_optimizer reads PixelViT.no_weight_decay() instead of guessing names: positions and the CLS
    token, plus every 1-D parameter (biases, norms), are not decayed; every other weight is."""
    from pixelrep.render import RenderConfig
    from pixelrep.train.config import HeadConfig
    from pixelrep.train.loop import ContrastiveModel, build_optimizer, no_weight_decay

    encoder = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=16, cls_token=True), RenderConfig(max_patches=16))
    assert encoder.vit.no_weight_decay() == {"pos_embed", "cls_token"}
    model = ContrastiveModel(encoder, HeadConfig(), temperature=0.05)
    assert no_weight_decay(model) == {"encoder.vit.pos_embed", "encoder.vit.cls_token"}
    decay, no_decay = build_optimizer(model, OptimConfig(weight_decay=0.1), torch.device("cpu")).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in no_decay["params"]} == {n for n, p in model.named_parameters()
                                                          if p.ndim < 2 or n.endswith(("pos_embed", "cls_token"))}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0 and "encoder.vit.patch_embed.weight" in {
        names[id(p)] for p in decay["params"]}


def test_bf16_autocast_trains_on_the_cpu(tmp_path, monkeypatch):
    # precision="bf16" runs the model under bf16 autocast on any device: the losses of a bf16 and an fp32 run
    # are close but not equal, so autocast was on, and the weights stay fp32.
    data = write_pairs(tmp_path / "pairs.jsonl")
    runs = {p: train(tiny_stage(data, precision=p), tmp_path / p, show_progress=False) for p in ("fp32", "bf16")}
    fp32, bf16 = runs["fp32"].last_loss, runs["bf16"].last_loss
    assert fp32 != bf16 and abs(fp32 - bf16) < 0.1 * abs(fp32)
    weights = load_file(str(tmp_path / "bf16" / "final" / "model.safetensors"))
    assert all(v.dtype == torch.float32 for v in weights.values())
    # "auto" autocasts only where bf16 is native (emulated bf16 trained the recipe ~20x slower than fp32 on an
    # AVX2 CPU): the same run as "bf16" on such a CPU, as "fp32" elsewhere. Anything else is refused by name.
    for native, same_as in ((True, bf16), (False, fp32)):
        monkeypatch.setattr(encoder_module, "native_bf16", lambda device: native)
        assert train(tiny_stage(data, precision="auto"), tmp_path / f"auto-{native}",
                     show_progress=False).last_loss == same_as
    with pytest.raises(ValueError, match="'half'"):
        tiny_stage(data, precision="half")
