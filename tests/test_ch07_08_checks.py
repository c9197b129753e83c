"""Exercises 7.1, 7.2, 8.1 and 8.2: their references equal the library and independent oracles,
and their cases hold what the checks rely on (clipping that acts, a p away from every boundary,
a transport to the grader's worker that changes nothing).

tests/test_checks.py already runs every exercise against its wrong variants over hidden seeds.
"""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from lmcourse import generation, training
from lmcourse.checks import compare_values
from lmcourse.exercises import ch07, ch08
from lmcourse.model import GPT, GPTConfig

SEEDS = range(5)


# ------------------------------------------------------------------------------- 7.1
def _tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8))


def _batch(g: torch.Generator, B: int = 3, T: int = 5, V: int = 11):
    w = torch.randint(0, V, (B, T + 1), generator=g)
    return w[:, :-1], w[:, 1:]


def test_train_steps_is_plain_sgd_with_global_norm_clipping_by_hand():
    """The oracle: autograd's gradient on a copy, clipped by min(1, c / (‖g‖ + 1e-6)), one SGD update each."""
    g = torch.Generator().manual_seed(0)
    batches = [_batch(g), _batch(g, B=2, T=4)]
    model, lr, clip = _tiny_gpt(), 0.5, 0.1
    oracle = copy.deepcopy(model)
    losses, norms, params = ch07._train_steps(model, torch.optim.SGD(model.parameters(), lr=lr), batches, clip)

    want_losses, want_norms = [], []
    for x, y in batches:
        ps = list(oracle.parameters())
        loss = oracle(x, y)[1]
        grads = torch.autograd.grad(loss, ps)                      # fresh: nothing carried from the last batch
        norm = torch.sqrt(sum((gr.double() ** 2).sum() for gr in grads))
        coef = min(1.0, clip / (float(norm) + 1e-6))
        with torch.no_grad():
            for p, gr in zip(ps, grads):
                p -= lr * coef * gr
        want_losses.append(loss.item())
        want_norms.append(float(norm))
    assert all(n > clip for n in want_norms)                       # the clip acted on both steps
    assert compare_values(want_losses, losses, rtol=1e-6) is None
    assert compare_values(want_norms, norms, rtol=1e-5) is None
    want = {n: p.detach() for n, p in oracle.named_parameters()}
    assert compare_values(want, params, atol=1e-7, rtol=1e-5) is None


def test_train_steps_returns_floats_and_plain_detached_copies():
    g = torch.Generator().manual_seed(1)
    model = _tiny_gpt()
    losses, norms, params = ch07._train_steps(model, torch.optim.AdamW(model.parameters()), [_batch(g)], 1.0)
    assert type(losses[0]) is float and type(norms[0]) is float
    assert list(params) == [n for n, _ in model.named_parameters()]  # the tied lm_head appears once, as wte
    for name, p in model.named_parameters():
        assert type(params[name]) is torch.Tensor and not params[name].requires_grad
        assert params[name].data_ptr() != p.data_ptr()             # a copy: later training cannot change it


def test_returning_the_parameters_themselves_is_named_in_the_report():
    def answer(model, optimizer, batches, grad_clip):
        losses, norms, _ = ch07._train_steps(model, optimizer, batches, grad_clip)
        return losses, norms, dict(model.named_parameters())

    result = ch07.train_steps.run(answer)
    assert result.status == "fail" and "p.detach().clone()" in result.report


@pytest.mark.parametrize("seed", SEEDS)
def test_clipping_acts_on_every_step_of_the_clipped_cases(seed):
    """The clipping variants are caught only where the clip is below the gradient norm."""
    for case in ch07.train_steps.cases(seed):
        model, opt, batches, clip = copy.deepcopy(case.args)
        _, norms, _ = ch07._train_steps(model, opt, batches, clip)
        if "clip never reached" in case.label:
            assert max(norms) < clip, case.label
        else:
            assert min(norms) > 2 * clip, (case.label, norms, clip)


def test_the_warm_adamw_case_carries_optimizer_state_and_no_gradients():
    case = next(c for c in ch07.train_steps.cases(0) if c.label == "AdamW with state from earlier steps")
    model, opt = case.args[:2]
    assert all(len(opt.state[p]) == 3 and float(opt.state[p]["step"]) == 2 for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_the_cases_survive_the_graders_transport():
    """The grader pickles the cases into its worker: a model, its optimiser and their shared
    parameters arrive as one graph, so the reference gives the same values there."""
    for case in ch07.train_steps.cases(3):
        here = ch07._train_steps(*copy.deepcopy(case.args))
        there = ch07._train_steps(*pickle.loads(pickle.dumps(case.args)))
        assert compare_values(here, there, atol=0, rtol=0) is None, case.label


def test_building_the_cases_leaves_the_global_rng_alone():
    before = torch.get_rng_state()
    ch07.train_steps.cases(4)
    assert torch.equal(before, torch.get_rng_state())


# ------------------------------------------------------------------------------- 7.2
@pytest.mark.parametrize("warmup,steps", [(0, 10), (1, 10), (5, 50), (7, 7), (3, 200), (30, 31)])
def test_lr_at_is_the_librarys_schedule_on_every_step(warmup, steps):
    cfg = training.TrainConfig(steps=steps, warmup_steps=warmup, lr=3e-3, min_lr=2e-4)
    for s in range(steps + 6):
        assert ch07._lr_at(s, 3e-3, 2e-4, warmup, steps) == pytest.approx(training.lr_at(s, cfg), rel=1e-12, abs=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_lr_cases_agree_with_the_library(seed):
    for case in ch07.lr_at.cases(seed):
        step, hi, lo, warmup, steps = case.args
        cfg = training.TrainConfig(steps=steps, warmup_steps=warmup, lr=hi, min_lr=lo)
        assert ch07._lr_at(*case.args) == pytest.approx(training.lr_at(step, cfg), rel=1e-12), case.label


# ------------------------------------------------------------------------------- 8.1
@pytest.mark.parametrize("seed", SEEDS)
def test_top_p_reference_is_the_librarys_filter(seed):
    for case in ch08.top_p_filter.cases(seed):
        got, want = ch08._top_p_filter(*case.args), generation.top_p_filter(*case.args)
        assert got.dtype == want.dtype and torch.equal(got, want), case.label


def test_top_p_reference_on_random_rows():
    g = torch.Generator().manual_seed(5)
    for _ in range(50):
        B, V = (int(v) for v in torch.randint(1, 30, (2,), generator=g))
        x = 3 * torch.randn(B, V, generator=g, dtype=torch.float64)
        p = ch08._safe_p(x, float(torch.rand((), generator=g)) * 0.98 + 0.01)
        assert torch.equal(ch08._top_p_filter(x, p), generation.top_p_filter(x, p))


def test_top_p_boundary_and_tie_by_hand():
    x = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    assert torch.isinf(ch08._top_p_filter(x, 0.6)).tolist() == [[False, False, True]]   # 0.5 < 0.6: the 0.3 joins
    assert torch.isinf(ch08._top_p_filter(x, 0.4)).tolist() == [[False, True, True]]    # the top token alone
    tie = torch.tensor([[1.0, 3.0, 2.0, 3.0, 3.0, 0.0]])
    assert torch.isinf(ch08._top_p_filter(tie, 0.4)).tolist() == [[True, False, True, False, True, True]]


@pytest.mark.parametrize("seed", SEEDS)
def test_top_p_cases_keep_p_away_from_every_cumulative_mass(seed):
    """Two correct answers may round a cumulative sum differently: no case may hinge on that."""
    for case in ch08.top_p_filter.cases(seed):
        x, p = case.args
        if p >= 1.0:
            continue
        cum = torch.softmax(x.double(), dim=-1).sort(dim=-1, descending=True).values.cumsum(dim=-1)
        assert ((cum - p).abs() > 1e-3).all(), case.label


# ------------------------------------------------------------------------------- 8.2
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kv_steps_token_by_token_equal_full_causal_attention(dtype):
    g = torch.Generator().manual_seed(8)
    B, H, T, hs = 2, 3, 7, 4
    q, k, v = (torch.randn(B, H, T, hs, generator=g, dtype=dtype) for _ in range(3))
    k_cache = v_cache = torch.zeros(B, H, 0, hs, dtype=dtype)
    outs = []
    for t in range(T):
        out, k_cache, v_cache = ch08._kv_attention_step(k_cache, v_cache, q[:, :, t:t + 1], k[:, :, t:t + 1],
                                                        v[:, :, t:t + 1])
        outs.append(out)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(torch.cat(outs, dim=2), want, atol=tol, rtol=tol)
    assert torch.equal(k_cache, k) and torch.equal(v_cache, v)


@pytest.mark.parametrize("seed", SEEDS)
def test_kv_cases_match_the_last_row_of_causal_attention(seed):
    for case in ch08.kv_attention_step.cases(seed):
        k_cache, v_cache, q, k, v = case.args
        out, new_k, new_v = ch08._kv_attention_step(*case.args)
        keys, values = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
        want = F.scaled_dot_product_attention(q, keys, values)       # one query, every key: no mask
        assert torch.allclose(out, want, atol=1e-6, rtol=1e-5), case.label
        assert new_k.shape[2] == k_cache.shape[2] + 1 and torch.equal(new_k, keys) and torch.equal(new_v, values)
