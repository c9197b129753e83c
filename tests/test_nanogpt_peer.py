"""benchmarks/nanogpt_peer.py, run on a stand-in nanoGPT checkout (the real one is not downloaded here).

The stand-in has nanoGPT's interface: train.py takes a config file and --key=value flags, seeds
with the line the script replaces, reads data/<dataset>/{train.bin, val.bin, meta.pkl}, prints
"step N: train loss X, val loss Y" and writes out/ckpt.pt with model, model_args and iter_num;
model.py has GPTConfig and GPT whose forward(idx, targets) returns (logits, loss).
"""
from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from conftest import load_benchmark
from lmcourse.data import story_corpus
from lmcourse.tokenizers import CharTokenizer


FAKE_MODEL = '''
from dataclasses import dataclass
import torch.nn as nn
import torch.nn.functional as F

@dataclass
class GPTConfig:
    vocab_size: int = 65
    n_embd: int = 8

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, idx, targets=None):
        logits = self.head(self.emb(idx))
        # .view, as nanoGPT: fails on a strided slice, which is what evaluate() passes
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
'''

FAKE_TRAIN = '''
import os, pickle, sys
import numpy as np
import torch
from model import GPT, GPTConfig
seed_offset = 0
torch.manual_seed(1337 + seed_offset)
args = dict(a[2:].split("=", 1) for a in sys.argv[2:])
assert os.path.isfile(sys.argv[1]), sys.argv[1]
data = os.path.join("data", args["dataset"])
meta = pickle.load(open(os.path.join(data, "meta.pkl"), "rb"))
assert len(np.fromfile(os.path.join(data, "train.bin"), dtype=np.uint16)) > 0
model = GPT(GPTConfig(vocab_size=meta["vocab_size"]))
os.makedirs(args["out_dir"], exist_ok=True)
it = int(args["max_iters"])
torch.save({"model": model.state_dict(), "model_args": {"vocab_size": meta["vocab_size"]}, "iter_num": it,
            "best_val_loss": torch.tensor(9.0)}, os.path.join(args["out_dir"], "ckpt.pt"))
print(f"step {it}: train loss 4.2000, val loss 4.3000")
'''


@pytest.fixture(scope="module")
def peer():
    return load_benchmark("nanogpt_peer")


@pytest.fixture
def checkout(tmp_path):
    d = tmp_path / "nanoGPT"
    (d / "config").mkdir(parents=True)
    (d / "config" / "train_shakespeare_char.py").write_text("dataset = 'shakespeare_char'\n")
    (d / "configurator.py").write_text("")
    (d / "model.py").write_text(FAKE_MODEL)
    (d / "train.py").write_text(FAKE_TRAIN)
    return d


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text(story_corpus(20_000), encoding="utf-8")
    return p


def test_prepare_writes_prepare_py_data_with_lmcourse_ids_and_sets_the_seed(peer, checkout, tmp_path, text):
    work = tmp_path / "work"
    work.mkdir()
    s = text.read_text(encoding="utf-8")
    tok = CharTokenizer.fit(s)
    data = peer.prepare(checkout, work, s, tok, seed=7)
    n = int(len(s) * 0.9)
    assert np.fromfile(data / "train.bin", dtype=np.uint16).tolist() == tok.encode(s[:n])
    assert np.fromfile(data / "val.bin", dtype=np.uint16).tolist() == tok.encode(s[n:])
    meta = pickle.loads((data / "meta.pkl").read_bytes())
    assert meta["vocab_size"] == tok.vocab_size and meta["itos"][3] == tok.itos[3]
    train_py = (work / "train.py").read_text()
    assert "torch.manual_seed(7 + seed_offset)" in train_py and "1337" not in train_py
    assert (checkout / "train.py").read_text() == FAKE_TRAIN  # the checkout is left as it was


def test_not_a_checkout_or_no_seed_line_is_a_one_line_error(peer, checkout, tmp_path, text):
    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    tok = CharTokenizer.fit("ab")
    with pytest.raises(SystemExit, match="not a nanoGPT checkout .no model.py"):
        (checkout / "model.py").rename(checkout / "gone.py")
        peer.prepare(checkout, tmp_path / "w1", "ab", tok, 1)
    (checkout / "gone.py").rename(checkout / "model.py")
    (checkout / "train.py").write_text(FAKE_TRAIN.replace("1337 + seed_offset", "42"))
    with pytest.raises(SystemExit, match="no line 'torch.manual_seed"):
        peer.prepare(checkout, tmp_path / "w2", "ab", tok, 1)


def test_quick_run_measures_the_checkpoint_on_lmcourses_val_batches(peer, checkout, text, capsys):
    assert peer.main(["--nanogpt", str(checkout), "--threads", "1", "--data", str(text), "--quick"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"^nanogpt +(\d+) iterations, wall +[\d.]+ s .*its own val at step (\d+): 4\.3000 \(2 random batches\).*"
                  r"on lmcourse's 200 fixed batches: ([\d.]+)$", out, re.M)
    assert m, out
    assert m[1] == m[2] == "4"  # QUICK_FLAGS' max_iters, read back from the checkpoint
    val = float(m[3])  # an untrained model: about log(vocab size)
    assert 0.5 * np.log(CharTokenizer.fit(text.read_text()).vocab_size) < val < 2 * np.log(200)
    assert re.search(r"^lmcourse .* val [\d.]+ \(2 batches", out, re.M)
    assert re.search(rf"^val on the same batches: lmcourse [\d.]+, nanoGPT {m[3]}; wall: lmcourse .*figures mean nothing", out, re.M)


def test_a_failing_nanogpt_run_says_so(peer, checkout, text):
    (checkout / "train.py").write_text(FAKE_TRAIN + "\nraise SystemExit('boom')\n")
    with pytest.raises(SystemExit, match=r"nanoGPT's train.py failed \(status 1\)"):
        peer.main(["--nanogpt", str(checkout), "--threads", "1", "--data", str(text), "--quick", "--skip-lmcourse"])
