"""lmcourse.generation and GPT's KV cache: the filters against Hugging Face's logits processors
(oracles), hand-made distributions that pin each convention, the cache against the full forward,
generate() with and without the cache, beam search against exhaustive search, and the errors."""
from __future__ import annotations

import itertools
import os
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from lmcourse.generation import apply_repetition_penalty, generate, top_k_filter, top_p_filter  # noqa: E402
from lmcourse.model import GPT, GPTConfig, KVCache  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


def small_gpt(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=61, block_size=16, n_layer=2, n_head=2, n_embd=32)
    return GPT(GPTConfig(**{**cfg, **overrides})).eval()


def nanogpt_greedy(model: GPT, idx: torch.Tensor, n: int) -> torch.Tensor:
    """The oracle: nanoGPT's loop, the whole (cropped) context re-run every step, argmax."""
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(idx[:, -model.config.block_size:])
            idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


class Bigram(nn.Module):
    """A hand-made model: the next token's distribution depends only on the last token."""

    def __init__(self, probs: list[list[float]], block_size: int = 8) -> None:
        super().__init__()
        self.logp = nn.Parameter(torch.tensor(probs).log(), requires_grad=False)
        self.config = SimpleNamespace(block_size=block_size, vocab_size=len(probs))

    def forward(self, idx: torch.Tensor, targets=None):
        return self.logp[idx], None  # (B, T, V)


# ----------------------------------------------------------------------------- the KV cache

@pytest.mark.parametrize("attention", ["sdpa", "written"])
def test_cached_forward_equals_full_forward_in_chunks(attention):
    m = small_gpt(attention=attention)
    idx = torch.randint(0, 61, (3, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, _ = m(idx)
        cache = KVCache.for_model(m, 3)
        parts = [m(idx[:, a:b], cache=cache)[0] for a, b in ((0, 1), (1, 6), (6, 7), (7, 16))]
    assert cache.length == 16
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=0, atol=1e-5)


def test_cached_prefill_with_a_padding_mask_through_attention():
    # CausalSelfAttention with a cache: the shifted causal mask, combined with a key mask over S + T keys
    m = small_gpt()
    attn = m.transformer.h[0].attn
    x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(2))
    cache = KVCache.for_model(m, 2)
    keep = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    keep[1, ..., 1] = False  # row 1 may not look at position 1
    with torch.no_grad():
        full = attn(x, mask=keep)
        a = attn(x[:, :3], mask=keep[..., :3], cache=cache.layer(0))
        cache.advance(3)
        b = attn(x[:, 3:], mask=keep, cache=cache.layer(0))
    torch.testing.assert_close(torch.cat([a, b], 1), full, rtol=0, atol=1e-5)


def test_cache_memory_per_token_and_no_reallocation():
    m = small_gpt(n_layer=3, n_head=4, n_embd=48)
    cache = KVCache.for_model(m, batch_size=2, max_len=10)
    cfg = m.config
    # keys and values, every layer, every channel, 4 bytes each (float32)
    assert cache.bytes_per_token == 2 * cfg.n_layer * cfg.n_embd * 4 == 1152
    assert cache.k.shape == cache.v.shape == (3, 2, 4, 10, 12)  # (n_layer, B, n_head, max_len, head_size)
    assert cache.nbytes == cache.k.numel() * 4 + cache.v.numel() * 4 == 2 * 10 * cache.bytes_per_token
    assert KVCache.for_model(m, 1, dtype=torch.float16).bytes_per_token == 2 * 3 * 48 * 2
    pointers = (cache.k.data_ptr(), cache.v.data_ptr())
    layer0 = cache.layer(0).k.data_ptr()
    with torch.no_grad():
        m(torch.zeros(2, 4, dtype=torch.long), cache=cache)
        for _ in range(6):
            m(torch.ones(2, 1, dtype=torch.long), cache=cache)
    assert (cache.k.data_ptr(), cache.v.data_ptr(), cache.layer(0).k.data_ptr()) == (*pointers, layer0)
    assert cache.length == 10 and cache.k[:, :, :, :10].abs().sum() > 0


def test_cache_full_and_mismatched_caches_are_errors():
    m = small_gpt()
    cache = KVCache.for_model(m, 1, max_len=5)
    with torch.no_grad():
        m(torch.zeros(1, 4, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match=r"KV cache is full: 4 cached \+ 2 new positions > its max_len=5"):
            m(torch.zeros(1, 2, dtype=torch.long), cache=cache)
        assert cache.length == 4  # the refused call left it as it was
        with pytest.raises(ValueError, match="batch size 2, the cache was built for 1"):
            m(torch.zeros(2, 1, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match=r"\(n_layer, n_head, head_size\) = \(3, 2, 16\), the model \(2, 2, 16\)"):
            m(torch.zeros(1, 1, dtype=torch.long), cache=KVCache(3, 1, 2, 8, 16))
        with pytest.raises(ValueError, match="cache must be a KVCache"):
            m(torch.zeros(1, 1, dtype=torch.long), cache={})
        with pytest.raises(ValueError, match="cache holds torch.float16"):
            m(torch.zeros(1, 1, dtype=torch.long), cache=KVCache.for_model(m, 1, dtype=torch.float16))
    with pytest.raises(ValueError, match="max_len=17 exceeds the model's block_size=16"):
        KVCache.for_model(m, 1, max_len=17)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        KVCache(2, 0, 2, 8, 16)
    with pytest.raises(ValueError, match="floating-point"):
        KVCache(2, 1, 2, 8, 16, dtype=torch.int64)
    cache.reset()
    assert cache.length == 0


def test_attention_with_a_cache_checks_what_it_is_given():
    m = small_gpt()
    attn, x = m.transformer.h[0].attn, torch.zeros(1, 2, 32)
    with pytest.raises(ValueError, match=r"one layer of a KVCache \(cache.layer\(i\)\), got KVCache"):
        attn(x, cache=KVCache.for_model(m, 1))
    with pytest.raises(ValueError, match=r"do not fit a cache of \(B, n_head, max_len, head_size\) = \(2, 2, 16, 16\)"):
        attn(x, cache=KVCache.for_model(m, 2).layer(0))
    cache = KVCache.for_model(m, 1, max_len=3)
    with pytest.raises(ValueError, match=r"KV cache is full: 0 cached \+ 4 new positions > its max_len=3"):
        attn(torch.zeros(1, 4, 32), cache=cache.layer(0))
    with pytest.raises(ValueError, match=r"KV cache is full: 0 cached \+ 4 new positions > its max_len=3"):
        cache.advance(4)


def test_cache_reorder_gathers_rows():
    cache = KVCache(1, 3, 1, 4, 1)
    cache.k[0, :, 0, :2, 0] = torch.tensor([[1.0, 2], [3, 4], [5, 6]])
    cache.length = 2
    cache.reorder(torch.tensor([2, 2, 0]))
    assert cache.k[0, :, 0, :2, 0].tolist() == [[5, 6], [5, 6], [1, 2]]


# ----------------------------------------------------------------------------- the filters

def test_top_p_keeps_the_boundary_token_on_a_hand_made_distribution():
    # probabilities 1/2, 1/4, 1/8, 1/8 (exact in binary); p = 0.7 is crossed by the second token,
    # which is kept; p = 0.75 is reached exactly by two tokens; just above needs a third
    logits = torch.tensor([0.125, 0.5, 0.125, 0.25]).log()  # not sorted: the filter must sort
    kept = lambda p: top_p_filter(logits, p).isfinite().tolist()  # noqa: E731
    assert kept(0.5) == [False, True, False, False]
    assert kept(0.7) == [False, True, False, True]
    assert kept(0.75) == [False, True, False, True]
    assert kept(0.76) == [True, True, False, True]  # tie at 1/8: the lower index comes first
    assert kept(1e-9) == [False, True, False, False]  # the most likely token always survives
    assert kept(1.0) == [True, True, True, True]
    out = top_p_filter(logits, 0.7)
    assert torch.equal(out[out.isfinite()], logits[[1, 3]])  # kept logits unchanged
    # float64 is filtered in float64: probabilities 0.5 and 0.5 - 1e-12 reach p = 1 - 1e-12 only together
    # (in float32 the two are equal, and the first alone reaches p)
    pair = torch.tensor([0.5, 0.5 - 1e-12, 1e-12], dtype=torch.float64).log()
    assert top_p_filter(pair, 0.5 + 1e-13).isfinite().tolist() == [True, True, False]
    assert top_p_filter(pair, 0.5).isfinite().tolist() == [True, False, False]
    assert top_p_filter(logits.half(), 0.7).isfinite().tolist() == [False, True, False, True]


def test_top_k_keeps_ties_and_everything_when_k_is_large():
    logits = torch.tensor([[1.0, 3.0, 2.0, 2.0, 0.0]])
    assert top_k_filter(logits, 1).isfinite().tolist() == [[False, True, False, False, False]]
    assert top_k_filter(logits, 2).isfinite().tolist() == [[False, True, True, True, False]]  # tied at the 2nd
    assert torch.equal(top_k_filter(logits, 9), logits)
    assert top_k_filter(torch.empty(0, 5), 2).shape == (0, 5)


def test_filters_and_penalty_against_hugging_face():
    tr = pytest.importorskip("transformers")
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 50, generator=g) * 3
    idx = torch.randint(0, 50, (6, 12), generator=g)
    for p in (0.1, 0.5, 0.9, 0.99):
        want = tr.TopPLogitsWarper(p)(idx, logits.clone())
        assert torch.equal(top_p_filter(logits, p).isfinite(), want.isfinite()), p
    for k in (1, 5, 49):
        want = tr.TopKLogitsWarper(k)(idx, logits.clone())
        assert torch.equal(top_k_filter(logits, k).isfinite(), want.isfinite()), k
    for penalty in (0.5, 1.3, 2.0):
        want = tr.RepetitionPenaltyLogitsProcessor(penalty)(idx, logits.clone())
        torch.testing.assert_close(apply_repetition_penalty(logits, idx, penalty), want, rtol=0, atol=0)


def test_repetition_penalty_by_hand():
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1, 0, 3]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0, 0.0]]  # 0 seen twice: divided once; 2 unseen; 0 stays 0
    assert torch.equal(apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 1.0), logits)
    assert torch.equal(logits, torch.tensor([[2.0, -2.0, 1.0, 0.0]]))  # the input is not modified


@pytest.mark.parametrize("call, message", [
    (lambda: top_p_filter(torch.zeros(3), 0.0), r"p must be in \(0, 1\], got 0.0"),
    (lambda: top_p_filter(torch.zeros(3), 1.5), r"p must be in \(0, 1\], got 1.5"),
    (lambda: top_p_filter(torch.zeros(3, dtype=torch.long), 0.5), "floating-point"),
    (lambda: top_k_filter(torch.zeros(3), 0), "k must be an int >= 1, got 0"),
    (lambda: top_k_filter(torch.zeros(3), 2.5), "k must be an int >= 1, got 2.5"),
    (lambda: apply_repetition_penalty(torch.zeros(1, 3), torch.tensor([[0]]), 0), "penalty must be a positive"),
    (lambda: apply_repetition_penalty(torch.zeros(1, 3), torch.tensor([[3]]), 2.0), r"idx must lie in \[0, 2\]"),
    (lambda: apply_repetition_penalty(torch.zeros(2, 3), torch.tensor([[0]]), 2.0), "logits must be"),
])
def test_filter_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ----------------------------------------------------------------------------- generate

@pytest.mark.parametrize("attention", ["sdpa", "written"])
def test_greedy_is_identical_with_and_without_the_cache_and_matches_nanogpt(attention):
    m = small_gpt(attention=attention)
    g = torch.Generator().manual_seed(4)
    for prompt in (torch.randint(0, 61, (1, 1), generator=g),  # one token
                   torch.randint(0, 61, (4, 5), generator=g),  # a batch
                   torch.randint(0, 61, (2, 16), generator=g),  # the whole context already
                   torch.randint(0, 61, (2, 21), generator=g)):  # longer than the context: cropped
        cached = generate(m, prompt, max_new_tokens=24)  # runs past block_size=16
        plain = generate(m, prompt, max_new_tokens=24, use_cache=False)
        assert cached.shape == (prompt.shape[0], prompt.shape[1] + 24)
        assert torch.equal(cached[:, :prompt.shape[1]], prompt)
        assert torch.equal(cached, plain)
        assert torch.equal(cached, nanogpt_greedy(m, prompt, 24))


def test_context_shift_jumps_the_window_and_the_cache_follows():
    # sampling, not greedy: a random model's argmax repeats one token, whatever the window
    m = small_gpt()
    prompt = torch.randint(0, 61, (2, 3), generator=torch.Generator().manual_seed(5))

    def run(shift, **kw):
        return generate(m, prompt, max_new_tokens=40, strategy="sample", context_shift=shift,
                        generator=torch.Generator().manual_seed(0), **kw)

    a = run(8)
    assert torch.equal(a, run(8, use_cache=False))
    # the oracle: each step sees the tokens from the last jump on (jumps of 8 when 16 are exceeded)
    seq, start, g = prompt, 0, torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(40):
            while seq.shape[1] - start > 16:
                start += 8
            probs = m(seq[:, start:])[0][:, -1].softmax(-1)
            seq = torch.cat([seq, torch.multinomial(probs, 1, generator=g)], 1)
    assert torch.equal(a, seq)
    assert torch.equal(a[:, :17], run(1)[:, :17])  # the same until the context first overflows
    assert not torch.equal(a, run(1))  # then the window matters


def test_seeded_sampling_is_reproducible_and_the_seed_matters():
    m = small_gpt()
    prompt = torch.randint(0, 61, (3, 4), generator=torch.Generator().manual_seed(6))

    def run(seed, **kw):
        return generate(m, prompt, max_new_tokens=20, strategy="sample", top_k=30, top_p=0.95,
                        generator=torch.Generator().manual_seed(seed), **kw)

    assert torch.equal(run(0), run(0))
    assert torch.equal(run(0), run(0, use_cache=False))
    assert not torch.equal(run(0), run(1))


def test_sampling_respects_top_k_and_temperature_zero_is_greedy():
    m = small_gpt()
    prompt = torch.zeros(8, 1, dtype=torch.long)
    out = generate(m, prompt, max_new_tokens=1, strategy="sample", top_k=2, temperature=50.0,
                   generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        top2 = set(m(prompt[:1])[0][0, -1].topk(2).indices.tolist())
    assert set(out[:, 1].tolist()) <= top2
    greedy = generate(m, prompt[:2], max_new_tokens=10)
    assert torch.equal(generate(m, prompt[:2], max_new_tokens=10, strategy="sample", temperature=0), greedy)


def test_repetition_penalty_changes_greedy_output():
    m = small_gpt()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    plain = generate(m, prompt, max_new_tokens=30)
    penalised = generate(m, prompt, max_new_tokens=30, repetition_penalty=3.0)
    assert len(set(penalised[0].tolist())) > len(set(plain[0].tolist()))
    assert torch.equal(penalised, generate(m, prompt, max_new_tokens=30, repetition_penalty=3.0, use_cache=False))


def test_stop_tokens_end_rows_and_pad_with_the_stop_token():
    # bigram: 0 -> 1 -> 2 -> 3 -> 3 ..., and 4 -> 4 forever
    probs = [[0.01] * 5 for _ in range(5)]
    for a, b in ((0, 1), (1, 2), (2, 3), (3, 3), (4, 4)):
        probs[a][b] = 0.96
    m = Bigram(probs)
    prompt = torch.tensor([[0], [1], [4]])
    out = generate(m, prompt, max_new_tokens=6, stop_tokens=[2], use_cache=False)
    assert out.tolist() == [[0, 1, 2, 2, 2, 2, 2], [1, 2, 2, 2, 2, 2, 2], [4, 4, 4, 4, 4, 4, 4]]
    out = generate(m, prompt[:2], max_new_tokens=6, stop_tokens=2, use_cache=False)
    assert out.tolist() == [[0, 1, 2], [1, 2, 2]]  # every row stopped: generation ends early
    assert generate(m, prompt[:1], max_new_tokens=0, use_cache=False).tolist() == [[0]]


def test_beam_one_is_greedy():
    m = small_gpt()
    prompt = torch.randint(0, 61, (3, 4), generator=torch.Generator().manual_seed(7))
    greedy = generate(m, prompt, max_new_tokens=20)
    assert torch.equal(generate(m, prompt, max_new_tokens=20, strategy="beam", num_beams=1), greedy)
    stop = int(greedy[0, 9])  # a token greedy emits: both must stop at it the same way
    assert torch.equal(generate(m, prompt, max_new_tokens=20, strategy="beam", num_beams=1, stop_tokens=[stop]),
                       generate(m, prompt, max_new_tokens=20, stop_tokens=[stop]))


def test_beam_one_is_greedy_when_a_stop_token_ranks_second():
    # step 1: token 2 (0.6), then the stop token 1 (0.3), which would beat log(0.6 * 0.4) later:
    # one beam keeps only the best candidate, so the stop token, outside the beam, never counts
    probs = [[0.05, 0.30, 0.60, 0.05],
             [0.25, 0.25, 0.25, 0.25],
             [0.20, 0.05, 0.35, 0.40],
             [0.20, 0.05, 0.40, 0.35]]
    m = Bigram(probs)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    kw = dict(max_new_tokens=4, stop_tokens=[1], use_cache=False)
    greedy = generate(m, prompt, **kw)
    assert greedy.tolist() == [[0, 2, 3, 2, 3]]
    assert torch.equal(generate(m, prompt, strategy="beam", num_beams=1, **kw), greedy)


def test_beam_search_finds_the_best_sequence_where_greedy_does_not():
    # from 0: token 1 (0.55) beats token 2 (0.44), but nothing after 1 is likely, while 2 -> 3 has 0.94
    probs = [[0.005, 0.55, 0.44, 0.005],
             [0.30, 0.25, 0.25, 0.20],
             [0.02, 0.02, 0.02, 0.94],
             [0.25, 0.25, 0.25, 0.25]]
    m = Bigram(probs)
    logp = torch.tensor(probs).log()
    best = max(itertools.product(range(4), repeat=2), key=lambda s: float(logp[0, s[0]] + logp[s[0], s[1]]))
    assert best == (2, 3)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    assert generate(m, prompt, max_new_tokens=2, use_cache=False).tolist() == [[0, 1, 0]]
    assert generate(m, prompt, max_new_tokens=2, strategy="beam", num_beams=2, use_cache=False).tolist() == [[0, 2, 3]]


def test_beam_length_penalty_decides_between_short_and_long():
    # stop token 1. Stopping at once: log 0.5 = -0.69. Going 2 -> 3 -> stop: log(.44 * .9 * .9) = -1.03
    # in all, but -0.34 per token: the raw sum keeps the short one, the mean the long one
    probs = [[0.01, 0.50, 0.44, 0.05],
             [0.25, 0.25, 0.25, 0.25],
             [0.01, 0.04, 0.05, 0.90],
             [0.01, 0.90, 0.04, 0.05]]
    m = Bigram(probs)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    kw = dict(max_new_tokens=5, strategy="beam", num_beams=2, stop_tokens=[1], use_cache=False)
    assert generate(m, prompt, length_penalty=0.0, **kw).tolist() == [[0, 1]]
    assert generate(m, prompt, length_penalty=1.0, **kw).tolist() == [[0, 2, 3, 1]]


def test_beam_search_is_identical_with_and_without_the_cache():
    m = small_gpt()
    prompt = torch.randint(0, 61, (2, 5), generator=torch.Generator().manual_seed(8))
    kw = dict(max_new_tokens=25, strategy="beam", num_beams=3)  # past block_size: re-prefills with reordering
    assert torch.equal(generate(m, prompt, **kw), generate(m, prompt, use_cache=False, **kw))


def test_generate_restores_the_training_mode_and_its_output_can_be_trained_on():
    m = small_gpt(dropout=0.5).train()
    a = generate(m, torch.zeros(1, 1, dtype=torch.long), max_new_tokens=5)
    assert m.training
    assert not a.is_inference()
    _, loss = m(a[:, :-1], a[:, 1:])  # e.g. fine-tuning on generated text: needs a normal tensor
    loss.backward()
    assert torch.equal(a, generate(m.eval(), torch.zeros(1, 1, dtype=torch.long), max_new_tokens=5))


@pytest.mark.parametrize("kw, message", [
    (dict(idx=torch.zeros(3, dtype=torch.long)), r"idx must be a \(B, T\) tensor"),
    (dict(idx=torch.zeros(1, 0, dtype=torch.long)), "at least one token"),
    (dict(idx=torch.zeros(1, 2)), r"idx must be a \(B, T\) tensor of token ids"),
    (dict(max_new_tokens=-1), "max_new_tokens must be an int >= 0, got -1"),
    (dict(strategy="nucleus"), "strategy must be one of"),
    (dict(top_k=5), "top_k only apply to strategy='sample', not 'greedy'"),
    (dict(strategy="sample", temperature=-1.0), "temperature must be a number >= 0"),
    (dict(strategy="sample", top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(strategy="sample", top_k=0), "top_k must be an int >= 1, got 0"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be a positive number"),
    (dict(strategy="beam", num_beams=0), "num_beams must be an int >= 1"),
    (dict(stop_tokens=[61]), r"stop_tokens must be token ids in \[0, 61\)"),
    (dict(context_shift=17), "context_shift=17 exceeds the model's block_size=16"),
    (dict(strategy="sample", generator=0), "generator must be a torch.Generator"),
])
def test_generate_errors(kw, message):
    args = {"idx": torch.zeros(1, 1, dtype=torch.long), "max_new_tokens": 3, **kw}
    with pytest.raises(ValueError, match=message):
        generate(small_gpt(), **args)


def test_generate_needs_a_model_with_a_context():
    with pytest.raises(ValueError, match="model must be a GPT"):
        generate(nn.Linear(2, 2), torch.zeros(1, 1, dtype=torch.long), max_new_tokens=1)
    with pytest.raises(ValueError, match="KVCache.for_model needs a GPT"):  # a hand-made model has no cache
        generate(Bigram([[0.5, 0.5], [0.5, 0.5]]), torch.zeros(1, 1, dtype=torch.long), max_new_tokens=1)


# ----------------------------------------------------------------------------- `lmcourse generate`

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from lmcourse.cli import main

    tmp = tmp_path_factory.mktemp("gen")
    corpus = tmp / "corpus.txt"
    corpus.write_text("the cat sat on the mat. the dog ate the bone. " * 60, encoding="utf-8")
    out = tmp / "run"
    assert main(["train", "--corpus", str(corpus), "--tokenizer", "char", "--preset", "scale_32",
                 "--block-size", "16", "--batch-size", "4", "--eval-batches", "1", "--steps", "2",
                 "--out", str(out), "--no-progress"]) == 0
    return out


def _cli(capsys, *args):
    from lmcourse.cli import main

    try:
        rc = main(["generate", *args])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    return rc, *capsys.readouterr()


def test_cli_generate_continues_the_prompt(run_dir, capsys):
    from lmcourse.training import load_model

    rc, out, err = _cli(capsys, "--checkpoint", str(run_dir), "--prompt", "the cat", "--max-new-tokens", "20")
    assert rc == 0 and err == ""
    # the same text as generate() on the same model (the char tokenizer's ids are sorted characters)
    model = load_model(run_dir)
    chars = sorted(set("the cat sat on the mat. the dog ate the bone. "))
    ids = generate(model, torch.tensor([[chars.index(c) for c in "the cat"]]), max_new_tokens=20)
    assert out == "".join(chars[i] for i in ids[0].tolist()) + "\n"
    step = next(run_dir.glob("step-*"))  # one checkpoint folder works too, the tokenizer found above it
    kw = ("--prompt", "the", "--strategy", "sample", "--temperature", "0.8", "--top-p", "0.9", "--seed", "3")
    rc1, out1, _ = _cli(capsys, "--checkpoint", str(step), *kw)
    rc2, out2, _ = _cli(capsys, "--checkpoint", str(run_dir), *kw)
    assert rc1 == rc2 == 0 and out1 == out2 and out1.startswith("the") and len(out1) == 3 + 100 + 1


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "{missing}", "--prompt", "a"], "no such checkpoint or run folder"),
    (["--prompt", "the", "--strategy", "greedy", "--top-k", "3"], "top_k only apply to strategy='sample'"),
    (["--prompt", "the", "--strategy", "sample", "--top-p", "1.5"], r"top_p must be in (0, 1]"),
    (["--prompt", "the", "--strategy", "nucleus"], "argument --strategy: invalid choice"),
    (["--prompt", "the", "--max-new-tokens", "-3"], "argument --max-new-tokens"),
    (["--prompt", "Zebra"], "character 'Z' (U+005A) at position 0 is not in the vocabulary"),
    (["--prompt", ""], "--prompt is empty"),
])
def test_cli_generate_errors_are_one_line(run_dir, tmp_path, capsys, args, message):
    args = [a.format(missing=tmp_path / "nope") for a in args]
    if "--checkpoint" not in args:
        args = ["--checkpoint", str(run_dir), *args]
    rc, out, err = _cli(capsys, *args)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_generate_names_a_corrupt_checkpoint(run_dir, tmp_path, capsys):
    import shutil

    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    weights = next(bad.glob("step-*")) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    rc, out, err = _cli(capsys, "--checkpoint", str(bad), "--prompt", "the")
    assert rc == 2 and out == "" and "model.safetensors: corrupted" in err and len(err.strip().splitlines()) == 1, err
