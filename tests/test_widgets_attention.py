"""The attention explorer, headless: set its controls, read back what it drew."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from lmcourse.attention import scaled_dot_product_attention
from lmcourse.widgets import DISPLAY_DPI, PIXEL_RATIO, attention_explorer, png_size

PNG = b"\x89PNG\r\n\x1a\n"


def heatmaps(view) -> list:
    """The axes of the figure that hold a heatmap (the colour bar's axes hold none)."""
    return [ax for ax in view.figure.axes if ax.images]


def drawn(view) -> list[np.ndarray]:
    """The arrays of the heatmaps in the figure, one per axes that has an image."""
    return [np.asarray(ax.images[0].get_array()) for ax in heatmaps(view)]


@pytest.fixture
def explorer():
    return attention_explorer(sentence="the cat sat on the mat because it was tired", n_head=3, seed=0, d_model=24)


def test_draws_one_heatmap_per_head_and_returns_its_weights(explorer):
    view = explorer.render()
    T = 10
    assert view.tokens[:3] == ["the", "cat", "sat"] and len(view.tokens) == T
    assert view.weights.shape == (3, T, T)
    assert len(heatmaps(view)) == 3 and view.heads == [0, 1, 2]
    for h, img in enumerate(drawn(view)):
        ax = heatmaps(view)[h]
        np.testing.assert_allclose(img, view.weights[h].numpy(), atol=0)
        assert ax.get_title() == f"head {h}"
        assert [t.get_text() for t in ax.get_xticklabels()] == view.tokens
        assert [t.get_text() for t in ax.get_yticklabels()] == view.tokens
        assert ax.get_xlabel() == "key (attended to)" and ax.get_ylabel() == "query (attending)"
    # rows are distributions, and the PNG shown in the widget is the figure
    torch.testing.assert_close(view.weights.sum(-1), torch.ones(3, T, dtype=view.weights.dtype))
    assert bytes(explorer.image.value).startswith(PNG)
    assert explorer.last is view


def test_setting_a_control_redraws(explorer):
    before = explorer.image.value
    explorer.causal.value = True  # no render() call: the observer redraws
    assert explorer.last.causal and bytes(explorer.image.value) != bytes(before)


def test_causal_checkbox_zeroes_the_upper_triangle(explorer):
    assert explorer.last.weights.triu(1).abs().max() > 0.01  # without the mask, the future gets weight
    explorer.causal.value = True
    view = explorer.last
    assert view.causal
    for img in drawn(view):
        assert np.abs(np.triu(img, 1)).max() == 0.0
        assert img[0, 0] == pytest.approx(1.0)  # the first token can only look at itself
    torch.testing.assert_close(view.weights.sum(-1), torch.ones(3, 10, dtype=view.weights.dtype))
    explorer.causal.value = False
    assert explorer.last.weights.triu(1).abs().max() > 0.01


def test_weights_are_the_library_formula(explorer):
    explorer.causal.value = True
    view = explorer.last
    x = explorer.embed(view.tokens)
    q = (x @ explorer.W_q).view(10, 3, 8).transpose(0, 1)
    k = (x @ explorer.W_k).view(10, 3, 8).transpose(0, 1)
    ref = torch.softmax((q @ k.mT / math.sqrt(8)).masked_fill(~torch.ones(10, 10, dtype=torch.bool).tril(), -math.inf), -1)
    torch.testing.assert_close(view.weights, ref)
    _, w = scaled_dot_product_attention(q, k, k, is_causal=True, return_weights=True)
    torch.testing.assert_close(view.weights, w)


def test_larger_scale_is_sharper(explorer):
    h_default, peak_default = explorer.last.entropy(), explorer.last.weights.amax(-1).mean()
    assert explorer.last.scale == pytest.approx(1 / math.sqrt(8))
    explorer.scale.value = "one"  # drop the 1/√d_k: √8 times larger logits
    sharp = explorer.last
    assert sharp.scale == pytest.approx(1.0)
    assert (sharp.entropy() < h_default).all()
    assert sharp.weights.amax(-1).mean() > peak_default + 0.1  # the largest weight of a row grows
    explorer.scale.value = "inv_sqrt"
    explorer.multiplier.value = 0.125  # far flatter than the default
    flat = explorer.last
    assert flat.scale == pytest.approx(0.125 / math.sqrt(8))
    assert (flat.entropy() > h_default).all()
    assert (flat.entropy() <= math.log(10) + 1e-9).all()  # never above uniform
    # the drawn image follows the scale
    img_flat = drawn(flat)[0]
    assert img_flat.max() < drawn(sharp)[0].max()


def test_scale_zero_limit_is_uniform():
    ex = attention_explorer(sentence="a b c d", n_head=2, seed=1, d_model=8)
    ex.multiplier.value = 2.0**-3
    ex.scale.value = "inv_sqrt"
    w = ex.last.weights
    assert (w - 0.25).abs().max() < 0.2  # close to 1/T everywhere


def test_sentence_box_changes_T(explorer):
    explorer.sentence.value = "attention is all you need ."
    view = explorer.last
    assert view.tokens == ["attention", "is", "all", "you", "need", "."]
    assert view.weights.shape == (3, 6, 6)
    assert all(img.shape == (6, 6) for img in drawn(view))
    explorer.sentence.value = "   "
    empty = explorer.last
    assert empty.weights.shape == (3, 0, 0) and drawn(empty) == []


def test_head_selector_draws_one_head(explorer):
    all_heads = explorer.last.weights
    explorer.head.value = 1
    view = explorer.last
    assert view.heads == [1] and len(heatmaps(view)) == 1
    np.testing.assert_allclose(drawn(view)[0], all_heads[1].numpy(), atol=0)
    explorer.head.value = -1
    assert len(heatmaps(explorer.last)) == 3


def test_same_seed_same_drawing_and_words_keep_their_vectors():
    a = attention_explorer(sentence="the cat sat", n_head=2, seed=3, d_model=8)
    b = attention_explorer(sentence="the cat sat", n_head=2, seed=3, d_model=8)
    assert torch.equal(a.last.weights, b.last.weights)
    c = attention_explorer(sentence="the cat sat", n_head=2, seed=4, d_model=8)
    assert not torch.allclose(a.last.weights, c.last.weights)
    # "cat" gets the same word vector in another sentence (positions aside)
    e1, e2 = a.embed(["cat"]), a.embed(["Cat", "dog"])
    torch.testing.assert_close(e1[0], e2[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="d_model=10 must be divisible by n_head=3"):
        attention_explorer(n_head=3, d_model=10)
    with pytest.raises(ValueError, match="n_head must be a positive int"):
        attention_explorer(n_head=0)


def test_colour_bar_says_what_the_colour_means(explorer):
    view = explorer.render()
    bars = [ax for ax in view.figure.axes if not ax.images]
    assert len(bars) == 1 and bars[0].get_ylabel() == "attention weight"
    assert heatmaps(view)[0].images[0].get_clim() == (0.0, 1.0)  # the same colour scale for every head


def shown_width(ex) -> int:
    """The width in CSS pixels that the image widget asks for: '412px' -> 412."""
    width = ex.image.layout.width
    assert isinstance(width, str) and width.endswith("px"), f"image width {width!r} is not a size in pixels"
    return int(width[:-2])


@pytest.mark.parametrize("sentence, n_head", [("the cat sat on the mat because it was tired", 2),
                                               ("the cat sat on the mat because it was tired", 1),
                                               ("hi there", 2), ("a", 1)])
def test_image_is_shown_at_its_natural_size(sentence, n_head):
    """The heatmap is never stretched to the output width: the widget shows the PNG at
    1 / PIXEL_RATIO of its pixel size (sharp on high-density screens), and is not a flex
    item that stretches (a VBox is a flex column whose default is align-items: stretch)."""
    ex = attention_explorer(sentence=sentence, n_head=n_head, seed=0)
    w_px, h_px = png_size(ex.image.value)  # a memoryview, as the widget holds it
    fig_w, fig_h = ex.last.figure.get_size_inches()
    assert (w_px, h_px) == (round(fig_w * DISPLAY_DPI * PIXEL_RATIO), round(fig_h * DISPLAY_DPI * PIXEL_RATIO))
    assert shown_width(ex) == round(w_px / PIXEL_RATIO)
    assert ex.image.layout.align_self == "flex-start"
    assert ex.image.layout.height in (None, "auto")  # the aspect ratio is kept
    assert ex.image in ex.ui.children


def test_image_size_follows_the_heads_and_the_sentence():
    ex = attention_explorer(sentence="the cat sat on the mat because it was tired", n_head=2, seed=0)
    two_heads = shown_width(ex)
    ex.head.value = 0
    one_head = shown_width(ex)
    assert 1.7 * one_head < two_heads < 2.1 * one_head  # a fixed size per head, not the full width
    ex.sentence.value = "hi there"
    short = shown_width(ex)
    assert short < 0.7 * one_head  # a short sentence gets a small heatmap, not a blown-up one
    ex.sentence.value = " ".join(["word"] * 60)
    assert shown_width(ex) <= 5.0 * DISPLAY_DPI + 1.0 * DISPLAY_DPI  # capped for long sentences


def test_png_size_rejects_what_is_not_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


def test_png_size_reads_any_bytes_like_and_names_a_wrong_type():
    png = b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big")
    for value in (png, bytearray(png), memoryview(png)):
        assert png_size(value) == (640, 480)
    with pytest.raises(ValueError, match="png must be bytes, got str"):
        png_size("not bytes")


def test_explorer_title_says_what_is_drawn():
    ex = attention_explorer()
    view = ex.render()
    title = view.figure._suptitle.get_text()
    assert title.startswith("attention weights of each head") and "scale = 0.25" in title and "causal" not in title
    ex.causal.value = True
    assert ex.render().figure._suptitle.get_text().endswith(", causal mask")
