"""JupyterLab in a real browser: the attention-explorer chapter, run as a student runs it.

A JupyterLab server from this environment serves a copy of the chapter (outputs cleared, so
everything asserted was drawn by this run) on a free loopback port. Headless Chromium (Debian's
`chromium`, driven by Playwright with `executable_path`, nothing downloaded) opens it, runs
Run > Run All Cells, waits for the kernel to go idle, then asserts that every code cell ran and
none shows an error, that the explorer's controls render, that moving its slider and choosing a
head redraw its heatmap (other image bytes), and that the chapter's matplotlib plots are shown.
Screenshots go to test-artifacts/ (gitignored).

Skipped, with the reason, only where Chromium or Playwright is missing; under CI (`CI` set) a
missing browser is a failure, since .ci/run installs it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 120_000  # the chapter's own budget is 120 s on 2 cores; a loaded CI box gets the same again
EXPLORER_CALL = "attention_explorer("


# Debian's package, Google's Chrome (GitHub's Ubuntu runners ship it), then Ubuntu's name (a snap stub there)
BROWSERS = ("chromium", "google-chrome", "google-chrome-stable", "chromium-browser")


def chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def need_browser():
    """The Playwright module and the Chromium binary; skip (or fail under CI) when either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright, why = None, "Playwright for Python is not installed (pip install playwright; no `playwright install` needed)"
    else:
        why = "" if chromium() else "no Chromium binary on PATH (apt-get install chromium)"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {why}; .ci/run installs both")
        pytest.skip(why)
    return sync_playwright, chromium()


def explorer_chapter() -> Path:
    """The chapter whose code builds the attention explorer (found by content, not by number)."""
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(c.cell_type == "code" and EXPLORER_CALL in c.source for c in nb.cells):
            return path
    raise AssertionError(f"no chapter calls {EXPLORER_CALL}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def lab_settings(folder: Path) -> None:
    """User settings for a reproducible page: every cell in the DOM (no windowing), no news or update
    checks (no network, no pop-up over the notebook)."""
    write_json(folder / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})
    write_json(folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
               {"fetchNews": "false", "checkForUpdates": False})


@pytest.fixture
def lab(tmp_path):
    """(url of the notebook, its path on disk, api(path) -> JSON): a JupyterLab server on a copy of the chapter."""
    src = explorer_chapter()
    root = tmp_path / "course"
    root.mkdir()
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, root / src.name)
    settings, home = tmp_path / "settings", tmp_path / "home"
    lab_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               LMCOURSE_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", PYTHONHASHSEED="0",
               LMCOURSE_DEVICE="cpu", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
           ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (tmp_path / "lab.log").open("wb")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def api(path: str):
        with urllib.request.urlopen(f"{base}{path}{'&' if '?' in path else '?'}token={token}", timeout=5) as r:
            return json.loads(r.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            try:
                api("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base} within 60 s:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.3)
        yield f"{base}/lab/tree/{src.name}?reset&token={token}", root / src.name, api
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down before it exits
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def image_digest(page, locator) -> str:
    """SHA-256 of the bytes behind an <img> (a blob: or data: URL), read inside the page."""
    data = locator.evaluate(
        "async img => Array.from(new Uint8Array(await (await fetch(img.src)).arrayBuffer()))"
    )
    return hashlib.sha256(bytes(data)).hexdigest()


def wait_idle(page, api, cells, timeout_ms: int = TIMEOUT_MS) -> None:
    """Until no cell is queued or running ([*]) and the kernel, asked through the server, is idle."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        prompts = cells.locator(".jp-InputPrompt").all_inner_texts()
        kernels = api("/api/kernels")
        if kernels and all(k["execution_state"] == "idle" for k in kernels) and not any("*" in p for p in prompts):
            return
        page.wait_for_timeout(300)
    pytest.fail(f"the notebook was still running after {timeout_ms / 1000:.0f} s")


@pytest.mark.slow
def test_explorer_chapter_runs_in_jupyterlab_and_its_widget_responds(lab):
    sync_playwright, executable = need_browser()
    url, saved, api = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
        browser = p.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            notebook.wait_for()
            code_cells = notebook.locator(".jp-CodeCell")
            wait_idle(page, api, code_cells)  # the kernel started
            n_code = sum(c.cell_type == "code" for c in nbformat.read(saved, as_version=4).cells)
            assert code_cells.count() == n_code, f"{code_cells.count()} code cells in the page, {n_code} in the notebook"

            # Run > Run All Cells, as a student would
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            page.wait_for_function(  # the run has begun: a code cell is queued, running or done
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText))")
            wait_idle(page, api, code_cells)

            # no cell shows an error, and every code cell ran (a numbered prompt): Run All stops at an error
            errors = [t for t in notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                      .all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not errors, f"{len(errors)} cell(s) show an error; the first:\n{errors[0][-2000:]}"
            prompts = code_cells.locator(".jp-InputArea .jp-InputPrompt").all_inner_texts()
            unran = [i for i, t in enumerate(prompts) if not re.search(r"\[\d+\]", t)]
            assert not unran, f"code cells {unran} did not run (prompts {[prompts[i] for i in unran]})"

            # matplotlib plots are shown as images that decoded
            plots = notebook.locator(".jp-RenderedImage img")
            assert plots.count() >= 1, "no plot image in the page"
            widths = plots.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert all(w > 0 for w in widths), f"plot images that did not decode (widths {widths})"

            # the explorer's view: its controls and its heatmap image
            view = notebook.locator(".jp-OutputArea-output:has(.widget-slider)").filter(has=page.locator(".widget-image"))
            assert view.count() == 1, f"expected one rendered explorer view, found {view.count()}"
            slider, readout = view.locator(".widget-slider .noUi-handle"), view.locator(".widget-slider .widget-readout")
            head = view.locator(".widget-dropdown select").nth(1)
            image = view.locator("img.widget-image")
            assert view.locator(".widget-dropdown select").count() == 2 and view.locator("input[type=checkbox]").count() == 1
            assert view.locator(".widget-text input").input_value().startswith("the cat sat on the mat")
            view.scroll_into_view_if_needed()
            image.wait_for()
            before, value_before = image_digest(page, image), readout.inner_text()
            src_before = image.get_attribute("src")  # read now: after the key presses the redraw may already be done
            page.screenshot(path=str(ARTIFACTS / "browser-explorer-before.png"))

            slider.focus()
            for _ in range(2):  # two steps of 0.5 in log2: the scale × 2
                page.keyboard.press("ArrowRight")
            page.wait_for_function("([el, v]) => el.innerText !== v", arg=[readout.element_handle(), value_before])
            wait_idle(page, api, code_cells)
            page.wait_for_function("([img, src]) => img.src !== src && img.complete",
                                   arg=[image.element_handle(), src_before])
            after_slider = image_digest(page, image)
            assert readout.inner_text() != value_before, "the slider's readout did not move"
            assert after_slider != before, "moving the multiplier slider did not change the heatmap"

            width_before = image.evaluate("img => img.naturalWidth")
            head.select_option(label="head 1")
            wait_idle(page, api, code_cells)
            page.wait_for_function("([img, w]) => img.complete && img.naturalWidth < w",
                                   arg=[image.element_handle(), width_before])
            assert image_digest(page, image) not in (before, after_slider), "choosing one head did not redraw"
            view.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser-explorer.png"))
            view.screenshot(path=str(ARTIFACTS / "browser-explorer-widget.png"))
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "browser-failure.png"))  # what the page showed when it failed
            raise
        finally:
            browser.close()
