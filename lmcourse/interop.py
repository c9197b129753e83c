"""Hugging Face interop: GPT-2 both ways, BERT into `Encoder`, and real checkpoints from a folder.

`lmcourse.model` names its parameters after the GPT-2 and BERT checkpoint keys, so moving weights
is a key copy plus a few transposes. GPT-2 was written in TensorFlow, where a dense layer keeps its
weight as (in, out); Hugging Face kept that layout in its `Conv1D` module (y = x @ W + b), while
`nn.Linear` keeps (out, in) (y = x @ Wᵀ + b). So exactly these GPT-2 weights are transposed, both
ways, and nothing else:

| key (i = layer)                     | Hugging Face (Conv1D) | lmcourse (nn.Linear) | transposed |
|-------------------------------------|-----------------------|----------------------|------------|
| transformer.h.i.attn.c_attn.weight  | (C, 3C)               | (3C, C)              | yes        |
| transformer.h.i.attn.c_proj.weight  | (C, C)                | (C, C)               | yes        |
| transformer.h.i.mlp.c_fc.weight     | (C, 4C)               | (4C, C)              | yes        |
| transformer.h.i.mlp.c_proj.weight   | (4C, C)               | (C, 4C)              | yes        |
| transformer.wte / wpe, lm_head      | (V, C), (T, C)        | the same             | no: tables |
| every bias, every ln_* weight       | (n,)                  | the same             | no: 1-D    |

(c_attn.weight is square-looking only for c_proj, which is why a forgotten transpose there runs
without error and gives wrong logits: the tests compare logits, not just shapes.) lm_head is tied
to wte in GPT-2 and in `GPT`: a checkpoint whose lm_head differs from its wte is refused.

BERT was converted with `nn.Linear` from the start, so `Encoder` takes BertModel's weights as they
are: no transposes. Checkpoints saved from a task model (BertForMaskedLM, ...) carry a "bert."
prefix and task heads; the prefix is stripped and the heads are left out, with a warning. Old
TF-converted files name LayerNorm parameters gamma/beta; they are renamed weight/bias.

Left out on the way in (buffers, not parameters): GPT-2's `attn.bias` / `attn.masked_bias` (the
causal mask, in old checkpoints) and BERT's `embeddings.position_ids` / `token_type_ids`.
Anything else missing or unexpected is an error that lists the keys, and a shape mismatch names
the key and both shapes.

The configuration comes from the Hugging Face config when given a model or a folder. A bare state
dict has no config: the sizes are read from the shapes, but the number of heads cannot be (any
divisor of n_embd fits the same weights), so pass it: `config={"n_head": 12}` (a dict of fields,
merged over those read from the shapes) or a whole `GPTConfig` / `EncoderConfig` (checked against
the shapes). layer_norm_eps defaults to the family's own (1e-5 GPT-2, 1e-12 BERT). Dropout is 0.0
(pretrained models are loaded to be run; pass `config={"dropout": 0.1}` to fine-tune with it).

Loading from a folder (`encoder_from_pretrained`, `gpt_from_pretrained`) reads config.json and
model.safetensors with `safetensors.torch.load_file`: transformers is not needed, and nothing is
ever downloaded. The models come back in eval mode, as Hugging Face's `from_pretrained` gives them.

Used in chapters/06_transformer.ipynb.
"""
from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .model import GPT, Encoder, EncoderConfig, GPTConfig

__all__ = [
    "gpt_from_hf",
    "gpt_to_hf",
    "gpt_from_pretrained",
    "encoder_from_hf",
    "encoder_from_pretrained",
    "wordpiece_from_pretrained",
    "CONV1D_WEIGHTS",
]

#: The GPT-2 weights stored as Conv1D (in, out) by Hugging Face and as nn.Linear (out, in) here.
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")

# Fields that describe the weights' meaning; the rest (dropout, attention path) are free to choose.
_GPT_RUNTIME = _ENCODER_RUNTIME = {"dropout", "attention"}

# Hugging Face's activation names -> lmcourse.model.ACTIVATIONS: only exact equivalents
# ("gelu_new" and "gelu_pytorch_tanh" are both GELU's tanh approximation, GPT-2's).
_ACTIVATION_FROM_HF = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
_ACTIVATION_TO_HF = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}

_HF_EXTRA = "install the Hugging Face extra: pip install 'lmcourse[hf]'"


# ---------------------------------------------------------------------------------------------
# Shared helpers: state dicts, configs, key and shape checks
# ---------------------------------------------------------------------------------------------


def _short(keys: list[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def _as_state_dict(obj: Any, what: str) -> tuple[dict[str, torch.Tensor], dict | None, str]:
    """(state dict, Hugging Face config as a dict or None, a name for messages) of a model or mapping."""
    if isinstance(obj, nn.Module):
        hf_config = getattr(obj, "config", None)
        if hf_config is None or not hasattr(hf_config, "to_dict"):
            raise ValueError(f"{what} expects a Hugging Face model or a state dict, got a {type(obj).__name__} "
                             "without a Hugging Face config")
        return dict(obj.state_dict()), hf_config.to_dict(), type(obj).__name__
    if isinstance(obj, Mapping):
        bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            k = bad[0]
            raise ValueError(f"{what}: a state dict maps str keys to tensors; {k!r} maps to "
                             f"{type(obj[k]).__name__}")
        return dict(obj), None, "state dict"
    raise ValueError(f"{what} expects a Hugging Face model or a state dict (a mapping of str to tensors), "
                     f"got {type(obj).__name__}")


def _effective(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with n_inner=None spelled out as 4 * n_embd, so two ways of saying it compare equal."""
    out = dict(fields)
    if out.get("n_inner") is None and "n_embd" in out:
        out["n_inner"] = 4 * out["n_embd"]
    return out


def _build_config(cls: type, derived: dict[str, Any], config: Any, runtime: set[str], source: str,
                  required: tuple[str, ...], what: str):
    """The config: `derived` (what the source says) merged with `config` (a config object or a dict).

    A field the source knows and `config` contradicts is an error naming both values; runtime
    fields (dropout, attention path) are the caller's to choose.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    if config is None:
        given: dict[str, Any] = {}
    elif isinstance(config, cls):
        given = {f.name: getattr(config, f.name) for f in dataclasses.fields(cls)}
    elif isinstance(config, Mapping):
        given = dict(config)
        unknown = sorted(set(given) - names)
        if unknown:
            raise ValueError(f"{what}: config has no field(s) {', '.join(unknown)}; {cls.__name__} has "
                             f"{', '.join(sorted(names))}")
    else:
        raise ValueError(f"{what}: config must be a {cls.__name__}, a dict of its fields or None, "
                         f"got {type(config).__name__}")
    eff_derived, eff_given = _effective(derived), _effective(given)
    for name in sorted(set(eff_derived) & set(eff_given) - runtime):
        if eff_derived[name] != eff_given[name]:
            raise ValueError(f"{what}: config says {name}={eff_given[name]!r} but the {source} has "
                             f"{name}={eff_derived[name]!r}")
    fields = {**derived, **given}
    missing = [name for name in required if name not in fields]
    if missing:
        raise ValueError(f"{what}: a state dict does not say {', '.join(missing)} (the shapes fit any "
                         f"divisor of n_embd); pass it, e.g. config={{'{missing[0]}': ...}}")
    fields.setdefault("dropout", 0.0)
    return cls(**fields)


def _check_keys(sd: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], what: str,
                n_layer: int) -> None:
    """Refuse missing or unexpected keys (all listed), then the first shape mismatch (key, both shapes)."""
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_short(unexpected)}")
        raise ValueError(f"{what}: the weights do not fit: " + "; ".join(parts) + f" (expected for n_layer={n_layer})")
    for k, shape in expected.items():
        t = sd[k]
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"{what}: {k} has shape {tuple(t.shape)}, the config needs {tuple(shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{what}: {k} has dtype {t.dtype}; weights must be floating point")


def _load_into(model: nn.Module, sd: dict[str, torch.Tensor]) -> nn.Module:
    """Copy `sd` into `model` (strict: every key of both), in the model's dtype and device; eval mode."""
    with torch.no_grad():
        model.load_state_dict(sd, strict=True)
    return model.eval()


def _read_folder(folder: str | Path, what: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """config.json and the safetensors weights (one file, or shards listed in an index) of `folder`."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: {folder} is not a folder")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{what}: {folder} has no config.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{what}: {config_path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{what}: {config_path} holds a {type(config).__name__}, not a JSON object")
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return config, load_file(single)
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        sd: dict[str, torch.Tensor] = {}
        for shard in shards:
            sd.update(load_file(folder / shard))
        return config, sd
    others = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.h5"))
    raise FileNotFoundError(
        f"{what}: {folder} has no model.safetensors" + (f" (it has {', '.join(others)}: only safetensors "
        "files are read, since a pickled .bin can run code when loaded; convert it with "
        "transformers' save_pretrained(..., safe_serialization=True))" if others else ""))


# ---------------------------------------------------------------------------------------------
# GPT-2
# ---------------------------------------------------------------------------------------------


def _gpt2_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every key of a GPT2LMHeadModel state dict and its shape, in Hugging Face's (Conv1D) layout."""
    C, V, I = cfg.n_embd, cfg.vocab_size, cfg.d_ff
    shapes: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (V, C),
                                          "transformer.wpe.weight": (cfg.block_size, C)}
    for i in range(cfg.n_layer):
        h = f"transformer.h.{i}."
        shapes.update({
            h + "ln_1.weight": (C,), h + "ln_1.bias": (C,),
            h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
            h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
            h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
            h + "mlp.c_fc.weight": (C, I), h + "mlp.c_fc.bias": (I,),
            h + "mlp.c_proj.weight": (I, C), h + "mlp.c_proj.bias": (C,),
        })
    shapes.update({"transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,), "lm_head.weight": (V, C)})
    return shapes


def _is_conv1d(key: str) -> bool:
    return key.startswith("transformer.h.") and key.endswith(CONV1D_WEIGHTS)


def _gpt_fields_from_hf(hf: Mapping[str, Any], what: str) -> dict[str, Any]:
    """GPTConfig fields from a Hugging Face GPT-2 config (as a dict); refuse what GPT cannot run."""
    model_type = hf.get("model_type")
    if model_type != "gpt2":
        raise ValueError(f"{what} loads GPT-2 (model_type 'gpt2'); this model is {model_type!r}"
                         + (f" ({', '.join(hf['architectures'])})" if hf.get("architectures") else ""))
    act = hf.get("activation_function", "gelu_new")
    if act not in _ACTIVATION_FROM_HF:
        raise ValueError(f"{what}: activation_function={act!r} has no equivalent in lmcourse.model.ACTIVATIONS; "
                         f"GPT runs {', '.join(_ACTIVATION_FROM_HF)}")
    refused = {"scale_attn_weights": (False, "attention without the 1/sqrt(d) scale"),
               "scale_attn_by_inverse_layer_idx": (True, "attention scaled by 1/layer"),
               "add_cross_attention": (True, "cross-attention layers"),
               "tie_word_embeddings": (False, "an lm_head untied from wte")}
    for name, (bad, meaning) in refused.items():
        if hf.get(name, not bad) == bad:
            raise ValueError(f"{what}: {name}={bad} ({meaning}) is not what GPT computes")
    return {"vocab_size": hf.get("vocab_size", 50257), "block_size": hf.get("n_positions", 1024),
            "n_layer": hf.get("n_layer", 12), "n_head": hf.get("n_head", 12), "n_embd": hf.get("n_embd", 768),
            "n_inner": hf.get("n_inner"), "layer_norm_eps": hf.get("layer_norm_epsilon", 1e-5), "bias": True,
            "activation": _ACTIVATION_FROM_HF[act]}


def _gpt_fields_from_shapes(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The GPTConfig fields a (normalised) GPT-2 state dict's shapes determine: all but n_head."""
    wte, wpe = sd["transformer.wte.weight"], sd["transformer.wpe.weight"]
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"transformer\.h\.(\d+)\.", k))}
    fields: dict[str, Any] = {"vocab_size": wte.shape[0], "n_embd": wte.shape[-1], "block_size": wpe.shape[0],
                              "n_layer": max(layers) + 1 if layers else 0, "bias": True}
    fc = sd.get("transformer.h.0.mlp.c_fc.weight")
    if fc is not None and fc.ndim == 2:
        fields["n_inner"] = fc.shape[1]
    return fields


def _normalise_gpt2(sd: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """A GPT2LMHeadModel-style state dict: "transformer." prefix (a GPT2Model's keys lack it), mask
    buffers dropped, lm_head.weight present and equal to wte."""
    if "transformer.wte.weight" not in sd and "wte.weight" in sd:
        sd = {(k if k.startswith("lm_head.") else "transformer." + k): v for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if not re.fullmatch(r"transformer\.h\.\d+\.attn\.(masked_)?bias", k)}
    if "transformer.wte.weight" not in sd or "transformer.wpe.weight" not in sd:
        raise ValueError(f"{what}: not a GPT-2 state dict (no transformer.wte.weight / transformer.wpe.weight); "
                         f"its keys start {_short(list(sd), 4)}")
    wte = sd["transformer.wte.weight"]
    head = sd.setdefault("lm_head.weight", wte)  # saved files often drop the tied copy
    if head is not wte and (head.shape != wte.shape or not torch.equal(head, wte)):
        raise ValueError(f"{what}: lm_head.weight differs from transformer.wte.weight; GPT ties the two, "
                         "so an untied output head cannot be loaded")
    return sd


def gpt_from_hf(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
                config: GPTConfig | Mapping[str, Any] | None = None) -> GPT:
    """A `GPT` with the weights of a Hugging Face GPT-2 (`GPT2LMHeadModel` / `GPT2Model`) or its state dict.

    From a model, the config is its Hugging Face config. From a state dict, the sizes come from the
    shapes and `config` must give n_head, e.g. `config={"n_head": 12}`; layer_norm_eps defaults to
    GPT-2's 1e-5. A `config` field that contradicts the source is an error; dropout and the attention
    path are yours to set. Conv1D weights are transposed (see the module docstring). Eval mode.
    """
    what = "gpt_from_hf"
    sd, hf_config, source = _as_state_dict(model_or_state_dict, what)
    if hf_config is not None:
        derived = _gpt_fields_from_hf(hf_config, what)
        sd = _normalise_gpt2(sd, what)
    else:
        sd = _normalise_gpt2(sd, what)
        derived = _gpt_fields_from_shapes(sd)
    cfg = _build_config(GPTConfig, derived, config, _GPT_RUNTIME, source, ("n_head",), what)
    if not cfg.bias:
        raise ValueError(f"{what}: GPT-2 has biases; a config with bias=False cannot hold them")
    _check_keys(sd, _gpt2_shapes(cfg), what, cfg.n_layer)
    ours = {k: (v.t() if _is_conv1d(k) else v) for k, v in sd.items()}
    return _load_into(GPT(cfg), ours)


def gpt_from_pretrained(folder: str | Path, config: GPTConfig | Mapping[str, Any] | None = None) -> GPT:
    """A `GPT` from a Hugging Face GPT-2 folder (config.json + model.safetensors); no transformers needed."""
    hf_config, sd = _read_folder(folder, "gpt_from_pretrained")
    what = f"gpt_from_pretrained({Path(folder).name})"
    derived = _gpt_fields_from_hf(hf_config, what)
    sd = _normalise_gpt2(sd, what)
    cfg = _build_config(GPTConfig, derived, config, _GPT_RUNTIME, "config.json", ("n_head",), what)
    _check_keys(sd, _gpt2_shapes(cfg), what, cfg.n_layer)
    return _load_into(GPT(cfg), {k: (v.t() if _is_conv1d(k) else v) for k, v in sd.items()})


def gpt_to_hf(gpt: GPT, as_state_dict: bool = False):
    """The Hugging Face twin of `gpt`: a `GPT2LMHeadModel` in eval mode, or (as_state_dict=True) its
    state dict, as fresh contiguous tensors in Hugging Face's layout (Conv1D weights transposed back).

    The state dict needs only torch; the model needs transformers. A GPT without biases
    (bias=False) becomes a GPT-2 whose biases are zero, which computes the same function.
    """
    if not isinstance(gpt, GPT):
        raise ValueError(f"gpt_to_hf expects an lmcourse GPT, got {type(gpt).__name__}")
    cfg = gpt.config
    ours = gpt.state_dict()
    shapes = _gpt2_shapes(cfg)
    sd: dict[str, torch.Tensor] = {}
    for k, shape in shapes.items():
        t = ours.get(k)
        if t is None:
            if not cfg.bias and k.endswith(".bias"):
                t = torch.zeros(shape, dtype=ours["transformer.wte.weight"].dtype)
            elif k == "lm_head.weight":
                t = ours["transformer.wte.weight"]
            else:
                raise ValueError(f"gpt_to_hf: the GPT has no {k}; lmcourse.model and this converter disagree")
        sd[k] = (t.t() if _is_conv1d(k) else t).detach().clone().contiguous()
    _check_keys(sd, shapes, "gpt_to_hf", cfg.n_layer)
    if as_state_dict:
        return sd
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        raise ImportError(f"gpt_to_hf(as_state_dict=False) needs transformers ({e}); {_HF_EXTRA}, or pass "
                          "as_state_dict=True") from None
    hf_cfg = GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
        n_head=cfg.n_head, n_inner=cfg.n_inner, activation_function=_ACTIVATION_TO_HF[cfg.activation],
        layer_norm_epsilon=cfg.layer_norm_eps, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout, tie_word_embeddings=True,
        # GPT-2's <|endoftext|> is its last id; the default (50256) is out of range for a small vocab
        bos_token_id=cfg.vocab_size - 1, eos_token_id=cfg.vocab_size - 1,
    )
    return _load_into(GPT2LMHeadModel(hf_cfg), sd)


# ---------------------------------------------------------------------------------------------
# BERT
# ---------------------------------------------------------------------------------------------


def _bert_shapes(cfg: EncoderConfig) -> dict[str, tuple[int, ...]]:
    """Every key of a BertModel state dict (less its buffers) and its shape."""
    C, I = cfg.n_embd, cfg.d_ff
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, C),
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, C),
        "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, C),
        "embeddings.LayerNorm.weight": (C,), "embeddings.LayerNorm.bias": (C,),
    }
    for i in range(cfg.n_layer):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes.update({p + f"attention.self.{name}.weight": (C, C), p + f"attention.self.{name}.bias": (C,)})
        shapes.update({
            p + "attention.output.dense.weight": (C, C), p + "attention.output.dense.bias": (C,),
            p + "attention.output.LayerNorm.weight": (C,), p + "attention.output.LayerNorm.bias": (C,),
            p + "intermediate.dense.weight": (I, C), p + "intermediate.dense.bias": (I,),
            p + "output.dense.weight": (C, I), p + "output.dense.bias": (C,),
            p + "output.LayerNorm.weight": (C,), p + "output.LayerNorm.bias": (C,),
        })
    if cfg.add_pooler:
        shapes.update({"pooler.dense.weight": (C, C), "pooler.dense.bias": (C,)})
    return shapes


def _normalise_bert(sd: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """A BertModel-style state dict: "bert." prefix stripped (task heads dropped, with a warning),
    gamma/beta renamed, buffers dropped."""
    if any(k.startswith("bert.") for k in sd):
        heads = [k for k in sd if not k.startswith("bert.")]
        if heads:
            warnings.warn(f"{what}: left out {len(heads)} task-head key(s) outside the encoder: {_short(heads, 4)}",
                          stacklevel=3)
        sd = {k[len("bert."):]: v for k, v in sd.items() if k.startswith("bert.")}
    sd = {re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", k)): v
          for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if k not in ("embeddings.position_ids", "embeddings.token_type_ids")}
    if "embeddings.word_embeddings.weight" not in sd:
        raise ValueError(f"{what}: not a BERT state dict (no embeddings.word_embeddings.weight); "
                         f"its keys start {_short(list(sd), 4)}")
    return sd


def _encoder_fields_from_hf(hf: Mapping[str, Any], what: str) -> dict[str, Any]:
    """EncoderConfig fields (less add_pooler) from a Hugging Face BERT config; refuse what Encoder cannot run."""
    model_type = hf.get("model_type")
    if model_type != "bert":
        raise ValueError(f"{what} loads BERT (model_type 'bert'); this model is {model_type!r}"
                         + (f" ({', '.join(hf['architectures'])})" if hf.get("architectures") else "")
                         + "; other families (RoBERTa, DistilBERT, ...) differ in positions or layout")
    act = hf.get("hidden_act", "gelu")
    if act not in _ACTIVATION_FROM_HF:
        raise ValueError(f"{what}: hidden_act={act!r} has no equivalent in lmcourse.model.ACTIVATIONS; "
                         f"Encoder runs {', '.join(_ACTIVATION_FROM_HF)}")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{what}: position_embedding_type={hf['position_embedding_type']!r}; Encoder has "
                         "absolute learned positions")
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise ValueError(f"{what}: a BERT configured as a decoder (is_decoder / add_cross_attention) is not an "
                         "Encoder")
    return {"vocab_size": hf.get("vocab_size", 30522),
            "max_position_embeddings": hf.get("max_position_embeddings", 512),
            "type_vocab_size": hf.get("type_vocab_size", 2), "n_layer": hf.get("num_hidden_layers", 12),
            "n_head": hf.get("num_attention_heads", 12), "n_embd": hf.get("hidden_size", 768),
            "n_inner": hf.get("intermediate_size", 3072), "layer_norm_eps": hf.get("layer_norm_eps", 1e-12),
            "activation": _ACTIVATION_FROM_HF[act]}


def _encoder_fields_from_shapes(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The EncoderConfig fields a (normalised) BERT state dict's shapes determine: all but n_head."""
    words = sd["embeddings.word_embeddings.weight"]
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    fields: dict[str, Any] = {"vocab_size": words.shape[0], "n_embd": words.shape[-1],
                              "n_layer": max(layers) + 1 if layers else 0}
    for field, key in (("max_position_embeddings", "embeddings.position_embeddings.weight"),
                       ("type_vocab_size", "embeddings.token_type_embeddings.weight"),
                       ("n_inner", "encoder.layer.0.intermediate.dense.weight")):
        if key in sd:
            fields[field] = sd[key].shape[0]
    return fields


def _encoder(sd: dict[str, torch.Tensor], derived: dict[str, Any], config: Any, source: str, what: str) -> Encoder:
    derived = {**derived, "add_pooler": "pooler.dense.weight" in sd}
    cfg = _build_config(EncoderConfig, derived, config, _ENCODER_RUNTIME, source, ("n_head",), what)
    _check_keys(sd, _bert_shapes(cfg), what, cfg.n_layer)
    return _load_into(Encoder(cfg), sd)


def encoder_from_hf(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
                    config: EncoderConfig | Mapping[str, Any] | None = None) -> Encoder:
    """An `Encoder` with the weights of a Hugging Face `BertModel` (or a BertFor... model's state dict).

    A key copy: BERT's linear layers are nn.Linear already. From a state dict, pass n_head
    (`config={"n_head": 12}`); the pooler is kept when the weights have one. Eval mode.
    """
    what = "encoder_from_hf"
    sd, hf_config, source = _as_state_dict(model_or_state_dict, what)
    if hf_config is not None:
        derived = _encoder_fields_from_hf(hf_config, what)
        sd = _normalise_bert(sd, what)
    else:
        sd = _normalise_bert(sd, what)
        derived = _encoder_fields_from_shapes(sd)
    return _encoder(sd, derived, config, source, what)


def encoder_from_pretrained(folder: str | Path, config: EncoderConfig | Mapping[str, Any] | None = None) -> Encoder:
    """An `Encoder` from a Hugging Face BERT folder (config.json + model.safetensors), e.g. all-MiniLM-L6-v2's.

    Reads the files with safetensors only: transformers is not needed and nothing is downloaded.
    """
    hf_config, sd = _read_folder(folder, "encoder_from_pretrained")
    what = f"encoder_from_pretrained({Path(folder).name})"
    derived = _encoder_fields_from_hf(hf_config, what)
    return _encoder(_normalise_bert(sd, what), derived, config, "config.json", what)


def wordpiece_from_pretrained(folder: str | Path):
    """The course's `WordPiece` from a Hugging Face BERT tokenizer folder: vocab.txt plus the options
    in tokenizer_config.json (do_lower_case, strip_accents, unk_token, never_split); BERT's defaults
    (lowercase, accents stripped with it) where that file is absent."""
    from .tokenizers import WordPiece

    folder = Path(folder)
    vocab = folder / "vocab.txt"
    if not vocab.is_file():
        raise FileNotFoundError(f"wordpiece_from_pretrained: {folder} has no vocab.txt")
    options: dict[str, Any] = {}
    config_path = folder / "tokenizer_config.json"
    if config_path.is_file():
        try:
            options = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"wordpiece_from_pretrained: {config_path} is not valid JSON: {e}") from None
        if not isinstance(options, dict):
            raise ValueError(f"wordpiece_from_pretrained: {config_path} holds a {type(options).__name__}, "
                             "not a JSON object")
    if options.get("do_basic_tokenize", True) is False or options.get("tokenize_chinese_chars", True) is False:
        raise ValueError("wordpiece_from_pretrained: the course's WordPiece always runs BERT's basic "
                         "pre-tokenisation with CJK characters split; this tokenizer turns that off")
    special = [options.get(name, default) for name, default in (
        ("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"), ("cls_token", "[CLS]"),
        ("mask_token", "[MASK]"))]
    special = [s["content"] if isinstance(s, dict) else s for s in special]  # newer files store AddedToken dicts
    return WordPiece.from_file(vocab, lowercase=options.get("do_lower_case", True),
                               strip_accents=options.get("strip_accents"), unk_token=special[0],
                               never_split=special + list(options.get("never_split") or []))
