"""Run one untrusted program (a student's notebook worker) where it cannot reach anything else.

`Sandbox(argv, ...)` starts `argv` under bubblewrap (`bwrap`). What the worker gets, and how:

- **Files.** A fresh tmpfs at /work (its working directory) holding only `files`, and a small tmpfs
  at /tmp; both are private to this worker and vanish with it. Everything else is read-only: /usr,
  a few files of /etc (the loader cache, passwd, group), and `ro_binds` (from `python_binds()`:
  the interpreter's prefix, the venv, the lmcourse package directory), each bound at its own path.
  Nothing else of the host exists in there: not the repository root, not solutions/, not other
  submissions, not the grader's output folder. `lmcourse/exercises/` is covered by an empty tmpfs,
  so the exercise declarations (and their references) cannot be read or imported.
- **Identity.** User `nobody` (65534) in its own user namespace, no capabilities. When the grader
  runs as root, the launcher drops to the real host uid 65534 before starting bwrap (binding the
  root-only sources through a private mount namespace first), so on the host too the worker is
  nobody, not a root without capabilities.
- **Namespaces.** Its own pid, network (loopback only, no route out), IPC, UTS and cgroup
  namespaces (`--unshare-all`), a new session (no TIOCSTI into the grader's terminal), no nested
  user namespaces, and a cleared environment holding only PATH, HOME, USER, LANG and `env`.
- **Memory and processes, for the whole worker.** A fresh cgroup per worker where one can be made
  (v2: memory.max and pids.max; v1: memory.limit_in_bytes, memsw where present, and pids.max),
  removed afterwards. Otherwise RLIMIT_AS per process and RLIMIT_NPROC for user nobody, with the
  pid namespace keeping every child inside; `isolation()` and `.mode` say which applies. Threads
  count as processes in both (the kernel counts tasks). The tmpfs pages count as memory.
- **Always.** RLIMIT_CPU (CPU seconds per process), RLIMIT_FSIZE (largest file it may write),
  RLIMIT_CORE=0.
- **Output.** stdout is a pipe that `readline` reads in chunks, never past `max_output_bytes` in
  total (beyond it `.oversize` is set and nothing more is read). stderr goes to a file bounded by
  RLIMIT_FSIZE, of which only the last 4 KB is ever read (`stderr_tail`).
- **Ending.** Killing the outer bwrap ends the pid namespace and so every process in it, however
  detached (double fork, setsid); `--die-with-parent` and a parent-death signal on bwrap end it if
  the grader dies; the cgroup's processes are killed too. When the worker's main process exits on
  its own, its pid namespace ends with it, so nothing it left behind outlives `wait()`.

What is not bounded here: wall-clock time (the caller's `readline(timeout)` and `kill()`), total
CPU across processes (RLIMIT_CPU is per process), and without a cgroup, memory summed over
processes. With `sandbox=False` (`lmcourse grade --no-sandbox`) the same API runs the program
directly, in its own session and a temporary folder, under the same rlimits and cgroup: it can then
read whatever the grader's user can, and without a cgroup a detached child can outlive it.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

NOBODY = 65534
WORKDIR = "/work"  # the worker's working directory inside the sandbox
STDERR_TAIL_BYTES = 4096
PACKAGE_DIR = Path(__file__).resolve().parent
HIDDEN = (PACKAGE_DIR / "exercises",)  # never visible to a worker, whatever is bound above it
# Read-only files of /etc the dynamic loader and `pwd` need; nothing else of /etc is visible.
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd", "/etc/group",
             "/etc/localtime")
BWRAP_PIDS = 2  # the outer bwrap and the namespace's init, counted in the cgroup's pids.max

# Runs as the first thing in the child (python -I -S: no site, no environment), then becomes
# bwrap or the worker. A separate program instead of Popen(preexec_fn=...), which is unsafe when
# the grader runs several sandboxes from threads.
_LAUNCHER = r"""
import ctypes, json, os, resource, signal, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
def ok(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        sys.exit(f"lmcourse.sandbox launcher: {what}: {os.strerror(err)}")
try:
    for path in spec["cgroup_procs"]:
        with open(path, "w") as f:
            f.write(str(os.getpid()))
    for name, soft, hard in spec["rlimits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if spec["stage"]:
        ok(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
        ok(libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None), "make / private")
        for src, dst in spec["stage"]:
            ok(libc.mount(src.encode(), dst.encode(), None, 4096 | (1 << 14), None), f"bind {src}")
    if spec["uid"] is not None:
        os.setgroups([])
        os.setgid(spec["uid"])
        os.setuid(spec["uid"])
    ok(libc.prctl(1, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")  # after setuid, which clears it
    if os.getppid() != spec["parent"]:
        sys.exit("lmcourse.sandbox launcher: the grader has gone")
    os.chdir(spec["cwd"])
    os.execv(spec["argv"][0], spec["argv"])
except OSError as exc:
    sys.exit(f"lmcourse.sandbox launcher: {exc}")
"""


# -- what this machine offers --------------------------------------------------------------
def _cgroup_paths() -> tuple[str, dict[str, Path]]:
    """('v1' or 'v2', controller -> the folder of this process's own cgroup); ('', {}) if none."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "", {}
    v1: dict[str, Path] = {}
    v2 = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            v2 = path
        for name in controllers.split(","):
            if name in ("memory", "pids"):
                v1[name] = Path("/sys/fs/cgroup", name) / path.lstrip("/")
    if len(v1) == 2:
        return "v1", v1
    if v2 is not None and (Path("/sys/fs/cgroup") / "cgroup.controllers").exists():
        own = Path("/sys/fs/cgroup") / v2.lstrip("/")
        return "v2", {"memory": own, "pids": own}
    return "", {}


class _Cgroup:
    """A fresh cgroup (v1: one per controller; v2: one) holding a single worker, removed by `remove`."""

    def __init__(self, memory_bytes: int, max_pids: int):
        self.version, parents = _cgroup_paths()
        if not self.version:
            raise OSError("no cgroup hierarchy with memory and pids controllers")
        name = f"lmcourse-sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dirs: list[Path] = []
        try:
            for parent in dict.fromkeys(parents.values()):  # v2: one folder for both
                d = parent / name
                d.mkdir()
                self.dirs.append(d)
            if self.version == "v2":
                d = self.dirs[0]
                if not (d / "memory.max").exists() or not (d / "pids.max").exists():
                    raise OSError("cgroup v2: memory and pids controllers are not delegated here")
                (d / "memory.max").write_text(str(memory_bytes))
                if (d / "memory.swap.max").exists():
                    (d / "memory.swap.max").write_text("0")
                (d / "pids.max").write_text(str(max_pids))
            else:
                mem = parents["memory"] / name
                (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
                if (mem / "memory.memsw.limit_in_bytes").exists():  # swap counted too, when accounted
                    (mem / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                (parents["pids"] / name / "pids.max").write_text(str(max_pids))
        except OSError:
            self.remove()
            raise

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files:
            try:
                found.update(int(p) for p in Path(f).read_text().split())
            except OSError:
                pass
        return found

    def kill(self) -> None:
        """SIGKILL every process in the cgroup until none is left (new ones may be forked meanwhile)."""
        if self.version == "v2" and (self.dirs[0] / "cgroup.kill").exists():
            try:
                (self.dirs[0] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        for _ in range(200):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def memory_exceeded(self) -> bool:
        """Whether the kernel refused the worker memory (it hit the limit, or killed one of its processes)."""
        try:
            if self.version == "v2":
                events = (self.dirs[0] / "memory.events").read_text().split()
                counts = dict(zip(events[::2], map(int, events[1::2])))
                return counts.get("max", 0) > 0 or counts.get("oom_kill", 0) > 0
            mem = next(d for d in self.dirs if (d / "memory.failcnt").exists())
            oom = (mem / "memory.oom_control").read_text().split()
            counts = dict(zip(oom[::2], oom[1::2]))
            return int((mem / "memory.failcnt").read_text()) > 0 or int(counts.get("oom_kill", "0")) > 0
        except (OSError, StopIteration, ValueError):
            return False

    def remove(self) -> None:
        for d in reversed(self.dirs):
            for _ in range(100):  # a killed process leaves its cgroup a moment after it dies
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.dirs = []


@lru_cache(maxsize=1)
def _cgroup_works() -> str:
    """'v1' or 'v2' when a worker cgroup can be made here, else ''."""
    try:
        cg = _Cgroup(64 * 2**20, 8)
    except OSError:
        return ""
    cg.remove()
    return cg.version


def isolation() -> str:
    """What bounds a worker's memory and process count on this machine (said in the grader's output)."""
    version = _cgroup_works()
    if version:
        return f"cgroup {version} (memory, pids)"
    if os.geteuid() == 0:
        return "rlimits + pid namespace (memory per process; processes counted as user nobody)"
    return "rlimits + pid namespace (memory per process; processes counted per user)"


@lru_cache(maxsize=1)
def available() -> str | None:
    """None when a bubblewrap sandbox can be made here, else the reason why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed; on Debian/Ubuntu: apt-get install bubblewrap"
    try:
        with Sandbox(["/bin/sh", "-c", "echo ok"], memory_mb=64, max_procs=8, cpu_seconds=5,
                     max_output_bytes=64) as sb:
            line = sb.readline(timeout=20)
            if line != b"ok\n":
                return f"bwrap could not start a sandbox here: {sb.stderr_tail().strip()[-300:] or 'no output'}"
    except OSError as exc:
        return f"bwrap could not start a sandbox here: {exc}"
    return None


def python_binds() -> list[Path]:
    """What a worker running this Python with lmcourse needs, read-only: never the repository root."""
    import site

    paths = [Path(sys.base_prefix), Path(sys.prefix), *map(Path, site.getsitepackages()), PACKAGE_DIR]
    out: list[Path] = []
    for p in sorted({p.resolve() for p in paths if p.exists()}, key=lambda p: len(p.parts)):
        if not any(p.is_relative_to(q) for q in out):  # already visible through a bound parent
            out.append(p)
    return out


# -- one worker ------------------------------------------------------------------------------
def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Sandbox: {name} must be a positive whole number, got {value!r}")
    return value


def _count_processes(uid: int) -> int:
    """How many processes (threads included, as RLIMIT_NPROC counts them) user `uid` has now."""
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass
    return n


class Sandbox:
    """One worker process and everything it starts, isolated as the module docstring says.

    >>> with Sandbox([sys.executable, "job.py"], files={"job.py": b"print(1)"}, ro_binds=python_binds(),
    ...              memory_mb=512, max_procs=32, cpu_seconds=10, max_output_bytes=2**20) as sb:
    ...     sb.readline(timeout=10)
    b'1\\n'
    """

    def __init__(self, argv: Sequence[str], *, ro_binds: Sequence[Path] = (), files: Mapping[str, bytes] | None = None,
                 memory_mb: int, max_procs: int, cpu_seconds: int, env: Mapping[str, str] | None = None,
                 max_output_bytes: int, sandbox: bool = True, file_mb: int = 64, scratch_mb: int = 256):
        if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"Sandbox: argv must be a non-empty list of str, got {argv!r}")
        self.argv = list(argv)
        self.memory_mb = _positive_int("memory_mb", memory_mb)
        self.max_procs = _positive_int("max_procs", max_procs)
        self.cpu_seconds = _positive_int("cpu_seconds", cpu_seconds)
        self.max_output_bytes = _positive_int("max_output_bytes", max_output_bytes)
        self.file_mb = _positive_int("file_mb", file_mb)
        self.scratch_mb = _positive_int("scratch_mb", scratch_mb)
        self.ro_binds = [Path(p) for p in ro_binds]
        for p in self.ro_binds:
            if not p.is_absolute() or not p.exists():
                raise ValueError(f"Sandbox: ro_binds entry {str(p)!r} must be an existing absolute path")
        self.files = dict(files or {})
        for name, data in self.files.items():
            parts = Path(name).parts
            if not parts or Path(name).is_absolute() or ".." in parts or not isinstance(data, bytes):
                raise ValueError(f"Sandbox: files must map relative names (no '..') to bytes, got {name!r}")
        self.env = dict(env or {})
        self.sandbox = bool(sandbox)
        self.mode = ""
        self.oversize = False
        self.eof = False
        self.bytes_read = 0
        self.returncode: int | None = None
        self._memory_exceeded = False
        self._proc: subprocess.Popen | None = None
        self._dir: Path | None = None
        self._cgroup: _Cgroup | None = None
        self._buf = bytearray()
        self._stream_ended = False
        self._writer: threading.Thread | None = None
        self._stderr = ""

    # -- life cycle --
    def start(self) -> Sandbox:
        if self._proc is not None:
            raise RuntimeError("Sandbox: already started")
        if self.sandbox and shutil.which("bwrap") is None:
            raise OSError("Sandbox: bubblewrap (bwrap) is not installed")
        self._dir = Path(tempfile.mkdtemp(prefix="lmcourse-sandbox-"))
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        assert self._dir is not None
        self._dir.chmod(0o711)  # nobody may pass through to the staged binds, not list them
        root = os.geteuid() == 0
        extra_pids = BWRAP_PIDS if self.sandbox else 0
        try:
            self._cgroup = _Cgroup(self.memory_mb * 2**20, self.max_procs + extra_pids)
            bound = f"cgroup {self._cgroup.version} (memory, pids)"
        except OSError:
            self._cgroup = None
            bound = "rlimits" + (" + pid namespace" if self.sandbox else "")
        rlimits = [("RLIMIT_CPU", self.cpu_seconds, self.cpu_seconds + 1),
                   ("RLIMIT_FSIZE", self.file_mb * 2**20, self.file_mb * 2**20),
                   ("RLIMIT_CORE", 0, 0)]
        uid = NOBODY if (self.sandbox and root) else None
        if self._cgroup is None:
            mem = self.memory_mb * 2**20
            rlimits.append(("RLIMIT_AS", mem, mem))
            # RLIMIT_NPROC counts every process of the user, so leave room for those it has already.
            count_uid = NOBODY if uid is not None else os.getuid()
            nproc = _count_processes(count_uid) + self.max_procs + extra_pids
            rlimits.append(("RLIMIT_NPROC", nproc, nproc))
            if count_uid == 0:
                bound += " (no process bound: the kernel exempts root from RLIMIT_NPROC)"
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "USER": "nobody", "LOGNAME": "nobody"}
        pass_fds: list[int] = []
        stage: list[tuple[str, str]] = []
        if self.sandbox:
            cwd = "/"
            argv = self._bwrap_argv(stage, pass_fds, staged=uid is not None)
            env["HOME"] = WORKDIR
            self.mode = f"bubblewrap as uid {NOBODY}, {bound}"
        else:
            work = self._dir / "work"
            work.mkdir()
            for name, data in self.files.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_bytes(data)
            cwd = str(work)
            argv = self.argv
            env["HOME"] = cwd
            env["USER"] = env["LOGNAME"] = os.environ.get("USER", "user")
            self.mode = f"no sandbox (own session, rlimits), {bound}"
        env.update(self.env)
        spec = {"cgroup_procs": self._cgroup.procs_files if self._cgroup else [], "rlimits": rlimits,
                "stage": stage, "uid": uid, "parent": os.getpid(), "cwd": cwd, "argv": argv}
        with open(self._dir / "stderr", "wb") as err:
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(spec)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                    pass_fds=pass_fds, start_new_session=True, cwd=self._dir,
                )
            finally:
                for fd in pass_fds:
                    os.close(fd)
        os.set_blocking(self._proc.stdout.fileno(), False)

    def _bwrap_argv(self, stage: list[tuple[str, str]], pass_fds: list[int], *, staged: bool) -> list[str]:
        """bwrap's command line. When `staged`, sources are first bound (as root, in the launcher's
        private mount namespace) onto empty folders nobody can reach, since bwrap then runs as nobody."""
        assert self._dir is not None
        stage_dir = self._dir / "stage"
        stage_dir.mkdir(mode=0o755)
        stage_dir.chmod(0o755)

        def source(path: str) -> str:
            if not staged:
                return path
            dst = stage_dir / str(len(stage))
            if Path(path).is_dir():
                dst.mkdir()
            else:
                dst.touch()
            stage.append((path, str(dst)))
            return str(dst)

        args = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
                "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            p = Path(top)
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), top]
            elif p.is_dir():
                args += ["--ro-bind", source(top), top]
        for f in ETC_FILES:
            if Path(f).exists():
                args += ["--ro-bind", source(f), f]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(self.scratch_mb * 2**20), "--tmpfs", "/tmp",
                 "--size", str(self.scratch_mb * 2**20), "--perms", "0700", "--tmpfs", WORKDIR]
        for name, data in self.files.items():
            data_file = self._dir / f"file-{len(pass_fds)}"
            data_file.write_bytes(data)
            pass_fds.append(os.open(data_file, os.O_RDONLY))
            for parent in reversed(Path(name).parents[:-1]):
                args += ["--dir", f"{WORKDIR}/{parent}"]
            args += ["--file", str(pass_fds[-1]), f"{WORKDIR}/{name}"]
        for p in self.ro_binds:
            args += ["--ro-bind", source(str(p)), str(p)]
        for hidden in HIDDEN:
            if any(hidden.is_relative_to(p) for p in self.ro_binds):
                args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
        args += ["--remount-ro", "/", "--chdir", WORKDIR, "--uid", str(NOBODY), "--gid", str(NOBODY),
                 "--", *self.argv]
        return args

    def __enter__(self) -> Sandbox:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- talking to the worker --
    def send(self, data: bytes) -> None:
        """Write `data` to the worker's stdin, then close it (in a thread: a worker that never reads
        cannot block the grader)."""
        proc = self._started()
        if self._writer is not None:
            raise RuntimeError("Sandbox: send() may be called once (stdin is closed after it)")

        def write() -> None:
            try:
                proc.stdin.write(data)
            except (BrokenPipeError, OSError, ValueError):
                pass
            finally:
                try:
                    proc.stdin.close()
                except (BrokenPipeError, OSError):
                    pass

        self._writer = threading.Thread(target=write, daemon=True)
        self._writer.start()

    def readline(self, timeout: float) -> bytes | None:
        """The worker's next line of stdout, with its b"\\n" (a last line without one comes as it is).

        None when `timeout` seconds pass first, or at the end of the output (then `.eof` is True),
        or once more than `max_output_bytes` would have been read in total (then `.oversize` is True:
        the rest is never read)."""
        proc = self._started()
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            if self.oversize:
                return None
            if self._stream_ended:
                if self._buf:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line
                self.eof = True
                return None
            left = deadline - time.monotonic()
            poller = select.poll()  # not select(): a grader with many open files has fds past 1024
            poller.register(fd, select.POLLIN)
            if left <= 0 or not poller.poll(left * 1000):
                return None
            room = self.max_output_bytes - self.bytes_read
            try:
                chunk = os.read(fd, min(65536, room + 1))
            except BlockingIOError:
                continue
            if not chunk:
                self._stream_ended = True
                continue
            self.bytes_read += len(chunk)
            if self.bytes_read > self.max_output_bytes:
                self.oversize = True
                self._buf.clear()
                return None
            self._buf += chunk

    def stderr_tail(self) -> str:
        """The last 4 KB the worker wrote to stderr (it may have written megabytes)."""
        if self._dir is None:
            return self._stderr
        try:
            with open(self._dir / "stderr", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - STDERR_TAIL_BYTES))
                return f.read(STDERR_TAIL_BYTES).decode(errors="replace")
        except OSError:
            return ""

    # -- ending --
    def wait(self, timeout: float | None = None) -> int:
        """Wait for the worker's main process (subprocess.TimeoutExpired after `timeout`), then end
        whatever it left behind; return its exit status (killed by signal N: -N without the sandbox,
        128+N or -N with it)."""
        proc = self._started()
        proc.wait(timeout)
        self._end_rest()
        self.returncode = proc.returncode
        return proc.returncode

    def kill(self) -> None:
        """Kill the worker and every process it started; wait for them."""
        proc = self._started()
        for pid, kill in ((proc.pid, os.kill), (proc.pid, os.killpg)):
            try:
                kill(pid, signal.SIGKILL)  # the outer bwrap: its pid namespace dies with it
            except (ProcessLookupError, PermissionError):
                pass
        self.wait()

    def _end_rest(self) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)  # the session (all that matters without bwrap)
        except (ProcessLookupError, PermissionError):
            pass
        if self._cgroup is not None:
            self._cgroup.kill()
            self._memory_exceeded = self._memory_exceeded or self._cgroup.memory_exceeded()

    @property
    def memory_exceeded(self) -> bool:
        """Whether the worker ran into its memory cgroup's limit (always False without a cgroup:
        then a MemoryError inside the worker is all there is)."""
        if self._cgroup is not None and self._cgroup.dirs:
            self._memory_exceeded = self._memory_exceeded or self._cgroup.memory_exceeded()
        return self._memory_exceeded

    def close(self) -> None:
        """Kill everything, remove the cgroup and the temporary folder. Safe to call twice."""
        if self._proc is not None and self.returncode is None:
            self.kill()
        if self._proc is not None:
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
        if self._cgroup is not None:
            self._memory_exceeded = self.memory_exceeded
            self._cgroup.kill()
            self._cgroup.remove()
            self._cgroup = None
        if self._dir is not None:
            self._stderr = self.stderr_tail()  # still readable after the folder is gone
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _started(self) -> subprocess.Popen:
        if self._proc is None:
            raise RuntimeError("Sandbox: call start() first (or use it as a context manager)")
        return self._proc

    @property
    def pid(self) -> int:
        """The host pid of the outer process (bwrap, or the worker itself without the sandbox)."""
        return self._started().pid
