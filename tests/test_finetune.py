"""lmcourse.finetune: the heads, span decoding, freezing, LoRA, the SFT loss mask, and training through the one Trainer.

Tiny models (2 layers, 32 wide) on one thread; every property is checked against a second
computation (a manual formula, the unpadded sequence, brute force, autograd's gradients).
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse.finetune import (
    SFT_PROMPT, SFT_RESPONSE, BagOfWords, EncoderClassifier, EncoderForQA, ExampleData, GPTClassifier,
    LogisticRegression, LoRALinear, SpanHead, apply_lora, best_spans, classify, collate_classification, collate_sft,
    collate_spans, freeze, merge_lora, pad_batch, sft_answers, sft_example, sft_prompt, trainable_parameters,
    unmerge_lora, words,
)
from lmcourse.model import GPT, IGNORE_INDEX, Encoder, EncoderConfig, EncoderDecoder, EncoderDecoderConfig, GPTConfig
from lmcourse.tokenizers import CharTokenizer
from lmcourse.training import TrainConfig, evaluate, train

V = 40


pytestmark = pytest.mark.usefixtures("one_thread")


def gpt(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**dict(vocab_size=V, block_size=16, n_layer=2, n_head=2, n_embd=32), **kw}))


def encoder(seed: int = 0, **kw) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(EncoderConfig.tiny(**{**dict(vocab_size=V, max_position_embeddings=16, n_embd=32, dropout=0.0), **kw}))


def ids(B: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def right_mask(lengths: list[int], T: int) -> torch.Tensor:
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()


# ----------------------------------------------------------------------------- GPTClassifier

def test_gpt_classifier_pools_the_last_real_token_whatever_the_padding():
    model = GPTClassifier(gpt(), 3).eval()
    x = ids(3, 10)
    lengths = [4, 10, 1]
    mask = right_mask(lengths, 10)
    padded = torch.where(mask.bool(), x, torch.randint(0, V, x.shape, generator=torch.Generator().manual_seed(9)))
    logits, _ = model(padded, attention_mask=mask)
    for i, n in enumerate(lengths):
        alone, _ = model(x[i:i + 1, :n])  # no padding at all: the last position
        torch.testing.assert_close(logits[i], alone[0], rtol=0, atol=1e-6)
    # and it is the head on the hidden state at length - 1, not at the last position
    h = model.hidden(padded)
    torch.testing.assert_close(logits, model.head(h[torch.arange(3), torch.tensor(lengths) - 1]), rtol=0, atol=0)
    assert not torch.allclose(logits[0], model.head(h[0, -1]), atol=1e-4)


def test_gpt_classifier_loss_is_cross_entropy_and_no_mask_means_no_padding():
    model = GPTClassifier(gpt(), 4).eval()
    x, y = ids(5, 7), torch.tensor([0, 3, 1, 2, 3])
    logits, loss = model(x, y)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    with_mask, _ = model(x, attention_mask=torch.ones_like(x))
    torch.testing.assert_close(with_mask, logits, rtol=0, atol=0)
    assert logits.shape == (5, 4) and model(x)[1] is None


@pytest.mark.parametrize("call, match", [
    (lambda m: m(ids(2, 5), attention_mask=torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])), "right-padded"),
    (lambda m: m(ids(2, 5), attention_mask=torch.tensor([[1, 0, 1, 0, 0], [1, 1, 1, 1, 1]])), "right-padded"),
    (lambda m: m(ids(2, 5), attention_mask=torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])), "row 1 .* no tokens"),
    (lambda m: m(ids(2, 5), attention_mask=torch.ones(2, 4, dtype=torch.long)), r"shape of the input ids \(2, 5\)"),
    (lambda m: m(ids(2, 5), attention_mask=torch.ones(2, 5)), "bool or integer"),
    (lambda m: m(ids(2, 5), torch.tensor([0, 3])), r"\[0, 2\].*max=3"),
    (lambda m: m(ids(2, 5), torch.tensor([0, -1])), "min=-1"),
    (lambda m: m(ids(2, 5), torch.tensor([[0], [1]])), r"shape \(B,\) = \(2,\)"),
    (lambda m: m(ids(2, 5), torch.tensor([0.0, 1.0])), "integer tensor of class labels"),
    (lambda m: m(ids(2, 17)), "block_size=16"),
])
def test_gpt_classifier_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(GPTClassifier(gpt(), 3))


def test_heads_refuse_wrong_models_and_class_counts():
    with pytest.raises(ValueError, match="needs a GPT, got Encoder"):
        GPTClassifier(encoder(), 2)
    with pytest.raises(ValueError, match="n_classes must be an int >= 2, got 1"):
        GPTClassifier(gpt(), 1)
    with pytest.raises(ValueError, match="n_classes must be an int >= 2, got True"):
        EncoderClassifier(encoder(), True)
    with pytest.raises(ValueError, match="needs an Encoder, got GPT"):
        EncoderClassifier(gpt(), 2)
    with pytest.raises(ValueError, match="needs an Encoder, got GPT"):
        EncoderForQA(gpt())
    with pytest.raises(ValueError, match=r"pooling must be one of \('cls', 'mean'\), got 'max'"):
        EncoderClassifier(encoder(), 2, pooling="max")
    with pytest.raises(ValueError, match="n_embd must be a positive int, got 0"):
        SpanHead(0)


def test_empty_batch_gives_empty_logits():
    logits, _ = GPTClassifier(gpt(), 3)(torch.zeros(0, 4, dtype=torch.long))
    assert logits.shape == (0, 3)


# ----------------------------------------------------------------------------- EncoderClassifier

@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_encoder_classifier_ignores_padding(pooling):
    model = EncoderClassifier(encoder(), 2, pooling=pooling).eval()
    x = ids(2, 9)
    lengths = [3, 9]
    mask = right_mask(lengths, 9)
    logits, _ = model(x, attention_mask=mask)
    for i, n in enumerate(lengths):
        alone, _ = model(x[i:i + 1, :n])
        torch.testing.assert_close(logits[i], alone[0], rtol=0, atol=1e-5)


def test_encoder_pooling_formulas():
    enc = encoder()
    x, mask = ids(3, 6), right_mask([2, 6, 4], 6)
    h = enc(x, mask, output_attentions=False).last_hidden_state
    keep = mask.bool()
    mean = EncoderClassifier(enc, 2, pooling="mean")
    want = torch.stack([h[i, :n].mean(0) for i, n in enumerate([2, 6, 4])])
    torch.testing.assert_close(mean.pool(h, keep), want, rtol=0, atol=1e-6)
    cls = EncoderClassifier(enc, 2, pooling="cls")
    torch.testing.assert_close(cls.pool(h, keep), h[:, 0], rtol=0, atol=0)
    # a row of nothing but padding pools to zeros, as a fully masked attention row does
    assert torch.equal(mean.pool(h, torch.zeros_like(keep)), torch.zeros(3, h.shape[-1]))
    logits, loss = mean(x, torch.tensor([1, 0, 1]), mask)
    torch.testing.assert_close(loss, F.cross_entropy(logits, torch.tensor([1, 0, 1])))


def test_encoder_heads_freeze_the_unused_pooler():
    enc = encoder()
    assert enc.pooler is not None and all(p.requires_grad for p in enc.pooler.parameters())
    EncoderClassifier(enc, 2)
    assert not any(p.requires_grad for p in enc.pooler.parameters())


# ----------------------------------------------------------------------------- QA

def test_qa_loss_is_the_mean_of_start_and_end_cross_entropy():
    model = EncoderForQA(encoder()).eval()
    x, mask = ids(3, 8), right_mask([8, 5, 6], 8)
    t = torch.tensor([[1, 3], [0, 4], [IGNORE_INDEX, IGNORE_INDEX]])
    logits, loss = model(x, t, mask)
    assert logits.shape == (3, 8, 2)
    want = (F.cross_entropy(logits[:2, :, 0], t[:2, 0]) + F.cross_entropy(logits[:2, :, 1], t[:2, 1])) / 2
    torch.testing.assert_close(loss, want)
    # padding can never be chosen, and the logits stay finite
    assert torch.isfinite(logits).all()
    assert (logits[1, 5:] == torch.finfo(logits.dtype).min).all()
    assert (logits[0] > torch.finfo(logits.dtype).min).all()


@pytest.mark.parametrize("t, match", [
    (torch.tensor([[3, 1], [0, 0]]), r"row 0 is \[3, 1\].*start <= end"),
    (torch.tensor([[0, 8], [0, 0]]), "end < T=8"),
    (torch.tensor([[0, 1], [0, 6]]), r"row 1 \(\[0, 6\]\) points at padding"),
    (torch.tensor([[0, 1], [-1, 2]]), "row 1"),
    (torch.tensor([0, 1]), r"shape \(B, 2\) = \(2, 2\)"),
    (torch.tensor([[0.0, 1.0], [0.0, 1.0]]), "integer"),
])
def test_qa_bad_targets(t, match):
    with pytest.raises(ValueError, match=match):
        EncoderForQA(encoder())(ids(2, 8), t, right_mask([8, 5], 8))


@pytest.mark.parametrize("seed", range(4))
def test_best_spans_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    B, T, max_len = 4, 9, 3
    logits = torch.randn(B, T, 2, generator=g)
    lengths = [9, 5, 1, 7]
    mask = right_mask(lengths, T)
    got = best_spans(logits, mask, max_len=max_len)
    for b, n in enumerate(lengths):
        pairs = [(s, e) for s in range(n) for e in range(s, min(n, s + max_len))]
        best = max(pairs, key=lambda p: (logits[b, p[0], 0] + logits[b, p[1], 1]).item())
        assert tuple(got[b].tolist()) == best


def test_best_spans_length_limit_and_ties():
    logits = torch.zeros(1, 6, 2)
    logits[0, 1, 0] = logits[0, 4, 1] = 5.0  # best unconstrained span: 1..4, four tokens
    assert best_spans(logits, max_len=4).tolist() == [[1, 4]]
    # four tokens are too many now: the best is 5 (start 1 or end 4), first reached at start 1, end 1
    assert best_spans(logits, max_len=3).tolist() == [[1, 1]]
    logits[0, 3, 1] = 1.0
    assert best_spans(logits, max_len=3).tolist() == [[1, 3]]  # three tokens are allowed
    assert best_spans(torch.zeros(2, 5, 2), max_len=2).tolist() == [[0, 0], [0, 0]]  # ties: the first pair
    assert best_spans(logits, max_len=1).tolist()[0][0] == best_spans(logits, max_len=1).tolist()[0][1]


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(2, 5, 3),), r"\(B, T, 2\)"),
    ((torch.zeros(2, 5, 2, dtype=torch.long),), "float"),
    ((torch.zeros(2, 0, 2),), "T=0"),
    ((torch.zeros(2, 5, 2), None, 0), r"max_len must be a positive int .*got 0"),
    ((torch.zeros(2, 5, 2), torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])), "row 1 .* no tokens"),
])
def test_best_spans_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        best_spans(*args)


# ----------------------------------------------------------------------------- freezing

def n_params(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_freeze_counts_and_which_parameters_train():
    model = GPTClassifier(gpt(), 3)
    t = model.gpt.transformer
    assert freeze(model, "head") == n_params(model.head)
    assert freeze(model, "last_k", k=1) == n_params(model.head, t.h[1], t.ln_f)
    assert freeze(model, "last_k", k=0) == n_params(model.head)
    assert freeze(model, "last_k", k=2) == n_params(model) - n_params(t.wte, t.wpe)
    assert freeze(model, "none") == n_params(model)
    # gradients reach exactly the trainable parameters
    freeze(model, "last_k", k=1)
    x = ids(2, 6)
    model(x, torch.tensor([0, 2]))[1].backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
        assert p.requires_grad == (name.startswith(("head.", "gpt.transformer.h.1.", "gpt.transformer.ln_f."))), name


def test_freeze_on_encoders_and_bare_gpt():
    qa = EncoderForQA(encoder())
    layers = qa.encoder.encoder.layer
    assert freeze(qa, "head") == n_params(qa.span) == 32 * 2 + 2
    assert freeze(qa, "last_k", k=1) == n_params(qa.span, layers[1])
    assert freeze(qa, "none") == n_params(qa) - n_params(qa.encoder.pooler)  # the unused pooler stays frozen
    clf = EncoderClassifier(encoder(add_pooler=False), 2, pooling="mean")
    assert freeze(clf, "none") == n_params(clf)
    g = gpt()
    assert freeze(g, "head") == g.transformer.wte.weight.numel()  # lm_head is the tied token table


@pytest.mark.parametrize("kw, match", [
    (dict(mode="some"), r"mode must be one of \('head', 'last_k', 'none'\), got 'some'"),
    (dict(mode="last_k"), r"k, an int in \[0, 2\].*got None"),
    (dict(mode="last_k", k=3), r"\[0, 2\].*got 3"),
    (dict(mode="last_k", k=-1), "got -1"),
    (dict(mode="head", k=1), "k=1 applies only to mode='last_k'"),
])
def test_freeze_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        freeze(GPTClassifier(gpt(), 2), **kw)


def test_freeze_refuses_unknown_models():
    with pytest.raises(ValueError, match="got Linear"):
        freeze(nn.Linear(2, 2))


# ----------------------------------------------------------------------------- LoRA

def lora(rank=2, alpha=4.0, dtype=torch.float32, seed=0, **kw) -> LoRALinear:
    torch.manual_seed(seed)
    layer = LoRALinear(nn.Linear(6, 5).to(dtype), rank, alpha, **kw)
    return layer


def test_lora_starts_as_the_base_layer_and_computes_the_formula():
    layer = lora()
    x = torch.randn(3, 4, 6)
    assert torch.equal(layer(x), layer.base(x))  # B = 0: exactly the pretrained function
    assert layer.lora_A.shape == (2, 6) and layer.lora_B.shape == (5, 2) and layer.scaling == 2.0
    assert layer.lora_A.abs().sum() > 0 and torch.equal(layer.lora_B, torch.zeros(5, 2))
    assert not layer.base.weight.requires_grad and not layer.base.bias.requires_grad
    with torch.no_grad():
        layer.lora_B.normal_()
    want = x @ layer.base.weight.t() + layer.base.bias + 2.0 * (x @ layer.lora_A.t() @ layer.lora_B.t())
    torch.testing.assert_close(layer(x), want, rtol=0, atol=1e-5)
    torch.testing.assert_close(F.linear(x, layer.weight, layer.bias), layer(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
def test_lora_merge_and_unmerge_give_the_same_outputs(dtype, atol):
    layer = lora(dtype=dtype)
    with torch.no_grad():
        layer.lora_B.normal_(std=0.1)
    x = torch.randn(8, 6, dtype=dtype)
    before, w0 = layer(x), layer.base.weight.detach().clone()
    layer.merge()
    assert layer.merged and not torch.allclose(layer.base.weight, w0)
    torch.testing.assert_close(layer(x), before, rtol=0, atol=atol)
    torch.testing.assert_close(layer(x), x @ layer.base.weight.t() + layer.base.bias, rtol=0, atol=0)  # one Linear
    layer.unmerge()
    torch.testing.assert_close(layer(x), before, rtol=0, atol=atol)
    torch.testing.assert_close(layer.base.weight, w0, rtol=0, atol=atol)
    with pytest.raises(ValueError, match="not merged"):
        layer.unmerge()
    layer.merge()
    with pytest.raises(ValueError, match="already merged"):
        layer.merge()


def test_lora_dropout_only_touches_the_low_rank_branch():
    layer = lora(dropout=0.5).train()
    x = torch.randn(4, 6)
    assert torch.equal(layer(x), layer.base(x))  # B = 0: nothing to drop yet
    with torch.no_grad():
        layer.lora_B.normal_()
    torch.manual_seed(1)
    a = layer(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=1e-5)


@pytest.mark.parametrize("kw, match", [
    (dict(base=nn.Conv1d(2, 2, 1)), "wraps an nn.Linear, got Conv1d"),
    (dict(rank=0), "rank must be a positive int, got 0"),
    (dict(rank=2.0), "rank must be a positive int, got 2.0"),
    (dict(alpha=0), "alpha must be a finite number > 0, got 0"),
    (dict(alpha=float("nan")), "alpha"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
])
def test_lora_bad_arguments(kw, match):
    args = {**dict(base=nn.Linear(3, 3), rank=2, alpha=4.0), **kw}
    with pytest.raises(ValueError, match=match):
        LoRALinear(**args)


def test_apply_lora_trains_only_a_and_b():
    model = gpt()
    x = ids(2, 8)
    before, _ = model(x)
    n = apply_lora(model, targets=("c_attn", "c_proj"), rank=4, alpha=8)
    C, L = 32, 2
    # per block: c_attn C -> 3C, attn.c_proj C -> C, mlp.c_proj 4C -> C
    assert n == L * 4 * ((C + 3 * C) + (C + C) + (4 * C + C)) == trainable_parameters(model)
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 3 * L
    after, _ = model(x)
    assert torch.equal(before, after)  # B = 0
    _, loss = model(x, ids(2, 8, seed=1))
    loss.backward()
    for name, p in model.named_parameters():
        is_lora = name.rsplit(".", 1)[-1] in ("lora_A", "lora_B")
        assert p.requires_grad == is_lora, name
        assert (p.grad is not None) == is_lora, name
    # B starts at zero, so the first step's gradient reaches B (A's is B^T dy = 0)
    assert all(m.lora_B.grad.abs().sum() > 0 for m in model.modules() if isinstance(m, LoRALinear))


def test_apply_lora_keeps_named_modules_trainable_and_merges():
    model = GPTClassifier(gpt(), 2)
    n = apply_lora(model, targets=("c_attn",), rank=2, alpha=2, keep_trainable=("head",))
    assert n == 2 * 2 * (32 + 96) + n_params(model.head)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(std=0.1)
    model.eval()
    x = ids(3, 7)
    before, _ = model(x)
    assert merge_lora(model) == 2
    torch.testing.assert_close(model(x)[0], before, rtol=0, atol=1e-5)
    assert unmerge_lora(model) == 2
    torch.testing.assert_close(model(x)[0], before, rtol=0, atol=1e-5)


def test_lora_in_the_written_attention_path_and_cross_attention():
    # the written path and the fast path compute the same function with LoRA layers in place
    fast, written = gpt(), gpt(attention="written")
    for m in (fast, written):
        apply_lora(m, targets=("c_attn",), rank=2, alpha=2)
    written.load_state_dict(fast.state_dict())
    with torch.no_grad():
        for m in (fast, written):
            for layer in m.modules():
                if isinstance(layer, LoRALinear):
                    torch.manual_seed(3)
                    layer.lora_B.normal_(std=0.1)
    x = ids(2, 8)
    torch.testing.assert_close(fast(x)[0], written(x)[0], rtol=0, atol=1e-5)
    # cross-attention reads c_attn.weight directly: the effective weight keeps it the same function
    torch.manual_seed(0)
    ed = EncoderDecoder(EncoderDecoderConfig(vocab_size=V, block_size=16, n_layer=1, n_head=2, n_embd=32))
    src, tgt = ids(2, 6), ids(2, 5, seed=1)
    apply_lora(ed, targets=("c_attn",), rank=2, alpha=2)
    with torch.no_grad():
        for layer in ed.modules():
            if isinstance(layer, LoRALinear):
                layer.lora_B.normal_(std=0.1)
    lora_out = ed(src, tgt)[0]
    merge_lora(ed)
    torch.testing.assert_close(ed(src, tgt)[0], lora_out, rtol=0, atol=1e-5)


def test_apply_lora_bad_arguments():
    with pytest.raises(ValueError, match=r"no nn.Linear named \['query'\].*\['c_attn', 'c_fc', 'c_proj'"):
        apply_lora(gpt(), targets=("query",))
    with pytest.raises(ValueError, match="non-empty list of module names"):
        apply_lora(gpt(), targets="c_attn")
    with pytest.raises(ValueError, match="no module 'classifier'"):
        apply_lora(gpt(), keep_trainable=("classifier",))
    model = gpt()
    apply_lora(model)
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(model)


# ----------------------------------------------------------------------------- SFT

TOK = CharTokenizer.fit("### Question: Answer:\nabcdefghijklmnopqrstuvwxyz?.ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_sft_example_masks_the_prompt():
    x, t = sft_example(TOK, "who is sam?", "a cat.")
    p = TOK.encode(SFT_PROMPT.format(prompt="who is sam?"))
    r = TOK.encode(SFT_RESPONSE.format(response="a cat."))
    seq = p + r
    assert p == sft_prompt(TOK, "who is sam?")
    assert x == seq[:-1] and len(t) == len(x)
    assert t[:len(p) - 1] == [IGNORE_INDEX] * (len(p) - 1)
    assert t[len(p) - 1:] == r == seq[len(p):]  # every response token (and the final newline) is a target
    x2, t2 = sft_example(TOK, "who is sam?", "a cat.", eos_id=V - 1)
    assert x2 == seq and t2[-1] == V - 1 and t2[:-1] == t


def test_sft_loss_is_the_mean_cross_entropy_over_response_tokens_only():
    model = gpt(vocab_size=TOK.vocab_size, block_size=64).eval()
    examples = [sft_example(TOK, "who is sam?", "a cat."), sft_example(TOK, "where?", "in the big old house.")]
    x, y = collate_sft(examples)
    assert (y[0, len(examples[0][1]):] == IGNORE_INDEX).all()  # padding: ignored
    logits, loss = model(x, y)
    # by hand: log-softmax at every position whose target is a response token, nothing else
    logp = F.log_softmax(logits, dim=-1)
    terms = [-logp[b, i, tgt] for b, (_, ts) in enumerate(examples) for i, tgt in enumerate(ts) if tgt != IGNORE_INDEX]
    n_response = sum(len(TOK.encode(SFT_RESPONSE.format(response=r))) for r in ("a cat.", "in the big old house."))
    assert len(terms) == n_response
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    # and it is not the loss over every position
    assert not torch.isclose(loss, F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                    torch.tensor(x[:, 1:].reshape(-1).tolist() + [0] * x.shape[0])))


def test_sft_bad_input():
    with pytest.raises(ValueError, match="response must be a non-empty str"):
        sft_example(TOK, "who?", "")
    with pytest.raises(ValueError, match="prompt must be a str, got int"):
        sft_example(TOK, 3, "x")
    with pytest.raises(ValueError, match="eos_id must be a token id"):
        sft_example(TOK, "who?", "a", eos_id=-2)
    with pytest.raises(ValueError, match="encode"):
        sft_prompt(object(), "who?")


# ----------------------------------------------------------------------------- batching and ExampleData

def test_collate_pads_on_the_right():
    x, m = pad_batch([[1, 2, 3], [4]], pad=7)
    assert x.tolist() == [[1, 2, 3], [4, 7, 7]] and m.tolist() == [[1, 1, 1], [1, 0, 0]]
    x, y, m = collate_classification([([1, 2], 1), ([3], 0)])
    assert x.tolist() == [[1, 2], [3, 0]] and y.tolist() == [1, 0] and m.tolist() == [[1, 1], [1, 0]]
    x, t, m = collate_spans([([1, 2, 3], 0, 2), ([3], 0, 0)])
    assert t.tolist() == [[0, 2], [0, 0]] and m.tolist() == [[1, 1, 1], [1, 0, 0]]
    x, t = collate_sft([([1, 2], [IGNORE_INDEX, 5]), ([3], [4])], pad_id=9)
    assert x.tolist() == [[1, 2], [3, 9]] and t.tolist() == [[IGNORE_INDEX, 5], [4, IGNORE_INDEX]]
    x, m = pad_batch([])
    assert x.shape == (0, 0) and m.shape == (0, 0)


@pytest.mark.parametrize("args, match", [
    (([], [([1], 0)]), "ExampleData.train must be a non-empty list"),
    (([([1], 0)], [([1], 0)], "regression"), "kind must be one of"),
    (([([1], 0)], [([], 0)]), "val example 0: ids must be a non-empty list"),
    (([([1, -2], 0)], [([1], 0)]), "train example 0: ids"),
    (([([1], 0), ([1], 1.0)], [([1], 0)]), "train example 1: the label must be an int"),
    (([([1], 0, 0)], [([1], 0)]), r"\(ids, label\)"),
    (([([1, 2], [3])], [([1], [2])], "sft"), "one per id"),
    (([([1, 2], [-1, -1])], [([1], [2])], "sft"), "nothing to learn"),
    (([([1, 2], 1, 0)], [([1], 0, 0)], "span"), "start=1, end=0"),
    (([([1, 2], 0, 2)], [([1], 0, 0)], "span"), "len\\(ids\\)=2"),
    (([([1], 0)], [([1], 0)], "classification", -1), "pad_id"),
])
def test_example_data_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        ExampleData(*args)


def test_example_data_batches():
    train = [([i % V] * (1 + i % 5), i % 2) for i in range(20)]
    data = ExampleData(train, train[:7], "classification")
    a = data.get_batch("train", np.random.default_rng(0), 6, 8)
    b = data.get_batch("train", np.random.default_rng(0), 6, 8)
    assert all(torch.equal(u, v) for u, v in zip(a, b))  # seeded: the same batch
    x, y, m = a
    assert x.shape[0] == y.shape[0] == m.shape[0] == 6 and x.shape == m.shape
    assert torch.equal(m.sum(1), torch.tensor([len(data.train[int(i)][0]) for i in np.random.default_rng(0).integers(0, 20, 6)]))
    order = list(data.batches("val", 3))
    assert [len(b[0]) for b in order] == [3, 3, 1]
    assert torch.cat([b[1] for b in order]).tolist() == [e[1] for e in train[:7]]
    with pytest.raises(ValueError, match="train example 4 has 5 tokens, more than block_size=4"):
        data.get_batch("train", np.random.default_rng(0), 2, 4)
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        data.get_batch("test", np.random.default_rng(0), 2, 8)
    other = ExampleData(train[:-1] + [([3], 1)], train[:7])
    assert other.fingerprint() != data.fingerprint() and data.fingerprint() == ExampleData(train, train[:7]).fingerprint()


# ----------------------------------------------------------------------------- through the Trainer

def cfg(**kw) -> TrainConfig:
    base = dict(steps=30, batch_size=8, block_size=12, lr=3e-3, min_lr=3e-4, warmup_steps=3, eval_interval=0,
                eval_batches=2, log_interval=10, device="cpu", weight_decay=0.0)
    return TrainConfig(**{**base, **kw})


def labelled(n: int, seed: int) -> list[tuple[list[int], int]]:
    # label: does token 1 occur? Lengths vary, so padding and last-token pooling matter
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.integers(2, V, int(rng.integers(3, 12))).tolist()
        y = int(rng.random() < 0.5)
        if y:
            x[int(rng.integers(0, len(x)))] = 1
        out.append((x, y))
    return out


def test_a_classifier_trains_through_the_trainer(tmp_path):
    data = ExampleData(labelled(200, 0), labelled(40, 1), "classification")
    model = GPTClassifier(gpt(), 2)
    c = cfg(eval_interval=30)
    before = evaluate(model, data, c)
    result = train(model, data, c, tmp_path / "run", progress=False, plot=False)
    assert result.stopped == "done" and len(result.losses) == 30
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5]) - 0.1
    assert result.val_losses[-1] < before
    # the checkpoint records the example data; resuming on other examples is refused
    from lmcourse.training import CheckpointError
    with pytest.raises(CheckpointError, match="other data"):
        train(GPTClassifier(gpt(), 2), ExampleData(labelled(200, 5), labelled(40, 1)), cfg(steps=40),
              tmp_path / "run", progress=False, plot=False, resume=True)


def test_sft_trains_through_the_trainer_with_lora():
    pairs = [("who is sam?", "a cat."), ("where?", "home."), ("what?", "a hat.")]
    examples = [sft_example(TOK, p, r) for p, r in pairs]
    data = ExampleData(examples, examples, "sft")
    model = gpt(vocab_size=TOK.vocab_size, block_size=48)
    apply_lora(model, targets=("c_attn", "c_fc"), rank=4, alpha=8)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    result = train(model, data, cfg(steps=25, block_size=48, lr=3e-2), progress=False, plot=False)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5]) - 0.25  # measured: 3.92 -> 3.54
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)  # the base never moved


def test_the_trainer_refuses_what_is_not_a_batch_source():
    with pytest.raises(ValueError, match="got list"):
        train(gpt(), [1, 2, 3], cfg(), progress=False, plot=False)
    with pytest.raises(ValueError, match="more than block_size=12"):
        train(GPTClassifier(gpt(), 2), ExampleData([([1] * 13, 0)], [([1], 0)]), cfg(), progress=False, plot=False)


# ----------------------------------------------------------------------------- predictions

def test_classify_returns_labels_and_argmax_in_order_and_restores_the_mode():
    data = ExampleData(labelled(20, 0), labelled(13, 1), "classification")
    model = GPTClassifier(gpt(), 2).train()
    y, pred = classify(model, data, "val", batch_size=5)
    assert model.training  # mode restored
    assert y.tolist() == [e[1] for e in data.val]
    model.eval()
    want = [int(model(torch.tensor([e[0]]))[0].argmax()) for e in data.val]  # one at a time, no padding
    assert pred.tolist() == want
    with pytest.raises(ValueError, match="kind 'classification', got ExampleData of kind 'sft'"):
        classify(model, ExampleData([([1, 2], [2, 3])], [([1, 2], [2, 3])], "sft"))


def test_sft_answers_stop_at_the_newline_and_batch_like_one_at_a_time():
    from lmcourse.generation import generate

    model = gpt(vocab_size=TOK.vocab_size, block_size=64).eval()
    nl = TOK.encode("\n")[0]
    with torch.no_grad():  # make the newline likely after a few tokens, so some answers stop early
        model.transformer.wte.weight[nl] *= 4
    prompts = ["who?", "abc?", "where is sam?", "a?"]  # two of the same length: one batch
    got = sft_answers(model, TOK, prompts, max_new_tokens=6)
    for p, a in zip(prompts, got):
        ids = torch.tensor([sft_prompt(TOK, p)])
        out = generate(model, ids, max_new_tokens=6, stop_tokens=nl)[0, ids.shape[1]:].tolist()
        want = TOK.decode(out).split("\n")[0].strip()
        assert a == want and "\n" not in a
    assert sft_answers(model, TOK, []) == []
    with pytest.raises(ValueError, match="prompts must be a list of str"):
        sft_answers(model, TOK, "who?")
    with pytest.raises(ValueError, match="max_new_tokens must be a positive int, got 0"):
        sft_answers(model, TOK, ["who?"], max_new_tokens=0)


# ----------------------------------------------------------------------------- the bag-of-words baseline

def test_words_and_bag_of_words_counts():
    assert words("It's NOT bad, not bad at all! 5 stars") == ["it's", "not", "bad", "not", "bad", "at", "all", "5", "stars"]
    bow = BagOfWords().fit(["not bad", "bad bad film"])
    assert bow.vocab == {"bad": 0, "film": 1, "not": 2}
    X = bow.transform(["Bad, bad, BAD!", "a new film", ""])
    assert X.dtype == np.float64 and X.tolist() == [[3, 0, 0], [0, 1, 0], [0, 0, 0]]  # unseen words dropped
    assert BagOfWords(binary=True).fit(["not bad"]).transform(["bad bad"]).tolist() == [[1, 0]]
    assert BagOfWords(min_count=2).fit(["not bad", "bad bad film"]).vocab == {"bad": 0}
    assert bow.transform([]).shape == (0, 3)


@pytest.mark.parametrize("call, match", [
    (lambda: BagOfWords(min_count=0), "min_count must be an int >= 1, got 0"),
    (lambda: BagOfWords().transform(["a"]), "not fitted"),
    (lambda: BagOfWords().fit("a text"), "texts must be a list of str"),
    (lambda: BagOfWords(min_count=3).fit(["a b", "a"]), "vocabulary is empty"),
    (lambda: words(3), "text must be a str, got int"),
    (lambda: LogisticRegression(C=0), r"C \(the inverse penalty strength\) must be a finite number > 0, got 0"),
    (lambda: LogisticRegression(max_iter=0), "max_iter must be an int >= 1"),
    (lambda: LogisticRegression().fit(np.zeros((3, 2)), [1, 1, 1]), r"at least 2 classes.*\[1\]"),
    (lambda: LogisticRegression().fit(np.zeros((3, 2)), [0, 1]), r"one label per row of X \(3\)"),
    (lambda: LogisticRegression().fit(np.zeros(3), [0, 1, 0]), r"2-D array of numbers \(N, D\)"),
    (lambda: LogisticRegression().fit(np.array([[0.0], [np.nan]]), [0, 1]), "nan or inf"),
    (lambda: LogisticRegression().predict(np.zeros((2, 2))), "not fitted"),
    (lambda: LogisticRegression().fit(np.eye(2), [0, 1]).predict(np.zeros((2, 3))), "3 features, but the model was fitted on 2"),
])
def test_baseline_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("K, C, seed", [(2, 1.0, 0), (2, 0.05, 1), (3, 1.0, 2), (4, 10.0, 3)])
def test_logistic_regression_matches_scikit_learn(K, C, seed):
    sk = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 5)) + rng.integers(0, 2, size=(60, 1))
    y = np.array(["neg", "pos", "mixed", "other"])[rng.integers(0, K, 60)]
    ours = LogisticRegression(C=C).fit(X, y)
    ref = sk.LogisticRegression(C=C, tol=1e-10, max_iter=2000).fit(X, y)
    assert ours.classes_.tolist() == ref.classes_.tolist() and ours.coef_.shape == ref.coef_.shape
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert ours.predict(X).tolist() == ref.predict(X).tolist()
    assert ours.predict(np.zeros((0, 5))).shape == (0,)


def test_logistic_regression_separates_a_bag_of_words():
    texts = ["good fun film", "bad dull film", "good good", "dull and bad", "fun", "bad"]
    y = [1, 0, 1, 0, 1, 0]
    bow = BagOfWords()
    clf = LogisticRegression(C=10.0).fit(bow.fit_transform(texts), y)
    assert clf.predict(bow.transform(["a good fun one", "so dull"])).tolist() == [1, 0]
    assert (clf.predict_proba(bow.transform(texts)).sum(axis=1) - 1).__abs__().max() < 1e-12
