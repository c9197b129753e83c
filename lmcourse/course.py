"""The course map: chapters, their titles and the library modules they build.

One place holds the repository slug, so every Colab link (README badges, the
notebooks' install line) is derived from it.

It also says what a *course folder* is, because the command line acts on the course you
stand in, never on the folder the package happens to be installed in: a course folder
holds `chapters/` or `solutions/` with at least one numbered notebook (`NN_topic.ipynb`,
the names the tools act on). `find_root` walks up from the current directory to the first
such folder.

A course folder may also declare its own exercises, without editing the package:
`<root>/solutions/checks.py` holds `Exercise(...)` declarations (the same API as
`lmcourse.exercises.chNN`), and `course_exercises(root)` returns them with the package's.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .checks import Exercise

REPO_SLUG = "lmcourse/lmcourse"
BRANCH = "main"


@dataclass(frozen=True)
class Chapter:
    number: int
    slug: str
    title: str
    modules: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{self.number:02d}_{self.slug}.ipynb"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(0, "getting_started", "Getting started", ("setup", "doctor", "checks")),
    Chapter(1, "language_models", "Language models, from counting to predicting", ("ngram", "data")),
    Chapter(2, "tokenization", "Text preprocessing and tokenization", ("text", "tokenizers", "sequences")),
    Chapter(3, "embeddings", "Embeddings and positions", ("embeddings",)),
    Chapter(4, "self_attention", "Self-attention, the math", ("attention",)),
    Chapter(5, "cross_entropy", "Cross-entropy, MLE and MAP", ("losses",)),
    Chapter(6, "transformer", "Building a Transformer", ("model", "interop", "compute")),
    Chapter(7, "pretraining", "Pretraining a tiny GPT", ("training",)),
    Chapter(8, "generation", "Generating text", ("generation",)),
    Chapter(9, "finetuning", "Fine-tuning and transfer learning", ("finetune",)),
    Chapter(10, "evaluation", "Evaluating language models", ("metrics",)),
    Chapter(11, "applications", "Applications", ("tasks",)),
    Chapter(12, "ethics_safety", "Ethics and safety, measured", ("safety",)),
    Chapter(13, "compute_scaling", "Compute and scaling", ("compute", "distributed")),
)


COURSE_FOLDERS = ("chapters", "solutions")
_NUMBERED = re.compile(r"^\d\d_.*\.ipynb$")


class NotACourseError(ValueError):
    """The folder the command line was asked to act on is not a course folder."""


def is_course_root(path: str | os.PathLike) -> bool:
    """True when `path` holds chapters/ or solutions/ with at least one NN_topic.ipynb notebook."""
    path = Path(path)
    for name in COURSE_FOLDERS:
        folder = path / name
        if folder.is_dir() and any(_NUMBERED.match(p.name) and p.is_file() for p in folder.iterdir()):
            return True
    return False


def find_root(start: str | os.PathLike | None = None, *, root: str | os.PathLike | None = None) -> Path:
    """The course folder to act on: `root` when given (it must be one), else the nearest course
    folder at or above `start` (default: the current directory). NotACourseError otherwise.

    A course folder holds chapters/ or solutions/ with at least one numbered notebook
    (NN_topic.ipynb).
    """
    what = "a course folder holds chapters/ or solutions/ with numbered notebooks (NN_topic.ipynb)"
    if root is not None:
        root = Path(root).expanduser().resolve()
        if not root.is_dir():
            raise NotACourseError(f"--root {root}: no such folder")
        if not is_course_root(root):
            raise NotACourseError(f"--root {root}: not a course folder; {what}")
        return root
    here = Path(start if start is not None else os.getcwd()).expanduser().resolve()
    for folder in (here, *here.parents):
        if is_course_root(folder):
            return folder
    raise NotACourseError(
        f"{here} is not inside a course folder; {what}. Run this from your course checkout, or pass --root DIR"
    )


# -- a course folder's own exercises -----------------------------------------------------
COURSE_CHECKS = Path("solutions") / "checks.py"  # relative to the course folder
_EXERCISE_ID = re.compile(r"^\d+\.\d+$")


class CourseChecksError(ValueError):
    """A course folder's solutions/checks.py cannot be used: it fails to import, or an id is bad or taken."""


# (resolved path, mtime_ns, size) -> the exercises it declared: the grader asks once per notebook.
_loaded: dict[tuple[str, int, int], dict[str, "Exercise"]] = {}


def load_course_checks(path: str | os.PathLike) -> dict[str, "Exercise"]:
    """The exercises a course's checks.py declares, by id, without touching the package's REGISTRY.

    The file is imported under a private module name (never as `checks`, which is the student's
    copy), with its own folder on sys.path so it can import files beside it. Exercises it
    creates register into a fresh registry that is kept apart; module-level `Exercise` objects
    made with register=False count too. CourseChecksError names the file (and its line) when it
    fails to import, and names the exercise when an id is not "N.M".
    """
    from . import checks

    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key in _loaded:
        return dict(_loaded[key])
    # The package's exercises are imported first, so a checks.py that imports one of its modules
    # (to reuse a helper) does not re-declare the package's exercises as its own.
    package = checks.load_all()
    name = f"_lmcourse_course_checks_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved_registry, saved_path = checks.REGISTRY, list(sys.path)
    checks.REGISTRY = {}  # Exercise(...) registers here: the package's registry never sees the course's ids
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit or KeyboardInterrupt from the file itself are its errors too
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        where = f" (line {frames[-1].lineno}: {(frames[-1].line or '').strip()})" if frames else ""
        if isinstance(exc, SyntaxError) and exc.lineno:  # raised by the compiler: no frame of the file itself
            where = f" (line {exc.lineno}: {(exc.text or '').strip()})"
        raise CourseChecksError(f"{path}: could not be imported{where}: {type(exc).__name__}: {exc}") from None
    finally:
        declared, checks.REGISTRY = checks.REGISTRY, saved_registry
        sys.path[:] = saved_path
    for value in vars(module).values():
        if any(value is ex for ex in package.values()):  # `from lmcourse.exercises.ch04 import causal_mask`
            continue
        if isinstance(value, checks.Exercise) and declared.get(value.id, value) is value:
            declared.setdefault(value.id, value)
        elif isinstance(value, checks.Exercise):
            raise CourseChecksError(
                f"{path}: two exercises have id {value.id!r}: {declared[value.id].name!r} and {value.name!r}"
            )
    for ex_id, ex in declared.items():
        if not _EXERCISE_ID.match(ex_id):
            raise CourseChecksError(
                f"{path}: exercise {ex.name!r} has id {ex_id!r}; an id is \"N.M\": the chapter number N of the "
                f"solutions notebook (NN_topic.ipynb) that holds it, then its place M in that notebook"
            )
    if not declared:
        raise CourseChecksError(f"{path}: declares no Exercise(...); remove it, or declare the course's exercises in it")
    _loaded[key] = declared
    return dict(declared)


def course_exercises(root: str | os.PathLike | None) -> dict[str, "Exercise"]:
    """Every exercise a course has, by id ("N.M", sorted by chapter then number).

    The package's registered exercises (`lmcourse.exercises.chNN`), plus those declared in
    `<root>/solutions/checks.py` when `root` is given and that file exists. An id declared by
    both is a CourseChecksError naming the two exercises and the file.
    """
    from .checks import load_all

    found = dict(load_all())
    if root is not None and (Path(root) / COURSE_CHECKS).is_file():
        path = Path(root) / COURSE_CHECKS
        for ex_id, ex in load_course_checks(path).items():
            if ex_id in found:
                theirs = found[ex_id]
                raise CourseChecksError(
                    f"{path}: exercise {ex_id} {ex.name!r} clashes with the package's exercise {ex_id} {theirs.name!r} "
                    f"({theirs.reference.__module__}); give the course's exercise another id "
                    f"(its chapter number, then a number that is free)"
                )
            found[ex_id] = ex
    return dict(sorted(found.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]))


def colab_url(path: str) -> str:
    """Colab URL that opens `path` (e.g. "chapters/00_getting_started.ipynb") from GitHub."""
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/{path}"


# The extras the chapters import at run time (chapter 06 loads all-MiniLM-L6-v2 from `hf`): the
# Colab cell installs them, and so does the installed-wheel test. tests/test_packaging.py checks
# that every chapter's imports are covered by the core requirements and these, and that each is used.
CHAPTER_EXTRAS: tuple[str, ...] = ("hf",)


def pip_spec() -> str:
    """What `pip install` needs to fetch the library, with the extras chapters use, on Colab."""
    extras = f"[{','.join(CHAPTER_EXTRAS)}]" if CHAPTER_EXTRAS else ""
    return f"lmcourse{extras} @ git+https://github.com/{REPO_SLUG}@{BRANCH}"


BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
MAP_BEGIN = "<!-- course-map:begin (generated by `make readme` from lmcourse/course.py) -->"
MAP_END = "<!-- course-map:end -->"


def course_map_markdown(root=None) -> str:
    """The README's course-map table: one row per chapter, a Colab badge where the notebook exists.

    `root` is the course folder (default: `find_root()` from the current directory).
    """
    root = Path(root) if root else find_root()
    rows = ["| # | chapter | library | open |", "|---|---|---|---|"]
    for ch in CHAPTERS:
        path = f"chapters/{ch.filename}"
        mods = ", ".join(f"`{m}`" for m in ch.modules)
        if (root / path).exists():
            title = f"[{ch.title}]({path})"
            badge = f"[![Open In Colab]({BADGE})]({colab_url(path)})"
        else:
            title, badge = ch.title, "planned"
        rows.append(f"| {ch.number:02d} | {title} | {mods} | {badge} |")
    return "\n".join(rows)


def update_readme(readme, root=None) -> str:
    """README text with the course map between its markers replaced (ValueError without markers).

    `root` is the course folder whose chapters get links (default: the README's own folder).
    """
    root = root if root is not None else Path(readme).resolve().parent
    text = Path(readme).read_text(encoding="utf-8")
    if MAP_BEGIN not in text or MAP_END not in text:
        raise ValueError(f"{readme}: no course-map markers ({MAP_BEGIN!r} ... {MAP_END!r})")
    head, rest = text.split(MAP_BEGIN, 1)
    _, tail = rest.split(MAP_END, 1)
    return f"{head}{MAP_BEGIN}\n{course_map_markdown(root)}\n{MAP_END}{tail}"
