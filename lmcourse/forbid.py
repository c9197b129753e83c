"""Forbidden operators, caught where every alias meets: the ATen operator.

An exercise that asks for a hand-written softmax must refuse `torch.softmax`, but also
`Tensor.softmax`, `F.softmax`, `torch.special.softmax`, `torch.ops.aten._softmax` and
`F.cross_entropy` (which calls log-softmax inside). A list of Python names cannot keep up
with the aliases; the dispatcher can, since every one of them ends in the same ATen
operator. `OpGuard` watches two layers while the student's code runs:

- a `TorchDispatchMode`: every ATen operator that executes, after composite operators have
  been decomposed (`torch.softmax` arrives as `aten::_softmax`, `F.layer_norm` as
  `aten::native_layer_norm`, `F.scaled_dot_product_attention` as
  `aten::_scaled_dot_product_flash_attention_for_cpu` on CPU);
- a `TorchFunctionMode`: every torch function called from Python, before any decomposition,
  so a composite operator is caught by its own name (`F.one_hot` as `aten::one_hot`), and the
  autograd entry points (`Tensor.backward`, `torch.autograd.grad`, forward-mode `make_dual`).

Pattern syntax: `fnmatch` patterns (case-sensitive). A pattern with "::" is matched against
an operator's name, "aten::_softmax", and its overload-qualified name,
"aten::nll_loss_forward.default" (so "aten::nll_loss*" covers nll_loss_forward, nll_loss2d_forward
and nll_loss_nd). At the Python layer a torch builtin is named the same way, "aten::" plus
its Python name: `torch.softmax` and `Tensor.softmax` are "aten::softmax",
`torch.special.softmax` is "aten::special_softmax", `F.scaled_dot_product_attention` is
"aten::scaled_dot_product_attention". A pattern without "::" is matched against a Python
function's dotted name, e.g. "torch.nn.functional.cross_entropy".

With `autograd=True`, any backward pass counts (seen at both layers: an operator that runs
inside the autograd engine, and the Python entry points), as do forward-mode AD and a
derivative kernel called directly (any operator named "*_backward*", such as
`torch.ops.aten._softmax_backward_data`), all recorded as the hit "autograd".

Limits: code that deliberately switches the dispatcher off (`torch._C._DisableTorchDispatch`)
is noted as "guard disabled" while the Python layer is on; code that switches both layers off
through torch's private APIs is not caught here (the grader's sandbox and review are the bound).
"""
from __future__ import annotations

import fnmatch
from typing import Any, Sequence

__all__ = ["OpGuard", "ForbiddenCall", "AUTOGRAD", "GUARD_DISABLED", "spelling", "describe", "SOFTMAX",
           "LOG_SOFTMAX", "LOGSUMEXP", "CROSS_ENTROPY", "ATTENTION", "LAYER_NORM", "EMBEDDING"]

# Families: the names one shortcut goes by. Which one the guard sees depends on the grad mode:
# with autograd on (or under no_grad) a composite operator is decomposed before the dispatch
# layer (torch.softmax arrives as aten::_softmax), under inference_mode it is not (aten::softmax),
# and the Python layer sees the builtin's own name. An exercise declares whole families.
SOFTMAX = ("aten::softmax", "aten::_softmax", "aten::special_softmax")
LOG_SOFTMAX = ("aten::log_softmax", "aten::_log_softmax", "aten::special_log_softmax")
LOGSUMEXP = ("aten::logsumexp", "aten::special_logsumexp")
CROSS_ENTROPY = ("aten::cross_entropy_loss", "aten::nll_loss*")
ATTENTION = ("aten::scaled_dot_product_attention", "aten::_scaled_dot_product_*")
LAYER_NORM = ("aten::layer_norm", "aten::native_layer_norm")
EMBEDDING = ("aten::embedding", "aten::embedding_bag", "aten::_embedding_bag*")

#: The hit recorded for any use of autograd when `autograd=True`.
AUTOGRAD = "autograd"
#: The hit recorded when the student's code switched the operator layer off.
GUARD_DISABLED = "guard disabled"

# The Python spellings that most often end in an operator: shown to the student beside the
# operator's name, so "aten::_softmax" reads as the call they actually wrote.
_SPELLINGS: dict[str, str] = {
    "aten::_softmax": "torch.softmax, Tensor.softmax, F.softmax, torch.special.softmax",
    "aten::softmax": "torch.softmax, Tensor.softmax, F.softmax",
    "aten::special_softmax": "torch.special.softmax",
    "aten::_log_softmax": "torch.log_softmax, Tensor.log_softmax, F.log_softmax, F.cross_entropy",
    "aten::log_softmax": "torch.log_softmax, Tensor.log_softmax, F.log_softmax",
    "aten::special_log_softmax": "torch.special.log_softmax",
    "aten::logsumexp": "torch.logsumexp, Tensor.logsumexp",
    "aten::special_logsumexp": "torch.special.logsumexp",
    "aten::nll_loss_forward": "F.cross_entropy, F.nll_loss, nn.CrossEntropyLoss",
    "aten::nll_loss2d_forward": "F.cross_entropy, F.nll_loss on (N, C, H, W)",
    "aten::nll_loss": "F.nll_loss",
    "aten::nll_loss_nd": "F.nll_loss",
    "aten::cross_entropy_loss": "F.cross_entropy, nn.CrossEntropyLoss",
    "aten::scaled_dot_product_attention": "F.scaled_dot_product_attention",
    "aten::native_layer_norm": "F.layer_norm, nn.LayerNorm",
    "torch.nn.functional.layer_norm": "F.layer_norm, nn.LayerNorm",
    "torch.nn.functional.cross_entropy": "F.cross_entropy, nn.CrossEntropyLoss",
    "torch.nn.functional.nll_loss": "F.nll_loss, nn.NLLLoss",
    "torch.nn.functional.embedding": "F.embedding, nn.Embedding",
    "aten::embedding_bag": "F.embedding_bag, nn.EmbeddingBag",
    "aten::layer_norm": "F.layer_norm, nn.LayerNorm",
    "aten::embedding": "F.embedding, nn.Embedding",
    "aten::one_hot": "F.one_hot",
    "aten::cosine_similarity": "F.cosine_similarity, torch.cosine_similarity",
    AUTOGRAD: "Tensor.backward, torch.autograd.grad, torch.func.grad, forward-mode AD",
    GUARD_DISABLED: "torch._C._DisableTorchDispatch or a popped dispatch mode",
}
_SPELLING_PATTERNS = {"aten::_scaled_dot_product_*": "F.scaled_dot_product_attention"}

# Python-level autograd entry points (the dotted names the Python layer gives them) and the
# builtins of forward-mode AD.
_AUTOGRAD_FUNCTIONS = {"torch._tensor.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward",
                       "torch.autograd.functional.vjp", "torch.autograd.functional.jacobian"}
_AUTOGRAD_BUILTINS = {"aten::_make_dual", "aten::_unpack_dual"}


def spelling(name: str) -> str:
    """The likely Python spelling(s) of an operator hit or pattern, "" when none is known."""
    if name in _SPELLINGS:
        return _SPELLINGS[name]
    for pattern, text in _SPELLING_PATTERNS.items():
        if fnmatch.fnmatchcase(name, pattern) or name == pattern:
            return text
    # A pattern ("aten::nll_loss*"): the spellings of every known operator it covers, once each.
    found: list[str] = []
    for op, text in _SPELLINGS.items():
        if fnmatch.fnmatchcase(op, name):
            found += [t for t in text.split(", ") if t not in found]
    return ", ".join(found)


def describe(hit: str) -> str:
    """"aten::_softmax (torch.softmax, Tensor.softmax, ...)": the operator and how it was likely spelled."""
    text = spelling(hit)
    return f"{hit} ({text})" if text else hit


class ForbiddenCall(BaseException):
    """Raised by `OpGuard(raise_on_hit=True)` at the first forbidden call.

    A BaseException, so the student's own `except Exception` cannot swallow it.
    """

    def __init__(self, hit: str) -> None:
        super().__init__(f"forbidden call: {describe(hit)}")
        self.hit = hit


def _python_name(func: Any) -> str:
    """The name the Python layer gives a torch function: "aten::<name>" for a builtin, else its dotted name."""
    name = getattr(func, "__name__", None) or type(func).__name__
    module = getattr(func, "__module__", None)
    if not isinstance(module, str) or module.startswith(("torch._C", "torch._ops")) or module == "torch" or (
        type(func).__name__ in ("builtin_function_or_method", "method_descriptor", "wrapper_descriptor")
    ):
        return f"aten::{name}"
    return f"{module}.{getattr(func, '__qualname__', name)}"


class OpGuard:
    """While active, note (or refuse) every call matching `patterns`, at the ATen and the Python layer.

    patterns: fnmatch patterns (see the module docstring), e.g. ("aten::_softmax", "aten::nll_loss*").
    autograd: also count any backward pass or forward-mode AD. raise_on_hit: raise `ForbiddenCall`
    at the first hit instead of only noting it. `.hits` lists what was called, deduplicated, in order.

    Re-entrant use is not supported (one `with` at a time per guard); nesting two guards is fine.
    """

    def __init__(self, patterns: Sequence[str] = (), *, autograd: bool = False, raise_on_hit: bool = False) -> None:
        if isinstance(patterns, str):
            raise TypeError(f"patterns must be a sequence of strings, got the string {patterns!r}")
        bad = [p for p in patterns if not isinstance(p, str) or not p]
        if bad:
            raise TypeError(f"patterns must be non-empty strings, got {bad!r}")
        self.patterns = tuple(patterns)
        self.autograd = autograd
        self.raise_on_hit = raise_on_hit
        self.hits: list[str] = []
        self._verdicts: dict[str, str | None] = {}  # name -> the hit it counts as, or None (a cache)
        self._modes: tuple[Any, Any] | None = None
        self._dispatch_hits = 0  # how many operator-layer matches so far (see _Function)

    @property
    def active(self) -> bool:
        """True when the guard can catch anything (some pattern, or autograd)."""
        return bool(self.patterns) or self.autograd

    def _match(self, name: str, overload: str | None = None) -> str | None:
        """The hit `name` counts as (its name without overload), or None."""
        key = name if overload is None else f"{name}.{overload}"
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        names = (name,) if overload is None else (name, key)
        hit = name if any(fnmatch.fnmatchcase(n, p) for n in names for p in self.patterns) else None
        self._verdicts[key] = hit
        return hit

    def _hit(self, hit: str) -> None:
        if hit not in self.hits:
            self.hits.append(hit)
        if self.raise_on_hit:
            raise ForbiddenCall(hit)

    def __enter__(self) -> "OpGuard":
        if self._modes is not None:
            raise RuntimeError("this OpGuard is already active: use one `with` at a time")
        if not self.active:
            self._modes = ()
            return self
        import torch
        from torch.overrides import TorchFunctionMode
        from torch.utils._python_dispatch import TorchDispatchMode

        guard, python_key = self, torch._C.DispatchKey.Python

        class _Dispatch(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                plain, _, overload = func.name().partition(".")
                hit = guard._match(plain, overload or "default")
                if hit is not None:
                    guard._dispatch_hits += 1
                    guard._hit(hit)
                # Inside a backward pass, or a derivative kernel called directly (aten::_softmax_backward_data).
                if guard.autograd and ("_backward" in plain or torch._C._current_graph_task_id() != -1):
                    guard._hit(AUTOGRAD)
                return func(*args, **(kwargs or {}))

        class _Function(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if isinstance(func, torch._ops.OpOverload):  # torch.ops.aten.x.default: an operator already
                    name, _, overload = func.name().partition(".")
                    hit = guard._match(name, overload or "default")
                else:
                    name = _python_name(func)
                    hit = guard._match(name)
                if guard.autograd and (name in _AUTOGRAD_FUNCTIONS or name in _AUTOGRAD_BUILTINS or "_backward" in name):
                    guard._hit(AUTOGRAD)
                if torch._C._dispatch_tls_is_dispatch_key_excluded(python_key):
                    guard._hit(GUARD_DISABLED)  # the operator layer was switched off around this call
                if hit is None:
                    return func(*args, **(kwargs or {}))
                if guard.raise_on_hit:
                    guard._hit(hit)
                # Noted here only when the operator layer below does not name it itself, so that
                # torch.softmax reads as one hit, aten::_softmax, and not two.
                seen = guard._dispatch_hits
                try:
                    return func(*args, **(kwargs or {}))
                finally:
                    if guard._dispatch_hits == seen:
                        guard._hit(hit)

        dispatch, function = _Dispatch(), _Function()
        function.__enter__()
        try:
            dispatch.__enter__()
        except BaseException:
            function.__exit__(None, None, None)
            raise
        self._modes = (function, dispatch)
        return self

    def __exit__(self, *exc) -> None:
        modes, self._modes = self._modes, None
        if modes:
            function, dispatch = modes
            try:
                dispatch.__exit__(*exc)
            finally:
                function.__exit__(*exc)
