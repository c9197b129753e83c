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


# `lmcourse train`: the TrainConfig fields it takes as flags (--batch-size for batch_size, ...)
_TRAIN_INTS = ("steps", "batch_size", "block_size", "warmup_steps", "lr_decay_steps", "grad_accum", "eval_interval",
               "eval_batches", "log_interval", "checkpoint_interval", "keep_checkpoints", "seed")
_TRAIN_FLOATS = ("lr", "min_lr", "weight_decay", "eps")


def _grad_clip(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'none', got {text!r}") from None


def _train_text(corpus: str) -> str:
    """A named corpus (stories, pydoc, tinyshakespeare) or the UTF-8 text file at a path."""
    from .data import REMOTES, load_text

    if corpus in ("stories", "pydoc", *REMOTES):
        return load_text(corpus)
    path = Path(corpus)
    if not path.is_file():
        raise ValueError(f"--corpus {corpus!r}: no such file (choose stories, pydoc, tinyshakespeare or a text file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"--corpus {corpus}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    if not text:
        raise ValueError(f"--corpus {corpus}: the file is empty")
    return text


def _train(args) -> int:
    """`lmcourse train`: here, as one rank of a torchrun group, or relaunched under torchrun (--nproc N)."""
    import contextlib
    import os

    from . import distributed

    if distributed.under_torchrun():
        try:
            dev = distributed.init_process_group(args.device or "auto")
        except (RuntimeError, ValueError) as e:
            return _error(str(e))
        args.device = dev.type  # this rank's own GPU is the current device
        try:
            if int(os.environ["RANK"]) == 0:
                return _train_here(args)
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                return _train_here(args)  # its messages repeat rank 0's
        finally:
            distributed.destroy_process_group()
    if args.nproc > 1:
        return _train_launch(args)
    return _train_here(args)


def _without_nproc(argv: list[str]) -> list[str]:
    """argv less its --nproc N (or an abbreviation of it): torchrun's own parser would take it for
    its --nproc-per-node, and each rank is already one process."""
    out, skip = [], False
    for a in argv:
        name = a.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) >= 4 and "--nproc".startswith(name):
            skip = "=" not in a
        else:
            out.append(a)
    return out


def _train_launch(args) -> int:
    """Run this same command in args.nproc ranks under torchrun, and pass Ctrl-C on to them."""
    import contextlib
    import os
    import signal
    import subprocess

    from .distributed import launch_command

    if args.device == "mps":
        return _error("--nproc runs on CPU (gloo) or CUDA GPUs (nccl), not on mps")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    # its own session: a Ctrl-C in the terminal reaches this process only, which hands torchrun one
    # SIGINT for every rank (stop after the step and save); a second one interrupts them all at once
    proc = subprocess.Popen(launch_command(args.nproc, _without_nproc(args.argv)), env=env, start_new_session=True)
    interrupts = 0
    while True:
        try:
            rc = proc.wait()
            break
        except KeyboardInterrupt:
            interrupts += 1
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT) if interrupts == 1 else os.killpg(proc.pid, signal.SIGINT)
    if interrupts:
        return 130
    if rc != 0:
        return _error(f"the {args.nproc} training processes failed (torchrun exit {rc}); the first error is above")
    return 0


def _train_here(args) -> int:
    import dataclasses
    import json

    import torch

    from .atomic import write_atomic
    from .data import DownloadError
    from .model import GPT, PRESETS, GPTConfig
    from .tokenizers import BPETokenizer, CharTokenizer
    from .training import (NonFiniteLossError, TokenData, TrainConfig, TrainingInterrupted, latest_checkpoint,
                           load_checkpoint, load_tokenizer, save_tokenizer, train)

    out = Path(args.out)
    try:
        config: dict = {}
        if args.config:
            try:
                config = json.loads(Path(args.config).read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                return _error(f"--config {args.config}: {e}")
            if not isinstance(config, dict):
                return _error(f"--config {args.config}: expected a JSON object")
            unknown = sorted(set(config) - {"corpus", "tokenizer", "vocab_size", "preset", "val_fraction", "model", "train"})
            if unknown:
                return _error(f"--config {args.config}: unknown key(s) {unknown}")
        flags = {k: getattr(args, k) for k in (*_TRAIN_INTS, *_TRAIN_FLOATS, "device", "dtype", "compile")
                 if getattr(args, k) is not None}
        if args.betas is not None:
            flags["betas"] = tuple(args.betas)
        if "steps" in flags and "warmup_steps" not in flags and not args.resume:  # a short run warms up for a tenth
            flags["warmup_steps"] = min(config.get("train", {}).get("warmup_steps", TrainConfig.warmup_steps),
                                        flags["steps"] // 10)
        if hasattr(args, "grad_clip"):  # absent unless given: None is a value here (no clipping)
            flags["grad_clip"] = args.grad_clip
        if args.resume:
            ck = load_checkpoint(out)  # verified: a corrupt checkpoint stops here, naming the file
            run = json.loads((out / "run.json").read_text(encoding="utf-8")) if (out / "run.json").is_file() else {}
            corpus = args.corpus or run.get("corpus")
            if corpus is None:
                return _error(f"{out}/run.json is missing: say which --corpus the run was trained on")
            tokenizer = load_tokenizer(out)
            cfg = TrainConfig.from_dict({**ck.train_config.to_dict(), **flags})
            if ck.model_config is None:
                return _error(f"{ck.path}: holds no GPT config")
            model = GPT(GPTConfig(**ck.model_config))
            val_fraction = run.get("val_fraction", 0.1)
            text = _train_text(corpus)
        else:
            found = latest_checkpoint(out) if out.is_dir() else None
            if found is not None:
                return _error(f"{out} already holds a run (checkpoint {found.name}): add --resume to continue it, "
                              "or choose another --out")
            corpus = args.corpus or config.get("corpus", "stories")
            kind = args.tokenizer or config.get("tokenizer", "bpe")
            vocab_size = args.vocab_size or config.get("vocab_size", 512)
            preset_name = args.preset or config.get("preset", "tiny")
            val_fraction = args.val_fraction or config.get("val_fraction", 0.1)
            if preset_name not in PRESETS:
                return _error(f"--preset {preset_name!r}: choose one of {', '.join(PRESETS)}")
            if kind not in ("char", "bpe"):
                return _error(f"tokenizer {kind!r}: choose char or bpe")
            text = _train_text(corpus)
            if kind == "char":
                tokenizer = CharTokenizer.fit(text)
            else:
                print(f"training a BPE tokenizer ({vocab_size} tokens) on {len(text):,} characters", file=sys.stderr)
                tokenizer = BPETokenizer().train(text, vocab_size)
            preset = dataclasses.replace(PRESETS[preset_name], **config.get("model", {}))
            cfg = TrainConfig.from_dict({"block_size": preset.block_size, **config.get("train", {}), **flags})
            torch.manual_seed(cfg.seed)  # the initial weights
            model = GPT(dataclasses.replace(preset, vocab_size=tokenizer.vocab_size, block_size=cfg.block_size))
            out.mkdir(parents=True, exist_ok=True)
            save_tokenizer(tokenizer, out)
            run = {"corpus": corpus, "tokenizer": kind, "preset": preset_name, "val_fraction": val_fraction}
            write_atomic(out / "run.json", json.dumps(run, indent=1) + "\n")
        data = TokenData.from_ids(tokenizer.encode(text), val_fraction=val_fraction)
        print(f"{model.num_params(non_embedding=False):,} parameters, {data}, {cfg.steps} steps of "
              f"{cfg.tokens_per_step:,} tokens -> {out}", file=sys.stderr)
        result = train(model, data, cfg, out_dir=out, resume=args.resume, progress=not args.no_progress, plot=False)
    except TrainingInterrupted as e:
        print(f"{e}; continue with --resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C: stopped mid-step, nothing saved
        print(f"interrupted mid-step, nothing saved; {out}/latest names the last checkpoint", file=sys.stderr)
        return 130
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError, DownloadError, TypeError) as e:  # CheckpointError is a ValueError
        return _error(str(e).splitlines()[0] if str(e) else type(e).__name__)
    val = f", val loss {result.val_losses[-1]:.4f}" if result.val_losses else ""
    print(f"step {result.step}: train loss {result.losses[-1]:.4f}{val}; {result.tokens_per_s:,.0f} tokens/s, "
          f"{result.wall_s:.1f} s; checkpoint {result.checkpoint}")
    return 0


def _generate(args) -> int:
    import torch

    from .generation import generate
    from .training import load_checkpoint, load_tokenizer

    try:
        ck = load_checkpoint(args.checkpoint)  # verified against its manifest: a corrupt file is named here
        device = args.device
        if device == "auto":
            from . import device as pick_device

            device = pick_device()
        model = ck.model(device)
        # the tokenizer sits in the run folder: the one given, or the one above a step-NNNNNN folder
        run_dir = Path(args.checkpoint)
        tok_dir = run_dir if any((run_dir / f).is_file() for f in ("tokenizer.bpe", "tokenizer.json")) else ck.path.parent
        tokenizer = load_tokenizer(tok_dir)
        ids = tokenizer.encode(args.prompt)
        if not ids:
            return _error("--prompt is empty: give at least one character to continue")
        generator = torch.Generator(device=device).manual_seed(args.seed)
        out = generate(
            model, torch.tensor([ids], dtype=torch.long, device=device), max_new_tokens=args.max_new_tokens,
            strategy=args.strategy, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            repetition_penalty=args.repetition_penalty, num_beams=args.num_beams, stop_tokens=args.stop,
            generator=generator if args.strategy == "sample" else None,
        )
    except (ValueError, OSError, KeyError) as e:  # CheckpointError is a ValueError; KeyError: a char not in the vocab
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return _error(msg)
    print(tokenizer.decode(out[0].tolist()))
    return 0


def _one_line_error(parser: argparse.ArgumentParser):
    def error(message: str):  # argparse's default prints the whole usage first
        parser.exit(2, f"error: {parser.prog}: {message} (see --help)\n")
    return error


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

    p = sub.add_parser(
        "train", help="pretrain a GPT on a corpus: progress on stderr, checkpoints and metrics.jsonl in --out",
        description="Pretrain a GPT (lmcourse.training.train, the loop the notebooks use). --out DIR receives the "
        "tokenizer, run.json, metrics.jsonl and checkpoints (DIR/latest names the newest); --resume continues it.",
    )
    p.error = _one_line_error(p)  # type: ignore[method-assign]
    p.add_argument("--corpus", default=None,
                   help="stories (default), pydoc, tinyshakespeare, or a UTF-8 text file; on --resume, the run's own")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default=None, help="bpe (default) or char")
    p.add_argument("--vocab-size", type=_positive_int, default=None, help="BPE vocabulary size (default 512)")
    p.add_argument("--preset", default=None, help="a GPTConfig preset: tiny (default), scale_32, ... (lmcourse.model.PRESETS)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="a JSON object with corpus, tokenizer, vocab_size, preset, val_fraction, model (GPTConfig "
                   "overrides) and train (TrainConfig fields); flags given here win")
    p.add_argument("--out", required=True, metavar="DIR", help="the run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--val-fraction", type=float, default=None, help="the last fraction of the tokens kept for validation (0.1)")
    for name in _TRAIN_INTS:
        extra = " (default 100, or a tenth of --steps when that is fewer)" if name == "warmup_steps" else ""
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"TrainConfig.{name}{extra}")
    for name in _TRAIN_FLOATS:
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=None, help=f"TrainConfig.{name}")
    p.add_argument("--betas", type=float, nargs=2, default=None, metavar=("B1", "B2"), help="AdamW's betas (0.9 0.99)")
    p.add_argument("--grad-clip", type=_grad_clip, default=argparse.SUPPRESS, help="clip the gradient norm to this; 'none' to switch off (1.0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None, help="default auto: CUDA, then MPS, then CPU")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16"], default=None, help="default auto: bf16 autocast on CUDA, fp32 elsewhere")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=_positive_int, default=1,
                   help="data-parallel: train in N processes through torchrun (gloo on CPU, nccl with one GPU "
                   "each); --batch-size is per process (default 1)")
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "generate", help="continue a prompt with a trained GPT (a run folder of `lmcourse train`, or one checkpoint)",
        description="Continue --prompt with the GPT saved in --checkpoint (lmcourse.generation.generate, with the KV "
        "cache) and print prompt and continuation to stdout.",
    )
    p.error = _one_line_error(p)  # type: ignore[method-assign]
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a run folder (its latest checkpoint and its tokenizer) or one step-NNNNNN folder in it")
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--strategy", choices=["greedy", "sample", "beam"], default="greedy", help="default greedy")
    p.add_argument("--max-new-tokens", type=_seed, default=100, help="at most this many new tokens (default 100)")
    p.add_argument("--temperature", type=float, default=None, help="sample only: > 0, or 0 for argmax (default 1)")
    p.add_argument("--top-k", type=_positive_int, default=None, help="sample only: keep the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="sample only: keep the smallest set with mass >= p, p in (0, 1]")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="CTRL's penalty on tokens already present (1 = none)")
    p.add_argument("--num-beams", type=_positive_int, default=4, help="beam only: beams (default 4)")
    p.add_argument("--stop", type=_seed, action="append", default=None, metavar="ID",
                   help="a token id that ends the text (repeatable)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the sampling generator (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu", help="default cpu")
    p.set_defaults(func=_generate)

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc N` runs the same command under torchrun
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
