"""The sandbox a student's worker runs in: what it cannot see, touch or outlive.

Each test runs a small Python program as the worker and asserts on what it reports, or on what the
host sees. Without bubblewrap the sandboxed tests skip, except under CI (`CI` set), where they fail.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from lmcourse import sandbox
from lmcourse.sandbox import PACKAGE_DIR, Sandbox, python_binds

ROOT = Path(__file__).resolve().parents[1]
REASON = sandbox.available()
CGROUP = sandbox.isolation().startswith("cgroup")


@pytest.fixture
def bwrap():
    if REASON is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to sandbox the grader's workers: {REASON}")
        pytest.skip(f"no bubblewrap sandbox here: {REASON}")


def worker(code: str, *, sandbox: bool = True, args: tuple[str, ...] = (), files: dict | None = None,
           **kw) -> Sandbox:
    """A Sandbox (not started) running `code` as job.py with this Python and lmcourse."""
    limits = {"memory_mb": 512, "max_procs": 32, "cpu_seconds": 20, "max_output_bytes": 2**20, **kw}
    return Sandbox([sys.executable, "job.py", *args], files={"job.py": code.encode(), **(files or {})},
                   ro_binds=python_binds(), sandbox=sandbox, **limits)


def report(code: str, *, timeout: float = 20, **kw) -> dict:
    """Run `code`, which prints one JSON line; return it."""
    with worker(code, **kw) as sb:
        line = sb.readline(timeout)
        assert line, f"no output; stderr: {sb.stderr_tail()}"
        return json.loads(line)


def processes_with(token: str) -> list[int]:
    """Host pids whose command line holds `token` (zombies have none, so they do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_isolation_says_what_bounds_the_worker():
    assert sandbox.isolation().startswith(("cgroup v1 (memory, pids)", "cgroup v2 (memory, pids)", "rlimits"))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="memory_mb"):
        Sandbox(["true"], memory_mb=0, max_procs=1, cpu_seconds=1, max_output_bytes=1)
    with pytest.raises(ValueError, match="argv"):
        Sandbox("python job.py", memory_mb=1, max_procs=1, cpu_seconds=1, max_output_bytes=1)
    with pytest.raises(ValueError, match="ro_binds"):
        Sandbox(["true"], ro_binds=[Path("relative")], memory_mb=1, max_procs=1, cpu_seconds=1, max_output_bytes=1)
    with pytest.raises(ValueError, match="files"):
        Sandbox(["true"], files={"../escape": b""}, memory_mb=1, max_procs=1, cpu_seconds=1, max_output_bytes=1)
    with pytest.raises(RuntimeError, match="start"):
        Sandbox(["true"], memory_mb=1, max_procs=1, cpu_seconds=1, max_output_bytes=1).readline(0.1)


def test_worker_sees_nothing_of_the_host(bwrap, tmp_path, monkeypatch):
    monkeypatch.setenv("LMCOURSE_TEST_SECRET", "hunter2")
    other = tmp_path / "other-student"
    other.mkdir()
    (other / "ch04.ipynb").write_text("{}")
    paths = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "solutions", ROOT / ".git", other / "ch04.ipynb",
             tmp_path, PACKAGE_DIR / "exercises" / "ch04.py", Path("/root/.bash_history"), Path("/etc/shadow")]
    assert all(p.exists() for p in paths[:7])  # they are there on the host
    code = f"""
import json, os, sys
try:
    import lmcourse.exercises.ch04
    imported = True
except ImportError:
    imported = False
print(json.dumps({{"uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(), "env": dict(os.environ),
    "seen": [p for p in {[str(p) for p in paths]!r} if os.path.exists(p)],
    "exercises": os.listdir({str(PACKAGE_DIR / "exercises")!r}), "imported": imported,
    "work": sorted(os.listdir("/work")), "repo": sorted(os.listdir({str(ROOT)!r}))}}))
"""
    got = report(code, env={"GIVEN": "yes"}, files={"data/case.bin": b"\x00\x01"})
    assert got["seen"] == []
    assert got["exercises"] == [] and got["imported"] is False
    assert (got["uid"], got["gid"], got["cwd"]) == (65534, 65534, "/work")
    assert "LMCOURSE_TEST_SECRET" not in got["env"] and "hunter2" not in json.dumps(got["env"])
    assert got["env"]["GIVEN"] == "yes"
    assert {"job.py", "data"} <= set(got["work"])
    # The repository's folder exists in there only as the mount points of what Python needs.
    assert set(got["repo"]) <= {p.name for p in python_binds() if p.parent == ROOT}


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader drops to the host's nobody")
def test_worker_is_nobody_on_the_host_too(bwrap):
    token = f"lmcourse-uid-{uuid.uuid4().hex}"
    with worker("import sys, time; print('up', flush=True); time.sleep(30)", args=(token,)) as sb:
        assert sb.readline(20) == b"up\n"
        pids = processes_with(token)
        uids = {Path(f"/proc/{pid}").stat().st_uid for pid in pids}
    assert pids and uids == {65534}


def test_no_network(bwrap):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = f"""
import json, socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    outcome = "connected"
except OSError as exc:
    outcome = type(exc).__name__
print(json.dumps(outcome))
"""
    try:
        assert report(code) != "connected"
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


def test_writes_only_its_folder_and_tmp(bwrap):
    targets = ["/work/ok", "/tmp/ok", "/usr/x", "/x", "/etc/x", str(PACKAGE_DIR / "x"), f"{sys.prefix}/x",
               f"{sys.base_prefix}/x", str(PACKAGE_DIR / "exercises" / "x")]
    code = f"""
import json
out = {{}}
for t in {targets!r}:
    try:
        open(t, "w").write("x")
        out[t] = "written"
    except OSError as exc:
        out[t] = type(exc).__name__
print(json.dumps(out))
"""
    got = report(code)
    assert got["/work/ok"] == got["/tmp/ok"] == "written"
    assert all(v != "written" for k, v in got.items() if k not in ("/work/ok", "/tmp/ok")), got
    assert not (PACKAGE_DIR / "x").exists() and not Path(sys.prefix, "x").exists()


@pytest.mark.skipif(not CGROUP, reason="memory is bounded for the whole worker only with a cgroup")
def test_memory_is_bounded_for_the_whole_worker(bwrap):
    # Three children of 300 MB each under 600 MB: RLIMIT_AS alone (per process) would let all live.
    code = """
import os, time
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        try:
            block = b"\\x01" * (300 << 20)
        except MemoryError:
            os._exit(3)
        time.sleep(1.5)
        os._exit(0)
    kids.append(pid)
print(" ".join(str(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1])) for p in kids), flush=True)
"""
    with worker(code, memory_mb=600) as sb:
        line = sb.readline(30)
        rc = sb.wait(30)
        assert sb.memory_exceeded
    if line:  # the worker lived: at least one child did not
        assert line.split().count(b"0") < 3, line
    else:  # the kernel killed the worker itself
        assert rc != 0


@pytest.mark.parametrize("use_sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_fork_bomb_stops_at_max_procs(bwrap, use_sandbox):
    if not use_sandbox and not CGROUP and os.geteuid() == 0:
        pytest.skip("without a cgroup, nothing bounds a root grader's --no-sandbox worker")
    code = """
import os, time
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as exc:
    print(n, type(exc).__name__, flush=True)
"""
    with worker(code, max_procs=16, sandbox=use_sandbox) as sb:
        n, error = sb.readline(20).split()
        assert error == b"BlockingIOError"
        # With a cgroup: exactly the worker plus 15 children; with RLIMIT_NPROC: never more.
        assert int(n) == 15 if CGROUP else int(n) <= 15


@pytest.mark.parametrize("use_sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_a_detached_grandchild_dies_with_the_worker(bwrap, use_sandbox):
    if not use_sandbox and not CGROUP:
        pytest.skip("without the sandbox, only a cgroup can find a detached child")
    token = f"lmcourse-detached-{uuid.uuid4().hex}"
    # Double fork + setsid: the grandchild is in its own session, reparented away from the worker;
    # 2 s later it would write to the grader's stderr file and to the worker's folder.
    code = f"""
import os, sys
ready_r, ready_w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        later = ("import os, sys, time; os.write(int(sys.argv[1]), b'x'); time.sleep(2);"
                 "sys.stderr.write('LATE\\\\n'); open('late.txt', 'w').write('x')")
        os.set_inheritable(ready_w, True)
        os.execv(sys.executable, [sys.executable, "-c", later, str(ready_w), {token!r}])
    os._exit(0)
os.wait()
os.read(ready_r, 1)  # the grandchild runs
print("spawned", flush=True)
sys.stdin.read()  # until the test has looked
"""
    with worker(code, sandbox=use_sandbox) as sb:
        assert sb.readline(20) == b"spawned\n"
        alive = processes_with(token)
        assert len(alive) == 1  # the grandchild really runs, detached
        sb.send(b"")
        sb.wait(20)  # the worker's main process exits by itself
        assert processes_with(token) == []
        print(f"\n{sb.mode}: detached grandchild (host pid {alive[0]}) alive before the worker ended,",
              f"processes holding its token after wait(): {processes_with(token)}")
        time.sleep(2.5)
        assert "LATE" not in sb.stderr_tail()


def test_output_over_the_cap_is_never_read(bwrap):
    code = """
import sys
for _ in range(50):
    sys.stdout.buffer.write(b"x" * (1 << 20))
sys.stdout.flush()
"""
    with worker(code, max_output_bytes=2**20) as sb:
        assert sb.readline(20) is None
        assert sb.oversize and not sb.eof
        assert sb.bytes_read <= 2**20 + 1
        assert sb.readline(1) is None


def test_timeout_then_kill(bwrap):
    with worker("import time; print('started', flush=True); time.sleep(60)") as sb:
        assert sb.readline(20) == b"started\n"
        t = time.monotonic()
        assert sb.readline(0.3) is None and not sb.eof
        sb.kill()
        assert sb.returncode != 0 and time.monotonic() - t < 5


def test_send_readline_and_eof(bwrap):
    code = "import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data.upper() + b'\\nno newline')"
    with worker(code) as sb:
        sb.send(b"hello")
        assert sb.readline(20) == b"HELLO\n"
        assert sb.readline(20) == b"no newline"  # a last line without b"\n" comes as it is
        assert sb.readline(20) is None and sb.eof
        assert sb.wait(20) == 0


def test_stderr_tail_is_the_last_4kb(bwrap):
    code = "import sys; sys.stderr.write('a' * 100000 + 'THE END'); sys.exit(3)"
    with worker(code) as sb:
        assert sb.wait(20) == 3
        tail = sb.stderr_tail()
    assert tail.endswith("THE END") and len(tail) == sandbox.STDERR_TAIL_BYTES
    assert sb.stderr_tail() == tail  # still there after the folder is gone


def test_torch_numpy_and_lmcourse_import_in_the_sandbox(bwrap):
    code = """
import json, numpy, torch
from lmcourse.attention import scaled_dot_product_attention as attention
q = torch.ones(1, 2, 4)
print(json.dumps([attention(q, q, q).shape[-1], int(numpy.ones(3).sum())]))
"""
    assert report(code, memory_mb=2048, max_procs=64, timeout=60) == [4, 3]


def test_no_sandbox_runs_directly_under_rlimits(tmp_path, monkeypatch):
    monkeypatch.setenv("LMCOURSE_TEST_SECRET", "hunter2")
    code = """
import json, os, resource
print(json.dumps({"cwd": os.getcwd(), "files": sorted(os.listdir(".")), "env": dict(os.environ),
    "cpu": resource.getrlimit(resource.RLIMIT_CPU), "core": resource.getrlimit(resource.RLIMIT_CORE),
    "fsize": resource.getrlimit(resource.RLIMIT_FSIZE), "sid": os.getsid(0) == os.getpid()}))
"""
    with worker(code, sandbox=False, cpu_seconds=7, file_mb=3, env={"GIVEN": "yes"}) as sb:
        got = json.loads(sb.readline(20))
        assert sb.mode.startswith("no sandbox")
        folder = Path(got["cwd"])
        assert folder.exists()
    assert not folder.exists()  # removed on close
    assert got["files"] == ["job.py"] and got["sid"]
    assert "LMCOURSE_TEST_SECRET" not in got["env"] and got["env"]["GIVEN"] == "yes"
    assert got["cpu"] == [7, 8] and got["core"] == [0, 0] and got["fsize"] == [3 * 2**20] * 2


@pytest.mark.skipif(not CGROUP, reason="no cgroup here")
def test_cgroup_is_removed_afterwards(bwrap):
    with worker("print('hi')") as sb:
        dirs = list(sb._cgroup.dirs)
        assert all(d.exists() for d in dirs) and sb.readline(20) == b"hi\n"
    assert dirs and not any(d.exists() for d in dirs)
