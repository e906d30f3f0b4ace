"""The CPU's cheap dropout keeps dropout's meaning: the same rate, unbiased, the same mask forward and backward, and
attention equal to SDPA's whenever nothing is dropped."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from engine.catalog import resolve_model
from engine.dropout import ATTENTION, CheapDropout, cheap_attention, cheap_dropout, cheapen_dropout, keep_mask


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_the_mask_drops_at_the_asked_rate_and_differs_between_draws(p):
    torch.manual_seed(0)
    first, second = keep_mask((1000, 1000), p), keep_mask((1000, 1000), p)
    assert abs((~first).float().mean().item() - p) < 0.002
    assert abs((~second).float().mean().item() - p) < 0.002
    assert (first != second).float().mean().item() > p  # independent draws, not one pattern
    # No structure along either axis: each row and each column drops at about p.
    assert (~first).float().mean(dim=0).sub(p).abs().max().item() < 0.06
    assert (~first).float().mean(dim=1).sub(p).abs().max().item() < 0.06


def test_the_mask_repeats_under_the_same_seed_and_fits_odd_shapes():
    torch.manual_seed(3)
    a = keep_mask((7, 5, 3), 0.1)
    torch.manual_seed(3)
    b = keep_mask((7, 5, 3), 0.1)
    assert a.shape == (7, 5, 3) and a.dtype == torch.bool and torch.equal(a, b)


def test_dropout_is_unbiased_and_its_gradient_uses_the_same_mask():
    torch.manual_seed(0)
    inputs = torch.ones(2000, 500, requires_grad=True)
    out = cheap_dropout(inputs, 0.1)
    assert abs(out.mean().item() - 1.0) < 0.005  # kept units are scaled by 1 / keep probability
    kept = out != 0
    assert abs((~kept).float().mean().item() - 0.1) < 0.002
    (out * 3).sum().backward()
    expected = torch.where(kept, torch.full_like(out, 3 / 0.9), torch.zeros_like(out))
    torch.testing.assert_close(inputs.grad, expected, rtol=1e-4, atol=1e-4)


def test_dropout_is_the_identity_in_evaluation_and_at_zero():
    x = torch.randn(4, 8)
    assert cheap_dropout(x, 0.3, training=False) is x
    assert cheap_dropout(x, 0.0) is x
    assert torch.equal(cheap_dropout(x, 1.0), torch.zeros_like(x))
    module = CheapDropout(0.3).eval()
    assert module(x) is x and isinstance(module, torch.nn.Dropout)


class _Attention(torch.nn.Module):
    is_causal = False


def _qkv(dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 4, 9, 16, generator=generator).to(dtype).requires_grad_() for _ in range(3)]


def _padding_mask():
    mask = torch.ones(3, 1, 9, 9, dtype=torch.bool)
    mask[1, :, :, 6:] = False  # the second row is 6 tokens long, the third 2
    mask[2, :, :, 2:] = False
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_equals_sdpa_and_its_gradients_when_nothing_is_dropped(dtype):
    module = _Attention().train()
    mask = _padding_mask()
    q, k, v = _qkv(dtype)
    # A rate below 1 / 131072 drops no unit, so the cheap path must give exactly what SDPA gives without dropout.
    ours, _ = cheap_attention(module, q, k, v, mask, dropout=1e-7, scaling=0.25)
    ours.float().square().sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    theirs, _ = sdpa_attention_forward(module, q2, k2, v2, mask, dropout=0.0, scaling=0.25)
    theirs.float().square().sum().backward()
    tolerance = {"rtol": 2e-2, "atol": 2e-2} if dtype == torch.bfloat16 else {"rtol": 1e-5, "atol": 1e-5}
    assert ours.shape == theirs.shape == (3, 9, 4, 16)
    torch.testing.assert_close(ours, theirs, **tolerance)
    for mine, reference in zip(grads, (q2.grad, k2.grad, v2.grad), strict=True):
        if dtype == torch.float32:
            torch.testing.assert_close(mine, reference, **tolerance)
        else:  # bf16 rounds the two kernels' sums apart in a few elements: compare the gradients as wholes
            gap = (mine.float() - reference.float()).norm() / reference.float().norm()
            assert gap.item() < 0.01


def test_attention_with_dropout_averages_to_attention_without_it():
    module = _Attention().train()
    mask = _padding_mask()
    q, k, v = (t.detach() for t in _qkv(torch.float32))
    exact, _ = sdpa_attention_forward(module.eval(), q, k, v, mask, dropout=0.0)
    module.train()
    torch.manual_seed(0)
    draws = torch.stack([cheap_attention(module, q, k, v, mask, dropout=0.1)[0] for _ in range(400)])
    assert not torch.allclose(draws[0], exact, atol=1e-3)  # something was dropped
    torch.testing.assert_close(draws.mean(0), exact, rtol=0, atol=0.08)  # ... and unbiasedly
    # Padding stays out: a key beyond a row's length changes nothing there, dropout or not.
    v_changed = v.clone()
    v_changed[2, :, 2:] = 100.0
    torch.manual_seed(1)
    a = cheap_attention(module, q, k, v, mask, dropout=0.1)[0]
    torch.manual_seed(1)
    b = cheap_attention(module, q, k, v_changed, mask, dropout=0.1)[0]
    torch.testing.assert_close(a[2], b[2])


def test_evaluation_causal_and_grouped_attention_go_to_sdpa_unchanged():
    q, k, v = (t.detach() for t in _qkv(torch.float32))
    mask = _padding_mask()
    module = _Attention().eval()
    torch.testing.assert_close(
        cheap_attention(module, q, k, v, mask, dropout=0.0)[0], sdpa_attention_forward(module, q, k, v, mask)[0]
    )
    causal = _Attention().train()
    causal.is_causal = True
    torch.manual_seed(0)
    ours = cheap_attention(causal, q, k, v, None, dropout=0.1)[0]
    torch.manual_seed(0)
    theirs = sdpa_attention_forward(causal, q, k, v, None, dropout=0.1)[0]
    torch.testing.assert_close(ours, theirs)  # the same call to SDPA, the same draws


def test_a_minilm_classifier_swaps_its_dropout_and_still_answers_and_saves_as_before(tmp_path):
    path = resolve_model("minilm-l6")
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    plain = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    model.load_state_dict(plain.state_dict())
    assert cheapen_dropout(model) == 20  # embeddings, and per layer: attention, its output, the feed-forward
    assert model.config._attn_implementation == ATTENTION
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    texts = ["Un film très réussi, même si la fin déçoit.", "这部电影太无聊了", "x " * 200]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(**batch).logits, plain.eval()(**batch).logits)
    model.train()
    losses = []
    for _ in range(2):
        torch.manual_seed(5)
        losses.append(model(**batch, labels=torch.tensor([0, 1, 2])).loss)
    assert torch.isfinite(losses[0]) and losses[0].item() == losses[1].item()  # seeded draws repeat
    losses[0].backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    model.save_pretrained(tmp_path)
    assert ATTENTION not in json.dumps(json.loads((tmp_path / "config.json").read_text()))
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert reloaded.config._attn_implementation == "sdpa"
    assert any(type(m) is torch.nn.Dropout for m in reloaded.modules())  # the swap lives in that one model
