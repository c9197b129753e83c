"""The attention explorer, headless: set its controls, read back what it drew."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from lmcourse.attention import scaled_dot_product_attention
from lmcourse.widgets import attention_explorer

PNG = b"\x89PNG\r\n\x1a\n"


def drawn(view) -> list[np.ndarray]:
    """The arrays of the heatmaps in the figure, one per axes that has an image."""
    return [np.asarray(ax.images[0].get_array()) for ax in view.figure.axes if ax.images]


@pytest.fixture
def explorer():
    return attention_explorer(sentence="the cat sat on the mat because it was tired", n_head=3, seed=0, d_model=24)


def test_draws_one_heatmap_per_head_and_returns_its_weights(explorer):
    view = explorer.render()
    T = 10
    assert view.tokens[:3] == ["the", "cat", "sat"] and len(view.tokens) == T
    assert view.weights.shape == (3, T, T)
    assert len(view.figure.axes) == 3 and view.heads == [0, 1, 2]
    for h, img in enumerate(drawn(view)):
        np.testing.assert_allclose(img, view.weights[h].numpy(), atol=0)
        assert view.figure.axes[h].get_title() == f"head {h}"
        assert [t.get_text() for t in view.figure.axes[h].get_xticklabels()] == view.tokens
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
    assert view.heads == [1] and len(view.figure.axes) == 1
    np.testing.assert_allclose(drawn(view)[0], all_heads[1].numpy(), atol=0)
    explorer.head.value = -1
    assert len(explorer.last.figure.axes) == 3


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
