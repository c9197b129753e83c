"""Interactive widgets used by the chapters, built so they can be tested headlessly.

Each builder returns an object exposing its controls (ipywidgets) and a `render()`
that redraws from the controls' current values and returns what it drew (data, not
pixels), so a test can set values and read the result without a browser.
"""
from __future__ import annotations


# -- attention explorer (chapter 04) ----------------------------------------------------
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch and matplotlib are imported when a widget is built
    import torch
    from matplotlib.figure import Figure

ATTENTION_SCALES = {"1/√d_k": "inv_sqrt", "1 (no scaling)": "one"}
# The heatmap is shown at its natural size: DISPLAY_DPI screen pixels per inch of figure,
# rendered at PIXEL_RATIO times that so it stays sharp on high-density screens. The image
# widget gets that width in pixels and does not stretch to the output area (a VBox is a
# flex column, whose default `align-items: stretch` would widen the image to the full
# width and blur it).
DISPLAY_DPI = 80
PIXEL_RATIO = 2


def png_size(png: bytes | bytearray | memoryview) -> tuple[int, int]:
    """(width, height) in pixels of a PNG, read from its IHDR header (an Image widget's value works as is)."""
    if not isinstance(png, (bytes, bytearray, memoryview)):
        raise ValueError(f"png must be bytes, got {type(png).__name__}")
    png = bytes(png)
    if len(png) < 24 or not png.startswith(b"\x89PNG\r\n\x1a\n") or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image (no PNG signature and IHDR header)")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


class AttentionView:
    """What `AttentionExplorer.render` drew: tokens, weights (n_head, T, T) of every head,
    the heads shown, the scale used, the causal flag and the matplotlib Figure."""

    def __init__(self, tokens: list[str], weights: torch.Tensor, heads: list[int], scale: float, causal: bool,
                 figure: Figure) -> None:
        self.tokens, self.weights, self.heads = tokens, weights, heads
        self.scale, self.causal, self.figure = scale, causal, figure

    def entropy(self) -> torch.Tensor:
        """Mean entropy (nats) of the attention rows, one value per head: (n_head,)."""
        import torch

        w = self.weights
        if w.shape[-1] == 0:
            return torch.zeros(w.shape[0], dtype=w.dtype)
        return -(w * torch.log(w.clamp_min(1e-30))).sum(-1).mean(-1)

    def __repr__(self) -> str:
        return (f"AttentionView(T={len(self.tokens)}, heads={self.heads}, scale={self.scale:.4g}, "
                f"causal={self.causal})")


def _attention_tokens(sentence: str) -> list[str]:
    import re

    return re.findall(r"\w+|[^\w\s]", sentence)


class AttentionExplorer:
    """Sentence -> tokens -> embeddings -> per-head attention heatmaps, with controls.

    Embeddings are learning-free: each word (lower-cased) gets a fixed random vector drawn
    from a generator seeded by (seed, word), so a word keeps its vector when the sentence
    changes, plus sinusoidal positions. The query and key projections are seeded random
    matrices scaled so that q and k entries have unit variance, the setting of the √d_k argument.
    Controls: `sentence` (Text), `scale` (Dropdown: 1/√d_k or 1), `multiplier` (slider, the
    scale is multiplied by it), `causal` (Checkbox), `head` (Dropdown: -1 = all heads, or one).
    Changing any control calls `render()`. Derived in chapters/04_self_attention.ipynb.
    """

    def __init__(self, sentence: str, n_head: int = 2, d_model: int = 32, seed: int = 0) -> None:
        import ipywidgets as W
        import torch

        for name, v in (("n_head", n_head), ("d_model", d_model), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} int, got {v!r}")
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}")
        self.n_head, self.d_model, self.seed = n_head, d_model, seed
        self.head_size = d_model // n_head
        g = torch.Generator().manual_seed(seed)
        # entries of x are ~N(0, 1) and W ~ N(0, 1/d_model): q and k entries have variance ~1
        self.W_q = torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / d_model**0.5
        self.W_k = torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / d_model**0.5
        self.last: AttentionView | None = None

        self.sentence = W.Text(value=sentence, description="sentence", continuous_update=False,
                               layout=W.Layout(width="60%"))
        self.scale = W.Dropdown(options=list(ATTENTION_SCALES.items()), value="inv_sqrt", description="scale")
        self.multiplier = W.FloatLogSlider(value=1.0, base=2, min=-3, max=4, step=0.5, description="× multiplier")
        self.causal = W.Checkbox(value=False, description="causal mask")
        self.head = W.Dropdown(options=[("all heads", -1)] + [(f"head {h}", h) for h in range(n_head)],
                               value=-1, description="head")
        # natural size: a width in px is set at every render; never stretched by the VBox
        self.image = W.Image(format="png", layout=W.Layout(align_self="flex-start", height="auto"))
        for c in (self.sentence, self.scale, self.multiplier, self.causal, self.head):
            c.observe(lambda _change: self.render(), names="value")
        self.ui = W.VBox([self.sentence, W.HBox([self.scale, self.multiplier]), W.HBox([self.causal, self.head]), self.image])
        self.render()

    # -- the numbers -------------------------------------------------------------------
    def embed(self, tokens: list[str]) -> torch.Tensor:
        """(T, d_model): a fixed random vector per word plus sinusoidal positions."""
        import torch
        import zlib

        T, d = len(tokens), self.d_model
        x = torch.zeros(T, d, dtype=torch.float64)
        for t, word in enumerate(tokens):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(word.lower().encode()))
            x[t] = torch.randn(d, generator=g, dtype=torch.float64)
        pos = torch.arange(T, dtype=torch.float64)[:, None]
        freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        x[:, 0::2] += torch.sin(pos * freq)
        x[:, 1::2] += torch.cos(pos * freq)
        return x

    def current_scale(self) -> float:
        base = self.head_size**-0.5 if self.scale.value == "inv_sqrt" else 1.0
        return base * float(self.multiplier.value)

    def weights(self, tokens: list[str]) -> torch.Tensor:
        """(n_head, T, T) attention weights for `tokens` under the current controls."""
        import torch

        from .attention import scaled_dot_product_attention

        T, nh, hs = len(tokens), self.n_head, self.head_size
        if T == 0:
            return torch.zeros(nh, 0, 0, dtype=torch.float64)
        x = self.embed(tokens)
        q = (x @ self.W_q).view(T, nh, hs).transpose(0, 1)  # (nh, T, hs)
        k = (x @ self.W_k).view(T, nh, hs).transpose(0, 1)
        # only the weights are drawn, so the keys stand in for the values
        _, w = scaled_dot_product_attention(q, k, k, scale=self.current_scale(),
                                            is_causal=self.causal.value, return_weights=True)
        return w

    # -- the drawing -------------------------------------------------------------------
    def render(self) -> AttentionView:
        """Redraw from the controls' current values; return what was drawn (also kept in `.last`)."""
        import io

        from matplotlib.figure import Figure

        tokens = _attention_tokens(self.sentence.value)
        w = self.weights(tokens)
        heads = list(range(self.n_head)) if self.head.value == -1 else [int(self.head.value)]
        T = len(tokens)
        side = min(max(2.4, 0.32 * T + 1.2), 5.0)  # inches per head: grows with T, capped
        fig = Figure(figsize=(side * len(heads) + 1.0, side + 0.6), dpi=DISPLAY_DPI, layout="constrained")
        axes = fig.subplots(1, len(heads), squeeze=False)[0]
        im = None
        for ax, h in zip(axes, heads):
            if T == 0:
                ax.text(0.5, 0.5, "type a sentence", ha="center", va="center")
                ax.set_axis_off()
                continue
            im = ax.imshow(w[h].numpy(), vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_xticks(range(T), tokens, rotation=90, fontsize=8)
            ax.set_yticks(range(T), tokens, fontsize=8)
            ax.set_xlabel("key (attended to)")
            ax.set_ylabel("query (attending)")
            ax.grid(False)
            ax.set_title(f"head {h}", fontsize=9)
        if im is not None:
            fig.colorbar(im, ax=list(axes), label="attention weight", shrink=0.8)
        fig.suptitle(f"attention weights of each head (row = query, sums to 1); scale = {self.current_scale():.3g}"
                     + (", causal mask" if self.causal.value else ""), fontsize=9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DISPLAY_DPI * PIXEL_RATIO)
        png = buf.getvalue()
        self.image.value = png
        self.image.layout.width = f"{round(png_size(png)[0] / PIXEL_RATIO)}px"
        self.last = AttentionView(tokens, w, heads, self.current_scale(), bool(self.causal.value), fig)
        return self.last

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)


def attention_explorer(sentence: str = "the cat sat on the mat because it was tired",
                       n_head: int = 2, seed: int = 0, d_model: int = 32) -> AttentionExplorer:
    """An interactive attention explorer: per-head heatmaps of softmax(q·k · scale) for a sentence.

    Returns an `AttentionExplorer`; display it in a notebook cell, or set its controls
    (`.sentence.value`, `.scale.value`, `.multiplier.value`, `.causal.value`, `.head.value`)
    and call `.render()`, which returns an `AttentionView` with the weights (n_head, T, T).
    Derived in chapters/04_self_attention.ipynb.
    """
    return AttentionExplorer(sentence, n_head=n_head, d_model=d_model, seed=seed)


# -- BPE merge stepper (chapter 02) -----------------------------------------------------
_BPE_COLORS = ("#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d7f0f7", "#fce1c8", "#e0f2d8")


class BPEMergeStepper:
    """Step through the merges of a byte-level BPE trained on `text`, watching `text` re-tokenize.

    `slider` (IntSlider) is the number of merges k applied, 0..number learned; `render()` encodes
    the text with the first k merges and returns the tokens as strings (partial UTF-8 bytes
    shown as \\xNN), and shows them as coloured boxes with the merge just applied. Setting the
    slider redraws. Derived in chapters/02_tokenization.ipynb.
    """

    def __init__(self, text: str, vocab_size: int = 300, pattern: str = "gpt4", train_text: str | None = None):
        import ipywidgets as W

        from .tokenizers import BPETokenizer

        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        self.text = text
        self.tokenizer = BPETokenizer(pattern).train(text if train_text is None else train_text, vocab_size)
        self._merges = list(self.tokenizer.merges.items())
        self.slider = W.IntSlider(value=0, min=0, max=len(self._merges), description="merges",
                                  continuous_update=False)
        self.html = W.HTML()
        self.last: list[str] = []
        self.slider.observe(lambda _change: self.render(), names="value")
        self.ui = W.VBox([self.slider, self.html])
        self.render()

    def tokens_after(self, k: int) -> list[str]:
        """The tokens of `text` after the first `k` merges."""
        return self.tokenizer.truncated(k).tokens(self.text, allowed_special="none")

    def describe(self, k: int) -> str:
        """One line about merge number k (1-based): which pair became which new token."""
        if k == 0:
            return "0 merges: every token is one byte"
        (a, b), new_id = self._merges[k - 1]
        ts = self.tokenizer.token_str
        return f"merge {k}: {ts(a)!r} + {ts(b)!r} -> {ts(new_id)!r} (id {new_id})"

    def render(self) -> list[str]:
        """Redraw for the slider's current value; return the token strings (also kept in `.last`)."""
        import html

        k = int(self.slider.value)
        tokens = self.tokens_after(k)
        n_bytes = len(self.text.encode("utf-8"))
        boxes = "".join(
            f'<span style="background:{_BPE_COLORS[i % len(_BPE_COLORS)]};border:1px solid #999;'
            f'border-radius:3px;margin:1px;padding:0 2px;white-space:pre;font-family:monospace">'
            f"{html.escape(t.replace(' ', '␣'))}</span>"
            for i, t in enumerate(tokens)
        )
        self.html.value = (f"<div><b>{html.escape(self.describe(k))}</b> — {len(tokens)} tokens for "
                           f"{n_bytes} bytes</div><div style='line-height:1.9'>{boxes}</div>")
        self.last = tokens
        return tokens

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)


def bpe_merge_stepper(text: str, vocab_size: int = 300, pattern: str = "gpt4",
                      train_text: str | None = None) -> BPEMergeStepper:
    """A slider over BPE merges: train on `train_text` (default `text`) up to `vocab_size`, show `text`
    after k merges.

    Returns a `BPEMergeStepper`; display it in a notebook cell, or set `.slider.value` and call
    `.render()`, which returns the list of token strings. Derived in chapters/02_tokenization.ipynb.
    """
    return BPEMergeStepper(text, vocab_size=vocab_size, pattern=pattern, train_text=train_text)
