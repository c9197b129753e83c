"""lmcourse.tasks: the pieces each application is built from, checked against a second computation,
and each `train_<task>` run for a few steps: its result's shape, its determinism under a seed, its
errors. How well the tasks learn at full length is asserted in chapters/11_applications.ipynb.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lmcourse.data import qa_set, summary_set, translation_set
from lmcourse.metrics import bleu
from lmcourse.model import GPT, IGNORE_INDEX, EncoderDecoder, EncoderDecoderConfig, GPTConfig
from lmcourse.pretrained import story_tokenizer
from lmcourse.tasks import (
    SUMMARY_TOKENS, Example, QAResult, Seq2SeqData, SentimentResult, SummaryResult, TranslationResult,
    TranslationTokenizer, answer_span, extend_context, greedy_translate, lead_sentence, nearest_neighbour_translations, qa_windows,
    rouge_words, summary_example, summary_prompt, train_qa, train_sentiment, train_summary, train_translation,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tok():
    return story_tokenizer()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- QA pieces

def test_answer_span_finds_every_answer_of_the_qa_set_and_decodes_back(tok):
    items = qa_set("val")[:120]
    for it in items:
        ids, s, e = answer_span(tok, it["story"], it["answer"])
        assert ids == tok.encode(it["story"])
        assert 0 <= s <= e < len(ids)
        assert tok.decode(ids[s:e + 1]).strip() == it["answer"]
        # the span is minimal: without its first or last token the answer is cut
        if e > s:
            assert tok.decode(ids[s + 1:e + 1]).strip() != it["answer"]
            assert tok.decode(ids[s:e]).strip() != it["answer"]


def test_answer_span_takes_the_first_occurrence_and_names_a_missing_answer(tok):
    text = "Tom saw a cat. Then Tom saw a dog."
    ids, s, e = answer_span(tok, text, "Tom")
    assert s == 0 and tok.decode(ids[s:e + 1]).strip() == "Tom"
    ids, s, e = answer_span(tok, text, "a dog")
    assert tok.decode(ids[:s]) == "Tom saw a cat. Then Tom saw"
    with pytest.raises(ValueError, match="'a bird' does not occur"):
        answer_span(tok, text, "a bird")
    with pytest.raises(ValueError, match="non-empty"):
        answer_span(tok, text, "  ")


def test_qa_windows_cover_the_story_with_the_question_in_front():
    story = list(range(100, 300))  # 200 token ids
    q = [7, 8, 9]
    ws = qa_windows(q, story, cls_id=1, sep_id=2, window=64, stride=32)
    assert [w.first for w in ws] == [0, 32, 64, 96, 128, 160][:len(ws)]
    assert ws[-1].first + ws[-1].length == len(story)  # the last window ends with the story
    for w in ws:
        assert w.ids[:5] == [1, 7, 8, 9, 2] and w.ids[-1] == 2 and w.offset == 5
        assert w.ids[w.offset:w.offset + w.length] == story[w.first:w.first + w.length]
        assert w.length <= 64
    covered = {w.first + i for w in ws for i in range(w.length)}
    assert covered == set(range(len(story)))
    # any span of up to window - stride + 1 tokens lies wholly inside some window
    for s in range(len(story) - 32):
        assert any(w.first <= s and s + 32 < w.first + w.length for w in ws)


def test_qa_windows_short_story_is_one_window_and_bad_strides_are_named():
    ws = qa_windows([5], [10, 11, 12], cls_id=1, sep_id=2, window=64, stride=32)
    assert len(ws) == 1 and ws[0].ids == [1, 5, 2, 10, 11, 12, 2]
    with pytest.raises(ValueError, match="stride=40 > window=32"):
        qa_windows([5], [10], 1, 2, window=32, stride=40)
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        qa_windows([5], [10], 1, 2, window=0, stride=1)
    with pytest.raises(ValueError, match="no tokens"):
        qa_windows([5], [], 1, 2)


# ----------------------------------------------------------------------------- summarisation pieces

def test_summary_example_masks_the_story_and_learns_the_summary(tok):
    story, summary = summary_set("val")[0]
    ids, targets = summary_example(tok, story, summary, block_size=128)
    assert len(ids) == len(targets) <= 127
    p = summary_prompt(tok, story, 128)
    assert ids[:len(p)] == p and tok.decode(p).endswith("\nSummary:")
    assert len(p) == 128 - SUMMARY_TOKENS
    n_masked = sum(t == IGNORE_INDEX for t in targets)
    assert n_masked == len(p) - 1 and all(t == IGNORE_INDEX for t in targets[:n_masked])
    assert tok.decode(targets[n_masked:]) == f" {summary}\n"
    assert targets[n_masked:-1] == ids[n_masked + 1:]  # each target is the next input token


def test_summary_prompt_keeps_a_short_story_whole_and_refuses_a_tiny_context(tok):
    p = summary_prompt(tok, "Tom had a red ball.", 128)
    assert tok.decode(p) == "Tom had a red ball.\nSummary:"
    with pytest.raises(ValueError, match="block_size=60 leaves no room"):
        summary_prompt(tok, "Tom had a red ball.", 60)
    with pytest.raises(ValueError, match="summary must be a non-empty string"):
        summary_example(tok, "Tom had a red ball.", "", 128)
    with pytest.raises(ValueError, match="story must be a non-empty string"):
        summary_prompt(tok, "", 128)


def test_extend_context_stretches_the_position_table_and_copies_the_rest():
    torch.manual_seed(0)
    small = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16)).eval()
    big = extend_context(small, 22)
    assert big.config.block_size == 22 and not big.training
    old, new = small.transformer.wpe.weight.detach(), big.transformer.wpe.weight.detach()
    assert new.shape == (22, 16)
    assert torch.equal(new[0], old[0]) and torch.allclose(new[-1], old[-1])
    # position p sits at p * 7 / 21 = p / 3 of the old table: 3k lands on old position k exactly,
    # 3k + 1 one third of the way to k + 1
    for k in range(7):
        assert torch.allclose(new[3 * k], old[k], atol=1e-6)
        assert torch.allclose(new[3 * k + 1], old[k] + (old[k + 1] - old[k]) / 3, atol=1e-6)
    ref = torch.nn.functional.interpolate(old.t()[None], size=22, mode="linear", align_corners=True)[0].t()
    assert torch.allclose(new, ref, atol=1e-6)
    sa, sb = small.state_dict(), big.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if k != "transformer.wpe.weight")
    assert big.lm_head.weight is big.transformer.wte.weight  # still tied
    same = extend_context(small, 8)
    assert torch.equal(same.transformer.wpe.weight, small.transformer.wpe.weight)
    x = torch.randint(0, 30, (1, 20))
    assert big(x)[0].shape == (1, 20, 30)
    with pytest.raises(ValueError, match="block_size must be an int >= 8"):
        extend_context(small, 4)
    with pytest.raises(ValueError, match="needs a GPT"):
        extend_context(torch.nn.Linear(2, 2), 16)


def test_lead_sentence_and_rouge_words():
    assert lead_sentence('Tom ran. "Wait!" said Mia. He stopped.') == "Tom ran."
    assert lead_sentence("Where is Tom? Nobody knows.") == "Where is Tom?"
    assert lead_sentence("  no full stop at all ") == "no full stop at all"
    assert lead_sentence("Mr.Tom ran home. Then") == "Mr.Tom ran home."  # a stop inside a word does not end it
    assert rouge_words("Tom's RED ball, found!") == ["tom", "s", "red", "ball", "found"]


# ----------------------------------------------------------------------------- translation pieces

def test_translation_tokenizer_words_in_characters_out():
    tok = TranslationTokenizer([("Tom likes apples.", "汤姆喜欢苹果。"), ("Where is Tom?", "汤姆在哪里？")])
    assert tok.itos[:3] == ["<unk>", "<s>", "</s>"]
    assert TranslationTokenizer.words("Tom doesn't like it.") == ["tom", "doesn't", "like", "it", "."]
    src = tok.encode_source("Tom likes apples.")
    assert len(src) == 4 and len(set(src)) == 4 and tok.UNK not in src
    assert tok.encode_source("Tom likes pears.")[2] == tok.UNK
    tgt = tok.encode_target("汤姆喜欢苹果。")
    assert len(tgt) == 7 and tok.decode(tgt) == "汤姆喜欢苹果。"
    assert tok.decode([tok.BOS, *tgt, tok.EOS, *src]) == "汤姆喜欢苹果。"  # specials and English dropped
    assert set(tok.source.values()).isdisjoint(tok.target.values())
    assert tok.vocab_size == 3 + len(tok.source) + len(tok.target)
    with pytest.raises(ValueError, match="'猫' is not in the target vocabulary"):
        tok.encode_target("猫")
    with pytest.raises(ValueError, match="non-empty list"):
        TranslationTokenizer([])


def test_seq2seq_data_batches_in_the_encoder_decoder_order():
    pairs = [([5, 6, 7], [10, 11]), ([8], [12, 13, 14])]
    data = Seq2SeqData(pairs, pairs[:1], bos=1, eos=2)
    src, tgt_in, src_mask, targets = data.collate(pairs)
    assert src.tolist() == [[5, 6, 7], [8, 0, 0]] and src_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert tgt_in.tolist() == [[1, 10, 11, 0], [1, 12, 13, 14]]
    assert targets.tolist() == [[10, 11, 2, IGNORE_INDEX], [12, 13, 14, 2]]
    a = data.get_batch("train", np.random.default_rng(3), 5, 8)
    b = data.get_batch("train", np.random.default_rng(3), 5, 8)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and a[0].shape[0] == 5
    assert data.longest() == 4
    with pytest.raises(ValueError, match="needs 4 positions, more than block_size=3"):
        data.get_batch("train", np.random.default_rng(0), 2, 3)
    with pytest.raises(ValueError, match="split must be"):
        data.get_batch("test", np.random.default_rng(0), 2, 8)
    with pytest.raises(ValueError, match="Seq2SeqData.val"):
        Seq2SeqData(pairs, [([1], [])], 1, 2)
    assert data.fingerprint() != Seq2SeqData(pairs[::-1], pairs[:1], 1, 2).fingerprint()


def test_greedy_translate_matches_step_by_step_argmax_and_ignores_batch_padding():
    torch.manual_seed(0)
    model = EncoderDecoder(EncoderDecoderConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    srcs = [[5, 6, 7, 8], [9], [10, 11]]
    out = greedy_translate(model, srcs, bos=1, eos=2, max_len=6)
    for s, got in zip(srcs, out):
        assert greedy_translate(model, [s], 1, 2, max_len=6)[0] == got  # batched = alone
        # the reference: re-run the whole model each step, take the argmax, stop at EOS
        src = torch.tensor([s])
        tgt, want = [1], []
        for _ in range(6):
            nxt = int(model(src, torch.tensor([tgt]))[0][0, -1].argmax())
            if nxt == 2:
                break
            want.append(nxt)
            tgt.append(nxt)
        assert got == want
    with pytest.raises(ValueError, match="non-empty"):
        greedy_translate(model, [[]], 1, 2)
    with pytest.raises(ValueError, match="max_len must be an int >= 1"):
        greedy_translate(model, [[3]], 1, 2, max_len=0)


def test_nearest_neighbour_translations_is_right_on_seen_sentences():
    train = translation_set("train")[:200]
    out = nearest_neighbour_translations(train, [en for en, _ in train[:20]])
    assert out == [zh for _, zh in train[:20]]
    tie = [("Tom is happy.", "A"), ("Tom is sad.", "B")]
    assert nearest_neighbour_translations(tie, ["Tom is tired."]) == ["A"]  # a tie goes to the earlier pair
    with pytest.raises(ValueError, match="train_pairs is empty"):
        nearest_neighbour_translations([], ["x"])
    with pytest.raises(ValueError, match="sources must be a list of strings"):
        nearest_neighbour_translations(tie, "Tom is tired.")


# ----------------------------------------------------------------------------- the four tasks, a few steps each

@pytest.mark.parametrize("fn", [train_sentiment, train_qa, train_summary, train_translation])
@pytest.mark.parametrize("kw, msg", [
    (dict(steps=0), "steps must be an int >= 1"),
    (dict(steps=True), "steps must be an int >= 1"),
    (dict(seed=-1), "seed must be an int >= 0"),
    (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(lr=float("nan")), "lr must be a finite number > 0"),
    (dict(n_test=0), "n_test must be an int >= 1"),
    (dict(batch_size=0), "batch_size must be an int >= 1"),
    (dict(n_examples=-1), "n_examples must be an int >= 0"),
])
def test_bad_arguments_are_named_before_any_work(fn, kw, msg):
    with pytest.raises(ValueError, match=msg):
        fn(**kw)


def test_train_qa_names_a_bad_negatives_fraction_and_window():
    with pytest.raises(ValueError, match="negatives must be a fraction in"):
        train_qa(negatives=1.5)
    with pytest.raises(ValueError, match="stride=50 > window=40"):
        train_qa(window=40, stride=50)


def test_sentiment_runs_is_deterministic_and_predicts_like_its_score():
    a = train_sentiment(steps=4, seed=1, n_test=40, n_examples=2)
    b = train_sentiment(steps=4, seed=1, n_test=40, n_examples=2)
    assert isinstance(a, SentimentResult) and a.task == "sentiment" and a.metric == "accuracy"
    assert same_weights(a.model, b.model) and a.scores == b.scores and a.train.step == 4
    assert a.n_test == 40 and len(a.examples) == 2 and all(isinstance(e, Example) for e in a.examples)
    assert a.baseline_score == a.scores["baseline_accuracy"] and a.margin == a.score - a.baseline_score
    from lmcourse.data import sentiment_set

    test = sentiment_set("test")[:40]
    pred = a.predict([s for s, _ in test])
    assert np.mean([p == y for p, (_, y) in zip(pred, test)]) == pytest.approx(a.score)
    assert {e.prediction for e in a.examples} <= {"positive", "negative"}
    assert 0.0 <= a.scores["reviews_accuracy"] <= 1.0
    c = train_sentiment(steps=4, seed=2, n_test=40)
    assert not same_weights(a.model, c.model)  # the seed matters
    with pytest.raises(ValueError, match="sentences must be a list of strings"):
        a.predict("one sentence")


def test_translation_runs_is_deterministic_and_scores_its_predictions():
    kw = dict(steps=3, seed=0, n_test=12, n_examples=3, n_embd=32, n_layer=1)
    a, b = train_translation(**kw), train_translation(**kw)
    assert isinstance(a, TranslationResult) and same_weights(a.model, b.model) and a.scores == b.scores
    test = translation_set("test")[:12]
    pred = a.predict([en for en, _ in test])
    assert a.score == pytest.approx(bleu(pred, [zh for _, zh in test], tokenize="char").score)
    assert [e.prediction for e in a.examples] == pred[:3] and [e.gold for e in a.examples] == [zh for _, zh in test[:3]]
    assert a.scores["copy_input_bleu"] == 0.0  # English shares no character with Chinese
    assert a.scores["baseline_bleu"] == pytest.approx(
        bleu(nearest_neighbour_translations(translation_set("train"), [en for en, _ in test]),
             [zh for _, zh in test], tokenize="char").score)


def test_qa_runs_and_answers_with_spans_of_the_story():
    r = train_qa(steps=2, n_test=6, n_train=40, n_examples=2)
    assert isinstance(r, QAResult) and r.metric == "exact_match" and r.n_test == 6 and r.train.step == 2
    test = qa_set("test")[:6]
    answers = r.predict([it["story"] for it in test], [it["question"] for it in test])
    assert [e.prediction for e in r.examples] == answers[:2]
    for a, it in zip(answers, test):
        assert a and a in it["story"]  # extractive: every answer is a piece of its story
    with pytest.raises(ValueError, match="one story per question"):
        r.predict([test[0]["story"]], [])


def test_summary_runs_and_writes_one_line():
    r = train_summary(steps=2, n_test=2, n_examples=1)
    assert isinstance(r, SummaryResult) and r.metric == "rouge_l" and r.n_test == 2
    assert len(r.examples) == 1 and "\n" not in r.examples[0].prediction
    assert r.predict([summary_set("test")[0][0]], max_new_tokens=4)[0] == r.predict([summary_set("test")[0][0]],
                                                                                  max_new_tokens=4)[0]
