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


# -- sampling explorer (chapter 08) -----------------------------------------------------
SAMPLING_STAGES = ("model", "temperature", "top-k", "top-p")  # the order generate() applies them in


def _token_label(s: str) -> str:
    """A token as a tick label: spaces and line breaks made visible."""
    return s.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


class SamplingView:
    """What `SamplingExplorer.render` drew: the prompt's ids (the last block_size of them), the
    next-token distribution (V,) after each stage of `SAMPLING_STAGES` (float64, summing to 1),
    the token ids shown (`shown`, the most likely under the model first) and their labels, the
    controls' values, the number of tokens the last stage keeps, and the matplotlib Figure.
    `stages` is empty, and `message` says why, when there is nothing to draw (no prompt, or a
    prompt the tokenizer cannot encode)."""

    def __init__(self, prompt: str, ids: list[int], stages: dict[str, "torch.Tensor"], shown: list[int],
                 labels: list[str], temperature: float, top_k: int, top_p: float, figure: "Figure",
                 message: str = "") -> None:
        self.prompt, self.ids, self.stages, self.shown, self.labels = prompt, ids, stages, shown, labels
        self.temperature, self.top_k, self.top_p, self.figure, self.message = temperature, top_k, top_p, figure, message

    @property
    def final(self) -> "torch.Tensor | None":
        """The distribution `generate` samples from with these settings (the last stage), or None."""
        return self.stages.get(SAMPLING_STAGES[-1])

    @property
    def kept(self) -> int:
        """How many tokens the last stage leaves a chance (probability > 0)."""
        return 0 if self.final is None else int((self.final > 0).sum())

    def __repr__(self) -> str:
        return (f"SamplingView(prompt={self.prompt!r}, temperature={self.temperature:g}, top_k={self.top_k}, "
                f"top_p={self.top_p:g}, kept={self.kept})")


class SamplingExplorer:
    """A prompt, temperature / top-k / top-p sliders, and the model's next-token distribution after each filter.

    The prompt is encoded by `tokenizer`, cut to the model's last block_size tokens (as
    `generate` does), and run through `model` once; the logits of the next token then pass
    through the stages in `generate`'s order: softmax of the raw logits ("model"), divided by
    the temperature ("temperature"; 0 means argmax, a one-hot), `top_k_filter` ("top-k"; 0 =
    off), `top_p_filter` ("top-p"; 1 = off). The last stage is exactly the distribution
    `generate(strategy="sample", ...)` draws from. The chart shows the n_show tokens the model
    finds most likely, one bar per stage. Controls: `prompt` (Text), `temperature`,
    `top_k`, `top_p` (sliders); changing one calls `render()`. Derived in chapters/08_generation.ipynb.
    """

    def __init__(self, model, tokenizer, prompt: str, n_show: int = 12) -> None:
        import ipywidgets as W

        cfg = getattr(model, "config", None)
        if not all(hasattr(cfg, a) for a in ("vocab_size", "block_size")):
            raise ValueError(f"model must be a GPT (a .config with vocab_size and block_size), got {type(model).__name__}")
        if not (callable(getattr(tokenizer, "encode", None)) and callable(getattr(tokenizer, "decode", None))):
            raise ValueError(f"tokenizer must have encode and decode, got {type(tokenizer).__name__}")
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a str, got {type(prompt).__name__}")
        if isinstance(n_show, bool) or not isinstance(n_show, int) or n_show < 1:
            raise ValueError(f"n_show must be a positive int, got {n_show!r}")
        self.model, self.tokenizer = model, tokenizer
        self.V, self.block_size = int(cfg.vocab_size), int(cfg.block_size)
        self.n_show = min(n_show, self.V)
        self._logits_for: tuple[tuple[int, ...], "torch.Tensor"] | None = None
        self.last: SamplingView | None = None

        self.prompt = W.Text(value=prompt, description="prompt", continuous_update=False, layout=W.Layout(width="60%"))
        self.temperature = W.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description="temperature")
        self.top_k = W.IntSlider(value=0, min=0, max=self.V, step=1, description="top-k (0 off)")
        self.top_p = W.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p (1 off)")
        self.image = W.Image(format="png", layout=W.Layout(align_self="flex-start", height="auto"))
        for c in (self.prompt, self.temperature, self.top_k, self.top_p):
            c.observe(lambda _change: self.render(), names="value")
        self.ui = W.VBox([self.prompt, W.HBox([self.temperature, self.top_k, self.top_p]), self.image])
        self.render()

    # -- the numbers -------------------------------------------------------------------
    def context(self, prompt: str) -> list[int]:
        """The token ids the model sees for `prompt`: its encoding, cut to the last block_size."""
        return list(self.tokenizer.encode(prompt))[-self.block_size:]

    def logits(self, ids: list[int]) -> "torch.Tensor":
        """(V,) float64 logits of the token after `ids` (the model runs once per distinct context)."""
        import torch

        key = tuple(ids)
        if self._logits_for is None or self._logits_for[0] != key:
            p = next(self.model.parameters())
            was_training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad():
                    out = self.model(torch.tensor([ids], dtype=torch.long, device=p.device))
            finally:
                self.model.train(was_training)
            self._logits_for = (key, out[0][0, -1].double().cpu())
        return self._logits_for[1]

    def distributions(self, logits: "torch.Tensor", temperature: float, top_k: int, top_p: float) -> dict[str, "torch.Tensor"]:
        """The next-token distribution (V,) after each stage, as `generate` applies them."""
        import torch

        from .generation import top_k_filter, top_p_filter

        stages = {"model": torch.softmax(logits, -1)}
        if temperature == 0:  # the limit T -> 0: all the mass on the argmax, as generate() does
            scaled = torch.full_like(logits, float("-inf"))
            scaled[logits.argmax()] = 0.0
        else:
            scaled = logits / temperature
        stages["temperature"] = torch.softmax(scaled, -1)
        if top_k:
            scaled = top_k_filter(scaled, int(top_k))
        stages["top-k"] = torch.softmax(scaled, -1)
        if top_p < 1.0:
            scaled = top_p_filter(scaled, float(top_p))
        stages["top-p"] = torch.softmax(scaled, -1)
        return stages

    # -- the drawing -------------------------------------------------------------------
    def render(self) -> SamplingView:
        """Redraw from the controls' current values; return what was drawn (also kept in `.last`)."""
        import io

        import numpy as np
        from matplotlib.figure import Figure

        prompt = self.prompt.value
        T, k, p = float(self.temperature.value), int(self.top_k.value), float(self.top_p.value)
        message, ids, stages, shown, labels = "", [], {}, [], []
        try:
            ids = self.context(prompt)
        except ValueError as e:  # e.g. a character a CharTokenizer has never seen
            message = f"cannot encode the prompt: {e}"
        if not message and not ids:
            message = "type a prompt"
        fig = Figure(figsize=(max(6.0, 0.62 * self.n_show + 1.5), 3.6), dpi=DISPLAY_DPI, layout="constrained")
        ax = fig.add_subplot()
        if message:
            ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
            ax.set_axis_off()
        else:
            stages = self.distributions(self.logits(ids), T, k, p)
            shown = stages["model"].argsort(descending=True, stable=True)[: self.n_show].tolist()
            labels = [_token_label(self.tokenizer.decode([i])) for i in shown]
            x = np.arange(len(shown))
            width = 0.8 / len(SAMPLING_STAGES)
            for j, name in enumerate(SAMPLING_STAGES):
                ax.bar(x + (j - 1.5) * width, stages[name][shown].numpy(), width, label=name)
            ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
            ax.set_xlabel(f"next token (the {len(shown)} most likely under the model)")
            ax.set_ylabel("probability")
            ax.set_ylim(0, 1)
            ax.legend(title="after", fontsize=8, title_fontsize=8)
            kept = int((stages["top-p"] > 0).sum())
            top_p_text = f"{p:g}" if p < 1 else "off"
            ax.set_title(f"next-token distribution after each filter: temperature {T:g}, top-k "
                         f"{k if k else 'off'}, top-p {top_p_text}; {kept} of {self.V} tokens kept", fontsize=9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DISPLAY_DPI * PIXEL_RATIO)
        png = buf.getvalue()
        self.image.value = png
        self.image.layout.width = f"{round(png_size(png)[0] / PIXEL_RATIO)}px"
        self.last = SamplingView(prompt, ids, stages, shown, labels, T, k, p, fig, message)
        return self.last

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)


def sampling_explorer(model, tokenizer, prompt: str = "Once upon a time", n_show: int = 12) -> SamplingExplorer:
    """An interactive view of sampling: the next-token distribution of `model` after the prompt,
    after temperature, top-k and top-p, drawn as bars for the n_show most likely tokens.

    Returns a `SamplingExplorer`; display it in a notebook cell, or set its controls
    (`.prompt.value`, `.temperature.value`, `.top_k.value`, `.top_p.value`) and call
    `.render()`, which returns a `SamplingView` with every stage's distribution (V,).
    Derived in chapters/08_generation.ipynb.
    """
    return SamplingExplorer(model, tokenizer, prompt, n_show=n_show)
