"""The `lmcourse` command: doctor, notebooks run, exercises build / --check, grade, readme."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _doctor(args) -> int:
    from .environment import doctor

    return 0 if doctor() else 1


def _notebooks_run(args) -> int:
    from .notebooks import all_notebooks, run_notebooks

    paths = [Path(p) for p in args.paths] or all_notebooks()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    return run_notebooks(paths, timeout=args.timeout, threads=args.threads)


def _exercises(args) -> int:
    from .notebooks import MarkerError, build_exercises, check_exercises

    try:
        if args.check or args.action == "check":
            problems = check_exercises()
            for p in problems:
                print(p)
            if problems:
                print("exercises/ is out of sync with solutions/: run `make exercises`", file=sys.stderr)
                return 1
            print("exercises/ is in sync with solutions/")
            return 0
        if args.action in (None, "build"):
            for path in build_exercises():
                print(f"wrote {path.relative_to(path.parents[1])}")
            return 0
    except MarkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2


def _readme(args) -> int:
    from .course import update_readme
    from .notebooks import ROOT, write_atomic

    readme = ROOT / "README.md"
    want = update_readme(readme, ROOT)
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
    from .grading import grade_folder

    try:
        grades = grade_folder(
            Path(args.submissions), Path(args.out), Path(args.feedback) if args.feedback else None,
            timeout=args.timeout, memory_mb=args.memory_mb,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    students = sorted({g.student for g in grades})
    for s in students:
        mine = [g for g in grades if g.student == s]
        got = sum(sum(g.scores.values()) for g in mine)
        of = sum(len(g.scores) for g in mine)
        print(f"{s:<24} {got:g} / {of}")
    print(f"gradebook: {args.out}" + (f"; feedback: {args.feedback}/" if args.feedback else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmcourse", description="The lmcourse command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check the environment; exits 1 when something required is missing")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("notebooks", help="execute notebooks in place")
    nsub = p.add_subparsers(dest="action", required=True)
    r = nsub.add_parser("run", help="execute notebooks in place (default: chapters/, solutions/, exercises/)")
    r.add_argument("paths", nargs="*", help="notebooks to run")
    r.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    r.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads in the kernel (default 2)")
    r.set_defaults(func=_notebooks_run)

    p = sub.add_parser("exercises", help="generate exercises/ from solutions/")
    p.add_argument("action", nargs="?", choices=["build", "check"], help="build (default) or check")
    p.add_argument("--check", action="store_true", help="exit 1 and list every notebook that build would change")
    p.set_defaults(func=_exercises)

    p = sub.add_parser("grade", help="grade a folder of submissions (one folder per student) into a CSV")
    p.add_argument("submissions", help="folder with one sub-folder per student holding NN_topic.ipynb files")
    p.add_argument("--out", default="gradebook.csv", help="gradebook CSV to write (default gradebook.csv)")
    p.add_argument("--feedback", default="feedback", help="folder for per-student feedback (default feedback/)")
    p.add_argument("--timeout", type=int, default=600, help="seconds per notebook (default 600)")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory limit per notebook in MB (default 2048)")
    p.set_defaults(func=_grade)

    p = sub.add_parser("readme", help="regenerate the README's course map from lmcourse/course.py")
    p.add_argument("--check", action="store_true", help="exit 1 when the course map is out of date")
    p.set_defaults(func=_readme)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
