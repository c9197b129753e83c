"""The sampling explorer, headless: set its controls, read back the distributions it drew."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from lmcourse.generation import generate, top_k_filter, top_p_filter
from lmcourse.model import GPT, GPTConfig
from lmcourse.tokenizers import CharTokenizer
from lmcourse.widgets import SAMPLING_STAGES, sampling_explorer

PNG = b"\x89PNG\r\n\x1a\n"
TOK = CharTokenizer("abcdefghijklmnopqrstuvwxyz .")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT(GPTConfig.tiny(vocab_size=TOK.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():  # larger logits than the 0.02 init gives: distinct, clearly ordered probabilities
        m.lm_head.weight.mul_(40)
    return m.eval()


@pytest.fixture
def explorer(model):
    return sampling_explorer(model, TOK, prompt="the cat sat", n_show=8)


def bars(view) -> dict[str, list[float]]:
    """The heights of the drawn bars, per stage (read from the figure, not from the view)."""
    ax = view.figure.axes[0]
    return {c.get_label(): [b.get_height() for b in c] for c in ax.containers}


def model_logits(model, text):
    with torch.no_grad():
        return model(torch.tensor([TOK.encode(text)[-16:]]))[0][0, -1].double()


def test_draws_a_bar_per_stage_for_the_most_likely_tokens(explorer, model):
    view = explorer.render()
    probs = torch.softmax(model_logits(model, "the cat sat"), -1)
    assert view.shown == probs.argsort(descending=True)[:8].tolist()
    assert view.labels == [TOK.decode([i]).replace(" ", "␣") for i in view.shown]
    drawn = bars(view)
    assert list(drawn) == list(SAMPLING_STAGES)
    for name in SAMPLING_STAGES:
        assert drawn[name] == pytest.approx(view.stages[name][view.shown].tolist(), abs=1e-12)
        assert view.stages[name].sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(view.stages["model"], probs)
    ax = view.figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == view.labels
    assert ax.get_ylabel() == "probability" and "next token" in ax.get_xlabel()
    assert f"{TOK.vocab_size} of {TOK.vocab_size} tokens kept" in ax.get_title()
    assert bytes(explorer.image.value).startswith(PNG) and explorer.last is view


def test_final_stage_is_what_generate_samples_from(explorer, model):
    explorer.temperature.value, explorer.top_k.value, explorer.top_p.value = 0.7, 5, 0.6
    view = explorer.last
    scaled = model_logits(model, "the cat sat") / 0.7
    want = torch.softmax(top_p_filter(top_k_filter(scaled, 5), 0.6), -1)
    torch.testing.assert_close(view.final, want)
    # and generate's draws follow it: every sampled token is one the final stage keeps
    idx = torch.tensor([TOK.encode("the cat sat")] * 400)
    out = generate(model, idx, max_new_tokens=1, strategy="sample", temperature=0.7, top_k=5, top_p=0.6,
                   generator=torch.Generator().manual_seed(0))
    drawn = torch.bincount(out[:, -1], minlength=TOK.vocab_size).double() / 400
    assert set(out[:, -1].tolist()) <= set(torch.nonzero(view.final).flatten().tolist())
    assert (drawn - view.final).abs().max() < 0.1


def test_setting_a_control_redraws(explorer):
    before = bytes(explorer.image.value)
    explorer.temperature.value = 0.3  # no render() call: the observer redraws
    assert explorer.last.temperature == 0.3 and bytes(explorer.image.value) != before


def test_temperature_sharpens_and_flattens(explorer):
    def entropy(p):
        return -(p[p > 0] * p[p > 0].log()).sum().item()

    explorer.temperature.value = 1.0
    base = explorer.last
    torch.testing.assert_close(base.stages["temperature"], base.stages["model"])  # T = 1 changes nothing
    explorer.temperature.value = 0.5
    cold = explorer.last.stages["temperature"]
    explorer.temperature.value = 2.0
    hot = explorer.last.stages["temperature"]
    assert entropy(cold) < entropy(base.stages["model"]) < entropy(hot)
    explorer.temperature.value = 0.0  # argmax: a one-hot on the most likely token
    zero = explorer.last
    assert zero.kept == 1 and zero.final[zero.shown[0]].item() == 1.0


def test_top_k_keeps_exactly_k(explorer):
    for k in (1, 3, 7):
        explorer.top_k.value = k
        view = explorer.last
        assert view.kept == k
        assert set(torch.nonzero(view.stages["top-k"]).flatten().tolist()) == set(view.shown[:k])
    explorer.top_k.value = 0  # off
    assert explorer.last.kept == TOK.vocab_size


def test_top_p_keeps_the_smallest_set_reaching_p_boundary_included(explorer):
    explorer.top_p.value = 0.5
    view = explorer.last
    order = view.stages["temperature"].argsort(descending=True)
    mass = view.stages["temperature"][order].cumsum(0)
    n = int((mass < 0.5).sum()) + 1  # the tokens before the crossing, and the one that crosses
    assert view.kept == n and view.stages["temperature"][order[:n]].sum() >= 0.5
    assert view.stages["temperature"][order[:n - 1]].sum() < 0.5
    assert set(torch.nonzero(view.final).flatten().tolist()) == set(order[:n].tolist())


def test_prompt_longer_than_the_context_is_cut_like_generate(explorer, model):
    long = "the cat sat on the mat and the dog ran to the park"
    explorer.prompt.value = long
    view = explorer.last
    assert view.ids == TOK.encode(long)[-16:]
    torch.testing.assert_close(view.stages["model"], torch.softmax(model_logits(model, long), -1))


def test_empty_and_unencodable_prompts_say_so(explorer):
    explorer.prompt.value = ""
    assert explorer.last.stages == {} and explorer.last.message == "type a prompt" and explorer.last.kept == 0
    explorer.prompt.value = "Ünknown!"  # characters this CharTokenizer has never seen
    assert explorer.last.stages == {} and explorer.last.message.startswith("cannot encode the prompt")
    assert bytes(explorer.image.value).startswith(PNG)
    explorer.prompt.value = "the dog"  # and it recovers
    assert explorer.last.kept == TOK.vocab_size


@pytest.mark.parametrize("kwargs, match", [
    (dict(model=torch.nn.Linear(2, 2)), "model must be a GPT"),
    (dict(tokenizer=object()), "tokenizer must have encode and decode"),
    (dict(prompt=3), "prompt must be a str"),
    (dict(n_show=0), "n_show must be a positive int"),
])
def test_bad_arguments_name_the_problem(model, kwargs, match):
    args = dict(model=model, tokenizer=TOK, prompt="the", n_show=5) | kwargs
    with pytest.raises(ValueError, match=match):
        sampling_explorer(**args)
