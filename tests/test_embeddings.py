"""Tests for lmcourse.embeddings: oracles (torch's own embedding and cosine similarity, an
independent complex-number RoPE, the paper's formula) first, then properties."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse.embeddings import (
    LearnedPositionalEmbedding,
    apply_rotary,
    cosine_similarity,
    embed_by_matmul,
    nearest,
    one_hot,
    rope_frequencies,
    sinusoidal_positions,
)


# ------------------------------------------------------------------ lookup = one-hot @ W

def test_one_hot_matches_torch():
    ids = torch.tensor([[0, 3, 2], [4, 4, 1]])
    got = one_hot(ids, 5)
    assert got.shape == (2, 3, 5) and got.dtype == torch.float32
    assert torch.equal(got, F.one_hot(ids, 5).float())


def test_embed_by_matmul_equals_nn_embedding_exactly_float64():
    g = torch.Generator().manual_seed(0)
    nn_emb = torch.nn.Embedding(11, 7, dtype=torch.float64)
    with torch.no_grad():
        nn_emb.weight.copy_(torch.randn(11, 7, generator=g, dtype=torch.float64))
    ids = torch.randint(0, 11, (3, 5), generator=g)
    got = embed_by_matmul(ids, nn_emb.weight.detach())
    assert got.shape == (3, 5, 7)
    assert torch.equal(got, nn_emb(ids).detach())                 # exact, not allclose
    assert torch.equal(got, F.embedding(ids, nn_emb.weight.detach()))


def test_embed_by_matmul_gradient_matches_embedding():
    # The gradient w.r.t. W is onehotᵀ @ upstream: rows of used ids accumulate, others are 0.
    g = torch.Generator().manual_seed(1)
    W = torch.randn(6, 4, generator=g, dtype=torch.float64)
    ids = torch.tensor([1, 1, 4, 0])
    up = torch.randn(4, 4, generator=g, dtype=torch.float64)
    W1 = W.clone().requires_grad_()
    (embed_by_matmul(ids, W1) * up).sum().backward()
    W2 = W.clone().requires_grad_()
    (F.embedding(ids, W2) * up).sum().backward()
    torch.testing.assert_close(W1.grad, W2.grad, rtol=0, atol=1e-15)
    assert torch.all(W1.grad[[2, 3, 5]] == 0)


@pytest.mark.parametrize(
    "ids, match",
    [
        (torch.tensor([0, 5]), r"offending ids include \[5\]"),
        (torch.tensor([-1, 2]), r"offending ids include \[-1\]"),
        (torch.tensor([0.0, 1.0]), "integer dtype"),
    ],
)
def test_bad_ids_raise(ids, match):
    with pytest.raises(ValueError, match=match):
        embed_by_matmul(ids, torch.zeros(5, 3))
    with pytest.raises(ValueError, match=match):
        one_hot(ids, 5)


def test_bad_weight_raises():
    with pytest.raises(ValueError, match=r"\(V, C\)"):
        embed_by_matmul(torch.tensor([0]), torch.zeros(5))


# --------------------------------------------------------------------------- similarity

def test_cosine_similarity_matches_torch():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(5, 8, generator=g, dtype=torch.float64)
    b = torch.randn(3, 8, generator=g, dtype=torch.float64) * 10
    expect = F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)
    torch.testing.assert_close(cosine_similarity(a, b), expect, rtol=0, atol=1e-12)
    s = cosine_similarity(a)
    torch.testing.assert_close(torch.diagonal(s), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(s, s.T)


def test_cosine_similarity_ignores_length_and_handles_zero_rows():
    a = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0], [-2.0, 0.0]])
    s = cosine_similarity(a)
    assert s[0, 1].item() == pytest.approx(1.0)
    assert s[0, 3].item() == pytest.approx(-1.0)
    assert s[2].abs().max().item() == 0.0 and not torch.isnan(s).any()


def test_cosine_similarity_width_mismatch_raises():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(2, 4\)"):
        cosine_similarity(torch.zeros(5, 3), torch.zeros(2, 4))


def test_nearest():
    W = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [5.0, 0.2]])
    ids, sims = nearest(W, 0, k=3)
    assert ids.tolist() == [4, 1, 2]            # row 0 itself is left out; length is ignored
    assert torch.all(sims[:-1] >= sims[1:])
    ids, _ = nearest(W, torch.tensor([0.0, 2.0]), k=1)
    assert ids.tolist() == [2]
    with pytest.raises(ValueError, match="k=5"):
        nearest(W, 0, k=5)
    with pytest.raises(ValueError, match="query id 7"):
        nearest(W, 7)


# ----------------------------------------------------------------------- sinusoidal

def _paper_pe(T, d, base=10000.0):
    # The formula as printed in "Attention is all you need", one scalar at a time.
    pe = [[0.0] * d for _ in range(T)]
    for pos in range(T):
        for i in range(d // 2):
            pe[pos][2 * i] = math.sin(pos / base ** (2 * i / d))
            pe[pos][2 * i + 1] = math.cos(pos / base ** (2 * i / d))
    return torch.tensor(pe, dtype=torch.float64)


@pytest.mark.parametrize("T, d, base", [(1, 2, 10000.0), (17, 8, 10000.0), (9, 6, 100.0)])
def test_sinusoidal_matches_paper_formula(T, d, base):
    got = sinusoidal_positions(T, d, base=base, dtype=torch.float64)
    assert got.shape == (T, d)
    torch.testing.assert_close(got, _paper_pe(T, d, base), rtol=0, atol=1e-12)


def test_sinusoidal_first_row_and_range():
    pe = sinusoidal_positions(2048, 64)
    assert pe.dtype == torch.float32
    assert torch.equal(pe[0, 0::2], torch.zeros(32)) and torch.equal(pe[0, 1::2], torch.ones(32))
    assert pe.abs().max().item() <= 1.0


@settings(max_examples=40, deadline=None)
@given(pos=st.integers(0, 500), k=st.integers(-200, 200), half=st.integers(1, 16),
       base=st.sampled_from([100.0, 10000.0]))
def test_sinusoidal_shift_is_a_rotation_per_pair(pos, k, half, base):
    """PE(pos+k) = M_k PE(pos), with M_k block-diagonal, independent of pos."""
    d = 2 * half
    pos = max(pos, -k)  # keep pos + k >= 0
    pe = sinusoidal_positions(max(pos, pos + k) + 1, d, base=base, dtype=torch.float64)
    w = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d) * k
    c, s = torch.cos(w), torch.sin(w)
    sin_p, cos_p = pe[pos, 0::2], pe[pos, 1::2]
    # sin(a+b) = sin a cos b + cos a sin b;  cos(a+b) = cos a cos b - sin a sin b
    shifted = torch.empty(d, dtype=torch.float64)
    shifted[0::2] = c * sin_p + s * cos_p
    shifted[1::2] = -s * sin_p + c * cos_p
    torch.testing.assert_close(shifted, pe[pos + k], rtol=0, atol=1e-9)
    assert pe.abs().max().item() <= 1.0


# ------------------------------------------------------------------------- learned

def test_learned_positions_are_wpe_rows():
    torch.manual_seed(0)
    lpe = LearnedPositionalEmbedding(block_size=8, n_embd=4)
    assert isinstance(lpe.wpe, torch.nn.Embedding)
    assert set(dict(lpe.named_parameters())) == {"wpe.weight"}
    assert torch.equal(lpe(5), lpe.wpe.weight[:5])
    assert torch.equal(lpe(3, offset=5), lpe.wpe.weight[5:8])
    assert lpe(8).shape == (8, 4)


def test_learned_positions_too_long_raises():
    lpe = LearnedPositionalEmbedding(block_size=8, n_embd=4)
    with pytest.raises(ValueError, match="T=9.*block_size=8"):
        lpe(9)
    with pytest.raises(ValueError, match="T=4.*offset=5.*block_size=8"):
        lpe(4, offset=5)
    with pytest.raises(ValueError, match="T=0"):
        lpe(0)


# --------------------------------------------------------------------------- RoPE

def _rope_complex(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Independent RoPE: pair (x_i, x_{i+d/2}) is the complex number z_i, multiplied by e^{i p θ_i}."""
    d = x.shape[-1]
    theta = torch.tensor([base ** (-2 * i / d) for i in range(d // 2)], dtype=torch.float64)
    z = torch.complex(x[..., : d // 2].double(), x[..., d // 2 :].double())
    z = z * torch.polar(torch.ones_like(theta), positions.double()[:, None] * theta)
    return torch.cat([z.real, z.imag], dim=-1)


@pytest.mark.parametrize("shape, base, offset", [((5, 8), 10000.0, 0), ((2, 3, 7, 16), 10000.0, 3), ((4, 2), 500.0, 100)])
def test_apply_rotary_matches_complex_oracle(shape, base, offset):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    T, d = shape[-2], shape[-1]
    cos, sin = rope_frequencies(T, d, base=base, offset=offset, dtype=torch.float64)
    assert cos.shape == sin.shape == (T, d // 2)
    got = apply_rotary(x, cos, sin)
    expect = _rope_complex(x, torch.arange(offset, offset + T), base)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expect, rtol=0, atol=1e-12)


def test_apply_rotary_float32_close_and_position_zero_is_identity():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, 32, generator=g)
    cos, sin = rope_frequencies(6, 32)
    got = apply_rotary(x, cos, sin)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), _rope_complex(x, torch.arange(6)), rtol=1e-5, atol=1e-5)
    assert torch.equal(got[:, 0], x[:, 0])


def test_rope_rotates_counter_clockwise_by_one_radian_in_pair_zero():
    x = torch.zeros(2, 4, dtype=torch.float64)
    x[:, 0] = 1.0                      # pair 0 is (x0, x2)
    cos, sin = rope_frequencies(2, 4, dtype=torch.float64)
    y = apply_rotary(x, cos, sin)
    assert y[1, 0].item() == pytest.approx(math.cos(1.0))
    assert y[1, 2].item() == pytest.approx(math.sin(1.0))


def _rotate_at(x: torch.Tensor, p: int, base: float) -> torch.Tensor:
    cos, sin = rope_frequencies(1, x.shape[-1], base=base, offset=p, dtype=torch.float64)
    return apply_rotary(x[None], cos, sin)[0]


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 2000), n=st.integers(0, 2000), s=st.integers(0, 2000),
       half=st.integers(1, 32), seed=st.integers(0, 2**31 - 1), base=st.sampled_from([10.0, 10000.0]))
def test_rope_score_depends_only_on_offset(m, n, s, half, seed, base):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2 * half, generator=g, dtype=torch.float64)
    k = torch.randn(2 * half, generator=g, dtype=torch.float64)
    a = _rotate_at(q, m, base) @ _rotate_at(k, n, base)
    b = _rotate_at(q, m + s, base) @ _rotate_at(k, n + s, base)
    assert a.item() == pytest.approx(b.item(), rel=1e-9, abs=1e-9)
    # ... and equals the score of q at offset m - n against an unrotated k when m >= n.
    if m >= n:
        c = _rotate_at(q, m - n, base) @ k
        assert a.item() == pytest.approx(c.item(), rel=1e-9, abs=1e-9)
    # Rotations keep norms.
    assert _rotate_at(q, m, base).norm().item() == pytest.approx(q.norm().item(), rel=1e-12)


def test_sinusoidal_absolute_dot_product_is_not_shift_invariant_for_content():
    # Contrast used in the chapter: with additive positions, (q+P_m)·(k+P_n) changes when both
    # positions shift by the same amount; with RoPE it does not.
    g = torch.Generator().manual_seed(5)
    d = 16
    q, k = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    P = sinusoidal_positions(64, d, dtype=torch.float64)
    add = [((q + P[m]) @ (k + P[m - 3])).item() for m in range(3, 64)]
    assert max(add) - min(add) > 0.5
    rot = [(_rotate_at(q, m, 1e4) @ _rotate_at(k, m - 3, 1e4)).item() for m in range(3, 64)]
    assert max(rot) - min(rot) < 1e-9


# ----------------------------------------------------------------------- bad input

@pytest.mark.parametrize("fn", [sinusoidal_positions, rope_frequencies])
@pytest.mark.parametrize("T, d, match", [(4, 7, "d=7"), (0, 8, "T=0"), (-3, 8, "T=-3"), (4, 0, "d=0")])
def test_positions_reject_bad_sizes(fn, T, d, match):
    with pytest.raises(ValueError, match=match):
        fn(T, d)


def test_bad_base_raises():
    with pytest.raises(ValueError, match="base"):
        sinusoidal_positions(4, 8, base=1.0)


def test_apply_rotary_rejects_bad_shapes():
    cos, sin = rope_frequencies(4, 8)
    with pytest.raises(ValueError, match="even"):
        apply_rotary(torch.zeros(4, 7), cos, sin)
    with pytest.raises(ValueError, match=r"\(5, 4\).*cos \(4, 4\)"):
        apply_rotary(torch.zeros(5, 8), cos, sin)
    with pytest.raises(ValueError, match="cos"):
        apply_rotary(torch.zeros(4, 8), cos, sin[:, :2])


# ----------------------------------------------------------------- chapter 03 checks

def test_ch03_references_agree_with_the_library():
    from lmcourse import embeddings as E
    from lmcourse.exercises import ch03

    for case in ch03.embed_by_matmul.cases():
        assert torch.equal(ch03.embed_by_matmul.reference(*case.args), E.embed_by_matmul(*case.args))
    for case in ch03.cosine_similarity.cases():
        torch.testing.assert_close(ch03.cosine_similarity.reference(*case.args), E.cosine_similarity(*case.args))
    for case in ch03.nearest.cases():
        W, q, k = case.args
        assert torch.equal(ch03.nearest.reference(W.clone(), q, k), E.nearest(W, q, k)[0])
    for case in ch03.sinusoidal_positions.cases():
        torch.testing.assert_close(
            ch03.sinusoidal_positions.reference(*case.args, **case.kwargs),
            E.sinusoidal_positions(*case.args, **case.kwargs, dtype=torch.float64), rtol=0, atol=1e-12)
    for case in ch03.apply_rotary.cases():
        torch.testing.assert_close(ch03.apply_rotary.reference(*case.args), E.apply_rotary(*case.args), rtol=0, atol=1e-12)


def test_ch03_each_wrong_variant_fails_with_its_own_message():
    from lmcourse.exercises import ch03

    exercises = [ch03.embed_by_matmul, ch03.cosine_similarity, ch03.nearest, ch03.sinusoidal_positions, ch03.apply_rotary]
    for ex in exercises:
        assert ex.run(ex.reference).passed, ex.name
        assert len(ex.wrong) >= 3, ex.name
        for w in ex.wrong:
            result = ex.run(w.fn)
            assert result.status == "fail", (ex.name, w.fn.__name__)
            assert w.message in result.matched, (ex.name, w.fn.__name__)


def test_tables_follow_the_requested_device_and_apply_rotary_follows_x():
    # The "meta" device stands in for CUDA/MPS here: no kernel runs, but placement is checked.
    assert sinusoidal_positions(4, 8, device="meta").device.type == "meta"
    cos, sin = rope_frequencies(4, 8, device="meta")
    assert cos.device.type == sin.device.type == "meta"
    cos, sin = rope_frequencies(4, 8)                      # CPU tables ...
    y = apply_rotary(torch.empty(2, 4, 8, device="meta"), cos, sin)
    assert y.device.type == "meta" and y.shape == (2, 4, 8)  # ... moved to x's device


def test_integer_inputs_are_rejected_not_truncated():
    with pytest.raises(ValueError, match="int64"):
        cosine_similarity(torch.tensor([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match="int64"):
        nearest(torch.tensor([[1, 2], [3, 4]]), 0, k=1)
    with pytest.raises(ValueError, match="int64"):
        apply_rotary(torch.ones(4, 8, dtype=torch.long), *rope_frequencies(4, 8))
    with pytest.raises(ValueError, match="int64"):
        sinusoidal_positions(4, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="int32"):
        rope_frequencies(4, 8, dtype=torch.int32)


def test_bool_offsets_are_rejected():
    with pytest.raises(ValueError, match="offset"):
        rope_frequencies(4, 8, offset=True)
    with pytest.raises(ValueError, match="offset"):
        LearnedPositionalEmbedding(8, 4)(2, offset=True)


def test_bad_base_type_raises_value_error():
    with pytest.raises(ValueError, match="base"):
        rope_frequencies(4, 8, base="10000")


# ----------------------------------------------------------------- every branch, every default

@pytest.mark.parametrize(
    "ids, vocab, match",
    [
        ([0, 1], 5, r"ids must be a torch.Tensor of integers, got list"),
        (torch.tensor([0, 1], dtype=torch.complex64), 5, r"integer dtype, got torch.complex64"),
        (torch.tensor([True, False]), 5, r"integer dtype, got torch.bool"),
        (torch.tensor([0.0]), 5, r"integer dtype, got torch.float32"),
        (torch.tensor([0]), 0, r"vocab_size must be a positive int, got 0"),
        (torch.tensor([0]), -2, r"vocab_size must be a positive int, got -2"),
        (torch.tensor([0]), True, r"vocab_size must be a positive int, got True"),
        (torch.tensor([0]), 5.0, r"vocab_size must be a positive int, got 5.0"),
        (torch.tensor([[0, 5], [9, 2]]), 5, r"\[0, 4\] \(vocab_size=5\), got min=0, max=9; offending ids include \[5, 9\]$"),
        (torch.tensor([-3, 4, -1]), 4, r"\[0, 3\] \(vocab_size=4\), got min=-3, max=4; offending ids include \[-3, -1, 4\]$"),
        (torch.tensor([9, 8, 7, 6, 5, 4, 3, 2]), 2, r"offending ids include \[2, 3, 4, 5, 6\]$"),
    ],
)
def test_one_hot_id_and_vocab_checks(ids, vocab, match):
    with pytest.raises(ValueError, match=match):
        one_hot(ids, vocab)


def test_one_hot_edges_and_dtype():
    assert one_hot(torch.tensor([], dtype=torch.long), 5).shape == (0, 5)
    assert one_hot(torch.zeros(2, 0, dtype=torch.long), 3).shape == (2, 0, 3)
    assert torch.equal(one_hot(torch.tensor([0, 4]), 5, dtype=torch.float64),
                       torch.tensor([[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=torch.float64))
    assert one_hot(torch.tensor([0, 4]), 5, dtype=torch.float64).dtype == torch.float64
    assert torch.equal(one_hot(torch.tensor(2, dtype=torch.int32), 3), torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(one_hot(torch.tensor([0]), 1), torch.ones(1, 1))  # id V-1 is allowed


def test_embed_by_matmul_weight_checks_and_dtype():
    with pytest.raises(ValueError, match=r"weight must be a 2-D \(V, C\) tensor, got list"):
        embed_by_matmul(torch.tensor([0]), [[1.0]])
    with pytest.raises(ValueError, match=r"weight must be a 2-D \(V, C\) tensor, got \(2, 2, 2\)"):
        embed_by_matmul(torch.tensor([0]), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\] \(vocab_size=2\)"):  # V comes from the weight's rows
        embed_by_matmul(torch.tensor([2]), torch.zeros(2, 3))
    W = torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
    got = embed_by_matmul(torch.tensor([2, 0]), W)
    assert got.dtype == torch.float64 and torch.equal(got, W[[2, 0]])


def test_cosine_similarity_argument_checks_name_the_side():
    with pytest.raises(ValueError, match=r"a must be a 2-D \(N, C\) tensor, got \(3,\)"):
        cosine_similarity(torch.zeros(3))
    with pytest.raises(ValueError, match=r"b must be a 2-D \(N, C\) tensor, got list"):
        cosine_similarity(torch.zeros(2, 3), [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"b must be a floating tensor, got dtype torch.int64"):
        cosine_similarity(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"a and b need the same width C, got a \(2, 3\), b \(2, 4\)"):
        cosine_similarity(torch.zeros(2, 3), torch.zeros(2, 4))


def test_cosine_similarity_b_defaults_to_a_and_eps_clamps_tiny_norms():
    g = torch.Generator().manual_seed(6)
    a = torch.randn(4, 3, generator=g, dtype=torch.float64)
    assert torch.equal(cosine_similarity(a), cosine_similarity(a, a))
    assert cosine_similarity(a, a[:2]).shape == (4, 2)
    tiny = torch.tensor([[1e-9, 0.0]], dtype=torch.float64)  # norm 1e-9 < eps = 1e-8: scaled to length 0.1
    assert cosine_similarity(tiny).item() == pytest.approx(0.01, rel=1e-9)
    assert cosine_similarity(tiny, eps=1e-12).item() == pytest.approx(1.0, rel=1e-9)
    assert cosine_similarity(tiny * 10).item() == pytest.approx(1.0, rel=1e-9)  # norm exactly eps: not shrunk


def test_nearest_edges():
    W = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    ids, sims = nearest(W, 2, k=3)  # rows 0, 1, 3 tie at 0: the lower id comes first
    assert ids.tolist() == [0, 1, 3] and torch.equal(sims, torch.zeros(3, dtype=torch.float64))
    ids, sims = nearest(W, 0, k=3)  # k = V - 1 is allowed with an id, and the id itself never comes back
    assert ids.tolist() == [1, 3, 2] and torch.isfinite(sims).all()
    assert sims.tolist() == pytest.approx([1.0, 1.0, 0.0])
    ids, _ = nearest(W, torch.tensor([0, 1]), k=4)  # a vector leaves nothing out: k = V; ints are cast
    assert ids.tolist() == [2, 0, 1, 3]
    assert sims.dtype == torch.float64


@pytest.mark.parametrize(
    "query, k, match",
    [
        (True, 1, r"query must be an int id or a \(2,\) vector, got True"),
        (-1, 1, r"query id -1 is outside \[0, 3\]"),
        (4, 1, r"query id 4 is outside \[0, 3\]"),
        (torch.zeros(3), 1, r"query must be an int id or a \(2,\) vector, got torch.Size\(\[3\]\)"),
        (torch.zeros(1, 2), 1, r"query must be an int id or a \(2,\) vector"),
        (1.0, 1, r"query must be an int id"),
        (0, 0, r"k must be an int in \[1, 3\], got k=0"),
        (0, 4, r"k must be an int in \[1, 3\], got k=4"),
        (torch.zeros(2), 5, r"k must be an int in \[1, 4\], got k=5"),
        (0, 2.0, r"k must be an int in \[1, 3\], got k=2.0"),
        (0, True, r"k must be an int in \[1, 3\], got k=True"),
    ],
)
def test_nearest_argument_errors(query, k, match):
    W = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match=match):
        nearest(W, query, k=k)


def test_nearest_default_k_and_weight_check():
    W = torch.eye(7)
    ids, sims = nearest(W, 0)
    assert len(ids) == 5 and 0 not in ids.tolist() and ids.tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match=r"weight must be a 2-D \(V, C\) tensor"):
        nearest(torch.zeros(3), 0)
    with pytest.raises(ValueError, match=r"weight must be a 2-D \(V, C\) tensor, got 'W'"):
        nearest("W", 0)


def test_sinusoidal_defaults_and_argument_checks():
    assert torch.equal(sinusoidal_positions(5, 6), sinusoidal_positions(5, 6, 10000.0, torch.float32))
    torch.testing.assert_close(sinusoidal_positions(5, 6, dtype=torch.float64), _paper_pe(5, 6), rtol=0, atol=1e-12)
    assert torch.equal(sinusoidal_positions(3, 4, base=100, dtype=torch.float64), sinusoidal_positions(3, 4, base=100.0, dtype=torch.float64))
    sinusoidal_positions(2, 2, base=1.0001)  # any base > 1 is fine
    for kwargs, match in [
        (dict(T=True, d=4), r"sinusoidal_positions: T \(number of positions\) must be a positive int, got T=True"),
        (dict(T=2.0, d=4), r"got T=2.0"),
        (dict(T=2, d=True), r"sinusoidal_positions: d \(embedding width\) must be a positive int, got d=True"),
        (dict(T=2, d=4.0), r"got d=4.0"),
        (dict(T=2, d=-2), r"got d=-2"),
        (dict(T=2, d=3), r"sinusoidal_positions: d must be even .*got d=3"),
        (dict(T=2, d=4, base=1), r"sinusoidal_positions: base must be > 1, got base=1"),
        (dict(T=2, d=4, base=0.5), r"base must be > 1, got base=0.5"),
        (dict(T=2, d=4, base=True), r"base must be > 1, got base=True"),
        (dict(T=2, d=4, dtype="float32"), r"sinusoidal_positions: dtype must be a floating dtype.*'float32'"),
        (dict(T=2, d=4, dtype=torch.bool), r"dtype must be a floating dtype.*torch.bool"),
    ]:
        with pytest.raises(ValueError, match=match):
            sinusoidal_positions(**kwargs)


def test_rope_frequencies_defaults_values_and_checks():
    cos, sin = rope_frequencies(3, 4)
    assert cos.dtype == sin.dtype == torch.float32 and cos.shape == (3, 2)
    c64, s64 = rope_frequencies(3, 4, dtype=torch.float64)
    angle = torch.arange(3, dtype=torch.float64)[:, None] * torch.tensor([1.0, 10000.0 ** -0.5], dtype=torch.float64)
    torch.testing.assert_close(c64, angle.cos(), rtol=0, atol=1e-15)
    torch.testing.assert_close(s64, angle.sin(), rtol=0, atol=1e-15)
    c2, s2 = rope_frequencies(2, 4, base=100.0, offset=5, dtype=torch.float64)
    angle = torch.tensor([[5.0], [6.0]], dtype=torch.float64) * torch.tensor([1.0, 0.1], dtype=torch.float64)
    torch.testing.assert_close(c2, angle.cos(), rtol=0, atol=1e-15)
    torch.testing.assert_close(s2, angle.sin(), rtol=0, atol=1e-15)
    for kwargs, match in [
        (dict(offset=-1), r"rope_frequencies: offset must be an int >= 0, got -1"),
        (dict(offset=1.0), r"offset must be an int >= 0, got 1.0"),
        (dict(base=1.0), r"rope_frequencies: base must be > 1"),
        (dict(dtype=torch.int64), r"rope_frequencies: dtype must be a floating dtype"),
    ]:
        with pytest.raises(ValueError, match=match):
            rope_frequencies(3, 4, **kwargs)
    with pytest.raises(ValueError, match=r"rope_frequencies: d must be even"):
        rope_frequencies(3, 5)


def test_learned_positions_checks_and_edges():
    for args, match in [
        ((0, 4), r"LearnedPositionalEmbedding: T \(number of positions\) must be a positive int, got T=0"),
        ((8, 0), r"LearnedPositionalEmbedding: d \(embedding width\) must be a positive int, got d=0"),
        ((True, 4), r"got T=True"),
    ]:
        with pytest.raises(ValueError, match=match):
            LearnedPositionalEmbedding(*args)
    lpe = LearnedPositionalEmbedding(8, 3)  # an odd width is fine for a learned table
    assert lpe.wpe.weight.shape == (8, 3) and lpe.block_size == 8
    assert "block_size=8" in repr(lpe)
    assert torch.equal(lpe(1, offset=7), lpe.wpe.weight[7:8])  # offset + T == block_size is allowed
    assert torch.equal(lpe(2), lpe(2, offset=0))
    for args, kwargs, match in [
        ((True,), {}, r"T must be a positive int, got T=True"),
        ((2.0,), {}, r"T must be a positive int, got T=2.0"),
        ((-1,), {}, r"got T=-1"),
        ((2,), dict(offset=-1), r"offset must be an int >= 0, got -1"),
        ((2,), dict(offset=1.0), r"offset must be an int >= 0, got 1.0"),
        ((2,), dict(offset=7), r"T=2 positions \(offset=7\) exceeds block_size=8: learned positions exist only for 0..7"),
    ]:
        with pytest.raises(ValueError, match=match):
            lpe(*args, **kwargs)


def test_apply_rotary_argument_checks_and_dtype():
    cos, sin = rope_frequencies(4, 8, dtype=torch.float64)
    for x, c, s, match in [
        ([[0.0] * 8] * 4, cos, sin, r"apply_rotary: x must be a \(\.\.\., T, d\) tensor, got \[\["),
        (torch.zeros(8), cos, sin, r"x must be a \(\.\.\., T, d\) tensor, got torch.Size\(\[8\]\)"),
        (torch.zeros(4, 8, dtype=torch.int32), cos, sin, r"x must be a floating tensor.*torch.int32"),
        (torch.zeros(4, 8), cos.tolist(), sin, r"cos and sin must end in \(T, d/2\) = \(4, 4\) for x \(4, 8\), got cos \(\), sin \(4, 4\)"),
        (torch.zeros(4, 8), cos, None, r"got cos \(4, 4\), sin \(\)"),
        (torch.zeros(4, 8), cos, sin[None], r"got cos \(4, 4\), sin \(1, 4, 4\)"),
        (torch.zeros(4, 8), cos[:3], sin[:3], r"\(T, d/2\) = \(4, 4\).*cos \(3, 4\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            apply_rotary(x, c, s)
    x = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(7))
    y = apply_rotary(x, cos, sin)  # float64 tables, float32 x: the result follows x
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, apply_rotary(x.double(), cos, sin).float(), rtol=1e-6, atol=1e-6)
    # tables with leading dims broadcast, e.g. one (1, T, d/2) table for every batch row
    assert torch.equal(apply_rotary(x, cos[None], sin[None]), y)


def test_nearest_breaks_ties_by_the_lower_id_even_among_many():
    # 60 rows tie at similarity 1 and 60 at 0: an unstable sort would shuffle the ids within each tie
    W = torch.zeros(120, 2, dtype=torch.float64)
    W[0::2, 0] = 1.0
    W[1::2, 1] = 1.0
    ids, sims = nearest(W, torch.tensor([1.0, 0.0], dtype=torch.float64), k=120)
    assert ids.tolist() == list(range(0, 120, 2)) + list(range(1, 120, 2))
    assert sims.tolist() == [1.0] * 60 + [0.0] * 60


def test_learned_positions_width_one_and_device():
    lpe = LearnedPositionalEmbedding(4, 1)  # a width of 1 is a valid (if tiny) table
    assert lpe(4).shape == (4, 1)
    # "meta" stands in for a GPU: the output follows the table to its device
    assert LearnedPositionalEmbedding(8, 2).to("meta")(3).device.type == "meta"
