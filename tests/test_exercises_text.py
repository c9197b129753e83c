"""Exercise texts, hints, solutions and cases stay true to the declarations in lmcourse/exercises.

- each exercise's text in solutions/ (which exercises/ is generated from) carries the sentence
  `Exercise.rules()` generates, so it names every forbidden function;
- no hint gives the answer away: it shares no run of more than five code tokens with the solution;
- `solution()` prints the solution under the exercise's own name and calls nothing forbidden;
- cases vary with the seed, and the hard cases are there for every seed;
- each wrong variant is met by its own message alone, and the wrong answers issue 7 names are caught.
"""
from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import nbformat
import pytest

from lmcourse import checks
from lmcourse.checks import compare_values

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = checks.load_all()
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|\S")
MAX_SHARED_TOKENS = 5  # "dim=-1" or "keepdim=True" may appear in a hint; "x.max(axis=axis)" may not


def _notebook(ex) -> nbformat.NotebookNode:
    chapter = int(ex.id.split(".")[0])
    (path,) = sorted((ROOT / "solutions").glob(f"{chapter:02d}_*.ipynb"))
    return nbformat.read(path, as_version=4)


def _statement(ex) -> str:
    cells = [c.source for c in _notebook(ex).cells
             if c.cell_type == "markdown" and c.source.startswith(f"## Exercise {ex.id} ")]
    assert len(cells) == 1, f"{ex}: expected one markdown cell headed '## Exercise {ex.id} ·'"
    return cells[0]


def _notebook_solution(ex) -> str:
    for cell in _notebook(ex).cells:
        if cell.cell_type == "code" and re.search(rf"^def {ex.name}\(", cell.source, re.M):
            return cell.source
    raise AssertionError(f"{ex}: no cell defines {ex.name}")


def _code_tokens(source: str) -> list[str]:
    tokens = []
    for line in source.splitlines():
        line = line.split("#")[0]
        if line.lstrip().startswith(("def ", "###")):
            continue
        tokens += TOKEN.findall(line)
    return tokens


def _longest_shared_run(a: list[str], b: list[str]) -> tuple[int, list[str]]:
    best, where, prev = 0, 0, [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best, where = cur[j], i
        prev = cur
    return best, a[where - best:where]


@pytest.mark.parametrize("ex_id", list(REGISTRY))
def test_the_text_names_what_may_not_be_used(ex_id):
    ex = REGISTRY[ex_id]
    text = _statement(ex)
    assert ex.rules() in text, f"{ex}: add this paragraph to its statement in solutions/:\n\n{ex.rules()}"
    for name in ex.forbidden_names():
        assert f"`{name}`" in text


def test_the_rules_sentence_is_generated_from_the_declaration():
    ex = REGISTRY["0.1"]
    assert ex.rules() == (
        "**Not allowed:** `lmcourse.losses.softmax`, `torch.softmax`, `torch.nn.functional.softmax` and this "
        "exercise's own reference `lmcourse.exercises.ch00._softmax`. `check()` warns when your function calls "
        "one of them, and the grader gives such an answer 0."
    )


@pytest.mark.parametrize("ex_id", list(REGISTRY))
def test_no_hint_gives_the_answer_away(ex_id):
    ex = REGISTRY[ex_id]
    hint = TOKEN.findall(ex._hint)
    for source in (ex.solution_source(), _notebook_solution(ex)):
        n, run = _longest_shared_run(_code_tokens(source), hint)
        assert n <= MAX_SHARED_TOKENS, f"{ex}: the hint contains the solution's code {' '.join(run)!r}"


def test_the_hint_check_can_fail():
    solution = "def f(x, axis=-1):\n    z = x - x.max(axis=axis, keepdims=True)\n"
    assert _longest_shared_run(_code_tokens(solution), TOKEN.findall("use x.max(axis=axis, keepdims=True)"))[0] == 12
    assert _longest_shared_run(_code_tokens(solution), TOKEN.findall("subtract the max (keepdims=True)"))[0] == 4


@pytest.mark.parametrize("ex_id", list(REGISTRY))
def test_solution_is_printed_under_the_exercises_own_name(ex_id, capsys):
    ex = REGISTRY[ex_id]
    ex.solution()
    printed = capsys.readouterr().out
    assert printed.startswith(f"def {ex.name}("), printed.splitlines()[0]
    body = "\n".join(printed.splitlines()[1:])
    for name in ex.forbidden_names():
        owner, attr = checks._resolve(name)
        # A function by its name; a method by its class (`.encode(` alone could be str.encode).
        short = attr if inspect.ismodule(owner) else owner.__name__
        assert not re.search(rf"(?<![\w]){re.escape(short)}\(|\.{re.escape(short)}\b", body), (ex, name)
    # Every helper it calls is something the student has: another exercise's function or a library name.
    privates = set(re.findall(r"(?<![\w.])(_[a-z]\w*)\(", body))
    assert not privates, f"{ex}: the printed solution calls {privates}, which the student does not have"


@pytest.mark.parametrize("ex_id", list(REGISTRY))
def test_cases_vary_with_the_seed_and_keep_the_hard_ones(ex_id):
    ex = REGISTRY[ex_id]
    a, b = ex.cases(0), ex.cases(1)
    # Labels say what a case is, never its random values: the same labels for every seed means the
    # fixed (hard) cases are present for both, and some argument differs between the seeds.
    assert [c.label for c in a] == [c.label for c in b], ex
    assert all(c.label for c in a), f"{ex}: every case needs a label"
    assert compare_values([c.args for c in a] + [c.kwargs for c in a],
                          [c.args for c in b] + [c.kwargs for c in b], atol=0, rtol=0) is not None, \
        f"{ex}: cases(0) and cases(1) are the same, so a memorised answer would pass the grader's seed"
    assert ex.run(ex.reference).passed and ex.judge(lambda *a, **k: ex.reference(*a, **k), b).passed


HARD_CASES = {  # issue 7: the inputs that wrong answers used to pass
    "0.1": "rows [0, 1000], [-1000, 1000], [800, 0], [-1000, -999]",
    "0.2": "rows [0, 1000], [-1000, 1000], [800, 0], [-1000, -999]",
    "5.1": "confidently wrong: logits [0, 30], target 0",
}


@pytest.mark.parametrize("ex_id,label", list(HARD_CASES.items()))
def test_hard_cases_are_in_every_seed(ex_id, label):
    for seed in (0, 1, 12345):
        assert label in [c.label for c in REGISTRY[ex_id].cases(seed)]


@pytest.mark.parametrize(
    "ex_id,k", [(ex_id, k) for ex_id, ex in REGISTRY.items() for k in range(len(ex.wrong))]
)
def test_each_wrong_variant_is_met_by_its_own_message_alone(ex_id, k):
    ex = REGISTRY[ex_id]
    wrong = ex.wrong[k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k.T on a batched tensor warns before it fails
        result = ex.run(wrong.fn)
    assert result.status in ("fail", "error") and result.matched == [wrong.message], (wrong.fn.__name__, result.report)
    assert f"Likely mistake: {wrong.message}" in result.report


# Each wrong answer that issue 7 lists, by exercise and variant: it must exist and be caught.
NEW_WRONG = [
    ("0.1", "_row_min"), ("0.1", "_row_mean"), ("0.2", "_lse_row_min"), ("0.2", "_lse_row_mean"),
    ("0.3", "_t_twice"), ("3.1", "_embed_half"), ("3.1", "_embed_flat"), ("4.2", "_att_k_dot_T"),
    ("4.4", "_mha_dropout_on"), ("5.1", "_ce_log_eps"), ("5.1", "_ce_clamped_targets"),
    ("5.3", "_smooth_probabilities"), ("5.4", "_bw_no_rowsum"),
]


@pytest.mark.parametrize("ex_id,fn_name", NEW_WRONG)
def test_the_wrong_answers_issue_7_names_are_registered(ex_id, fn_name):
    assert fn_name in [w.fn.__name__ for w in REGISTRY[ex_id].wrong]


def test_k_dot_T_points_to_transpose():
    ex = REGISTRY["4.2"]
    (wrong,) = [w for w in ex.wrong if w.fn.__name__ == "_att_k_dot_T"]
    assert "transpose(-2, -1)" in wrong.message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ex.run(wrong.fn).status == "error"  # it raises on the batched case, and still gets its message


def test_chapter_05_says_V_for_the_number_of_classes():
    from lmcourse.exercises import ch05

    about_classes = [REGISTRY[i] for i in ("5.1", "5.2", "5.3")]  # (5.4's K is the keys, 5.5's V the vocabulary)
    texts = [ex._hint for ex in about_classes] + [w.message for ex in about_classes for w in ex.wrong]
    texts += [_statement(ex) for ex in about_classes] + [c.label for ex in about_classes for c in ex.cases()]
    for text in texts:
        assert not re.search(r"\bC\b|\bK\b|\bM\b", text.replace("`", " ")), text
        assert not re.search(r"(sum|Σ)_\{?k|z_\{?k", text), text  # the summation index is j, the logit z_c
    assert "z_c" in ch05.cross_entropy_grad._hint and "Σ_j" in ch05.cross_entropy._hint
