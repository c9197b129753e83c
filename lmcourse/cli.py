"""The `lmcourse` command: doctor, notebooks run, exercises build / --check, grade, readme.

`notebooks run`, `exercises` and `readme` act on the course folder you stand in: the nearest
folder at or above the current directory that holds chapters/ or solutions/ with numbered
notebooks (NN_topic.ipynb), or the one `--root DIR` names. Outside a course folder they
refuse (exit 2); they never act on the folder the package is installed in.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value} (there is no way to switch the limit off)")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _root(args) -> Path:
    from .course import find_root

    return find_root(root=args.root)


def _doctor(args) -> int:
    from .environment import doctor

    return 0 if doctor() else 1


def _notebooks_run(args) -> int:
    from .course import NotACourseError
    from .notebooks import NotebookError, all_notebooks, run_notebooks, timings_file

    try:
        root = _root(args)
        paths = [Path(p) for p in args.paths] or all_notebooks(root)
        timings = timings_file(root)
        rc = run_notebooks(paths, timeout=args.timeout, threads=args.threads, timings=timings, root=root)
    except (NotACourseError, NotebookError) as exc:
        return _error(str(exc))
    if timings is None:
        print(f"note: run times not recorded ({root / 'tests'} does not exist)", file=sys.stderr)
    return rc


def _exercises(args) -> int:
    from .course import NotACourseError
    from .notebooks import MarkerError, NothingToBuild, build_exercises, check_exercises

    try:
        root = _root(args)
        if args.check or args.action == "check":
            problems = check_exercises(root)
            for p in problems:
                print(p)
            if problems:
                print("exercises/ is out of sync with solutions/: run `lmcourse exercises build` "
                      "(`make exercises`; strays go only with `--prune`)", file=sys.stderr)
                return 1
            print("exercises/ is in sync with solutions/")
            return 0
        build = build_exercises(root, prune=args.prune)
        for path in build.metadata:
            print(f"nbgrader metadata added or updated in {path.relative_to(root).as_posix()}")
        for path in build.written:
            print(f"wrote {path.relative_to(root).as_posix()}")
        if build.unchanged:
            print(f"{len(build.unchanged)} exercise file(s) already up to date")
        for path in build.removed:
            print(f"removed stray {path.relative_to(root).as_posix()}")
        kept = [p for p in build.strays if p not in build.removed]
        for path in kept:
            print(f"stray: {path.relative_to(root).as_posix()} has no solutions/{path.name}; kept "
                  "(`lmcourse exercises build --prune` removes it)", file=sys.stderr)
        return 0
    except (NotACourseError, NothingToBuild, MarkerError) as exc:
        return _error(str(exc))
    except ValueError as exc:  # e.g. a solution notebook whose name has no chapter number
        return _error(str(exc))


def _readme(args) -> int:
    from .atomic import write_atomic
    from .course import NotACourseError, update_readme

    try:
        root = _root(args)
        readme = root / "README.md"
        if not readme.is_file():
            return _error(f"{readme}: no such file")
        want = update_readme(readme, root)
    except (NotACourseError, ValueError) as exc:
        return _error(str(exc))
    if args.check:
        if readme.read_text(encoding="utf-8") != want:
            print("README.md's course map is out of date: run `make readme`", file=sys.stderr)
            return 1
        print("README.md's course map is up to date")
        return 0
    write_atomic(readme, want)
    print("README.md: course map updated")
    return 0


def _grade(args) -> int:
    from . import sandbox
    from .course import NotACourseError, find_root
    from .grading import GraderError, grade_folder

    if args.no_sandbox:
        print("warning: --no-sandbox: submissions run WITHOUT isolation (they can read and write what you can); "
              "use it only for submissions you trust", file=sys.stderr)
    else:
        why = sandbox.available()
        if why is not None:
            return _error(f"cannot isolate the submissions here: {why}. Nothing was graded "
                          "(--no-sandbox grades without isolation, for submissions you trust)")
    try:
        root = find_root(root=args.root)
    except NotACourseError:
        if args.root:
            return _error(f"--root {args.root}: not a course folder (no chapters/ or solutions/ with NN_topic.ipynb)")
        root = None  # outside a course folder: the package's exercises, 1 point each
    try:
        book = grade_folder(
            Path(args.submissions), Path(args.out), Path(args.feedback) if args.feedback else None,
            seed=args.seed, jobs=args.jobs, root=root, sandbox=not args.no_sandbox,
            timeout=args.timeout, memory_mb=args.memory_mb,
        )
    except (ValueError, GraderError) as exc:
        return _error(str(exc))
    for g in book.grades:  # e.g. two notebooks for one chapter: the instructor should know, not only the student
        for w in g.warnings:
            print(f"warning: {g.student}: {w}", file=sys.stderr)
    print(f"seed: {book.seed} (grade again with --seed {book.seed} to draw the same cases)")
    print(f"isolation: {book.isolation}")
    print(f"exercises: {'package' if root is None else root}")
    totals: dict[str, list[float]] = {}
    for r in book.rows:
        got = totals.setdefault(r["student"], [0.0, 0.0])
        got[0] += float(r["points"])
        got[1] += float(r["max"])
    for s, (got, of) in totals.items():
        print(f"{s:<24} {got:g} / {of:g}")
    print()
    print(book.summary)
    print(f"gradebook: {args.out}" + (f"; feedback: {args.feedback}/" if args.feedback else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmcourse", description="The lmcourse command line.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"lmcourse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    course = argparse.ArgumentParser(add_help=False)
    course.add_argument(
        "--root", metavar="DIR", default=None,
        help="the course folder to act on (default: the nearest folder at or above the current directory "
        "that holds chapters/ or solutions/ with NN_topic.ipynb notebooks)",
    )

    p = sub.add_parser("doctor", help="check the environment; exits 1 when something required is missing or broken")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("notebooks", help="execute notebooks in place")
    nsub = p.add_subparsers(dest="action", required=True)
    r = nsub.add_parser("run", parents=[course],
                        help="execute notebooks in place (default: the course's chapters/, solutions/, exercises/)")
    r.add_argument("paths", nargs="*", help="notebooks to run")
    r.add_argument("--timeout", type=_positive_int, default=600, help="seconds per cell, > 0 (default 600)")
    r.add_argument("--threads", type=_positive_int, default=2, help="torch/OpenMP threads in the kernel (default 2)")
    r.set_defaults(func=_notebooks_run)

    p = sub.add_parser("exercises", parents=[course], help="generate exercises/ from solutions/")
    p.add_argument("action", nargs="?", choices=["build", "check"], help="build (default) or check")
    p.add_argument("--check", action="store_true", help="exit 1 and list every notebook that build would change")
    p.add_argument("--prune", action="store_true",
                   help="also delete exercises/*.ipynb that have no solution (strays are only listed otherwise)")
    p.set_defaults(func=_exercises)

    p = sub.add_parser("grade", help="grade a folder of submissions (one folder per student) into a CSV")
    p.add_argument("submissions", help="folder with one sub-folder per student holding NN_topic.ipynb files")
    p.add_argument("--out", default="gradebook.csv", help="gradebook CSV to write (default gradebook.csv)")
    p.add_argument("--feedback", default="feedback", help="folder for per-student feedback (default feedback/)")
    p.add_argument("--timeout", type=_positive_int, default=600, help="seconds per notebook, > 0 (default 600)")
    p.add_argument("--memory-mb", type=_positive_int, default=2048,
                   help="memory limit per notebook in MB, children included (default 2048); checked before grading starts")
    p.add_argument("--jobs", type=_positive_int, default=1, help="notebooks graded at once (default 1)")
    p.add_argument("--seed", type=_seed, default=None,
                   help="seed of the hidden cases (default: a random one, printed and written in the gradebook)")
    p.add_argument("--root", metavar="DIR", default=None,
                   help="course folder whose solutions/checks.py adds exercises and whose solutions/ notebooks "
                   "give points (default: the course folder you stand in, else the package's exercises only)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without bubblewrap isolation (trusted submissions only; warns on every run)")
    p.set_defaults(func=_grade)

    p = sub.add_parser("readme", parents=[course], help="regenerate the README's course map from lmcourse/course.py")
    p.add_argument("--check", action="store_true", help="exit 1 when the course map is out of date")
    p.set_defaults(func=_readme)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
