"""`lmcourse grade` against a class of cheats and honest students, graded in ONE sandboxed run.

Each submission is one attack class of issue 12 (or an honest case); each test asserts that
submission's exact statuses and points. Every student shares the run, so each test also shows the
others were graded right beside it. Needs bubblewrap (skipped where `sandbox.available()` says no).
"""
from __future__ import annotations

import csv
import json
import textwrap
import time
from pathlib import Path

import pytest

from lmcourse import grading, sandbox

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = json.loads((ROOT / "solutions" / "00_getting_started.ipynb").read_text())
STUBS = json.loads((ROOT / "exercises" / "00_getting_started.ipynb").read_text())
pytestmark = pytest.mark.skipif(sandbox.available() is not None, reason=f"no sandbox: {sandbox.available()}")

# An instructor's own course (chapter 20): exercises whose forbidden operators are ATen ones.
COURSE_CHECKS = '''
import torch
from lmcourse.checks import Case, Exercise


def _softmax(x):
    e = (x - x.max(dim=-1, keepdim=True).values).exp()
    return e / e.sum(dim=-1, keepdim=True)


def _nll(logits, targets):
    m = logits.max(dim=-1, keepdim=True).values
    lse = ((logits - m).exp().sum(dim=-1, keepdim=True)).log() + m
    return (lse - logits.gather(1, targets[:, None])).mean()


def _square_grad(x):
    return 2 * x


def _cases(seed, make):
    g = torch.Generator().manual_seed(seed)
    n = 3 + seed % 4
    return [make(g, n), make(g, n + 2)]


softmax_rows = Exercise("20.1", "softmax_rows", "Softmax by hand", _softmax,
    lambda s: _cases(s, lambda g, n: Case((torch.randn(2, n, generator=g, dtype=torch.float64),), label=f"n={n}")),
    forbidden_ops=("aten::_softmax", "aten::softmax", "aten::special_softmax", "aten::_log_softmax"))
nll = Exercise("20.2", "nll", "Mean negative log-likelihood", _nll,
    lambda s: _cases(s, lambda g, n: Case((torch.randn(4, n, generator=g, dtype=torch.float64),
                                           torch.randint(0, n, (4,), generator=g)), label=f"n={n}")),
    forbidden_ops=("aten::nll_loss*", "aten::_log_softmax", "aten::log_softmax", "aten::cross_entropy_loss"))
square_grad = Exercise("20.3", "square_grad", "The gradient of sum(x**2), by hand", _square_grad,
    lambda s: _cases(s, lambda g, n: Case((torch.randn(n, generator=g, dtype=torch.float64),), label=f"n={n}")),
    forbid_autograd=True)
'''
HONEST_20 = {
    "softmax_rows": "def softmax_rows(x):\n    e = (x - x.max(dim=-1, keepdim=True).values).exp()\n    return e / e.sum(dim=-1, keepdim=True)\n",
    "nll": "def nll(logits, targets):\n    m = logits.max(dim=-1, keepdim=True).values\n"
           "    lse = (logits - m).exp().sum(dim=-1, keepdim=True).log() + m\n"
           "    return (lse - logits.gather(1, targets[:, None])).mean()\n",
    "square_grad": "def square_grad(x):\n    return 2 * x\n",
}


def _cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}


def _replace(nb, marker: str, source: str) -> None:
    hits = [c for c in nb["cells"] if marker in "".join(c["source"])]
    assert len(hits) == 1, marker
    hits[0]["source"] = source


def _nb(cells: list[str]) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [_cell(c) for c in cells]}


def _ch20(**over) -> dict:
    """A chapter-20 notebook: the honest functions, with any replaced by `over`."""
    return _nb(["import torch\nimport checks", *[over.get(k, v) for k, v in HONEST_20.items()],
                "checks.softmax_rows.check(softmax_rows)\nchecks.nll.check(nll)"])


def _ch00(base: dict, edit=None) -> dict:
    nb = json.loads(json.dumps(base))
    if edit:
        edit(nb)
    return nb


def _alone(nb) -> None:
    """softmax_temperature without stable_softmax, so an attack on 0.1 leaves 0.3 as earned."""
    _replace(nb, "def softmax_temperature", "def softmax_temperature(x, temperature=1.0):\n    z = x / temperature\n"
             "    e = np.exp(z - z.max(axis=-1, keepdims=True))\n    return e / e.sum(axis=-1, keepdims=True)\n")


def _both(*edits):
    return lambda nb: [e(nb) for e in edits]


def _append(source: str):
    return lambda nb: nb["cells"].append(_cell(textwrap.dedent(source)))


def _course(tmp: Path) -> Path:
    root = tmp / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "checks.py").write_text(COURSE_CHECKS)
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Build the class, grade it once (--jobs 2, sandboxed), return rows by (student, exercise)."""
    tmp = tmp_path_factory.mktemp("class")
    subs, out = tmp / "subs", tmp / "out"
    marker = tmp / "leaked"
    notebooks: dict[str, dict] = {}

    def put(student: str, nb: dict, name: str) -> Path:
        path = subs / student / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb))
        return path

    full = put("a_full", SOLUTION, "00_getting_started.ipynb")
    # -- honest -------------------------------------------------------------------------------
    notebooks["h_partial"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def softmax_temperature", "def softmax_temperature(x, temperature=1.0):\n    return stable_softmax(x * temperature)\n"))
    notebooks["h_empty"] = STUBS
    notebooks["h_numpy_scalars"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def logsumexp", "def logsumexp(x, axis=-1):\n    m = x.max(axis=axis, keepdims=True)\n"
        "    return np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis)\n"))

    def mutates(nb):
        _replace(nb, "def stable_softmax", "def stable_softmax(x, axis=-1):\n    x -= x.max(axis=axis, keepdims=True)\n"
                 "    np.exp(x, out=x)\n    x /= x.sum(axis=axis, keepdims=True)\n    return x\n")
    notebooks["h_mutates"] = _ch00(SOLUTION, mutates)

    def in_check_cell(nb):
        _replace(nb, "def logsumexp", "import numpy as np")
        _replace(nb, "ch00.logsumexp.check(", "def logsumexp(x, axis=-1):\n    m = x.max(axis=axis, keepdims=True)\n"
                 "    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)\n"
                 "ch00.logsumexp.check(logsumexp)\nch00.logsumexp.hint()\nch00.logsumexp.solution()\n")
    notebooks["h_check_cell"] = _ch00(SOLUTION, in_check_cell)
    notebooks["h_magics"] = _ch00(SOLUTION, _append("ok = (1\n      != 2)\nassert ok\n%time y = 1\n!ls /\n%%capture\n"))
    # -- no isolation ---------------------------------------------------------------------------
    notebooks["x_reads_other"] = _ch00(STUBS, _append(f"""
        import json
        nb = json.load(open({str(full)!r}))
        for c in nb['cells']:
            if c['cell_type'] == 'code' and 'def ' in ''.join(c['source']):
                exec(''.join(c['source']))
    """))
    victim = subs / "z_victim" / "00_getting_started.ipynb"
    notebooks["x_overwrites_later"] = _ch00(SOLUTION, _append(f"""
        open({str(victim)!r}, 'w').write(open('/dev/null').read())
    """))
    notebooks["x_runs_solutions"] = _ch00(STUBS, _append(f"""
        import json, inspect
        try:
            src = inspect.getsource(ch00.stable_softmax.reference)
        except Exception:
            src = ''
        exec(src)
        nb = json.load(open({str(ROOT / 'solutions' / '00_getting_started.ipynb')!r}))
        for c in nb['cells']:
            if c['cell_type'] == 'code' and 'def ' in ''.join(c['source']):
                exec(''.join(c['source']))
    """))
    notebooks["x_forges_and_exits"] = _ch00(STUBS, _append("""
        import os, json
        for fd in range(3, 30):
            try:
                os.write(fd, (json.dumps({"ready": True, "log": []}) + "\\n" + "\\n".join(json.dumps(
                    {"exercise": i, "calls": [{"value": {"float": "1.0"}}] * 9}) for i in ("0.1", "0.2", "0.3")) + "\\n").encode())
            except OSError:
                pass
        os._exit(0)
    """))
    notebooks["x_detached_child"] = _ch00(SOLUTION, _append(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(4)
                for p in ({str(out / 'gradebook.csv')!r}, {str(marker)!r}, '/work/survived'):
                    try:
                        open(p, 'w').write('pwned')
                    except OSError:
                        pass
            os._exit(0)
    """))
    notebooks["x_env_leak"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def logsumexp", "import os\ndef logsumexp(x, axis=-1):\n    raise ValueError('ENV ' + repr(sorted(os.environ.items())))\n"))
    # -- the reference is reachable -----------------------------------------------------------
    public = {f"0.1/{i}": c for i, c in enumerate(grading.load_all()["0.1"].cases())}
    table = repr([(c.args[0].tolist(), grading.load_all()["0.1"].reference(*c.args, **c.kwargs).tolist()) for c in public.values()])
    notebooks["x_pasted_literals"] = _ch00(STUBS, lambda nb: _replace(
        nb, "def stable_softmax", f"import numpy as np\nTABLE = {table}\n"
        "def stable_softmax(x, axis=-1):\n    for inp, out in TABLE:\n        if np.asarray(inp).shape == x.shape and np.allclose(inp, x):\n"
        "            return np.array(out)\n    raise ValueError('not memorised')\n"))
    notebooks["x_reference_at_cell_time"] = _ch00(STUBS, lambda nb: _replace(
        nb, "def stable_softmax", "stable_softmax = ch00.stable_softmax.reference\nref = ch00._softmax\n"
        "import numpy as np\nref(np.ones(3))\n"))
    notebooks["x_kwdefaults"] = _ch00(SOLUTION, _both(_alone, lambda nb: _replace(
        nb, "def stable_softmax", "import torch, torch.nn.functional as F\n"
        "SAVED = dict(F.softmax.__kwdefaults__ or {})\nHELD = F.softmax\n"
        "def stable_softmax(x, axis=-1, _f=F.softmax):\n    return _f(torch.as_tensor(x), dim=axis).numpy()\n")))
    notebooks["x_reload"] = _ch00(SOLUTION, _both(_alone, lambda nb: _replace(
        nb, "def stable_softmax", "import importlib, torch\nimport lmcourse.losses as L\n"
        "def stable_softmax(x, axis=-1):\n    importlib.reload(L)\n    return L.softmax(torch.as_tensor(x), dim=axis).numpy()\n")))
    notebooks["x_stack_frame"] = _ch00(SOLUTION, _both(_alone, lambda nb: _replace(
        nb, "def stable_softmax", "import sys, torch\n"
        "def stable_softmax(x, axis=-1):\n    f = sys._getframe(1)\n    while f is not None:\n"
        "        for k in ('armed', '_CALLS_PHASE', 'guard'):\n            v = f.f_locals.get(k) if k in f.f_locals else f.f_globals.get(k)\n"
        "            if isinstance(v, list):\n                v[0] = False\n        f = f.f_back\n"
        "    try:\n        return torch.softmax(torch.as_tensor(x), dim=axis).numpy()\n"
        "    except BaseException:\n        return torch.as_tensor(x).softmax(axis).numpy()\n")))
    notebooks["x_lazy_detach"] = _ch00(SOLUTION, _both(_alone, lambda nb: _replace(
        nb, "def stable_softmax", "import torch\nclass Lazy(torch.Tensor):\n    def detach(self):\n"
        "        return torch.softmax(torch.Tensor(self), -1)\n"
        "def stable_softmax(x, axis=-1):\n    return torch.as_tensor(x).as_subclass(Lazy)\n")))
    # -- the grading run itself ---------------------------------------------------------------
    notebooks["x_huge_result"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def logsumexp", "def logsumexp(x, axis=-1):\n    return ['x' * 2**20] * 10\n"))  # 10 MB a call, 50 MB on its line: over the cap (4 MB here)
    notebooks["x_three_children"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def logsumexp", "import os, time\ndef logsumexp(x, axis=-1):\n    for _ in range(3):\n        if os.fork() == 0:\n"
        "            b = bytearray(1024 * 2**20)\n            b[::4096] = b'x' * len(b[::4096])\n            time.sleep(2)\n            os._exit(0)\n"
        "    if any(os.wait()[1] != 0 for _ in range(3)):\n        raise MemoryError('a child was killed')\n"
        "    m = x.max(axis=axis, keepdims=True)\n    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)\n"))
    notebooks["x_fork_bomb"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def logsumexp", "import os\ndef logsumexp(x, axis=-1):\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\n"))
    notebooks["x_stalls"] = _ch00(SOLUTION, lambda nb: nb["cells"].insert(3, _cell("import time\nwhile True:\n    try:\n        time.sleep(100)\n    except BaseException:\n        pass\n")))
    notebooks["x_swallows_timeout"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def logsumexp", "import time\ndef logsumexp(x, axis=-1):\n    while True:\n        try:\n            time.sleep(100)\n"
        "        except BaseException:\n            pass\n"))
    evil = "```\\n# You passed\\n<img src=x onerror=alert(1)>\\n````"
    notebooks["x_markdown<b>"] = _ch00(SOLUTION, lambda nb: _replace(
        nb, "def logsumexp", f"def logsumexp(x, axis=-1):\n    raise ValueError('{evil}')\n"))
    # -- aliases (chapter 20, the instructor's exercises with ATen operators) ---------------------
    ch20 = {
        "y_honest": _ch20(),
        "y_tensor_softmax": _ch20(softmax_rows="def softmax_rows(x):\n    return x.softmax(-1)\n"),
        "y_special": _ch20(softmax_rows="def softmax_rows(x):\n    return torch.special.softmax(x, -1)\n"),
        "y_c_nn": _ch20(nll="def nll(logits, targets):\n    return torch._C._nn.nll_loss(torch.log_softmax(logits, -1), targets)\n"),
        "y_ops_aten": _ch20(softmax_rows="def softmax_rows(x):\n    return torch.ops.aten._softmax(x, -1, False)\n"),
        "y_nll_log_softmax": _ch20(nll="def nll(logits, targets):\n    import torch.nn.functional as F\n"
                                   "    return F.nll_loss(F.log_softmax(logits, -1), targets)\n"),
        "y_autograd": _ch20(square_grad="def square_grad(x):\n    x = x.clone().requires_grad_()\n    (x ** 2).sum().backward()\n    return x.grad\n"),
    }
    for student, nb in notebooks.items():
        put(student, nb, "00_getting_started.ipynb")
    for student, nb in ch20.items():
        put(student, nb, "20_custom.ipynb")
    put("z_victim", SOLUTION, "00_getting_started.ipynb")
    # Symlinks: a notebook that is a link to another student's, and a whole folder that is a link.
    (subs / "x_symlink_nb").mkdir()
    (subs / "x_symlink_nb" / "00_getting_started.ipynb").symlink_to(full)
    (subs / "x_symlink_dir").symlink_to(subs / "a_full")
    start = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(grading, "OUTPUT_BYTES", 4 * 2**20)  # the cap, small here so that going over it is quick
        book = grading.grade_folder(subs, out / "gradebook.csv", out / "feedback", seed=1234, jobs=2,
                                    root=_course(tmp), timeout=120, cell_seconds=5, exercise_seconds=8,
                                    memory_mb=1536, max_procs=64)
    wall = time.monotonic() - start
    time.sleep(5)  # the detached child would have written by now
    rows = {(r["student"], r["exercise"]): r for r in csv.DictReader((out / "gradebook.csv").open())}
    feedback = {p.stem: p.read_text() for p in (out / "feedback").glob("*.md")}
    print(f"\n{(out / 'gradebook.csv').read_text()}\n{book.summary}\nwall {wall:.1f} s, isolation {book.isolation}")
    return {"rows": rows, "feedback": feedback, "book": book, "out": out, "marker": marker, "csv": (out / "gradebook.csv").read_text()}


def _got(graded, student: str) -> dict[str, tuple[str, str]]:
    return {ex: (r["points"], r["status"]) for (s, ex), r in graded["rows"].items() if s == student}


FULL = {"0.1": ("1", "passed"), "0.2": ("1", "passed"), "0.3": ("1", "passed")}
NONE = {"0.1": ("0", "not attempted"), "0.2": ("0", "not attempted"), "0.3": ("0", "not attempted")}
CH20_NONE = {"20.1": ("0", "not attempted"), "20.2": ("0", "not attempted"), "20.3": ("0", "not attempted")}
CH00_NONE = NONE


def _ch00_and_20(ch00: dict, ch20: dict | None = None) -> dict:
    return {**ch00, **(ch20 or CH20_NONE)}


@pytest.mark.parametrize("student,want", [
    ("a_full", _ch00_and_20(FULL)),
    ("z_victim", _ch00_and_20(FULL)),  # graded after x_overwrites_later, whose write never reached it
    ("h_partial", _ch00_and_20({**FULL, "0.3": ("0", "failed")})),
    ("h_empty", _ch00_and_20(NONE)),
    ("h_numpy_scalars", _ch00_and_20(FULL)),
    ("h_mutates", _ch00_and_20(FULL)),
    ("h_check_cell", _ch00_and_20(FULL)),
    ("h_magics", _ch00_and_20(FULL)),
    ("x_reads_other", _ch00_and_20(NONE)),
    ("x_overwrites_later", _ch00_and_20(FULL)),
    ("x_runs_solutions", _ch00_and_20(NONE)),
    ("x_detached_child", _ch00_and_20(FULL)),
    ("x_env_leak", _ch00_and_20({**FULL, "0.2": ("0", "error")})),
    ("x_pasted_literals", _ch00_and_20({**NONE, "0.1": ("0", "error")})),
    ("x_reference_at_cell_time", _ch00_and_20({**NONE, "0.1": ("0", "forbidden")})),
    ("x_kwdefaults", _ch00_and_20({**FULL, "0.1": ("0", "forbidden")})),
    ("x_reload", _ch00_and_20({**FULL, "0.1": ("0", "forbidden")})),
    ("x_stack_frame", _ch00_and_20({**FULL, "0.1": ("0", "forbidden")})),
    ("x_lazy_detach", _ch00_and_20({**FULL, "0.1": ("0", "error")})),
    ("x_huge_result", _ch00_and_20({**FULL, "0.2": ("0", "error")})),
    ("x_fork_bomb", _ch00_and_20({**FULL, "0.2": ("0", "timeout")})),  # forks fail at the pids limit; it loops on
    ("x_stalls", _ch00_and_20(FULL)),
    ("x_swallows_timeout", _ch00_and_20({**FULL, "0.2": ("0", "timeout")})),
    ("x_markdown<b>", _ch00_and_20({**FULL, "0.2": ("0", "error")})),
    # Its forged lines are read as its answers and judged against the hidden cases: wrong.
    ("x_forges_and_exits", _ch00_and_20({"0.1": ("0", "failed"), "0.2": ("0", "failed"), "0.3": ("0", "failed")})),
    ("x_symlink_nb", _ch00_and_20({"0.1": ("0", "error"), "0.2": ("0", "error"), "0.3": ("0", "error")})),
    ("x_symlink_dir", {k: ("0", "error") for k in ("0.1", "0.2", "0.3", "20.1", "20.2", "20.3")}),
    ("y_honest", {**CH00_NONE, "20.1": ("1", "passed"), "20.2": ("1", "passed"), "20.3": ("1", "passed")}),
    ("y_tensor_softmax", {**CH00_NONE, "20.1": ("0", "forbidden"), "20.2": ("1", "passed"), "20.3": ("1", "passed")}),
    ("y_special", {**CH00_NONE, "20.1": ("0", "forbidden"), "20.2": ("1", "passed"), "20.3": ("1", "passed")}),
    ("y_ops_aten", {**CH00_NONE, "20.1": ("0", "forbidden"), "20.2": ("1", "passed"), "20.3": ("1", "passed")}),
    ("y_c_nn", {**CH00_NONE, "20.1": ("1", "passed"), "20.2": ("0", "forbidden"), "20.3": ("1", "passed")}),
    ("y_nll_log_softmax", {**CH00_NONE, "20.1": ("1", "passed"), "20.2": ("0", "forbidden"), "20.3": ("1", "passed")}),
    ("y_autograd", {**CH00_NONE, "20.1": ("1", "passed"), "20.2": ("1", "passed"), "20.3": ("0", "forbidden")}),
])
def test_each_submission_scores_exactly_what_it_earned(graded, student, want):
    assert _got(graded, student) == want, graded["feedback"].get(student)


def test_every_row_carries_the_seed_and_max(graded):
    assert {r["seed"] for r in graded["rows"].values()} == {"1234"}
    assert {r["max"] for r in graded["rows"].values()} == {"1"}
    assert graded["book"].seed == 1234


def test_a_detached_child_is_gone_when_its_worker_ends(graded):
    assert not graded["marker"].exists()
    assert "pwned" not in graded["csv"]


def test_feedback_leaks_no_environment_and_no_markdown(graded):
    text = graded["feedback"]["x_env_leak"]
    assert "ENV [" in text and "PYTEST" not in text and "VIRTUAL_ENV" not in text
    md = graded["feedback"]["x_markdown<b>"]
    assert "alert(1)" in md
    outside, fence = [], None
    for line in md.split("\n"):  # CommonMark backtick fences: a closing fence is at least as long
        run = len(line) - len(line.lstrip("`"))
        if fence is None and run >= 3:
            fence = run
        elif fence is not None and run >= fence and not line.strip("`").strip():
            fence = None
        elif fence is None:
            outside.append(line)
    assert fence is None and not any("<img" in x or x.startswith("# You passed") for x in outside), outside


def test_the_symlinks_are_reported(graded):
    assert "symlink" in graded["feedback"]["x_symlink_nb"] and "symlink" in graded["feedback"]["x_symlink_dir"]


def test_three_children_of_1_gb_are_bounded_together(graded):
    """Under a 1536 MB limit for the whole worker the children cannot all live: the cgroup kills one
    ("memory"), or, where the kernel swaps them out first, the exercise runs out of time. Either way
    only that exercise scores 0. With rlimits only (no cgroup) each child fits, and it passes."""
    got = _got(graded, "x_three_children")
    assert {k: v for k, v in got.items() if k != "0.2"} == {k: v for k, v in _ch00_and_20(FULL).items() if k != "0.2"}
    if "cgroup" in sandbox.isolation():
        assert got["0.2"] in (("0", "memory"), ("0", "timeout"))
    else:
        assert got["0.2"] == ("1", "passed")
