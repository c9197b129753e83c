"""The BPE merge stepper, headless: set the slider, read back the tokens it renders."""
from __future__ import annotations

import pytest

from lmcourse.tokenizers import BPETokenizer
from lmcourse.widgets import bpe_merge_stepper


def test_textbook_steps():
    w = bpe_merge_stepper("aaabdaaabac", vocab_size=259, pattern="")
    assert w.slider.min == 0 and w.slider.max == 3 and w.slider.value == 0
    assert w.last == list("aaabdaaabac")
    assert "0 merges" in w.html.value and "11 tokens for 11 bytes" in w.html.value
    w.slider.value = 1  # the observer redraws without an explicit render()
    assert w.last == ["aa", "a", "b", "d", "aa", "a", "b", "a", "c"]
    assert "merge 1: &#x27;a&#x27; + &#x27;a&#x27; -&gt; &#x27;aa&#x27; (id 256)" in w.html.value
    w.slider.value = 2
    assert w.render() == ["aa", "ab", "d", "aa", "ab", "a", "c"]
    w.slider.value = 3
    assert w.render() == ["aaab", "d", "aaab", "a", "c"]
    assert w.html.value.count("<span") == 5


def test_matches_the_tokenizer_at_every_step():
    text = "the cat sat on the mat; the cat ate the rat.\nThe end."
    w = bpe_merge_stepper(text, vocab_size=280)
    full = BPETokenizer("gpt4").train(text, 280)
    assert w.slider.max == len(full.merges) > 10
    lengths = []
    for k in range(w.slider.max + 1):
        w.slider.value = k
        assert "".join(w.last).replace("\\n", "\n") == text  # token_str shows a newline as \\n
        assert w.last == [full.token_str(i) for i in full.truncated(k).encode(text)]
        lengths.append(len(w.last))
    assert lengths[0] == len(text.encode()) and all(b < a for a, b in zip(lengths, lengths[1:]))
    assert w.last == full.tokens(text)
    assert "␣the" in w.html.value and "\\n" in w.html.value  # spaces and newlines made visible


def test_chinese_partial_bytes_are_escaped_then_merged():
    w = bpe_merge_stepper("你好你好你好", vocab_size=300, pattern="")
    assert w.last[:3] == ["\\xe4", "\\xbd", "\\xa0"]  # 你 = e4 bd a0 in UTF-8
    w.slider.value = w.slider.max
    assert "你好" in "".join(w.last) and len(w.last) <= 2


def test_train_text_and_bad_input():
    w = bpe_merge_stepper("hello", vocab_size=260, pattern="", train_text="hhhheeeelllloooo")
    w.slider.value = w.slider.max
    assert w.last == ["h", "e", "ll", "o"]
    with pytest.raises(ValueError, match="text must be a str"):
        bpe_merge_stepper(123)  # type: ignore[arg-type]
