"""lmcourse.safety: canaries and exposure, exact and MinHash dedup, the bias probe and
counterfactual augmentation, the output filter and its threshold curve, PII injection and scoring.

Oracles where they exist (a bigram model's log-probabilities summed by hand, exact Jaccard,
brute-force rates, sklearn's roc_curve); models are hand-built where the property needs no
training, and one tiny GPT is trained (a few seconds) to show a memorised canary."""
from __future__ import annotations

import itertools
import math
import re
import statistics

import numpy as np
import pytest
import torch
import torch.nn as nn

from lmcourse import safety as S
from lmcourse.data import BOYS, GIRLS, generate_stories
from lmcourse.model import GPT, GPTConfig
from lmcourse.text import scrub_pii
from lmcourse.tokenizers import CharTokenizer


class WordTok:
    """Words with their leading space as tokens (as GPT-2's pre-tokenizer), ids in sorted order."""

    pat = re.compile(r" ?\w+| ?[^\w\s]|\n")

    def __init__(self, text: str) -> None:
        self.itos = sorted(set(self.pat.findall(text)))
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi[w] for w in self.pat.findall(text)]


class Bigram(nn.Module):
    """logits[t] = table[idx[t]]: a causal model whose log-probabilities are easy to sum by hand."""

    def __init__(self, vocab_size: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g))

    def forward(self, idx):
        return self.table[idx], None

    def logprob(self, ids: list[int]) -> float:
        lp = torch.log_softmax(self.table.detach().double(), dim=-1)
        return sum(float(lp[a, b]) for a, b in zip(ids, ids[1:]))


class Constant(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab_size)


# ============================================================================ canaries


def test_make_canary_is_seeded_digits_after_a_prefix():
    c = S.make_canary(3)
    assert c == S.make_canary(3) and c != S.make_canary(4)
    assert c.prefix == "my secret code is" and re.fullmatch(r"\d( \d){5}", c.secret)
    assert c.text == "my secret code is " + c.secret
    assert len(S.make_canary(0, n_digits=2).secret.split()) == 2
    with pytest.raises(ValueError, match="n_digits"):
        S.make_canary(0, n_digits=0)
    with pytest.raises(ValueError, match="prefix"):
        S.make_canary(0, prefix=" ")


def test_random_secrets_are_distinct_in_format_and_exclude_the_canary():
    c = S.make_canary(0, n_digits=2)
    out = S.random_secrets(99, n_digits=2, exclude=[c.secret], seed=1)
    assert len(set(out)) == 99 and c.secret not in out  # every other 2-digit secret
    assert all(re.fullmatch(r"\d \d", s) for s in out)
    assert S.random_secrets(5, seed=2) == S.random_secrets(5, seed=2) != S.random_secrets(5, seed=3)
    assert S.random_secrets(0) == []
    with pytest.raises(ValueError, match="only 99 distinct"):
        S.random_secrets(100, n_digits=2, exclude=[c.secret])
    with pytest.raises(ValueError, match="n must be"):
        S.random_secrets(-1)


TEXT = "The fox ran to the park. The owl sat in a tree!\nIt was late? Yes."


@pytest.mark.parametrize("repeats", [0, 1, 4, 16])
def test_insert_canaries_adds_whole_sentences_that_can_be_taken_out_again(repeats):
    c = S.make_canary(1)
    out = S.insert_canaries(TEXT, c, repeats, seed=5)
    line = c.text + ". "
    assert out.count(c.text) == repeats
    assert out.replace(line, "") == TEXT
    for m in re.finditer(re.escape(line), out):  # each at a sentence start, no word split
        assert m.start() == 0 or out[m.start() - 1] in " \n"
    assert out == S.insert_canaries(TEXT, c, repeats, seed=5)


def test_insert_canaries_positions_depend_on_the_seed_and_cover_the_text():
    c = S.make_canary(1)
    outs = {S.insert_canaries(TEXT, c, 1, seed=s) for s in range(40)}
    assert len(outs) == 4  # the four sentence starts of TEXT, all reached
    assert S.insert_canaries("", c, 2) == (c.text + ". ") * 2  # empty corpus: only the canaries
    assert S.insert_canaries(TEXT, "a plain string", 1, seed=0).count("a plain string. ") == 1
    with pytest.raises(ValueError, match="repeats"):
        S.insert_canaries(TEXT, c, -1)
    with pytest.raises(ValueError, match="canary"):
        S.insert_canaries(TEXT, "  ", 1)
    with pytest.raises(ValueError, match="text must be a str, got bytes"):
        S.insert_canaries(b"x", c, 1)


def test_continuation_logprobs_equal_a_hand_summed_bigram():
    tok = CharTokenizer.fit("abcdefgh ")
    model = Bigram(tok.vocab_size)
    prefix, conts = "abc", [" d", " deff", "", "h"]  # mixed lengths: padding must not matter
    got = S.continuation_logprobs(model, tok, prefix, conts, batch_size=3)
    p = tok.encode(prefix)
    want = [model.logprob(p + tok.encode(c)) - model.logprob(p) for c in conts]
    assert got.dtype == torch.float64 and got.shape == (4,)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-9)
    assert got[2] == 0.0  # an empty continuation: log 1
    assert S.continuation_logprobs(model, tok, prefix, []).shape == (0,)


def test_continuation_logprobs_crop_the_prefix_to_the_block_and_restore_training_mode():
    tok = CharTokenizer.fit("abcdefgh ")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    model.train()
    long, short = S.continuation_logprobs(model, tok, "hgfedcbaabc", [" de"]), S.continuation_logprobs(model, tok, "abc", [" de"])
    # block 8 leaves 5 prefix tokens for a 3-token continuation: "dcbaabc"[-5:] == "baabc"
    torch.testing.assert_close(long, S.continuation_logprobs(model, tok, "baabc", [" de"]))
    assert not torch.equal(long, short)
    assert model.training
    with pytest.raises(ValueError, match="8 tokens; the model's block_size 8"):
        S.continuation_logprobs(model, tok, "a", ["abcdefgh"])
    with pytest.raises(ValueError, match="encodes to no tokens"):
        S.continuation_logprobs(model, tok, "", ["a"])
    with pytest.raises(ValueError, match=r"continuations\[1\] must be a str, got int"):
        S.continuation_logprobs(model, tok, "a", ["b", 3])
    with pytest.raises(ValueError, match=r"logits \(B, T, V\)"):
        S.continuation_logprobs(lambda idx: idx.float(), tok, "a", ["b"])


@pytest.mark.parametrize(
    "canary, others, rank",
    [
        (5.0, [1.0, 2.0, 3.0], 1.0),
        (0.0, [1.0, 2.0, 3.0], 4.0),
        (2.0, [1.0, 2.0, 3.0], 2.5),  # one better, one tie
        (1.0, [1.0, 1.0, 1.0], 2.5),  # all tied: (N + 1) / 2
        (1.0, [], 1.0),
    ],
)
def test_canary_rank_counts_ties_half(canary, others, rank):
    assert S.canary_rank(canary, others) == rank
    n = len(others) + 1
    assert S.exposure_from_scores(canary, others) == pytest.approx(math.log2(n) - math.log2(rank), abs=1e-12)


def test_exposure_from_scores_spans_zero_to_log2_n():
    others = list(range(1, 64))
    assert S.exposure_from_scores(100.0, others) == pytest.approx(6.0)  # N = 64, rank 1
    assert S.exposure_from_scores(-1.0, others) == 0.0  # rank N
    assert S.exposure_from_scores(32.5, torch.tensor(others)) == pytest.approx(1.0)  # rank 32 = N / 2
    assert S.exposure_from_scores(1.0, []) == 0.0  # one candidate (the canary itself): nothing to reveal
    with pytest.raises(ValueError, match="nan"):
        S.exposure_from_scores(float("nan"), [1.0])


def _train_gpt(text: str, tok, steps: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32))
    data = torch.tensor(tok.encode(text))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ix = torch.randint(len(data) - 33, (16,), generator=g)
        x = torch.stack([data[i:i + 32] for i in ix])
        y = torch.stack([data[i + 1:i + 33] for i in ix])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_a_model_trained_on_the_canary_gives_maximal_exposure_and_a_random_one_about_1():
    canary = S.make_canary(0)
    text = S.insert_canaries("the fox ran to the park. the owl sat in a tree. " * 20, canary, 8, seed=0)
    tok = CharTokenizer.fit(text + "0123456789")
    candidates = S.random_secrets(99, exclude=[canary.secret], seed=1)
    trained = _train_gpt(text, tok, 200)
    assert S.exposure(trained, tok, canary, candidates) == pytest.approx(math.log2(100))
    torch.manual_seed(1)
    untrained = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32))
    values = []
    for s in range(20):
        c = S.make_canary(s)
        values.append(S.exposure(untrained, tok, c, S.random_secrets(99, exclude=[c.secret], seed=100 + s)))
    # a rank uniform on 1..N has median N / 2, so the median exposure is about 1 (measured: 0.90)
    assert 0.5 < statistics.median(values) < 1.6


def test_exposure_of_a_model_that_ties_everything_and_bad_candidates():
    tok = CharTokenizer.fit("my secret code is 0123456789")
    canary = S.make_canary(2)
    flat = Constant(tok.vocab_size)
    for n in (1, 9, 99):
        got = S.exposure(flat, tok, canary, S.random_secrets(n, exclude=[canary.secret]))
        assert got == pytest.approx(math.log2(n + 1) - math.log2((n + 2) / 2))
    assert S.exposure(flat, tok, canary, []) == 0.0
    with pytest.raises(ValueError, match="own secret"):
        S.exposure(flat, tok, canary, [canary.secret])
    with pytest.raises(ValueError, match="distinct"):
        S.exposure(flat, tok, canary, ["1 1 1 1 1 1"] * 2)
    with pytest.raises(ValueError, match="must be a Canary, got str"):
        S.exposure(flat, tok, canary.text, [])


# ============================================================================ dedup


def test_exact_dedup_normalises_case_and_whitespace_only():
    docs = ["Hello  world", "hello world", "HELLO\tWORLD\n", "Hello, world", "ｈｅｌｌｏ world", "other"]
    assert S.dedup_key(docs[0]) == "hello world"
    assert S.exact_dedup(docs) == [0, 3, 5]  # full-width folds (NFKC); punctuation counts
    assert S.exact_dedup([]) == []
    assert S.exact_dedup(["a"] * 5) == [0]
    assert S.exact_dedup(["a", "b", "c"]) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"docs must be a sequence of str, got str"):
        S.exact_dedup("abc")


def test_shingles_and_jaccard():
    assert S.shingles("Abc de", n=3) == {"abc", "bc ", "c d", " de"}
    assert S.shingles("the  cat sat on", n=2, unit="word") == {"the cat", "cat sat", "sat on"}
    assert S.shingles("ab", n=5) == {"ab"} and S.shingles("a b", n=3, unit="word") == {"a b"}
    assert S.shingles("  ", n=5) == set()
    with pytest.raises(ValueError, match="unit"):
        S.shingles("a", unit="byte")
    with pytest.raises(ValueError, match="n must be"):
        S.shingles("a", n=0)
    assert S.jaccard({1, 2}, {2, 3}) == 1 / 3
    assert S.jaccard(set(), set()) == 1.0 and S.jaccard(set(), {1}) == 0.0


def test_minhash_exact_cases():
    a = {f"s{i}" for i in range(50)}
    sa = S.minhash_signature(a)
    assert sa.shape == (128,) and sa.dtype == np.uint64
    assert np.array_equal(sa, S.minhash_signature(sorted(a, reverse=True)))  # a set: order is irrelevant
    assert not np.array_equal(sa, S.minhash_signature(a, seed=1))
    assert S.estimated_jaccard(sa, S.minhash_signature(set(a))) == 1.0
    assert S.estimated_jaccard(sa, S.minhash_signature({f"t{i}" for i in range(50)})) == 0.0  # disjoint
    empty = S.minhash_signature([])
    assert S.estimated_jaccard(empty, S.minhash_signature(set())) == 1.0  # as jaccard(empty, empty)
    assert S.estimated_jaccard(empty, sa) == 0.0
    with pytest.raises(ValueError, match="equal length"):
        S.estimated_jaccard(sa, sa[:10])
    with pytest.raises(ValueError, match="shingles must be str, got int"):
        S.minhash_signature([1, 2])
    with pytest.raises(ValueError, match="num_perm"):
        S.minhash_signature(a, num_perm=0)


def _random_pairs(rng, count):
    """Pairs of sets with Jaccard spread over [0, 1]: a shared core plus private parts."""
    out = []
    for _ in range(count):
        shared, only_a, only_b = rng.integers(0, 150, size=3)
        words = [f"w{k}" for k in rng.permutation(10_000)[: shared + only_a + only_b]]
        a = set(words[: shared + only_a])
        b = set(words[:shared]) | set(words[shared + only_a:])
        out.append((a, b))
    return out


def test_minhash_error_stays_within_the_theory():
    rng = np.random.default_rng(0)
    pairs = [p for p in _random_pairs(rng, 150) if p[0] or p[1]]
    k = 128
    errors, sds = [], []
    for a, b in pairs:
        j = S.jaccard(a, b)
        est = S.estimated_jaccard(S.minhash_signature(a, k), S.minhash_signature(b, k))
        errors.append(est - j)
        sds.append(math.sqrt(j * (1 - j) / k))
    errors = np.array(errors)
    # Hoeffding: P(|err| >= eps) <= 2 exp(-2 k eps^2); eps = 0.22 makes it < 1e-5 per pair
    assert np.abs(errors).max() < 0.22
    # unbiased: the mean error is within 4 standard errors of 0
    assert abs(errors.mean()) < 4 * math.sqrt(np.mean(np.square(sds)) / len(errors))
    # and its size is the binomial's: mean |err| ~ sqrt(2 / pi) * sd (measured ratio ~1)
    assert np.abs(errors).mean() < 1.5 * math.sqrt(2 / math.pi) * np.mean(sds)


def test_minhash_converges_to_jaccard_on_small_sets():
    # With few shingles the hash family shows: h(x) = x + b (a = 1, rotations) converges to a
    # gap-weighted similarity instead (measured: errors up to 0.41 here), a full-range a to J.
    errors = []
    for t in range(30):
        a, b = {f"x{t}a", f"x{t}b", f"x{t}c"}, {f"x{t}b", f"x{t}c", f"x{t}d"}  # J = 2 / 4
        errors.append(S.estimated_jaccard(S.minhash_signature(a, 2048), S.minhash_signature(b, 2048)) - 0.5)
    assert max(map(abs, errors)) < 5 * math.sqrt(0.25 / 2048)  # 5 standard errors (measured max 2.4)


def test_minhash_error_shrinks_with_more_permutations():
    rng = np.random.default_rng(1)
    pairs = _random_pairs(rng, 60)

    def mae(k):
        return np.mean([abs(S.estimated_jaccard(S.minhash_signature(a, k), S.minhash_signature(b, k)) - S.jaccard(a, b))
                        for a, b in pairs])

    assert mae(256) < mae(64) < mae(16)


@pytest.fixture(scope="module")
def stories():
    return [s.text for s in generate_stories(150, seed=1)]


def test_near_duplicates_found_with_full_precision_and_recall(stories):
    inj = S.inject_near_duplicates(stories, 30, edit_rate=0.03, seed=0)
    assert len(inj.docs) == 180 and len(inj.copies) == 30
    found = S.near_duplicate_pairs(inj.docs)
    assert S.precision_recall(found, inj.pairs) == (1.0, 1.0)
    assert S.near_duplicate_pairs(inj.docs, bands=None) == found  # LSH misses no pair at J >= 0.7 here
    kept = S.near_dedup(inj.docs)
    removed = set(range(len(inj.docs))) - set(kept)
    assert S.precision_recall(removed, inj.copies) == (1.0, 1.0)
    assert S.near_dedup(stories) == list(range(len(stories)))  # no duplicates: nothing removed
    # heavier edits push copies below the threshold: recall falls, precision stays
    heavy = S.inject_near_duplicates(stories, 30, edit_rate=0.2, seed=0)
    p, r = S.precision_recall(S.near_duplicate_pairs(heavy.docs), heavy.pairs)
    assert p == 1.0 and r < 0.5


def test_near_dedup_edge_cases():
    assert S.near_duplicate_pairs([]) == set() and S.near_dedup([]) == []
    doc = "the quick brown fox jumps over the lazy dog"
    assert S.near_duplicate_pairs([doc] * 4) == set(itertools.combinations(range(4), 2))
    assert S.near_dedup([doc] * 4) == [0]
    # a chain a~b, b~c joins a and c even when a and c alone fall below the threshold
    words = [f"w{i}" for i in range(40)]
    a, b, c = " ".join(words[0:30]), " ".join(words[5:35]), " ".join(words[10:40])
    j = lambda x, y: S.jaccard(S.shingles(x, 1, "word"), S.shingles(y, 1, "word"))  # noqa: E731
    assert j(a, b) > 0.6 > j(a, c)
    assert S.near_dedup([a, b, c, "x y z"], threshold=0.6, n=1, unit="word", bands=None) == [0, 3]
    with pytest.raises(ValueError, match="divisible by bands=5"):
        S.near_duplicate_pairs([doc], bands=5)
    with pytest.raises(ValueError, match="threshold"):
        S.near_duplicate_pairs([doc], threshold=1.5)


def test_inject_near_duplicates_truth(stories):
    docs = stories[:10]
    inj = S.inject_near_duplicates(docs, 6, edit_rate=0.1, seed=3)
    assert [d for i, d in enumerate(inj.docs) if i not in inj.copies] == docs  # originals in order
    for i, j in inj.pairs:
        assert i < j and j in inj.copies  # a copy always comes after its original
        if i not in inj.copies:  # original vs copy: exactly round(0.1 * words) words may differ
            wi, wj = inj.docs[i].split(), inj.docs[j].split()
            assert len(wi) == len(wj) and sum(x != y for x, y in zip(wi, wj)) <= round(0.1 * len(wi))
    assert S.inject_near_duplicates(docs, 0) == (docs, set(), [])
    with pytest.raises(ValueError, match="empty corpus"):
        S.inject_near_duplicates([], 1)


def test_precision_recall_conventions():
    assert S.precision_recall({1, 2, 3, 4}, {3, 4, 5}) == (0.5, 2 / 3)
    assert S.precision_recall(set(), {1}) == (1.0, 0.0)
    assert S.precision_recall({1}, set()) == (0.0, 1.0)
    assert S.precision_recall(set(), set()) == (1.0, 1.0)


# ============================================================================ bias


def _pronoun_counts(corpus):
    counts = {o: [0, 0] for o in S.OCCUPATIONS}
    for line in corpus.split("\n"):
        occ = re.search(r"\b(" + "|".join(S.OCCUPATIONS) + r")\b", line).group(1)
        he = re.search(r"\bhe\b", line) is not None
        she = re.search(r"\bshe\b", line) is not None
        assert he != she
        counts[occ][0 if he else 1] += 1
    return counts


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.7, 0.9, 1.0])
def test_skewed_corpus_has_the_requested_rate(rate):
    corpus = S.skewed_corpus(rate, 2000, seed=0)
    assert corpus.count("\n") == 1999
    counts = _pronoun_counts(corpus)
    a = sum(counts[o][0] for o in S.OCCUPATION_GROUPS[0]) / sum(sum(counts[o]) for o in S.OCCUPATION_GROUPS[0])
    b = sum(counts[o][1] for o in S.OCCUPATION_GROUPS[1]) / sum(sum(counts[o]) for o in S.OCCUPATION_GROUPS[1])
    for observed in (a, b):  # binomial, ~1000 draws: 4 standard deviations
        assert abs(observed - rate) <= 4 * math.sqrt(0.25 / 1000)
    assert corpus == S.skewed_corpus(rate, 2000, seed=0)


def test_skewed_corpus_edges():
    assert S.skewed_corpus(0.9, 0) == ""
    with pytest.raises(ValueError, match="rate must be a number in"):
        S.skewed_corpus(1.2, 10)
    with pytest.raises(ValueError, match="templates must not be empty"):
        S.skewed_corpus(0.5, 10, templates=[])


def test_completion_gap_equals_the_hand_summed_difference():
    corpus = S.skewed_corpus(0.7, 300) + " " + " ".join(S.BIAS_TEMPLATES)
    tok = WordTok(corpus.replace("{occupation}", "doctor").replace("{pronoun}", "he"))
    model = Bigram(tok.vocab_size, seed=4)
    gaps = S.completion_gap(model, tok, occupations=["doctor", "nurse"])
    for occ in ("doctor", "nurse"):
        want = statistics.mean(
            model.logprob(tok.encode(t.format(occupation=occ, pronoun="he")))
            - model.logprob(tok.encode(t.format(occupation=occ, pronoun="she")))
            for t in S.BIAS_TEMPLATES)
        assert gaps[occ] == pytest.approx(want, abs=1e-9)


class SkewedOracle(nn.Module):
    """Knows the skew exactly: after a group-0 occupation P(" he") = rate, after group 1
    P(" she") = rate; every other prediction is uniform. Causal: position t sees idx[:, :t+1]."""

    def __init__(self, tok: WordTok, rate: float) -> None:
        super().__init__()
        self.tok, self.rate = tok, rate
        self.g0 = torch.tensor([tok.stoi[" " + o] for o in S.OCCUPATION_GROUPS[0]])
        self.g1 = torch.tensor([tok.stoi[" " + o] for o in S.OCCUPATION_GROUPS[1]])

    def forward(self, idx):
        B, T = idx.shape
        V = self.tok.vocab_size
        seen0 = torch.isin(idx, self.g0).cumsum(1) > 0  # (B, T)
        seen1 = torch.isin(idx, self.g1).cumsum(1) > 0
        he = self.tok.stoi[" he"]
        logits = torch.zeros(B, T, V, dtype=torch.float64)
        # the pronoun slot is where either pronoun is allowed: give them rate / (1 - rate) in log-odds
        lo = torch.tensor(math.log(self.rate / (1 - self.rate)), dtype=torch.float64)
        logits[..., he] = torch.where(seen0, lo, torch.where(seen1, -lo, torch.zeros((), dtype=torch.float64)))
        return logits


@pytest.mark.parametrize("rate", [0.5, 0.7, 0.9])
def test_group_gap_of_an_oracle_is_twice_the_log_odds(rate):
    corpus = S.skewed_corpus(rate, 200) + " " + " ".join(S.BIAS_TEMPLATES)
    tok = WordTok(corpus.replace("{occupation}", "doctor").replace("{pronoun}", "he"))
    gaps = S.completion_gap(SkewedOracle(tok, rate), tok)
    lo = math.log(rate / (1 - rate))
    for occ in S.OCCUPATIONS:
        assert gaps[occ] == pytest.approx(lo if occ in S.OCCUPATION_GROUPS[0] else -lo, abs=1e-9)
    assert S.group_gap(gaps) == pytest.approx(2 * lo, abs=1e-9)


def test_completion_gap_and_group_gap_reject_bad_input():
    tok = WordTok("the doctor he x")
    with pytest.raises(ValueError, match="one {occupation} followed later by one {pronoun}"):
        S.completion_gap(Bigram(tok.vocab_size), tok, templates=["{pronoun} the {occupation}"])
    with pytest.raises(ValueError, match="templates must not be empty"):
        S.completion_gap(Bigram(tok.vocab_size), tok, templates=[])
    with pytest.raises(ValueError, match=r"lack occupations \['nurse'\]"):
        S.group_gap({"doctor": 1.0}, (["doctor"], ["nurse"]))


@pytest.mark.parametrize(
    "text, swapped",
    [
        ("He said that she was tired.", "She said that he was tired."),
        ("HE and She and he", "SHE and He and she"),
        ("the theatre there, these shells, Shelly", "the theatre there, these shells, Shelly"),  # whole words only
        ("She saw her kite and gave it to her.", "He saw his kite and gave it to him."),
        ("Tom gave her a book.", "Mia gave him a book."),  # BOYS[0] <-> GIRLS[0]
        ("He helped her find the cup.", "She helped him find the cup."),
        ("The kite was hers, not his.", "The kite was his, not hers."),
        ("His dog liked him.", "Her dog liked her."),
        ("she's proud of herself", "he's proud of himself"),
        ("my mother and my uncle", "my father and my aunt"),
        ("", ""),
    ],
)
def test_counterfactual_augment(text, swapped):
    assert S.counterfactual_augment(text) == swapped


def test_counterfactual_augment_states_its_ambiguity_and_checks_pairs():
    # "her" before a noun reads as possessive: the double object is the known error
    assert S.counterfactual_augment("He gave her flowers.") == "She gave his flowers."
    # one-to-one words round-trip
    text = "The boy and his grandfather met a queen. " + " ".join(BOYS[:3] + GIRLS[:3])
    assert S.counterfactual_augment(S.counterfactual_augment(text)) == text
    assert S.counterfactual_augment("the cat", pairs=[("cat", "dog")]) == "the dog"
    assert S.counterfactual_augment("A cat, a CAT", pairs=[("a", "the"), ("cat", "dog")]) == "The dog, the DOG"
    with pytest.raises(ValueError, match="more than one pair"):
        S.counterfactual_augment("x", pairs=[("cat", "dog"), ("dog", "owl")])
    with pytest.raises(ValueError, match="built-in pronouns"):
        S.counterfactual_augment("x", pairs=[("her", "them")])
    with pytest.raises(ValueError, match="two single words"):
        S.counterfactual_augment("x", pairs=[("big sister", "big brother")])


def test_augmenting_a_skewed_corpus_balances_every_occupation():
    corpus = S.skewed_corpus(0.9, 500, seed=1)
    before = _pronoun_counts(corpus)
    flipped = _pronoun_counts(S.counterfactual_augment(corpus))
    for occ in S.OCCUPATIONS:
        assert flipped[occ] == before[occ][::-1]
    both = _pronoun_counts(corpus + "\n" + S.counterfactual_augment(corpus))
    assert all(he == she for he, she in both.values())


# ============================================================================ output filter


def test_filter_normalize_and_blocklist():
    assert S.filter_normalize("You 1D10T, st00pid!! 2024") == "you idiot, stoopid!! 2024"
    assert S.filter_normalize("Stuuuupid") == "stupid"
    assert S.blocklist_hits("What an 1d10t.") == ["idiot"]
    assert S.blocklist_hits("SHUT \n  UP, you loser") == ["loser", "shut up"]
    assert S.blocklist_hits("I lifted a dumbbell; an idiotic plan; shut-eye; uptake") == []
    assert S.blocklist_hits("") == []
    assert S.blocklist_hits("a cat", blocklist=["cat"]) == ["cat"]
    with pytest.raises(ValueError, match="must not be empty"):
        S.blocklist_hits("x", blocklist=[" "])
    with pytest.raises(ValueError, match="text must be a str, got NoneType"):
        S.blocklist_hits(None)


def test_filter_examples_file():
    texts, labels = S.filter_examples()
    assert len(texts) == 120 and sum(labels) == 60
    tr, te = S.filter_examples("train"), S.filter_examples("test")
    assert len(tr[0]) == 80 and len(te[0]) == 40 and not set(tr[0]) & set(te[0])
    with pytest.raises(ValueError, match="split"):
        S.filter_examples("val")


@pytest.fixture(scope="module")
def trained_filter():
    return S.train_filter(*S.filter_examples("train"))


def test_classifier_beats_the_blocklist_on_held_out_text(trained_filter):
    texts, labels = S.filter_examples("test")
    again = S.train_filter(*S.filter_examples("train"))
    assert torch.equal(trained_filter.weight, again.weight)  # deterministic
    scores = trained_filter.score(texts)
    assert scores.shape == (40,) and ((scores > 0) & (scores < 1)).all()
    y = torch.tensor(labels)
    accuracy = ((scores >= 0.5).long() == y).float().mean()
    assert accuracy >= 0.85  # measured 0.925
    blocklist_only = torch.tensor([float(bool(S.blocklist_hits(t))) for t in texts])
    fnr_blocklist = float(((blocklist_only == 0) & (y == 1)).sum() / y.sum())
    fnr_classifier = float(((scores < 0.5) & (y == 1)).sum() / y.sum())
    assert fnr_classifier < fnr_blocklist  # the blocklist misses rudeness without a listed word
    assert trained_filter.score([]).shape == (0,)


def test_output_filter_combines_blocklist_and_classifier(trained_filter):
    f = S.OutputFilter(trained_filter, threshold=0.5)
    s = f.score(["you 1d10t", "the owl sat in a tree"])
    assert s[0] == 1.0 and s[1] == trained_filter.score(["the owl sat in a tree"])[0]
    assert f.blocked("you 1d10t") and not f.blocked("The owl sat in a tree.")


def test_text_filter_features_are_presence_with_unit_length():
    # weight 1 everywhere: the logit is the sum of the feature vector, |x|_1 / |x|_2 = sqrt(k) for
    # k distinct features; "ab" has k = 3 (the word, and the trigrams "<ab", "ab>"), "ab ab" one more
    # (the bigram), case none
    f = S.TextFilter(torch.ones(4096), torch.tensor(0.0))
    s = f.score(["ab", "ab ab", "AB"])
    torch.testing.assert_close(s, torch.sigmoid(torch.tensor([math.sqrt(3), 2.0, math.sqrt(3)])))
    assert f.n_features == 4096


def test_train_filter_rejects_bad_labels():
    with pytest.raises(ValueError, match="both labels"):
        S.train_filter(["a", "b"], [1, 1])
    with pytest.raises(ValueError, match="labels must be 0 or 1, got values \\[0, 2\\]"):
        S.train_filter(["a", "b"], [0, 2])
    with pytest.raises(ValueError, match="1-D with 2 entries"):
        S.train_filter(["a", "b"], [0])


def test_threshold_curve_by_hand():
    curve = S.threshold_curve([0.1, 0.4, 0.4, 0.8, 0.9], [0, 0, 1, 1, 0])
    assert curve.thresholds.tolist() == [0.1, 0.4, 0.8, 0.9, math.inf]
    assert curve.fpr.tolist() == [1.0, 2 / 3, 1 / 3, 1 / 3, 0.0]
    assert curve.fnr.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_threshold_curve_matches_sklearn_and_brute_force():
    from sklearn.metrics import roc_curve

    g = torch.Generator().manual_seed(0)
    scores = torch.rand(200, generator=g).mul(20).round() / 20  # many ties
    labels = (torch.rand(200, generator=g) < 0.4).long()
    curve = S.threshold_curve(scores, labels)
    for t, fpr, fnr in zip(curve.thresholds, curve.fpr, curve.fnr):
        flagged = scores.double() >= t
        assert fpr == int((flagged & (labels == 0)).sum()) / int((labels == 0).sum())
        assert fnr == int((~flagged & (labels == 1)).sum()) / int((labels == 1).sum())
    fpr, tpr, _ = roc_curve(labels.numpy(), scores.numpy(), drop_intermediate=False)
    np.testing.assert_allclose(curve.fpr.numpy()[::-1], fpr)
    np.testing.assert_allclose(1 - curve.fnr.numpy()[::-1], tpr)
    assert (curve.fpr.diff() <= 0).all() and (curve.fnr.diff() >= 0).all()


def test_threshold_curve_bad_input():
    with pytest.raises(ValueError, match="both classes, got 0 positives and 2 negatives"):
        S.threshold_curve([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="both classes, got 0 positives and 0 negatives"):
        S.threshold_curve([], [])
    with pytest.raises(ValueError, match="nan"):
        S.threshold_curve([float("nan"), 0.2], [0, 1])
    with pytest.raises(ValueError, match="1-D with 2 entries"):
        S.threshold_curve([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="scores must be 1-D, got shape \\(1, 2\\)"):
        S.threshold_curve([[0.1, 0.2]], [0, 1])


# ============================================================================ PII


@pytest.fixture(scope="module")
def pii_texts():
    return [s.text for s in generate_stories(60, seed=2)]


def test_inject_pii_spans_hold_the_values(pii_texts):
    examples = S.inject_pii(pii_texts, per_text=3, seed=0)
    assert len(examples) == 60 and examples == S.inject_pii(pii_texts, per_text=3, seed=0)
    kinds = set()
    for ex, original in zip(examples, pii_texts):
        assert len(ex.spans) == 3
        assert [s for s, _, _ in ex.spans] == sorted(s for s, _, _ in ex.spans)
        for s, e, kind in ex.spans:
            value = ex.text[s:e]
            kinds.add(kind)
            assert scrub_pii(value) == {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP>", "card": "<CARD>"}[kind], value
        assert all(w in ex.text for w in original.split())
    assert kinds == set(S.PII_KINDS)
    assert S.inject_pii(pii_texts[:2], per_text=0) == [S.PIIExample(t, ()) for t in pii_texts[:2]]
    assert S.inject_pii([], per_text=2) == []
    with pytest.raises(ValueError, match="unknown PII kind 'ssn'"):
        S.inject_pii(pii_texts, kinds=["ssn"])


def test_pii_scores_of_chapter_02s_scrubber(pii_texts):
    clean = S.pii_recall_precision(scrub_pii, S.inject_pii(pii_texts, seed=0))
    assert (clean.recall, clean.precision) == (1.0, 1.0) and clean.n_values == 120
    hidden = S.pii_recall_precision(scrub_pii, S.inject_pii(pii_texts, seed=0, obfuscated=0.5))
    assert hidden.recall < 0.9 and hidden.precision == 1.0  # measured 0.84 at 0.3
    assert hidden.recall_by_kind["ip"] == hidden.recall_by_kind["card"] == 1.0
    assert hidden.recall_by_kind["email"] < 1.0 and hidden.recall_by_kind["phone"] < 1.0


def test_pii_scores_of_wrong_scrubbers(pii_texts):
    examples = S.inject_pii(pii_texts[:20], seed=1)
    nothing = S.pii_recall_precision(lambda t: t, examples)
    assert (nothing.recall, nothing.precision, nothing.n_regions) == (0.0, 1.0, 0)
    # every digit blanked, separators kept: numbers count as scrubbed, e-mails (letters) do not
    digits = S.pii_recall_precision(lambda t: re.sub(r"\d", "#", t), examples)
    assert digits.recall_by_kind == {"email": 0.0, "phone": 1.0, "ip": 1.0, "card": 1.0}
    partial = S.pii_recall_precision(lambda t: re.sub(r"\d{4}\b", "<N>", t), examples)
    assert partial.recall_by_kind.get("card", 0.0) < 1.0 and partial.recall < 1.0  # half a number is not scrubbed

    def too_much(t):  # also blanks every "the": each such change is a false positive
        return re.sub(r"\bthe\b", "<X>", scrub_pii(t))

    over = S.pii_recall_precision(too_much, examples)
    assert over.recall == 1.0 and over.precision < 0.5
    # a change right next to a value (the space before it) does not touch the value
    beside = {}
    for ex in examples:
        chars = list(ex.text)
        for s, _, _ in ex.spans:
            chars[s - 1] = "_"
        beside[ex.text] = "".join(chars)
    near = S.pii_recall_precision(beside.__getitem__, examples)
    assert (near.recall, near.precision, near.n_regions) == (0.0, 0.0, 40)
    assert S.pii_recall_precision(scrub_pii, []) == (1.0, 1.0, {}, 0, 0)
    with pytest.raises(ValueError, match="must return a str, got NoneType"):
        S.pii_recall_precision(lambda t: None, examples)
    with pytest.raises(ValueError, match="PIIExample"):
        S.pii_recall_precision(scrub_pii, ["text"])


# ============================================================================ chapter 12's set-ups


def test_choice_probs_renormalise_the_hand_summed_bigram_over_the_choices():
    tok = CharTokenizer.fit("abcdefgh .")
    model = Bigram(tok.vocab_size, seed=2)
    choices = [" ab.", " c.", " hhh."]  # different lengths: each scored whole, then renormalised
    got = S.choice_probs(model, tok, "dg", choices)
    p = tok.encode("dg")
    logp = torch.tensor([model.logprob(p + tok.encode(c)) - model.logprob(p) for c in choices], dtype=torch.float64)
    torch.testing.assert_close(got, torch.softmax(logp, 0), rtol=0, atol=1e-12)
    assert got.dtype == torch.float64 and float(got.sum()) == pytest.approx(1.0)
    assert S.choice_probs(Constant(tok.vocab_size), tok, "a", [" b", " c", " d"]).tolist() == pytest.approx([1 / 3] * 3)
    assert S.choice_probs(model, tok, "a", [" b"]).tolist() == [1.0]
    with pytest.raises(ValueError, match="choices must not be empty"):
        S.choice_probs(model, tok, "a", [])
    with pytest.raises(ValueError, match="distinct"):
        S.choice_probs(model, tok, "a", [" b", " b"])
    with pytest.raises(ValueError, match=r"choices\[0\] must be a str, got int"):
        S.choice_probs(model, tok, "a", [1])


@pytest.mark.parametrize("seed", range(3))
def test_near_dedup_finds_every_near_copy_of_a_short_canary_document(stories, seed):
    # chapter 12 plants a canary in three sentences of a story and copies that document with 5 % of its
    # words changed and the canary moved: dedup must remove exactly the copies, whatever the seed
    rng = np.random.default_rng(seed)
    docs, truth = list(stories[:60]), set()
    for k, repeats in enumerate((1, 4, 16)):
        canary = S.make_canary(10 * seed + k)
        host = ". ".join(stories[60 + k].split(". ")[:3]) + "."
        versions = S.inject_near_duplicates([host], repeats - 1, edit_rate=0.05, seed=seed).docs
        for j, v in enumerate(versions):
            pos = int(rng.integers(len(docs) + 1)) if j else len(docs)
            docs.insert(pos, S.insert_canaries(v, canary, 1, seed=j))
    firsts = {}
    for i, d in enumerate(docs):
        for k in range(3):
            if S.make_canary(10 * seed + k).text in d:
                if k in firsts:
                    truth.add(i)
                else:
                    firsts[k] = i
    removed = set(range(len(docs))) - set(S.near_dedup(docs))
    assert len(truth) == 3 + 15 and S.precision_recall(removed, truth) == (1.0, 1.0)
