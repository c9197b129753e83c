"""benchmarks/train_cpu.py: the recipe as issue 9 states it, HF's model the same shape, and a --quick smoke run."""
from __future__ import annotations

import math
import re

import pytest
import torch

from conftest import load_benchmark
from lmcourse.data import story_corpus
from lmcourse.model import GPT


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("train_cpu")


def test_the_recipe_is_nanogpts_cpu_run(bench):
    m, r = bench.MODEL, bench.RECIPE
    assert (m.n_layer, m.n_head, m.n_embd, m.block_size, m.dropout) == (4, 4, 128, 64, 0.0)
    assert (r.steps, r.batch_size, r.block_size, r.lr, r.min_lr, r.warmup_steps) == (2000, 12, 64, 1e-3, 1e-4, 100)
    assert (r.betas, r.weight_decay, r.grad_clip, r.eval_batches, r.grad_accum) == ((0.9, 0.99), 0.1, 1.0, 200, 1)
    assert (r.device, r.dtype, r.compile) == ("cpu", "fp32", False)
    assert bench.BEAT.block_size == r.block_size and bench.BEAT.eval_batches == r.eval_batches  # the same val loss


def test_hf_model_has_the_same_shapes_and_loss(bench):
    """With lmcourse's weights copied in, HF's adapter computes the same loss: the same model, so tokens/s compare."""
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = GPT(bench.MODEL).eval()
    hf = bench.hf_model(bench.MODEL).eval()
    assert sum(p.numel() for p in hf.parameters()) == sum(p.numel() for p in ours.parameters())
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    sd = {"hf." + k: (v.t() if k.endswith(conv1d) else v) for k, v in ours.state_dict().items()}  # HF's names
    hf.load_state_dict(sd)
    x = torch.randint(0, bench.MODEL.vocab_size, (3, 64), generator=torch.Generator().manual_seed(1))
    y = torch.roll(x, -1, dims=1)
    with torch.no_grad():
        assert hf(x, y)[1].item() == pytest.approx(ours(x, y)[1].item(), rel=1e-5)
        assert hf(x)[1] is None


def test_quick_mode_prints_every_figure(bench, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text(story_corpus(30_000), encoding="utf-8")
    assert bench.main(["--quick", "--skip-hf", "--threads", "1", "--data", str(text)]) == 0
    out = capsys.readouterr().out
    runs = re.findall(r"^(lmcourse|beat) .*?([\d,]+) tokens/s, +([\d.]+) ms/iter, wall +([\d.]+) s; val ([\d.]+)", out, re.M)
    assert [r[0] for r in runs] == ["lmcourse", "beat"]
    for _, tps, ms, wall, val in runs:
        assert float(tps.replace(",", "")) > 0 and float(ms) > 0 and float(wall) > 0
        assert math.isfinite(float(val)) and 0 < float(val) < 10
    assert "recipe: val" in out and "beat the recipe: val" in out and "not a measurement" in out


def test_missing_data_exits_2(bench, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "SHARED", tmp_path / "absent.txt")
    monkeypatch.setenv("LMCOURSE_DATA", str(tmp_path))  # an empty download cache
    with pytest.raises(SystemExit) as e:
        bench.load_text()
    assert e.value.code == 2
    assert "no Tiny Shakespeare" in capsys.readouterr().err


def test_a_seed_changes_the_weights_and_data_order_but_not_the_val_batches(bench, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "train", lambda model, data, cfg, **kw: seen.append(("train", cfg.seed, model.transformer.wte.weight[0, 0].item())))
    monkeypatch.setattr(bench, "evaluate", lambda model, data, cfg: seen.append(("val", cfg.seed)) or 1.0)
    for seed in (None, 5):
        bench.one_run("lmcourse", None, 65, quick=True, seed=seed)
    (_, s0, w0), v0, (_, s5, w5), v5 = seen
    assert (s0, s5) == (bench.RECIPE.seed, 5) and w0 != w5  # data order and initial weights follow the seed
    assert v0 == v5 == ("val", bench.RECIPE.seed)  # the same 200 val batches, so the figures compare
