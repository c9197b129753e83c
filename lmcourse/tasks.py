"""Four applications of the course's small models, each trained and scored end to end.

One function per task, each `train_<task>(steps=..., seed=..., ...) -> <Task>Result`:
- `train_sentiment`: the shipped story GPT (`lmcourse.pretrained`) with a classification
  head on its last token, fine-tuned on `sentiment_set`; accuracy and F1.
- `train_qa`: extractive question answering about a story: a small `Encoder` with a span
  head reads [CLS] question [SEP] window [SEP] over sliding windows of the story, as
  Hugging Face's question-answering pipeline does for documents longer than its model;
  SQuAD exact match and token F1. Its token table starts from the story GPT's (same BPE).
- `train_summary`: summarisation as conditional generation: the story GPT, its context
  stretched from 128 to 256 positions (`extend_context`), fine-tuned on
  "story\\nSummary: summary\\n" with the loss masked to the summary (SFT, chapter 09);
  greedy decoding; ROUGE-L.
- `train_translation`: English -> Chinese with the 2017 `EncoderDecoder` trained from
  scratch, English words in, Chinese characters out; greedy decoding; corpus BLEU on
  characters.

Each result holds the trained model, its tokenizer, the score on the test split next to a
stated baseline's, a few (input, prediction, gold) examples, the training history and times,
and a `predict` method for new inputs. Everything trains through `lmcourse.training.train`
(fp32, on `device`: "cpu" by default, "cuda" on a GPU). Same seed, same device: same
weights, same scores.

Derived in chapters/11_applications.ipynb.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from random import Random
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from lmcourse.data import qa_set, reviews, sentiment_set, summary_set, translation_set
from lmcourse.finetune import EncoderForQA, ExampleData, GPTClassifier, best_spans, pad_batch
from lmcourse.generation import generate
from lmcourse.metrics import accuracy, bleu, corpus_rouge_l, f1_score, squad_scores
from lmcourse.model import GPT, IGNORE_INDEX, Encoder, EncoderConfig, EncoderDecoder, EncoderDecoderConfig
from lmcourse.training import TrainConfig, TrainResult, train

__all__ = [
    "TASKS",
    "Example",
    "TaskResult",
    "SentimentResult",
    "QAResult",
    "SummaryResult",
    "TranslationResult",
    "train_sentiment",
    "train_qa",
    "train_summary",
    "train_translation",
    "answer_span",
    "QAWindow",
    "qa_windows",
    "extend_context",
    "SUMMARY_PROMPT",
    "summary_prompt",
    "summary_example",
    "rouge_words",
    "lead_sentence",
    "Seq2SeqData",
    "TranslationTokenizer",
    "greedy_translate",
    "nearest_neighbour_translations",
]

TASKS = ("sentiment", "qa", "summary", "translation")


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Example:
    """One test item as the model saw it: its input, the model's prediction, the gold answer."""

    input: str
    prediction: str
    gold: str


@dataclass
class TaskResult:
    """A trained task: the metric on the test split against a stated baseline, examples, history.

    metric names `score` (e.g. "accuracy"); scores holds every metric computed; baseline says
    what the baseline does and baseline_score is its value of the same metric on the same
    items. n_test: how many test items were scored. train: the Trainer's history; train_s and
    eval_s: wall seconds training and scoring (predictions included).
    """

    task: str
    metric: str
    score: float
    baseline: str
    baseline_score: float
    scores: dict[str, float]
    examples: list[Example]
    n_test: int
    train: TrainResult
    train_s: float
    eval_s: float
    model: nn.Module = field(repr=False)
    tokenizer: Any = field(repr=False)

    @property
    def margin(self) -> float:
        """score - baseline_score."""
        return self.score - self.baseline_score

    def summary(self) -> str:
        """One line: task, metric, score vs baseline (3 decimals), items, training steps."""
        return (f"{self.task:<12} {self.metric} {self.score:.3f} vs {self.baseline_score:.3f} ({self.baseline}) "
                f"on {self.n_test} test items, {self.train.step} steps")


# ----------------------------------------------------------------------------- input checks

def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_int(name: str, v: Any, lo: int) -> int:
    if not _is_int(v) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _check_lr(lr: Any) -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    return float(lr)


def _check_common(steps: Any, seed: Any, batch_size: Any, n_test: Any, n_examples: Any) -> None:
    _check_int("steps", steps, 1)
    _check_int("seed", seed, 0)
    _check_int("batch_size", batch_size, 1)
    if n_test is not None:
        _check_int("n_test", n_test, 1)
    _check_int("n_examples", n_examples, 0)


def _check_texts(name: str, texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{name} must be a list of strings, got {type(texts).__name__}")
    return list(texts)


def _test_items(items: list, n_test: int | None) -> list:
    return items if n_test is None else items[:n_test]


def _config(steps: int, batch_size: int, block_size: int, lr: float, seed: int, device: str) -> TrainConfig:
    # fine-tuning runs are short: a short warm-up, cosine to 10 %, no evaluation on the way
    return TrainConfig(steps=steps, batch_size=batch_size, block_size=block_size, lr=lr, min_lr=lr / 10,
                       warmup_steps=min(10, steps // 10), weight_decay=0.01, eval_interval=0,
                       log_interval=max(1, steps), seed=seed, device=device, dtype="fp32")


def _train(model: nn.Module, data: Any, cfg: TrainConfig) -> tuple[TrainResult, float]:
    t = time.perf_counter()
    result = train(model, data, cfg, progress=False, plot=False)
    return result, time.perf_counter() - t


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------------------- sentiment

class SentimentResult(TaskResult):
    """`train_sentiment`'s result: model is a `GPTClassifier`, tokenizer the story BPE."""

    @torch.no_grad()
    def predict(self, sentences: Sequence[str], batch_size: int = 256) -> list[int]:
        """Labels (1 positive, 0 negative) for a list of texts; a text longer than the GPT's
        context (128 tokens) is cut to its first 128."""
        return _classify(self.model, self.tokenizer, _check_texts("sentences", sentences), batch_size)


@torch.no_grad()
def _classify(model: GPTClassifier, tok: Any, sentences: list[str], batch_size: int = 256) -> list[int]:
    model.eval()
    dev = _device_of(model)
    out: list[int] = []
    T = model.config.block_size
    for i in range(0, len(sentences), batch_size):
        ids, mask = pad_batch([tok.encode(s)[:T] for s in sentences[i:i + batch_size]])
        logits, _ = model(ids.to(dev), attention_mask=mask.to(dev))  # (B, 2)
        out += logits.argmax(-1).tolist()
    return out


def train_sentiment(
    steps: int = 60,
    seed: int = 0,
    *,
    batch_size: int = 32,
    lr: float = 1e-3,
    n_test: int | None = None,
    n_examples: int = 4,
    device: str = "cpu",
) -> SentimentResult:
    """Fine-tune the shipped story GPT to classify `sentiment_set` sentences; score on its test split.

    The whole model trains (chapter 09 compares freezing strategies); the head reads the last
    token (`GPTClassifier`). Metric: accuracy, with F1 of the positive class. Baseline: the
    training split's majority class for every sentence. n_test: score only the first n_test
    test items (None: all 300). scores["reviews_accuracy"]: the same classifier on the 60
    written test reviews (`lmcourse.data.reviews`), text it never saw the like of: out of
    domain (a review longer than 128 tokens is cut to its first 128).
    """
    from lmcourse.pretrained import story_gpt, story_tokenizer

    _check_common(steps, seed, batch_size, n_test, n_examples)
    lr = _check_lr(lr)
    tok = story_tokenizer()
    train_set, val_set = sentiment_set("train"), sentiment_set("val")
    test = _test_items(sentiment_set("test"), n_test)
    data = ExampleData([(tok.encode(s), y) for s, y in train_set], [(tok.encode(s), y) for s, y in val_set])
    torch.manual_seed(seed)  # the head's initial weights
    model = GPTClassifier(story_gpt(), n_classes=2)
    longest = max(len(e[0]) for e in data.train + data.val)
    history, train_s = _train(model, data, _config(steps, batch_size, longest, lr, seed, device))

    t = time.perf_counter()
    sentences, gold = [s for s, _ in test], [y for _, y in test]
    pred = _classify(model, tok, sentences)
    majority = Counter(y for _, y in train_set).most_common(1)[0][0]
    written = reviews("test")
    scores = {"accuracy": accuracy(gold, pred), "f1": f1_score(gold, pred),
              "baseline_accuracy": accuracy(gold, [majority] * len(gold)),
              "reviews_accuracy": accuracy([y for _, y in written], _classify(model, tok, [r for r, _ in written]))}
    names = {0: "negative", 1: "positive"}
    examples = [Example(s, names[p], names[g]) for s, p, g in list(zip(sentences, pred, gold))[:n_examples]]
    return SentimentResult("sentiment", "accuracy", scores["accuracy"], f"majority class ({names[majority]})",
                           scores["baseline_accuracy"], scores, examples, len(test), history, train_s,
                           time.perf_counter() - t, model, tok)


# ----------------------------------------------------------------------------- extractive QA

def _token_offsets(tok: Any, ids: Sequence[int]) -> list[int]:
    """The byte offset where each token starts in the decoded text, plus the total length at the end."""
    offsets = [0]
    for i in ids:
        offsets.append(offsets[-1] + len(tok.decode_bytes([i])))
    return offsets


def answer_span(tok: Any, text: str, answer: str) -> tuple[list[int], int, int]:
    """Encode `text` and locate `answer` in it: (ids, start, end), the answer's first and last token, end inclusive.

    The answer's first occurrence in the text counts (SQuAD's rule when only the answer
    string is given); its tokens are those that overlap its characters. A token-level
    answer may carry a leading space (" cat"): decoding and stripping gives the answer back.
    """
    if not isinstance(text, str) or not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"text and answer must be strings, the answer non-empty, got {answer!r:.40}")
    at = text.find(answer)
    if at < 0:
        raise ValueError(f"the answer {answer!r} does not occur in the text: extractive QA needs it there")
    ids = tok.encode(text)
    offsets = _token_offsets(tok, ids)
    b0 = len(text[:at].encode("utf-8"))
    b1 = b0 + len(answer.encode("utf-8"))  # one past the answer's last byte
    start = max(i for i in range(len(ids)) if offsets[i] <= b0)
    end = max(i for i in range(len(ids)) if offsets[i] < b1)
    return ids, start, end


@dataclass(frozen=True)
class QAWindow:
    """One window of a story, as the QA encoder reads it."""

    ids: list[int]     # [CLS] question [SEP] context [SEP]
    offset: int        # where the context starts in ids
    first: int         # the context's first token's index in the whole story
    length: int        # context tokens


def qa_windows(question_ids: Sequence[int], story_ids: Sequence[int], cls_id: int, sep_id: int,
               window: int = 64, stride: int = 32) -> list[QAWindow]:
    """Cut a story into overlapping windows, each "[CLS] question [SEP] window [SEP]" (Hugging Face's doc_stride).

    Windows start every `stride` tokens and hold `window` story tokens (the last may be
    shorter, and ends with the story), so an answer of up to window - stride + 1 tokens lies
    wholly inside at least one window.
    """
    window, stride = _check_int("window", window, 1), _check_int("stride", stride, 1)
    if stride > window:
        raise ValueError(f"stride={stride} > window={window} would skip story tokens")
    if not story_ids:
        raise ValueError("the story has no tokens")
    q = list(question_ids)
    head = [cls_id, *q, sep_id]
    out, first = [], 0
    while True:
        ctx = list(story_ids[first:first + window])
        out.append(QAWindow(head + ctx + [sep_id], len(head), first, len(ctx)))
        if first + window >= len(story_ids):
            return out
        first += stride


class QAResult(TaskResult):
    """`train_qa`'s result: model is an `EncoderForQA`, tokenizer the story BPE (ids 512, 513 are [CLS], [SEP])."""

    window: int = 64
    stride: int = 32

    def predict(self, stories: Sequence[str], questions: Sequence[str]) -> list[str]:
        """The answer span to each question, read from its story (one story per question)."""
        stories, questions = _check_texts("stories", stories), _check_texts("questions", questions)
        if len(stories) != len(questions):
            raise ValueError(f"one story per question: got {len(stories)} stories and {len(questions)} questions")
        return _answer(self.model, self.tokenizer, stories, questions, self.window, self.stride)


@torch.no_grad()
def _answer(model: EncoderForQA, tok: Any, stories: list[str], questions: list[str], window: int, stride: int,
            max_answer: int = 12, batch_size: int = 256) -> list[str]:
    """Score every window of every story; each question's answer is its best span over all its windows."""
    model.eval()
    dev = _device_of(model)
    cls_id, sep_id = tok.vocab_size, tok.vocab_size + 1
    story_ids: dict[str, list[int]] = {}
    rows: list[tuple[int, QAWindow, list[int]]] = []  # (question index, window, story ids)
    for qi, (story, question) in enumerate(zip(stories, questions)):
        if story not in story_ids:
            story_ids[story] = tok.encode(story)
        ids = story_ids[story]
        rows += [(qi, w, ids) for w in qa_windows(tok.encode(question), ids, cls_id, sep_id, window, stride)]
    best: list[tuple[float, str]] = [(-math.inf, "")] * len(questions)
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        ids, mask = pad_batch([w.ids for _, w, _ in chunk])
        logits, _ = model(ids.to(dev), attention_mask=mask.to(dev))  # (B, T, 2)
        ctx = torch.zeros_like(mask)  # spans may only lie in the story part of each window
        for r, (_, w, _) in enumerate(chunk):
            ctx[r, w.offset:w.offset + w.length] = 1
        spans = best_spans(logits.float().cpu(), ctx, max_len=max_answer)  # (B, 2)
        for r, (qi, w, s_ids) in enumerate(chunk):
            s, e = spans[r].tolist()
            score = float(logits[r, s, 0] + logits[r, e, 1])
            if score > best[qi][0]:
                a, b = w.first + s - w.offset, w.first + e - w.offset
                best[qi] = (score, tok.decode(s_ids[a:b + 1]).strip())
    return [text for _, text in best]


def _question_word_baseline(train_items: list[dict[str, str]], questions: list[str]) -> list[str]:
    """The training split's most common answer to questions starting with the same two words."""
    def key(q: str) -> str:
        return " ".join(q.split()[:2]).lower()

    by_key: dict[str, Counter] = {}
    for it in train_items:
        by_key.setdefault(key(it["question"]), Counter())[it["answer"]] += 1
    overall = Counter(it["answer"] for it in train_items).most_common(1)[0][0]
    return [by_key[key(q)].most_common(1)[0][0] if key(q) in by_key else overall for q in questions]


def train_qa(
    steps: int = 300,
    seed: int = 0,
    *,
    batch_size: int = 32,
    lr: float = 3e-3,
    window: int = 64,
    stride: int = 32,
    negatives: float = 0.15,
    n_layer: int = 2,
    n_train: int | None = None,
    n_test: int | None = None,
    n_examples: int = 4,
    device: str = "cpu",
) -> QAResult:
    """Train an extractive reader for `qa_set`: an Encoder + span head over windows of each story.

    The encoder (n_layer post-LN layers, 128 wide like the story GPT) is new; its token table
    is copied from the shipped story GPT, whose BPE it reads, plus [CLS] and [SEP] rows. Every
    window of every training question is an example: the answer's (start, end) where the
    window holds the whole answer, otherwise (0, 0), the [CLS] position, "no answer here"
    (BERT's recipe for SQuAD). At test time every window is scored and the best span over
    all of a question's windows is its answer. Metric: SQuAD exact match, with token F1.
    Baseline: the training split's most common answer for questions starting with the same
    two words ("Who helped", "What colour", ...). negatives: the fraction of answerless
    windows kept for training (seeded); fewer means more of the budget on finding answers.
    n_train: train on the first n_train questions only (None: all 10,496).
    """
    from lmcourse.pretrained import story_gpt, story_tokenizer

    _check_common(steps, seed, batch_size, n_test, n_examples)
    lr = _check_lr(lr)
    _check_int("n_layer", n_layer, 1)
    if n_train is not None:
        _check_int("n_train", n_train, 1)
    if isinstance(negatives, bool) or not isinstance(negatives, numbers.Real) or not 0 <= negatives <= 1:
        raise ValueError(f"negatives must be a fraction in [0, 1] (of the windows without the answer kept), got {negatives!r}")
    qa_windows([0], [0], 0, 0, window, stride)  # names a bad window or stride now, before any work
    tok = story_tokenizer()
    cls_id, sep_id = tok.vocab_size, tok.vocab_size + 1
    story_ids: dict[str, list[int]] = {}

    keep = Random(seed)

    def examples(items: list[dict[str, str]]) -> list[tuple[list[int], int, int]]:
        out = []
        for it in items:
            if it["story"] not in story_ids:
                story_ids[it["story"]] = tok.encode(it["story"])
            ids, s, e = answer_span(tok, it["story"], it["answer"])
            for w in qa_windows(tok.encode(it["question"]), ids, cls_id, sep_id, window, stride):
                inside = w.first <= s and e < w.first + w.length
                if inside:
                    out.append((w.ids, w.offset + s - w.first, w.offset + e - w.first))
                elif keep.random() < negatives:
                    out.append((w.ids, 0, 0))
        return out

    train_items, test = _test_items(qa_set("train"), n_train), _test_items(qa_set("test"), n_test)
    data = ExampleData(examples(train_items), examples(qa_set("val")), kind="span")
    longest = max(len(e[0]) for e in data.train + data.val)
    torch.manual_seed(seed)
    gpt = story_gpt()
    C = gpt.config.n_embd
    config = EncoderConfig(vocab_size=tok.vocab_size + 2, max_position_embeddings=longest + 16, type_vocab_size=1,
                           n_layer=n_layer, n_head=4, n_embd=C, dropout=0.0, add_pooler=False)
    model = EncoderForQA(Encoder(config))
    with torch.no_grad():  # the story GPT's token vectors: what each BPE token means, learned already
        model.encoder.embeddings.word_embeddings.weight[:tok.vocab_size] = gpt.transformer.wte.weight
    history, train_s = _train(model, data, _config(steps, batch_size, longest, lr, seed, device))

    t = time.perf_counter()
    stories, questions, gold = [it["story"] for it in test], [it["question"] for it in test], [it["answer"] for it in test]
    pred = _answer(model, tok, stories, questions, window, stride)
    base = _question_word_baseline(train_items, questions)
    scores = squad_scores(pred, gold)
    b = squad_scores(base, gold)
    scores.update(baseline_exact_match=b["exact_match"], baseline_f1=b["f1"])
    shown = [Example(q, p, g) for q, p, g in list(zip(questions, pred, gold))[:n_examples]]
    result = QAResult("qa", "exact_match", scores["exact_match"], "most common training answer per question opening",
                      scores["baseline_exact_match"], scores, shown, len(test), history, train_s,
                      time.perf_counter() - t, model, tok)
    result.window, result.stride = window, stride
    return result


# ----------------------------------------------------------------------------- summarisation

def extend_context(gpt: GPT, block_size: int) -> GPT:
    """A copy of `gpt` that reads block_size tokens: its learned position table stretched by linear interpolation.

    New position p gets the old table at the fractional position p * (old - 1) / (block_size - 1),
    interpolated between its two neighbours: the first and last vectors stay, and neighbouring
    positions stay close, as they were (position interpolation: Chen et al. 2023 for rotary
    positions; ViT interpolates its learned table the same way for larger images). Every other
    weight is copied, so the copy needs a little fine-tuning to read positions at the new spacing.
    """
    if not isinstance(gpt, GPT):
        raise ValueError(f"extend_context needs a GPT, got {type(gpt).__name__}")
    old = gpt.config.block_size
    _check_int("block_size", block_size, old)
    state = dict(gpt.state_dict())
    wpe = state["transformer.wpe.weight"]  # (old, C)
    where = torch.arange(block_size, dtype=torch.float64) * (old - 1) / max(1, block_size - 1)  # (block_size,)
    lo = where.floor().long().clamp(max=old - 1)
    hi = (lo + 1).clamp(max=old - 1)
    frac = (where - lo).to(wpe.dtype)[:, None].to(wpe.device)  # (block_size, 1)
    state["transformer.wpe.weight"] = (1 - frac) * wpe[lo] + frac * wpe[hi]  # (block_size, C)
    bigger = GPT(dataclasses.replace(gpt.config, block_size=block_size))
    bigger.load_state_dict(state)
    return bigger.to(wpe.device).train(gpt.training)


SUMMARY_PROMPT = "{story}\nSummary:"
SUMMARY_RESPONSE = " {summary}\n"
SUMMARY_TOKENS = 56  # room kept for the summary: the longest in summary_set is 52 story-BPE tokens + "\n"


def summary_prompt(tok: Any, story: str, block_size: int) -> list[int]:
    """The ids the model continues: the story's first tokens, then "\\nSummary:", leaving SUMMARY_TOKENS free.

    A story (140-390 tokens of the story BPE) longer than the room left is cut to what fits,
    so facts told late in it are out of sight (a real limit, discussed in chapter 11).
    """
    _check_int("block_size", block_size, 1)
    tail = tok.encode(SUMMARY_PROMPT.format(story=""))
    room = block_size - SUMMARY_TOKENS - len(tail)
    if room < 1:
        raise ValueError(f"block_size={block_size} leaves no room for the story: it needs more than "
                         f"{SUMMARY_TOKENS + len(tail)} tokens (the summary's room plus the prompt)")
    if not isinstance(story, str) or not story.strip():
        raise ValueError(f"story must be a non-empty string, got {story!r:.40}")
    return tok.encode(story)[:room] + tail


def summary_example(tok: Any, story: str, summary: str, block_size: int) -> tuple[list[int], list[int]]:
    """One training example (ids, targets): next-token pairs with every prompt target IGNORE_INDEX.

    The loss then averages over the summary's tokens (and its closing newline) only: the
    model learns to write summaries, not stories (the SFT mask of chapter 09).
    """
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError(f"summary must be a non-empty string, got {summary!r:.40}")
    p = summary_prompt(tok, story, block_size)
    r = tok.encode(SUMMARY_RESPONSE.format(summary=summary))
    if len(p) + len(r) - 1 > block_size:
        raise ValueError(f"the summary has {len(r)} tokens, more than the {SUMMARY_TOKENS} kept for it")
    seq = p + r
    return seq[:-1], [IGNORE_INDEX] * (len(p) - 1) + r


def rouge_words(text: str) -> list[str]:
    """rouge-score's default tokens: lowercase, runs of letters and digits (punctuation dropped)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def lead_sentence(story: str) -> str:
    """The story's first sentence: summarisation's "lead" baseline (news puts the gist first)."""
    m = re.match(r".*?[.!?](?=\s|$)", story.strip(), re.S)
    return m.group(0) if m else story.strip()


class SummaryResult(TaskResult):
    """`train_summary`'s result: model is the fine-tuned story GPT, tokenizer its BPE."""

    def predict(self, stories: Sequence[str], max_new_tokens: int = SUMMARY_TOKENS) -> list[str]:
        """A greedy summary of each story (up to the first newline)."""
        return _summarise(self.model, self.tokenizer, _check_texts("stories", stories), max_new_tokens)


def _summarise(model: nn.Module, tok: Any, stories: list[str], max_new_tokens: int = SUMMARY_TOKENS) -> list[str]:
    dev = _device_of(model)
    newline = tok.encode("\n")
    out = []
    for story in stories:
        p = summary_prompt(tok, story, model.config.block_size)
        ids = generate(model, torch.tensor([p], device=dev), max_new_tokens=max_new_tokens, stop_tokens=newline)
        out.append(tok.decode(ids[0, len(p):].tolist()).split("\n")[0].strip())
    return out


def train_summary(
    steps: int = 60,
    seed: int = 0,
    *,
    batch_size: int = 8,
    lr: float = 1e-3,
    context: int = 256,
    n_test: int | None = 60,
    n_examples: int = 3,
    device: str = "cpu",
) -> SummaryResult:
    """Fine-tune the shipped story GPT to write a story's one-line summary; score with ROUGE-L.

    The GPT reads 128 tokens and a story is 140-390: `extend_context` stretches it to
    `context` tokens first (128 keeps the shipped model as it is, and the story is cut
    harder, see `summary_prompt`). Examples from `summary_example` (the loss on the summary only); greedy decoding until a
    newline. Metric: ROUGE-L F1 over `rouge_words` (rouge-score's tokens), the mean over test
    stories. Baseline: lead-1, the story's first sentence. n_test: the first n_test test
    stories (generation is token by token; None: all 150).
    """
    from lmcourse.pretrained import story_gpt, story_tokenizer

    _check_common(steps, seed, batch_size, n_test, n_examples)
    lr = _check_lr(lr)
    _check_int("context", context, 128)
    tok = story_tokenizer()
    torch.manual_seed(seed)
    model = extend_context(story_gpt(), context)
    T = model.config.block_size
    data = ExampleData([summary_example(tok, s, y, T) for s, y in summary_set("train")],
                       [summary_example(tok, s, y, T) for s, y in summary_set("val")], kind="sft")
    longest = max(len(e[0]) for e in data.train + data.val)
    history, train_s = _train(model, data, _config(steps, batch_size, longest, lr, seed, device))

    t = time.perf_counter()
    test = _test_items(summary_set("test"), n_test)
    stories, gold = [s for s, _ in test], [y for _, y in test]
    pred = _summarise(model, tok, stories)
    r = corpus_rouge_l(pred, gold, tokenize=rouge_words)
    lead = corpus_rouge_l([lead_sentence(s) for s in stories], gold, tokenize=rouge_words)
    scores = {"rouge_l": r.fmeasure, "rouge_l_precision": r.precision, "rouge_l_recall": r.recall,
              "baseline_rouge_l": lead.fmeasure}
    shown = [Example(s, p, g) for s, p, g in list(zip(stories, pred, gold))[:n_examples]]
    return SummaryResult("summary", "rouge_l", r.fmeasure, "lead-1 (the story's first sentence)", lead.fmeasure,
                         scores, shown, len(test), history, train_s, time.perf_counter() - t, model, tok)


# ----------------------------------------------------------------------------- translation

class TranslationTokenizer:
    """One vocabulary for both sides (EncoderDecoder shares one table): English words, Chinese characters.

    English is split into words and punctuation (`encode_source`), so "apples" is one token
    the model maps to 苹果; Chinese, written without spaces, into characters
    (`encode_target`). Ids: 0 <unk> (an English word never seen in training), 1 <s> (BOS),
    2 </s> (EOS), then the English words, then the Chinese characters, each sorted.
    """

    UNK, BOS, EOS = 0, 1, 2
    _WORD = re.compile(r"[a-z']+|[^\sa-z']")

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        if isinstance(pairs, str) or not isinstance(pairs, Sequence) or not pairs:
            raise ValueError("pairs must be a non-empty list of (English, Chinese) strings")
        words = sorted({w for en, _ in pairs for w in self.words(en)})
        chars = sorted({c for _, zh in pairs for c in zh if not c.isspace()})
        self.itos = ["<unk>", "<s>", "</s>", *words, *chars]
        self.source = {w: i for i, w in enumerate(self.itos[:3 + len(words)]) if i >= 3}
        self.target = {c: 3 + len(words) + i for i, c in enumerate(chars)}

    @classmethod
    def words(cls, text: str) -> list[str]:
        """Lower-cased English words and punctuation marks: "Tom likes apples." -> ["tom", "likes", "apples", "."]."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        return cls._WORD.findall(text.lower())

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode_source(self, text: str) -> list[int]:
        """English -> word ids; an unseen word is <unk>."""
        return [self.source.get(w, self.UNK) for w in self.words(text)]

    def encode_target(self, text: str) -> list[int]:
        """Chinese -> character ids; a character never seen in training is an error naming it."""
        try:
            return [self.target[c] for c in text if not c.isspace()]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the target vocabulary") from None

    def decode(self, ids: Sequence[int]) -> str:
        """Target ids -> text; special tokens and English words are dropped (they are not Chinese)."""
        first = 3 + len(self.source)
        return "".join(self.itos[i] for i in ids if first <= i < len(self.itos))


class Seq2SeqData:
    """(source ids, target ids) pairs batched for `lmcourse.training.train` and `EncoderDecoder`.

    A batch is (src (B, S), tgt_in (B, T), src_mask (B, S), targets (B, T)), the order
    EncoderDecoder.forward takes: tgt_in = BOS + target, targets = target + EOS, padding's
    targets IGNORE_INDEX. Drawn uniformly with replacement from a seeded generator, as
    ExampleData; block_size is the longest source or target allowed.
    """

    def __init__(self, train: Sequence[tuple[list[int], list[int]]], val: Sequence[tuple[list[int], list[int]]],
                 bos: int, eos: int) -> None:
        for name, pairs in (("train", train), ("val", val)):
            if not pairs or any(not a or not b for a, b in pairs):
                raise ValueError(f"Seq2SeqData.{name} must be a non-empty list of (src ids, tgt ids), neither empty")
        self.train, self.val, self.bos, self.eos = list(train), list(val), int(bos), int(eos)

    def longest(self) -> int:
        """The longest source, or target plus BOS, over both splits."""
        return max(max(len(a), len(b) + 1) for a, b in self.train + self.val)

    def check_block_size(self, block_size: int) -> None:
        if self.longest() > block_size:
            raise ValueError(f"a pair needs {self.longest()} positions, more than block_size={block_size}")

    def collate(self, pairs: Sequence[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, ...]:
        src, src_mask = pad_batch([a for a, _ in pairs])
        tgt_in, _ = pad_batch([[self.bos, *b] for _, b in pairs])
        targets, _ = pad_batch([[*b, self.eos] for _, b in pairs], IGNORE_INDEX)
        return src, tgt_in, src_mask, targets

    def get_batch(self, split: str, rng: np.random.Generator, batch_size: int, block_size: int) -> tuple[torch.Tensor, ...]:
        pairs = {"train": self.train, "val": self.val}.get(split)
        if pairs is None:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.check_block_size(block_size)
        return self.collate([pairs[i] for i in rng.integers(0, len(pairs), size=batch_size)])

    def fingerprint(self) -> dict[str, Any]:
        sha = hashlib.sha256(json.dumps([self.train, self.val, self.bos, self.eos]).encode()).hexdigest()[:16]
        return {"kind": "seq2seq", "train": len(self.train), "val": len(self.val), "sha": sha}


@torch.no_grad()
def greedy_translate(model: EncoderDecoder, src: Sequence[Sequence[int]], bos: int, eos: int,
                     max_len: int = 40) -> list[list[int]]:
    """Greedy decoding, a batch at once: encode the sources once, then add the likeliest token until EOS.

    Returns each target's ids without BOS and EOS. The decoder re-reads the whole prefix each
    step (no cache): targets here are a dozen characters.
    """
    _check_int("max_len", max_len, 1)
    if not src or any(len(s) == 0 for s in src):
        raise ValueError("src must be a non-empty list of non-empty id lists")
    model.eval()
    dev = _device_of(model)
    ids, mask = pad_batch(src)
    ids, mask = ids.to(dev), mask.to(dev)
    memory = model.encode(ids, mask)  # (B, S, C)
    out = torch.full((len(src), 1), bos, dtype=torch.long, device=dev)
    done = torch.zeros(len(src), dtype=torch.bool, device=dev)
    steps = min(max_len, model.config.block_size - 1)
    for _ in range(steps):
        nxt = model.decode(out, memory, mask)[:, -1].argmax(-1)  # (B,)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done |= nxt == eos
        if done.all():
            break
    result = []
    for row in out[:, 1:].tolist():
        result.append(row[:row.index(eos)] if eos in row else row)
    return result


def _words(s: str) -> set[str]:
    return set(re.findall(r"[a-z]+", s.lower()))


def nearest_neighbour_translations(train_pairs: Sequence[tuple[str, str]], sources: Sequence[str]) -> list[str]:
    """A translation memory: each source gets the translation of the training sentence sharing most words.

    Jaccard overlap of lowercased words; ties go to the earlier training pair. A strong
    baseline on a small grammar: it is right whenever the same sentence, or one differing in
    a word, was seen in training.
    """
    if not train_pairs:
        raise ValueError("train_pairs is empty")
    bags = [_words(en) for en, _ in train_pairs]
    out = []
    for s in _check_texts("sources", sources):
        w = _words(s)
        scores = [len(w & b) / max(1, len(w | b)) for b in bags]
        out.append(train_pairs[int(np.argmax(scores))][1])
    return out


class TranslationResult(TaskResult):
    """`train_translation`'s result: model is an `EncoderDecoder`, tokenizer a `TranslationTokenizer`."""

    def predict(self, sentences: Sequence[str], max_len: int = 40) -> list[str]:
        """Chinese for each English sentence (greedy decoding); unseen English words read as <unk>."""
        tok = self.tokenizer
        src = [tok.encode_source(s) for s in _check_texts("sentences", sentences)]
        if any(not ids for ids in src):
            raise ValueError("every sentence needs at least one word")
        return [tok.decode(t) for t in greedy_translate(self.model, src, tok.BOS, tok.EOS, max_len)]


def train_translation(
    steps: int = 300,
    seed: int = 0,
    *,
    batch_size: int = 64,
    lr: float = 2e-3,
    n_layer: int = 2,
    n_embd: int = 128,
    n_test: int | None = None,
    n_examples: int = 4,
    device: str = "cpu",
) -> TranslationResult:
    """Train the 2017 EncoderDecoder from scratch on `translation_set`: English words in, Chinese characters out.

    Metric: corpus BLEU on characters (sacrebleu's tokenize="char", 0-100). Baseline: the
    translation memory `nearest_neighbour_translations` (BLEU of copying the English input
    is also reported: it is 0, no character is shared).
    """
    _check_common(steps, seed, batch_size, n_test, n_examples)
    lr = _check_lr(lr)
    _check_int("n_layer", n_layer, 1)
    _check_int("n_embd", n_embd, 2)
    train_pairs, val_pairs = translation_set("train"), translation_set("val")
    test = _test_items(translation_set("test"), n_test)
    tok = TranslationTokenizer(train_pairs)
    bos, eos = tok.BOS, tok.EOS
    data = Seq2SeqData([(tok.encode_source(a), tok.encode_target(b)) for a, b in train_pairs],
                       [(tok.encode_source(a), tok.encode_target(b)) for a, b in val_pairs], bos, eos)
    block = data.longest() + 8  # a little room for longer test sources
    torch.manual_seed(seed)
    model = EncoderDecoder(EncoderDecoderConfig(vocab_size=tok.vocab_size, block_size=block, n_layer=n_layer,
                                                n_head=4, n_embd=n_embd))
    history, train_s = _train(model, data, _config(steps, batch_size, data.longest(), lr, seed, device))

    t = time.perf_counter()
    sources, gold = [a for a, _ in test], [b for _, b in test]
    pred = [tok.decode(ids) for ids in greedy_translate(model, [tok.encode_source(s) for s in sources], bos, eos)]
    memory = nearest_neighbour_translations(train_pairs, sources)
    scores = {"bleu": bleu(pred, gold, tokenize="char").score,
              "exact_match": float(np.mean([p == g for p, g in zip(pred, gold)])),
              "baseline_bleu": bleu(memory, gold, tokenize="char").score,
              "copy_input_bleu": bleu(sources, gold, tokenize="char").score}
    shown = [Example(s, p, g) for s, p, g in list(zip(sources, pred, gold))[:n_examples]]
    return TranslationResult("translation", "bleu", scores["bleu"], "translation memory (nearest training sentence)",
                             scores["baseline_bleu"], scores, shown, len(test), history, train_s,
                             time.perf_counter() - t, model, tok)
