"""Chapter 06 exercises: LayerNorm, a pre-LN block's forward pass, counting a GPT's
parameters from its sizes, and one cross-attention step of an encoder-decoder.

Derived in chapters/06_transformer.ipynb; practised in solutions/06_transformer.ipynb.
The references are plain code; tests/test_ch06_checks.py proves they equal lmcourse.model
and lmcourse.compute.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lmcourse import forbid
from lmcourse.checks import Case, Exercise, Wrong

# ------------------------------------------------------------------ 6.1 LayerNorm


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)                       # (..., 1): each vector's own mean
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)        # biased: divide by C, not C - 1
    x_hat = (x - mean) / torch.sqrt(var + eps)                # eps inside the root
    return x_hat * weight + bias                              # (..., C): scale and shift per channel


def _ln_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 61)

    def r(*shape, dtype=torch.float64):
        return torch.randn(*shape, generator=g, dtype=dtype)

    def affine(C, dtype=torch.float64):
        return 1.0 + 0.5 * r(C, dtype=dtype), 0.5 * r(C, dtype=dtype)

    B, T, C = (int(v) for v in torch.randint(2, 6, (3,), generator=g))
    n = int(torch.randint(3, 7, (1,), generator=g))
    C4 = int(torch.randint(4, 9, (1,), generator=g))
    const = 1.0 + r(3, 1).expand(3, C4).clone()                 # every row one repeated value: variance 0
    const[1] = r(C4)                                            # one ordinary row among them
    return [
        Case((2.0 + 3.0 * r(B, T, C), *affine(C)), label="(B, T, C) random"),
        Case((r(n, n), *affine(n)), label="square (n, n)"),
        Case((0.01 * r(2, 3, 6), *affine(6)), label="small spread, std 0.01"),
        Case((r(4, 5), *affine(5)), {"eps": 0.1}, label="eps=0.1"),
        Case((1e8 + r(3, 6), *affine(6)), label="rows near 1e8"),
        Case((const, *affine(C4)), label="constant rows (variance 0)"),
        Case((r(2, 4, 1), *affine(1)), label="C=1"),
        Case((2.0 * r(3, 7, dtype=torch.float32), *affine(7, dtype=torch.float32)), label="float32"),
        Case((r(0, C), *affine(C)), label="empty batch (0, C)"),
    ]


def _ln_over(x, weight, bias, eps, dims, correction=0, outside=False):
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, correction=correction)
    x_hat = (x - mean) / (var.sqrt() + eps if outside else torch.sqrt(var + eps))
    return x_hat * weight + bias


def _ln_dim0(x, weight, bias, eps=1e-5):
    return _ln_over(x, weight, bias, eps, 0)


def _ln_all(x, weight, bias, eps=1e-5):
    return _ln_over(x, weight, bias, eps, tuple(range(x.ndim)))


def _ln_unbiased(x, weight, bias, eps=1e-5):
    return _ln_over(x, weight, bias, eps, -1, correction=1)


def _ln_eps_outside(x, weight, bias, eps=1e-5):
    return _ln_over(x, weight, bias, eps, -1, outside=True)


def _ln_no_eps(x, weight, bias, eps=1e-5):
    return _ln_over(x, weight, bias, 0.0, -1)


def _ln_fixed_eps(x, weight, bias, eps=1e-5):
    return _ln_over(x, weight, bias, 1e-5, -1)


def _ln_no_affine(x, weight, bias, eps=1e-5):
    return _ln_over(x, torch.ones_like(weight), torch.zeros_like(bias), eps, -1)


def _ln_swapped_affine(x, weight, bias, eps=1e-5):
    return _ln_over(x, bias, weight, eps, -1)


def _ln_by_variance(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / (var + eps) * weight + bias


def _ln_one_pass(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = (x * x).mean(dim=-1, keepdim=True) - mean**2  # E[x²] - E[x]²: cancels when |mean| >> std
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


layer_norm = Exercise(
    id="6.1",
    name="layer_norm",
    title="LayerNorm over the last dimension",
    reference=_layer_norm,
    forbidden=(
        "lmcourse.model.LayerNorm.forward",
        "torch.nn.functional.layer_norm",
        "torch.nn.LayerNorm.forward",
        "torch.nn.functional.group_norm",
    ),
    # nn.LayerNorm, F.layer_norm, torch.layer_norm; and the norms that compute it in disguise
    # (group_norm with one group, instance and batch norm on a transposed input)
    forbidden_ops=(*forbid.LAYER_NORM, "aten::group_norm", "aten::native_group_norm", "aten::*batch_norm*",
                   "aten::*instance_norm*"),
    cases=_ln_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_ln_dim0, "you normalised over dim 0, across the batch (that is BatchNorm's axis): LayerNorm "
              "normalises each vector on its own, over its C channels, the last dim (dim=-1, keepdim=True)."),
        Wrong(_ln_all, "you normalised over the whole tensor at once: each vector x[..., :] gets its own mean and "
              "variance, taken over the last dim only (dim=-1, keepdim=True)."),
        Wrong(_ln_unbiased, "you used the unbiased variance (divided by C - 1; torch.var's default): LayerNorm "
              "uses the biased one, the mean of the squared deviations, dividing by C (correction=0 / "
              "unbiased=False). With C = 1 the unbiased one is 0/0."),
        Wrong(_ln_eps_outside, "eps is outside the square root: (x - mean) / (√var + eps). LayerNorm divides by "
              "√(var + eps): add eps to the variance, then take the root."),
        Wrong(_ln_no_eps, "no eps: a vector whose entries are all equal has variance 0, so you divided 0 by 0 "
              "(nan). Add eps to the variance before the square root."),
        Wrong(_ln_fixed_eps, "you ignored the eps argument (a fixed 1e-5 is used even when the call passes "
              "eps=0.1): use the parameter."),
        Wrong(_ln_no_affine, "the normalised x is right but the affine step is missing: multiply by weight "
              "(gamma) and add bias (beta), one value per channel."),
        Wrong(_ln_swapped_affine, "weight and bias are swapped: the output is x_hat * weight + bias "
              "(weight scales, bias shifts)."),
        Wrong(_ln_by_variance, "you divided by the variance, not by the standard deviation: x_hat = "
              "(x - mean) / √(var + eps), which has variance 1."),
        Wrong(_ln_one_pass, "you computed the variance as E[x²] - E[x]²: when the mean is large next to the "
              "spread (rows near 1e8), the two terms are nearly equal and their difference loses every "
              "digit. Subtract the mean first, then average the squares: mean((x - mean)²)."),
    ],
    hint="Take the mean and the variance over the last dimension only, keeping that dimension (size 1) so "
    "they broadcast back against x. The variance is the plain average of squared deviations from the mean "
    "(no Bessel correction). Add eps before the square root, then scale by weight and shift by bias.",
)

# ------------------------------------------------------ 6.2 a pre-LN Transformer block

_BLOCK_KEYS = (
    "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
    "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
    "mlp.c_proj.weight", "mlp.c_proj.bias",
)


def _block_forward(x: torch.Tensor, params: dict, n_head: int, eps: float = 1e-5) -> torch.Tensor:
    p = params
    B, T, C = x.shape
    # 1. attention on the normalised stream; its output is ADDED to x (the residual)
    h = F.layer_norm(x, (C,), p["ln_1.weight"], p["ln_1.bias"], eps)
    q, k, v = F.linear(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)                        # (B, nh, T, hs)
    x = x + F.linear(y.transpose(1, 2).reshape(B, T, C), p["attn.c_proj.weight"], p["attn.c_proj.bias"])
    # 2. the MLP on the normalised stream, added again
    h = F.layer_norm(x, (C,), p["ln_2.weight"], p["ln_2.bias"], eps)
    h = F.gelu(F.linear(h, p["mlp.c_fc.weight"], p["mlp.c_fc.bias"]), approximate="tanh")
    return x + F.linear(h, p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])              # (B, T, C)


def _block_params(g: torch.Generator, C: int, n_inner: int) -> dict:
    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    shapes = {"ln_1": (C,), "attn.c_attn": (3 * C, C), "attn.c_proj": (C, C), "ln_2": (C,),
              "mlp.c_fc": (n_inner, C), "mlp.c_proj": (C, n_inner)}
    p = {}
    for name, shape in shapes.items():
        if name.startswith("ln"):  # LayerNorm: weight near 1, bias near 0, both visibly non-trivial
            p[f"{name}.weight"], p[f"{name}.bias"] = 1.0 + 0.3 * r(C), 0.3 * r(C)
        else:  # a linear layer (out, in), scaled so the activations stay O(1)
            p[f"{name}.weight"], p[f"{name}.bias"] = r(*shape) / math.sqrt(shape[1]), 0.3 * r(shape[0])
    return {k: p[k] for k in _BLOCK_KEYS}


def _block_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 62)

    def case(B, T, nh, hs, n_inner=None, label="", **kwargs):
        C = nh * hs
        x = 1.0 + 2.0 * torch.randn(B, T, C, generator=g, dtype=torch.float64)  # an offset: LN's centring matters
        return Case((x, _block_params(g, C, n_inner or 4 * C), nh), kwargs, label=label)

    def ri(lo, hi):
        return int(torch.randint(lo, hi, (1,), generator=g))

    return [
        case(ri(2, 4), ri(4, 8), ri(2, 4), ri(2, 5), label="random sizes"),
        case(1, 5, 2, 4, n_inner=ri(5, 20), label="MLP width not 4C"),
        case(2, 3, 1, ri(3, 7), label="one head"),
        case(2, 4, 2, 3, label="eps=0.1", eps=0.1),
        case(ri(1, 3), 1, 2, 4, label="T=1"),
    ]


def _bf_variant(x, params, n_head, eps=1e-5, *, order="pre", residual=(True, True), same_ln=False, causal=True,
                act="tanh", parallel=False, mlp_first=False, residual_from_ln=False):
    p = params
    B, T, C = x.shape

    def ln(z, which):
        which = "ln_1" if same_ln else which
        return F.layer_norm(z, (C,), p[f"{which}.weight"], p[f"{which}.bias"], eps)

    def attn(h):
        q, k, v = F.linear(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"]).split(C, dim=-1)
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return F.linear(y.transpose(1, 2).reshape(B, T, C), p["attn.c_proj.weight"], p["attn.c_proj.bias"])

    def mlp(h):
        h = F.linear(h, p["mlp.c_fc.weight"], p["mlp.c_fc.bias"])
        h = {"tanh": lambda t: F.gelu(t, approximate="tanh"), "erf": F.gelu, "relu": F.relu}[act](h)
        return F.linear(h, p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])

    if order == "post":
        x = ln(x + attn(x), "ln_1")
        return ln(x + mlp(x), "ln_2")
    if parallel:
        return x + attn(ln(x, "ln_1")) + mlp(ln(x, "ln_2"))
    steps = [(mlp, "ln_2"), (attn, "ln_1")] if mlp_first else [(attn, "ln_1"), (mlp, "ln_2")]
    for (f, which), keep in zip(steps, residual):
        h = ln(x, which)
        base = h if residual_from_ln else x
        x = base + f(h) if keep else f(h)
    return x


def _bf_post_ln(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, order="post")


def _bf_no_attn_residual(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, residual=(False, True))


def _bf_no_mlp_residual(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, residual=(True, False))


def _bf_residual_from_ln(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, residual_from_ln=True)


def _bf_ln_1_twice(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, same_ln=True)


def _bf_not_causal(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, causal=False)


def _bf_exact_gelu(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, act="erf")


def _bf_relu(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, act="relu")


def _bf_parallel(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, parallel=True)


def _bf_mlp_first(x, params, n_head, eps=1e-5):
    return _bf_variant(x, params, n_head, eps, mlp_first=True)


block_forward = Exercise(
    id="6.2",
    name="block_forward",
    title="A pre-LN Transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))",
    reference=_block_forward,
    forbidden=(
        "lmcourse.model.Block.forward",
        "torch.nn.TransformerEncoderLayer.forward",
        "torch.nn.TransformerDecoderLayer.forward",
    ),
    cases=_block_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_bf_post_ln, "this is a post-LN block (the 2017 Transformer's and BERT's order): LayerNorm after "
              "the residual add, x = ln(x + attn(x)). GPT-2 is pre-LN: normalise a copy going INTO each "
              "sub-layer and add its output to the untouched x, x = x + attn(ln_1(x))."),
        Wrong(_bf_no_attn_residual, "the attention's residual is missing: x = attn(ln_1(x)) throws the input "
              "away. Add the sub-layer's output to the stream: x = x + attn(ln_1(x))."),
        Wrong(_bf_no_mlp_residual, "the MLP's residual is missing: the block must return x + mlp(ln_2(x)), not "
              "mlp(ln_2(x)) alone."),
        Wrong(_bf_residual_from_ln, "you added the sub-layer's output to the NORMALISED stream, "
              "h + attn(h) with h = ln_1(x): the residual carries x itself, so write x + attn(ln_1(x)); "
              "LayerNorm only shapes what enters the sub-layer."),
        Wrong(_bf_ln_1_twice, "you used ln_1's weight and bias before the MLP too: each sub-layer has its own "
              "LayerNorm, ln_1 before the attention and ln_2 before the MLP."),
        Wrong(_bf_not_causal, "the attention is not causal: every position sees the tokens after it. This is "
              "a decoder (GPT) block: mask the future (is_causal=True, or -inf above the diagonal)."),
        Wrong(_bf_exact_gelu, "close, but GPT-2's MLP uses the tanh approximation of GELU: "
              "F.gelu(h, approximate=\"tanh\"). The default F.gelu is the exact (erf) one, which BERT uses."),
        Wrong(_bf_relu, "the MLP's nonlinearity is ReLU: GPT-2 uses GELU with the tanh approximation, "
              "F.gelu(h, approximate=\"tanh\")."),
        Wrong(_bf_parallel, "this is a parallel block (GPT-J, PaLM): attention and MLP both read the same x and "
              "are added together. GPT-2's block is sequential: the MLP reads the stream AFTER the attention's "
              "output was added."),
        Wrong(_bf_mlp_first, "the MLP comes before the attention: the order is attention first (tokens "
              "exchange information), then the MLP (each position on its own)."),
    ],
    hint="Two sub-layers, each in the same pattern: normalise a copy of the stream with that sub-layer's own "
    "LayerNorm, run the sub-layer on the copy, and add what it returns to the stream. The first sub-layer is "
    "causal multi-head attention (the fused projection gives queries, keys and values side by side; split "
    "them into heads as in chapter 04). The second is the MLP: widen, GELU with the tanh approximation, "
    "project back. PyTorch's layer_norm, linear, gelu and scaled_dot_product_attention are all allowed here.",
)

# ------------------------------------------------------- 6.3 counting a GPT's parameters


def _count_params(vocab_size: int, block_size: int, n_layer: int, n_embd: int, bias: bool = True) -> int:
    d, b = n_embd, int(bias)
    embeddings = vocab_size * d + block_size * d            # wte and wpe; lm_head is wte (tied): 0 more
    layer_norm = d + b * d                                  # weight, and a bias only when bias=True
    attention = (d * 3 * d + b * 3 * d) + (d * d + b * d)   # c_attn (d -> 3d), c_proj (d -> d)
    mlp = (d * 4 * d + b * 4 * d) + (4 * d * d + b * d)     # c_fc (d -> 4d), c_proj (4d -> d)
    block = 2 * layer_norm + attention + mlp                # ln_1, attn, ln_2, mlp
    return embeddings + n_layer * block + layer_norm        # ... and the final ln_f


def _count_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 63)

    def ri(lo, hi):
        return int(torch.randint(lo, hi, (1,), generator=g))

    return [
        Case((ri(50, 500), ri(8, 64), ri(2, 7), 8 * ri(2, 9)), label="a small GPT"),
        Case((ri(50, 500), ri(8, 64), ri(2, 7), 8 * ri(2, 9)), {"bias": False}, label="bias=False"),
        Case((50257, 1024, 12, 768), label="GPT-2 small (124,439,808)"),
        Case((ri(2, 30), ri(1, 10), 1, ri(1, 6)), label="one layer, tiny sizes"),
        Case((ri(1000, 60000), ri(256, 4096), ri(12, 50), 64 * ri(8, 40)), {"bias": False},
             label="a large GPT, bias=False"),
    ]


def _cp_head_twice(vocab_size, block_size, n_layer, n_embd, bias=True):
    return _count_params(vocab_size, block_size, n_layer, n_embd, bias) + vocab_size * n_embd


def _cp_no_biases(vocab_size, block_size, n_layer, n_embd, bias=True):
    d = n_embd  # bias=True counted as if there were no biases at all: LayerNorm weights only
    return vocab_size * d + block_size * d + n_layer * (2 * d + 12 * d * d) + d


def _cp_ignores_bias_flag(vocab_size, block_size, n_layer, n_embd, bias=True):
    return _count_params(vocab_size, block_size, n_layer, n_embd, True)


def _cp_no_wpe(vocab_size, block_size, n_layer, n_embd, bias=True):
    return _count_params(vocab_size, block_size, n_layer, n_embd, bias) - block_size * n_embd


def _cp_no_layer_norms(vocab_size, block_size, n_layer, n_embd, bias=True):
    ln = n_embd * (2 if bias else 1)
    return _count_params(vocab_size, block_size, n_layer, n_embd, bias) - (2 * n_layer + 1) * ln


def _cp_no_ln_f(vocab_size, block_size, n_layer, n_embd, bias=True):
    return _count_params(vocab_size, block_size, n_layer, n_embd, bias) - n_embd * (2 if bias else 1)


def _cp_twelve_d_squared(vocab_size, block_size, n_layer, n_embd, bias=True):
    return 12 * n_layer * n_embd**2 + vocab_size * n_embd


def _cp_mlp_width_d(vocab_size, block_size, n_layer, n_embd, bias=True):
    d, b = n_embd, int(bias)
    return _count_params(vocab_size, block_size, n_layer, n_embd, bias) - n_layer * (6 * d * d + 3 * b * d)


def _cp_one_attention_matrix(vocab_size, block_size, n_layer, n_embd, bias=True):
    d, b = n_embd, int(bias)
    return _count_params(vocab_size, block_size, n_layer, n_embd, bias) - n_layer * (2 * d * d + 2 * b * d)


count_params = Exercise(
    id="6.3",
    name="count_params",
    title="Counting a GPT's parameters from its sizes",
    reference=_count_params,
    forbidden=(
        "lmcourse.compute.param_count",
        "lmcourse.compute.param_breakdown",
        "lmcourse.model.GPT.num_params",
        "lmcourse.model.GPT.__init__",
    ),
    cases=_count_cases,
    atol=0.0,
    rtol=0.0,
    wrong=[
        Wrong(_cp_head_twice, "you counted the lm_head's V×d matrix as well: GPT-2 ties it to the token "
              "embedding wte (the same tensor), so it adds no parameters."),
        Wrong(_cp_no_biases, "no biases counted: with bias=True every linear layer has one bias per output "
              "(c_attn 3d, c_proj d, c_fc 4d, the MLP's c_proj d) and every LayerNorm a bias of d."),
        Wrong(_cp_ignores_bias_flag, "you counted biases although bias=False: then no linear layer and no "
              "LayerNorm has a bias, and each LayerNorm keeps only its weight (d)."),
        Wrong(_cp_no_wpe, "the position embedding table is missing: wpe has block_size × n_embd parameters "
              "(learned positions, one row per position of the context)."),
        Wrong(_cp_no_layer_norms, "the LayerNorms are missing: each block has two (ln_1, ln_2) and the model "
              "ends with ln_f, each with a weight of d (and a bias of d when bias=True)."),
        Wrong(_cp_no_ln_f, "one LayerNorm short: after the last block comes the final ln_f (d weights, and d "
              "biases when bias=True)."),
        Wrong(_cp_twelve_d_squared, "12·n_layer·d² + V·d is the famous approximation; the exact count also "
              "has the biases, the LayerNorms and the position table."),
        Wrong(_cp_mlp_width_d, "your MLP is d wide: GPT-2's hidden layer is 4·d wide, so c_fc is d×4d (+4d "
              "biases) and its c_proj 4d×d (+d)."),
        Wrong(_cp_one_attention_matrix, "c_attn projects to queries, keys AND values: d × 3d (plus 3d biases), "
              "not d × d."),
    ],
    hint="Go through the model top to bottom and add up every weight matrix (in × out) and every bias "
    "vector (one per output): the two embedding tables, then per layer two LayerNorms, the attention's "
    "fused q/k/v projection and its output projection, the MLP's two layers (4·d wide in the middle), then "
    "the final LayerNorm. The output head shares its matrix with the token embedding. n_head does not "
    "change the count: the heads split the same matrices.",
)

# ------------------------------------------------------ 6.4 one cross-attention step


def _cross_attention(x, memory, w_attn, b_attn, w_proj, b_proj, n_head: int, src_mask=None) -> torch.Tensor:
    B, Tq, C = x.shape
    Tk, hs = memory.shape[1], C // n_head
    wq, wk, wv = w_attn.split(C)                                         # rows: queries, keys, values
    bq, bk, bv = b_attn.split(C)
    q = F.linear(x, wq, bq).view(B, Tq, n_head, hs).transpose(1, 2)      # (B, nh, Tq, hs): the decoder asks
    k = F.linear(memory, wk, bk).view(B, Tk, n_head, hs).transpose(1, 2)  # (B, nh, Tk, hs): the source answers
    v = F.linear(memory, wv, bv).view(B, Tk, n_head, hs).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)                     # (B, nh, Tq, Tk); no causal mask
    if src_mask is not None:                                             # (B, Tk), True = a real source token
        scores = scores.masked_fill(~src_mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)             # an all-padding source: 0/0 -> 0
    y = (weights @ v).transpose(1, 2).reshape(B, Tq, C)                  # (B, Tq, C)
    return F.linear(y, w_proj, b_proj)


def _xa_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed + 64)

    def ri(lo, hi):
        return int(torch.randint(lo, hi, (1,), generator=g))

    def case(B, Tq, Tk, nh, hs, keep=None, label=""):
        C = nh * hs
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        args = (r(B, Tq, C), r(B, Tk, C), r(3 * C, C) / math.sqrt(C) * 2, 0.3 * r(3 * C), r(C, C) / math.sqrt(C),
                0.3 * r(C), nh)
        return Case(args, {} if keep is None else {"src_mask": keep}, label=label)

    def padding(B, Tk, lengths):  # (B, Tk): True for the first `length` tokens of each source sentence
        return torch.arange(Tk)[None, :] < torch.tensor(lengths)[:, None]

    Tk = ri(5, 9)
    lengths = [Tk, ri(1, Tk), ri(1, Tk)]
    return [
        case(ri(1, 3), ri(2, 5), ri(6, 9), ri(2, 4), ri(2, 5), label="no mask, Tq < Tk"),
        case(3, ri(5, 9), Tk, 2, ri(2, 5), keep=padding(3, Tk, lengths), label="padded sources"),
        case(2, 4, 3, 2, 3, keep=padding(2, 3, [3, 0]), label="one source all padding"),
        case(2, 3, 1, 1, ri(2, 6), label="one head, Tk=1"),
        case(ri(1, 3), 1, ri(2, 6), 2, 2, label="Tq=1"),
        case(2, 0, ri(2, 5), 2, 2, label="Tq=0 (empty)"),
    ]


def _xa_variant(x, memory, w_attn, b_attn, w_proj, b_proj, n_head, src_mask=None, *, kv_from="memory",
                q_from="x", use_mask=True, invert=False, causal=False, scale="hs", nan_ok=False, swap_kv=False,
                proj=True):
    src = {"x": x, "memory": memory}
    qin, kvin = src[q_from], src[kv_from]
    B, C = x.shape[0], x.shape[2]
    Tq, Tk, hs = qin.shape[1], kvin.shape[1], C // n_head
    wq, wk, wv = w_attn.split(C)
    bq, bk, bv = b_attn.split(C)
    if swap_kv:
        wk, wv, bk, bv = wv, wk, bv, bk
    q = F.linear(qin, wq, bq).view(B, Tq, n_head, hs).transpose(1, 2)
    k = F.linear(kvin, wk, bk).view(B, Tk, n_head, hs).transpose(1, 2)
    v = F.linear(kvin, wv, bv).view(B, Tk, n_head, hs).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs if scale == "hs" else C)
    if src_mask is not None and use_mask:
        keep = ~src_mask if invert else src_mask
        scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    if causal:
        scores = scores.masked_fill(~torch.ones(Tq, Tk, dtype=torch.bool).tril(), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if not nan_ok:
        weights = weights.nan_to_num(0.0)
    y = (weights @ v).transpose(1, 2).reshape(B, Tq, C)
    return F.linear(y, w_proj, b_proj) if proj else y


def _xa_kv_from_decoder(*a, **k):
    return _xa_variant(*a, **k, kv_from="x")


def _xa_q_from_encoder(*a, **k):
    return _xa_variant(*a, **k, q_from="memory")


def _xa_mask_ignored(*a, **k):
    return _xa_variant(*a, **k, use_mask=False)


def _xa_mask_inverted(*a, **k):
    return _xa_variant(*a, **k, invert=True)


def _xa_causal(*a, **k):
    return _xa_variant(*a, **k, causal=True)


def _xa_scale_C(*a, **k):
    return _xa_variant(*a, **k, scale="C")


def _xa_nan_rows(*a, **k):
    return _xa_variant(*a, **k, nan_ok=True)


def _xa_k_v_swapped(*a, **k):
    return _xa_variant(*a, **k, swap_kv=True)


def _xa_no_proj(*a, **k):
    return _xa_variant(*a, **k, proj=False)


cross_attention = Exercise(
    id="6.4",
    name="cross_attention",
    title="One cross-attention step: decoder queries, encoder keys and values, a source padding mask",
    reference=_cross_attention,
    forbidden=(
        "lmcourse.attention.scaled_dot_product_attention",
        "lmcourse.attention.MultiHeadAttention.forward",
        "torch.nn.functional.scaled_dot_product_attention",
        "torch.nn.MultiheadAttention.forward",
        "torch.nn.functional.multi_head_attention_forward",
    ),
    forbidden_ops=(*forbid.ATTENTION, "aten::_native_multi_head_attention"),
    cases=_xa_cases,
    atol=1e-6,
    rtol=1e-5,
    wrong=[
        Wrong(_xa_kv_from_decoder, "your keys and values come from the decoder states x: that is self-attention. "
              "In cross-attention the decoder asks (queries from x) and the encoder's output answers (keys and "
              "values from memory)."),
        Wrong(_xa_q_from_encoder, "your queries come from the encoder (memory), so you got one output per source "
              "token: queries come from the decoder states x (one output per target position, (B, Tq, C)), "
              "keys and values from memory."),
        Wrong(_xa_mask_ignored, "the source padding mask is not applied: padding tokens of the source get "
              "attention. Set the scores of the keys where src_mask is False to -inf before the softmax "
              "(the mask is (B, Tk): give it the head and query axes, [:, None, None, :])."),
        Wrong(_xa_mask_inverted, "your mask is inverted: in this course True means a real token (keep), as in "
              "the boolean attn_mask of F.scaled_dot_product_attention; nn.MultiheadAttention's "
              "key_padding_mask uses the opposite, True = padding. Fill -inf where src_mask is False."),
        Wrong(_xa_causal, "you applied a causal mask: cross-attention has none, because the whole source "
              "sentence is known. Every target position may look at every real source token."),
        Wrong(_xa_scale_C, "you scaled by 1/√C: each head's dot product has hs = C // n_head terms, so scale "
              "by 1/√hs."),
        Wrong(_xa_nan_rows, "a source that is all padding gives a row of -inf, and its softmax is 0/0 = nan. "
              "Follow PyTorch's convention: such a row has no keys to attend to, so its weights are all 0 "
              "(its output is then just the projection's bias), never nan."),
        Wrong(_xa_k_v_swapped, "keys and values are swapped: w_attn's rows are queries (first C), keys "
              "(next C), values (last C), as in nn.MultiheadAttention's in_proj_weight."),
        Wrong(_xa_no_proj, "the heads are merged but the output projection is missing: finish with "
              "F.linear(y, w_proj, b_proj)."),
    ],
    hint="Cut w_attn (and b_attn) into three C-row blocks for queries, keys and values. Project the decoder "
    "states with the first and the encoder output with the other two, split each into heads, and take "
    "scaled scores of shape (B, n_head, Tq, Tk): no causal mask here. The padding mask is (B, Tk), so add "
    "two axes before filling the padded keys with -inf. A row whose keys are all padding must come out as "
    "zeros, not nan. Merge the heads and apply the output projection.",
)
