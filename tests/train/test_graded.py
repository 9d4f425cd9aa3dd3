"""The graded-pairs fine-tune (train/graded.py): CoSENT ranks pairs by score, the anchor holds the space."""
import pytest
import torch
import torch.nn.functional as F

from pixelrep.train.graded import cosent_loss, finetune_graded, on_scale_of, silver_couples
from tests.core.helpers import tiny_encoder

FIRST = ["a man plays a guitar", "a dog runs in a park", "the cat sleeps", "a woman cuts an onion",
         "two kids swim", "a plane takes off", "the market fell", "rain in the city"] * 2
SECOND = ["a man plays guitar", "a cat runs in a park", "a car is red", "a woman slices an onion",
          "stocks rose today", "a plane lands", "the market fell sharply", "sun over the sea"] * 2
SCORES = [4.8, 2.5, 0.2, 4.5, 0.0, 3.0, 4.0, 0.5] * 2


def test_cosent_is_low_when_cosines_follow_the_scores_and_high_when_reversed():
    scores = torch.tensor([3.0, 2.0, 1.0, 0.0])
    ordered = cosent_loss(torch.tensor([0.9, 0.6, 0.3, 0.0]), scores)
    reversed_ = cosent_loss(torch.tensor([0.0, 0.3, 0.6, 0.9]), scores)
    assert ordered < 0.01 < 10 < reversed_
    # Ties in score compare nothing: log(1 + 0) = 0 whatever the cosines.
    assert cosent_loss(torch.tensor([0.1, 0.9]), torch.tensor([2.0, 2.0])) == 0
    # Raising the cosine of the higher-scored pair lowers the loss.
    cos = torch.tensor([0.5, 0.5], requires_grad=True)
    cosent_loss(cos, torch.tensor([1.0, 0.0])).backward()
    assert cos.grad[0] < 0 < cos.grad[1]
    with pytest.raises(ValueError, match="same 1-D shape"):
        cosent_loss(torch.zeros(3), torch.zeros(2))


def _cosent_on(encoder) -> float:
    a, b = (torch.as_tensor(encoder.encode(s)) for s in (FIRST, SECOND))
    return cosent_loss((a * b).sum(-1), torch.tensor(SCORES)).item()


def test_finetune_learns_the_ranks_copies_and_is_seeded():
    encoder = tiny_encoder(projection_dim=16)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    args = dict(steps=30, lr=3e-3, anchor_weight=0.0, batch_size=8, precision="fp32", show_progress_bar=False)
    tuned = finetune_graded(encoder, FIRST, SECOND, SCORES, **args)
    assert _cosent_on(tuned) < _cosent_on(encoder) - 0.5
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in before.items())   # the input is untouched
    again = finetune_graded(encoder, FIRST, SECOND, SCORES, **args)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in tuned.state_dict().items())


def test_the_anchor_holds_every_vector_near_where_it_started():
    encoder = tiny_encoder(projection_dim=16)
    args = dict(steps=30, lr=3e-3, batch_size=8, precision="fp32", show_progress_bar=False)
    others = ["Ein Mann spielt Gitarre.", "一个男人在弹吉他", "unrelated words here"]

    def drift(tuned):
        a, b = (F.normalize(torch.as_tensor(m.encode(others)), dim=-1) for m in (encoder, tuned))
        return (1 - (a * b).sum(-1)).mean().item()

    free, held = (finetune_graded(encoder, FIRST, SECOND, SCORES, anchor_weight=w, **args) for w in (0.0, 100.0))
    assert drift(held) < drift(free) / 2


def test_augmented_sentences_are_anchored_to_their_clean_drawing():
    """With augment, the model sees moved drawings and learns to give them the starting model's vector of
    the clean drawing; seeded like the rest; augment_prob 0 is the plain step."""
    from pixelrep.render import perturb_rendered

    encoder = tiny_encoder(projection_dim=16)
    args = dict(steps=40, lr=3e-3, anchor_weight=100.0, batch_size=8, precision="fp32", show_progress_bar=False)
    plain = finetune_graded(encoder, FIRST, SECOND, SCORES, **args)
    moved = finetune_graded(encoder, FIRST, SECOND, SCORES, augment=("shift",), augment_prob=1.0, **args)
    again = finetune_graded(encoder, FIRST, SECOND, SCORES, augment=("shift",), augment_prob=1.0, **args)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in moved.state_dict().items())
    off = finetune_graded(encoder, FIRST, SECOND, SCORES, augment=("shift",), augment_prob=0.0, **args)
    assert all(torch.equal(v, off.state_dict()[k]) for k, v in plain.state_dict().items())
    texts = FIRST[:8]
    clean = F.normalize(torch.as_tensor(encoder.encode(texts)), dim=-1)

    def gap(model):   # how far a moved drawing's vector lands from the start's vector in place
        drawn = [perturb_rendered(r, "shift", 1.5, rng=k) for k, r in enumerate(model.renderer.render_batch(texts))]
        return (1 - (F.normalize(model.embed_rendered(drawn), dim=-1) * clean).sum(-1)).mean().item()

    assert gap(moved) < gap(plain)


def test_bad_inputs_name_the_fix():
    encoder = tiny_encoder()
    with pytest.raises(ValueError, match="differ in length"):
        finetune_graded(encoder, FIRST, SECOND[:3], SCORES, steps=1, lr=1e-3, anchor_weight=1)
    with pytest.raises(ValueError, match="fewer than one batch"):
        finetune_graded(encoder, FIRST, SECOND, SCORES, steps=1, lr=1e-3, anchor_weight=1, batch_size=64)
    with pytest.raises(ValueError, match="steps >= 1"):
        finetune_graded(encoder, FIRST, SECOND, SCORES, steps=0, lr=1e-3, anchor_weight=1, batch_size=8)
    with pytest.raises(ValueError, match="augment=\\['case'\\], augment_prob=0.5: use image kinds of blur"):
        finetune_graded(encoder, FIRST, SECOND, SCORES, steps=1, lr=1e-3, anchor_weight=1, batch_size=8, augment=("case",))


def test_silver_couples_hold_each_texts_nearest_and_random_others_once():
    # Two tight clusters of three: each text's nearest others are its own cluster's.
    centres = F.normalize(torch.randn(2, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    vectors = F.normalize(centres.repeat_interleave(3, 0) + 0.01 * torch.randn(6, 8), dim=-1)
    first, second, cosines = silver_couples(vectors, neighbours=2, random_couples=0)
    couples = set(zip(first.tolist(), second.tolist()))
    assert couples == {(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)}          # i < j, each once
    assert torch.allclose(cosines, (vectors[first] * vectors[second]).sum(-1))
    first, second, _ = silver_couples(vectors, neighbours=1, random_couples=3, seed=1)
    assert bool((first < second).all()) and len(set(zip(first.tolist(), second.tolist()))) == len(first)
    assert any(f < 3 <= s for f, s in zip(first.tolist(), second.tolist()))   # random ones cross clusters
    again = silver_couples(vectors, neighbours=1, random_couples=3, seed=1)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    with pytest.raises(ValueError, match="fewer neighbours than texts"):
        silver_couples(vectors, neighbours=6, random_couples=0)
    with pytest.raises(ValueError, match="at least one couple"):
        silver_couples(vectors, neighbours=0, random_couples=0)


def test_on_scale_of_keeps_the_order_and_takes_the_reference_values():
    assert on_scale_of([0.1, 0.9, 0.5], [0.0, 5.0, 1.0]) == [0.0, 5.0, 1.0]
    assert on_scale_of([0.3, 0.2, 0.1, 0.0], [0.0, 5.0]) == pytest.approx([5.0, 10 / 3, 5 / 3, 0.0])
    assert on_scale_of([1.0, 0.0, 1.0], [0.0, 2.0, 4.0]) == [3.0, 0.0, 3.0]       # ties share a score
    with pytest.raises(ValueError, match="needs values and reference"):
        on_scale_of([], [1.0])
