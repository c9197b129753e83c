"""Mutation testing on demand: `make mutants`, or `MODULES=text,losses make mutants` for a subset.

Not part of `make test` or CI (pytest does not collect this file: its name does not start with
`test_`). For each library module in `MODULES` below, mutmut (3.x, the `mutation` extra) changes
one operator, constant or call argument at a time inside that module's functions and reruns only
that module's own tests; a change that no test notices is a *survivor*, a line the tests let pass.
The driver prints each module's survivors (file:line, the diff, and a key for the equivalents
file) and then one table:

    module, mutants, killed, survived, timeout, other, equivalent, caught %
    caught % = killed / (mutants - equivalent)

How each mutmut status is counted:
- killed: a test failed (mutmut "killed"), test collection broke (pytest exit 2, which mutmut
  calls "interrupted by user": nobody interrupts this non-interactive run, so it is a collection
  error that the mutant caused), or the test process crashed (segfault). `make test` fails in
  all three cases.
- survived: every selected test passed, including mutants in code that no selected test reaches
  (mutmut "no tests"): nothing would notice them either.
- timeout: the tests ran past mutmut's CPU-time limit (it then kills them: SIGXCPU or SIGKILL).
  Shown apart and NOT counted as caught, so the rate is a lower bound.
- other: anything else mutmut reports (suspicious, skipped, not checked); listed with the
  survivors so it can be looked at.

Equivalent mutants, excluded from the rate (from its numerator and its denominator, whatever
their status, so that excluding them cannot inflate it):
1. Mechanically: a mutant whose every change replaces one string constant by another that is
   literal text of the message of a `raise` (an argument of the exception's own call, a plain
   part of an f-string or of a "+" concatenation), i.e. mutmut's "XX" + text + "XX" and
   upper/lower-case variants of the wording of an exception message. The wording of a message
   is not behaviour a test should freeze. What a message *names* still counts: a mutant that
   changes an interpolated value (`{type(x).__name__}` -> `{type(None).__name__}`,
   `{getattr(x, "dtype")}` -> `{getattr(x, "DTYPE")}`), drops the message, changes the
   exception or removes the `raise` is behaviour-changing, and the quality bar ("bad input
   raises ValueError naming what was wrong") wants a test that pins it (`pytest.raises(
   ValueError, match="got int")`). Column "equivalent" includes these; the survivors list names the rule.
2. By hand: a line in tests/mutants_equivalent.txt of the form
       lmcourse/attention.py::MultiHeadAttention.forward::1a2b3c4d  why it cannot change behaviour
   The key (file, function, and a hash of the removed and added lines) is printed next to each
   survivor; it stays valid while that line and its mutation stay the same, whatever mutmut's
   numbering does. An entry that matches no mutant any more is reported as stale.

Each module runs in its own temporary copy of the checkout (tracked and untracked-but-not-ignored
files, so uncommitted work is measured too); mutmut's `mutants/` folder lives there and is
deleted afterwards (`--keep` keeps it), so nothing is written into the checkout. Tests run with
PYTHONHASHSEED=0, LMCOURSE_DEVICE=cpu and ONE thread (see THREAD_ENV for why), `--jobs` of them
at a time. `--report-dir DIR` also writes table.txt, survivors_<module>.txt and
results.json there, and `--rescore DIR` re-applies an edited equivalents file to that run
without running anything. Run it under `nice` on a shared machine (`make mutants` does: NICE=19).

To cover a later module, add one line to MODULES: its source file and its own test files
(glob patterns, relative to the checkout).
"""
from __future__ import annotations

import argparse
import ast
import difflib
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tests" / "mutants_equivalent.txt"

# module name -> (its source file, its own test files as glob patterns). One entry per module.
MODULES: dict[str, tuple[str, list[str]]] = {
    "checks": ("lmcourse/checks.py", ["tests/test_checks.py", "tests/test_ch*_checks.py"]),
    "text": ("lmcourse/text.py", ["tests/test_text.py"]),
    "tokenizers": ("lmcourse/tokenizers.py", ["tests/test_tokenizers.py"]),
    "attention": ("lmcourse/attention.py", ["tests/test_attention.py", "tests/test_generation.py"]),
    "losses": ("lmcourse/losses.py", ["tests/test_losses.py"]),
    "embeddings": ("lmcourse/embeddings.py", ["tests/test_embeddings.py"]),
    "sequences": ("lmcourse/sequences.py", ["tests/test_sequences.py"]),
    "metrics": ("lmcourse/metrics.py", ["tests/test_metrics.py"]),
    "safety": ("lmcourse/safety.py", ["tests/test_safety.py"]),
    "finetune": ("lmcourse/finetune.py", ["tests/test_finetune.py"]),
    "model": ("lmcourse/model.py", ["tests/test_model.py", "tests/test_generation.py"]),
    "interop": ("lmcourse/interop.py", ["tests/test_interop.py"]),
    "compute": ("lmcourse/compute.py", ["tests/test_compute.py"]),
    "generation": ("lmcourse/generation.py", ["tests/test_generation.py"]),
    "training": ("lmcourse/training.py", ["tests/test_training.py"]),
    "forbid": ("lmcourse/forbid.py", ["tests/test_forbid.py"]),
    "tasks": ("lmcourse/tasks.py", ["tests/test_tasks.py"]),
}

# One thread per test process, always (this overrides make's THREADS=2). mutmut forks each mutant's
# test run from a process that has already run the tests; a child forked from a parent whose
# OpenMP thread team exists can deadlock in its first parallel torch op, spinning until mutmut's
# CPU limit calls it a timeout (seen here: 4 false timeouts in checks' first 90 mutants with 2
# threads). With one thread torch never starts a team, and `--jobs` uses the cores instead.
THREAD_ENV = {
    "LMCOURSE_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "LMCOURSE_DEVICE": "cpu",
}

KILLED = {"killed", "check was interrupted by user", "segfault"}
SURVIVED = {"survived", "no tests"}
TIMEOUT = {"timeout"}


@dataclass
class Mutant:
    name: str  # mutmut's name, e.g. lmcourse.text.x_normalize__mutmut_3
    status: str  # mutmut's status word
    qualname: str  # normalize, or Class.method
    line: int  # line of the first changed line in the source file
    diff: str  # unified diff of the function, original -> mutant
    key: str  # path::qualname::hash, for tests/mutants_equivalent.txt
    equivalent: str = ""  # why it is excluded, "" when it counts


@dataclass
class ModuleResult:
    module: str
    path: str
    tests: list[str]
    seconds: float
    mutants: list[Mutant] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    def count(self, statuses: set[str] | None = None) -> int:
        counted = [m for m in self.mutants if not m.equivalent]
        if statuses is None:
            return len(counted)
        return sum(m.status in statuses for m in counted)

    @property
    def n_equivalent(self) -> int:
        return sum(bool(m.equivalent) for m in self.mutants)

    @property
    def n_other(self) -> int:
        return self.count() - self.count(KILLED | SURVIVED | TIMEOUT)

    @property
    def caught(self) -> float | None:
        n = self.count()
        return self.count(KILLED) / n if n else None

    def not_caught(self) -> list[Mutant]:
        return [m for m in self.mutants if not m.equivalent and m.status not in KILLED]


# ----------------------------------------------------------------------------- equivalents


def _mutation_key(path: str, qualname: str, removed: list[str], added: list[str]) -> str:
    text = "\n".join(["-" + s.strip() for s in removed] + ["+" + s.strip() for s in added])
    return f"{path}::{qualname}::{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """key -> reason, from tests/mutants_equivalent.txt (comments start with #)."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, reason = line.partition(" ")
        if key.count("::") != 2 or not reason.strip():
            raise ValueError(f"{path}:{n}: expected 'file::function::hash  reason', got {raw!r}")
        out[key] = reason.strip()
    return out


def _differences(a: ast.AST, b: ast.AST, ancestors: tuple[ast.AST, ...] = ()):
    """Yield (node in a, node in b, ancestors in a) for each smallest differing subtree."""
    if type(a) is not type(b):
        yield a, b, ancestors
        return
    if not isinstance(a, ast.AST):
        if isinstance(a, list):
            if len(a) != len(b):
                yield a, b, ancestors
                return
            for x, y in zip(a, b):
                yield from _differences(x, y, ancestors)
        elif a != b:
            yield a, b, ancestors
        return
    for name in a._fields:
        x, y = getattr(a, name, None), getattr(b, name, None)
        if isinstance(x, ast.AST) or isinstance(x, list):
            yield from _differences(x, y, ancestors + (a,))
        elif x != y or type(x) is not type(y):
            # a changed constant: report the node that holds it
            yield a, b, ancestors
            return


def _message_text_only(orig_src: str, mutant_src: str) -> bool:
    """True when every change swaps one str constant for another inside a `raise` statement."""
    try:
        a, b = ast.parse(textwrap.dedent(orig_src)), ast.parse(textwrap.dedent(mutant_src))
    except SyntaxError:
        return False
    fa, fb = a.body[0], b.body[0]
    if not isinstance(fa, (ast.FunctionDef, ast.AsyncFunctionDef)) or type(fa) is not type(fb):
        return False
    fb.name = fa.name
    diffs = list(_differences(fa, fb))
    if not diffs:
        return False
    for x, y, ancestors in diffs:
        if not (isinstance(x, ast.Constant) and isinstance(y, ast.Constant)):
            return False
        if not (isinstance(x.value, str) and isinstance(y.value, str)):
            return False
        raises = [i for i, node in enumerate(ancestors) if isinstance(node, ast.Raise)]
        if not raises:
            return False
        # Literal wording only: from the raise down to the constant, nothing but the exception's
        # own call, f-string text and "+" concatenation. A constant inside an f-string's {...}
        # (getattr(x, "dtype")) or in any other call changes what the message names.
        path = ancestors[raises[-1] + 1 :]
        if not path or not isinstance(path[0], ast.Call):
            return False
        if not all(isinstance(node, (ast.JoinedStr, ast.BinOp)) for node in path[1:]):
            return False
    return True


# ----------------------------------------------------------------------------- one module


def _copy_checkout(dest: Path) -> None:
    """The checkout's tracked and untracked-but-not-ignored files (all files when not in git)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode().split("\0")
        files = [f for f in listed if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "mutants", "__pycache__", ".hypothesis", ".pytest_cache", "build", "dist"}
        files = []
        for base, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            files += [str(Path(base, n).relative_to(ROOT)) for n in names]
    for rel in files:
        if rel.split("/")[0] in ("mutants", ".venv"):
            continue
        src = ROOT / rel
        if not src.is_file():  # deleted in the work tree but still tracked
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(s) for s in items) + "]"


def _configure(copy: Path, path: str, tests: list[str]) -> None:
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    if "[tool.mutmut]" in text:
        raise SystemExit("pyproject.toml already has a [tool.mutmut] table; tests/mutants.py writes its own")
    package = path.split("/")[0]
    also = sorted(p.name for p in copy.iterdir() if p.name not in {package, "tests", "mutants", ".git"})
    pyproject.write_text(
        text.rstrip("\n")
        + "\n\n# written by tests/mutants.py into its temporary copy\n[tool.mutmut]\n"
        + f"source_paths = {_toml_list([package])}\n"
        + f"only_mutate = {_toml_list([path])}\n"
        + f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        + f"also_copy = {_toml_list(also)}\n"
        + "use_git_change_detection = false\n",
        encoding="utf-8",
    )


def _functions(source: str) -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{node.name}.{sub.name}"] = sub
    return out


def _read_mutants(copy: Path, path: str, equivalents: dict[str, str]) -> tuple[list[Mutant], set[str]]:
    """Every mutant of `path` in the finished run in `copy`, with its status, line, diff and key."""
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    meta = json.loads((copy / "mutants" / (path + ".meta")).read_text(encoding="utf-8"))
    spans = json.loads((copy / "mutants" / (path + ".spans")).read_text(encoding="utf-8"))["spans"]
    generated = (copy / "mutants" / path).read_text(encoding="utf-8").splitlines()
    functions = _functions((copy / path).read_text(encoding="utf-8"))

    def span(name: str) -> list[str]:
        start, end = spans[name]
        return generated[start - 1 : end]

    used: set[str] = set()
    mutants = []
    for name, exit_code in sorted(meta["exit_code_by_key"].items(), key=lambda kv: _natural(kv[0])):
        func, cls = orig_function_and_class_names_from_key(name)
        qualname = f"{cls}.{func}" if cls else func
        local = name.rpartition(".")[2]
        orig_name = local.partition("__mutmut_")[0] + "__mutmut_orig"
        orig, mut = span(orig_name), span(local)
        orig = [s.replace(f"def {orig_name}(", f"def {func}(") for s in orig]
        mut = [s.replace(f"def {local}(", f"def {func}(") for s in mut]
        diff = "\n".join(difflib.unified_diff(orig, mut, fromfile=path, tofile=path, lineterm="", n=1))
        removed, added, first = [], [], None
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=orig, b=mut, autojunk=False).get_opcodes():
            if tag != "equal":
                first = i1 if first is None else first
                removed += orig[i1:i2]
                added += mut[j1:j2]
        k_def = next(i for i, s in enumerate(orig) if s.lstrip().startswith(("def ", "async def ")))
        node = functions.get(qualname)
        line = node.lineno + ((first or 0) - k_def) if node is not None else 0
        key = _mutation_key(path, qualname, removed, added)
        equivalent = ""
        if _message_text_only("\n".join(orig), "\n".join(mut)):
            equivalent = "rule: only the wording of an exception message changes"
        elif key in equivalents:
            equivalent = "listed: " + equivalents[key]
            used.add(key)
        mutants.append(Mutant(name, status_by_exit_code[exit_code], qualname, line, diff, key, equivalent))
    return mutants, used


def _natural(name: str) -> tuple[str, int]:
    head, _, n = name.rpartition("__mutmut_")
    return head, int(n) if n.isdigit() else -1


def run_module(module: str, *, jobs: int, keep: bool, equivalents: dict[str, str], log=print) -> ModuleResult:
    path, patterns = MODULES[module]
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit(f"{mutmut} not found: install the extra first, pip install -e '.[mutation]' (make mutants does)")
    copy = Path(tempfile.mkdtemp(prefix=f"lmcourse-mutants-{module}-"))
    try:
        _copy_checkout(copy)
        tests = sorted({t for p in patterns for t in glob.glob(p, root_dir=copy)})
        if not (copy / path).exists() or not tests:
            raise SystemExit(f"{module}: {path} or its tests {patterns} are missing from the checkout")
        _configure(copy, path, tests)
        env = {**os.environ, **THREAD_ENV}
        log(f"{module}: mutating {path}, tests {' '.join(tests)} (in {copy})", flush=True)
        start = time.monotonic()
        with open(copy / "mutmut.log", "w") as out:
            rc = subprocess.run(
                [str(mutmut), "run", "--max-children", str(jobs)],
                cwd=copy, env=env, stdout=out, stderr=subprocess.STDOUT,
            ).returncode
        seconds = time.monotonic() - start
        if rc != 0 or not (copy / "mutants" / (path + ".meta")).exists():
            tail = (copy / "mutmut.log").read_text(errors="replace")[-3000:].replace("\r", "\n")
            keep = True
            raise SystemExit(f"{module}: mutmut failed (exit {rc}); log kept at {copy}/mutmut.log:\n{tail}")
        mutants, used = _read_mutants(copy, path, equivalents)
        stale = sorted(k for k in equivalents if k.startswith(path + "::") and k not in used)
        result = ModuleResult(module, path, tests, seconds, mutants, stale)
        log(f"{module}: {len(mutants)} mutants in {seconds:.0f} s", flush=True)
        return result
    finally:
        if keep:
            log(f"{module}: kept {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)


# ----------------------------------------------------------------------------- reporting


def survivors_text(r: ModuleResult) -> str:
    lines = [f"# {r.module}: {len(r.not_caught())} not caught of {r.count()} counted ({r.path}; tests: {' '.join(r.tests)})"]
    for m in r.not_caught():
        lines += ["", f"{r.path}:{m.line}  {m.qualname}  [{m.status}]  {m.name}", f"key: {m.key}", m.diff]
    for key in r.stale:
        lines += ["", f"stale entry in tests/mutants_equivalent.txt (matches no mutant): {key}"]
    return "\n".join(lines) + "\n"


def table(results: list[ModuleResult]) -> str:
    head = f"{'module':<12}{'mutants':>8}{'killed':>8}{'survived':>10}{'timeout':>9}{'other':>7}{'equivalent':>12}{'caught %':>10}{'time':>8}"
    rows = [head, "-" * len(head)]
    for r in results:
        rate = f"{100 * r.caught:.1f}%" if r.caught is not None else "-"
        rows.append(
            f"{r.module:<12}{len(r.mutants):>8}{r.count(KILLED):>8}{r.count(SURVIVED):>10}{r.count(TIMEOUT):>9}"
            f"{r.n_other:>7}{r.n_equivalent:>12}{rate:>10}{r.seconds:>7.0f}s"
        )
    rows.append("caught % = killed / (mutants - equivalent); timeouts and 'other' are not counted as caught")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default=os.environ.get("MODULES", ""),
                        help=f"comma-separated subset of {','.join(MODULES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested in parallel")
    parser.add_argument("--report-dir", type=Path, help="also write table.txt, survivors_<module>.txt, results.json here")
    parser.add_argument("--keep", action="store_true", help="keep each temporary copy (and its mutants/) for mutmut browse")
    parser.add_argument("--quiet", action="store_true", help="print only the table, not the survivors")
    parser.add_argument("--rescore", type=Path, metavar="DIR",
                        help="run nothing: re-apply tests/mutants_equivalent.txt to DIR/results.json from an "
                             "earlier --report-dir, and rewrite DIR's table and survivors")
    args = parser.parse_args(argv)
    if args.rescore:
        results = rescore(args.rescore / "results.json", load_equivalents())
        _write_report(args.rescore, results)
        print(table(results))
        return 0

    names = [m.strip() for m in args.modules.split(",") if m.strip()] or list(MODULES)
    unknown = [m for m in names if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    equivalents = load_equivalents()

    results = []
    for module in names:
        r = run_module(module, jobs=args.jobs, keep=args.keep, equivalents=equivalents)
        results.append(r)
        if not args.quiet:
            print("\n" + survivors_text(r), flush=True)
    print(table(results))
    if args.report_dir:
        _write_report(args.report_dir, results)
    return 0


MUTANT_FIELDS = ("name", "status", "qualname", "line", "diff", "key", "equivalent")


def _write_report(directory: Path, results: list[ModuleResult]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "table.txt").write_text(table(results) + "\n", encoding="utf-8")
    for r in results:
        (directory / f"survivors_{r.module}.txt").write_text(survivors_text(r), encoding="utf-8")
    (directory / "results.json").write_text(json.dumps([
        {"module": r.module, "path": r.path, "tests": r.tests, "seconds": round(r.seconds, 1),
         "caught": r.caught, "stale_equivalents": r.stale,
         "mutants": [{k: getattr(m, k) for k in MUTANT_FIELDS} for m in r.mutants]}
        for r in results], indent=1), encoding="utf-8")


def rescore(results_json: Path, equivalents: dict[str, str]) -> list[ModuleResult]:
    """Results of an earlier run, with the listed equivalents re-applied (the mechanical rule kept)."""
    out = []
    for entry in json.loads(results_json.read_text(encoding="utf-8")):
        mutants = [Mutant(**{k: m[k] for k in MUTANT_FIELDS}) for m in entry["mutants"]]
        for m in mutants:
            if not m.equivalent.startswith("rule:"):
                m.equivalent = "listed: " + equivalents[m.key] if m.key in equivalents else ""
        keys = {m.key for m in mutants}
        stale = sorted(k for k in equivalents if k.startswith(entry["path"] + "::") and k not in keys)
        out.append(ModuleResult(entry["module"], entry["path"], entry["tests"], entry["seconds"], mutants, stale))
    return out


if __name__ == "__main__":
    sys.exit(main())
