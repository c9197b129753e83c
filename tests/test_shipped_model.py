"""The shipped model (lmcourse/checkpoints/story_tiny/): small, trained from the committed config, and
still the model its record describes (val loss on the fixed held-out batches), plus export's errors."""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil

import pytest
import torch

from lmcourse import pretrained
from lmcourse.data import story_corpus
from lmcourse.generation import generate
from lmcourse.model import GPT, PRESETS, GPTConfig
from lmcourse.tokenizers import BPETokenizer
from lmcourse.training import TokenData, TrainConfig, save_tokenizer, train

MAX_BYTES = 5_000_000
# Stated with the model (0.490 when shipped; ln 512 = 6.24 is a uniform guess): a rebuild must reach it too.
VAL_BELOW = 0.6


@pytest.fixture(scope="module")
def info():
    return pretrained.story_info()


@pytest.fixture(scope="module")
def model():
    return pretrained.story_gpt()


@pytest.fixture(scope="module")
def tokenizer():
    return pretrained.story_tokenizer()


def test_shipped_files_fit_in_5_mb():
    files = [p for p in pretrained.STORY_DIR.iterdir() if p.is_file()] + [pretrained.STORY_CONFIG]
    assert {p.name for p in files} == {"model.safetensors", "tokenizer.bpe", "model.json", "story_tiny.json"}
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES


def test_trained_from_the_committed_config(info, model, tokenizer):
    """The record's configs are what `lmcourse train --config story_tiny.json` builds (no hand-made model)."""
    config = json.loads(pretrained.STORY_CONFIG.read_text(encoding="utf-8"))
    preset = dataclasses.replace(PRESETS[config["preset"]], **config.get("model", {}))
    want_train = TrainConfig.from_dict({"block_size": preset.block_size, **config["train"]})
    assert TrainConfig.from_dict(info["train_config"]) == want_train
    want_model = dataclasses.replace(preset, vocab_size=config["vocab_size"], block_size=want_train.block_size)
    assert GPTConfig(**info["model_config"]) == want_model == model.config
    assert info["run"] == {"corpus": config["corpus"], "tokenizer": config["tokenizer"],
                           "val_fraction": config["val_fraction"]}
    assert info["step"] == want_train.steps
    assert tokenizer.vocab_size == config["vocab_size"]
    assert info["bytes"] == (pretrained.STORY_DIR / "model.safetensors").stat().st_size


def test_val_loss_matches_the_record(info, model):
    """The fixed held-out batches give the recorded figure again (1e-4 relative: thread counts may differ)."""
    val = pretrained.story_val_loss(model)
    assert val == pytest.approx(info["val_loss"], rel=1e-4)
    assert val < VAL_BELOW
    assert info["train_val_loss"] == pytest.approx(info["val_loss"], rel=1e-4)  # the run's own final evaluation


def test_generates_story_words(model, tokenizer):
    prompt = "Once upon a time, "
    idx = torch.tensor([tokenizer.encode(prompt)])
    out = generate(model, idx, max_new_tokens=24)
    assert out.shape == (1, idx.shape[1] + 24)
    assert torch.equal(out, generate(model, idx, max_new_tokens=24))  # greedy: deterministic
    text = tokenizer.decode(out[0].tolist())
    assert text.startswith(prompt)
    words = re.findall(r"[a-z]+", text[len(prompt):].lower())
    known = set(re.findall(r"[a-z]+", story_corpus(100_000).lower()))
    assert len(words) >= 4
    assert sum(w in known for w in words[:-1]) >= 0.8 * (len(words) - 1)  # the last may be cut mid-word


def test_a_changed_weight_file_is_refused(tmp_path):
    folder = tmp_path / "story_tiny"
    shutil.copytree(pretrained.STORY_DIR, folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model\.safetensors: corrupted or replaced"):
        pretrained.story_gpt(folder=folder)
    (folder / "model.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.json: missing"):
        pretrained.story_gpt(folder=folder)


def _run(tmp_path, steps: int, stop_at: int | None = None):
    """A 2-layer BPE run on 20k characters of stories in a run folder, as `lmcourse train` lays it out."""
    text = story_corpus(20_000)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    tok = BPETokenizer().train(text, 300)
    cfg = TrainConfig(steps=steps, batch_size=4, block_size=16, warmup_steps=1, eval_interval=steps,
                      eval_batches=3, device="cpu", dtype="fp32", seed=3)
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=32))
    run = tmp_path / "run"
    run.mkdir()
    save_tokenizer(tok, run)
    (run / "run.json").write_text(json.dumps({"corpus": str(corpus), "tokenizer": "bpe", "preset": "tiny",
                                              "val_fraction": 0.1}), encoding="utf-8")
    data = TokenData.from_ids(tok.encode(text), val_fraction=0.1)

    class Stop:
        def on_step(self, info):
            return stop_at is not None and info.step + 1 >= stop_at

    result = train(model, data, cfg, out_dir=run, callbacks=[Stop()], progress=False, plot=False)
    return run, model, result


def test_export_then_load_gives_the_same_model_and_val_loss(tmp_path):
    run, model, result = _run(tmp_path, steps=4)
    dest = tmp_path / "shipped"
    info = pretrained.export(run, dest)
    loaded = pretrained.story_gpt(folder=dest)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert info["step"] == 4 and math.isfinite(info["val_loss"])
    assert info["val_loss"] == pytest.approx(result.val_losses[-1], rel=1e-6)  # export re-measures the run's figure
    assert pretrained.story_val_loss(folder=dest) == info["val_loss"]
    assert pretrained.story_tokenizer(dest).merges == BPETokenizer.load(run / "tokenizer.bpe").merges


def test_export_refuses_an_unfinished_run(tmp_path):
    run, _, _ = _run(tmp_path, steps=6, stop_at=2)
    with pytest.raises(ValueError, match=r"step 2 of 6: the run is not finished"):
        pretrained.export(run, tmp_path / "shipped")
    assert not (tmp_path / "shipped" / "model.json").exists()
    assert pretrained.main([str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 1
