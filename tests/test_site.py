"""The course website (`make site`, lmcourse.site) and the widget state a static view needs.

The site is built once from this checkout into a temporary folder: every chapter notebook has
its page, the course map links every page, no internal link is broken, every image a notebook
stores is on its page, each page links its own notebook on Colab, the TeX is on the page as
written (MathJax typesets it in the reader's browser: no network here, so the tests check the TeX
and the MathJax script tag, and the screenshot test serves Debian's MathJax in place of the CDN).

Stored widget state (lmcourse.notebooks.keep_shown_widgets, called by the runner): every stored
notebook that shows a widget carries the state of exactly the models its views need.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from lmcourse.course import REPO_SLUG, colab_url
from lmcourse.notebooks import WIDGET_STATE, WIDGET_VIEW, execute, keep_shown_widgets, shown_widgets
from lmcourse.site import INDEX, build_site, chapter_pages, main, rewrite_links

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHAPTERS = sorted(p for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
STORED = CHAPTERS + sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/"  # nbconvert's lab template
DEBIAN_MATHJAX = Path("/usr/share/javascript/mathjax")  # apt-get install libjs-mathjax


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_site(ROOT, tmp_path_factory.mktemp("site") / "site")


class Links(HTMLParser):
    """Every href/src in a page, and every id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("href", "src") and v is not None:
                self.urls.append(v)
            elif k == "id" and v:
                self.ids.add(v)


def parse(path: Path) -> Links:
    p = Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def broken_links(out: Path) -> list[str]:
    """Links between a site's pages (or within one) whose file or anchor does not exist."""
    pages = {p.name: parse(p) for p in out.glob("*.html")}
    broken = []
    for name, page in pages.items():
        for url in page.urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:
                continue  # an external URL (Colab, GitHub, a CDN) or a data: image
            target = parts.path or name
            if target not in pages:
                broken.append(f"{name}: {url} (no page {target})")
            elif parts.fragment and not ({parts.fragment, unquote(parts.fragment)} & pages[target].ids):
                broken.append(f"{name}: {url} (no id {parts.fragment!r} in {target})")
    return broken


# -- the site ------------------------------------------------------------------------------
def test_every_chapter_has_a_page_listed_on_the_course_map(site):
    assert CHAPTERS, "no chapters to build"
    assert site.pages[0] == site.out / INDEX and len(site.pages) == len(CHAPTERS) + 1
    index = parse(site.out / INDEX)
    for nb in CHAPTERS:
        page = site.out / nb.with_suffix(".html").name
        assert page.is_file(), f"no page for {nb.name}"
        assert page.name in index.urls, f"the course map does not link {page.name}"
        assert page.stat().st_size > 10_000
    # every chapter of the course is on the map; only those without a notebook are "planned"
    from lmcourse.course import CHAPTERS as COURSE

    text = (site.out / INDEX).read_text(encoding="utf-8")
    assert all(html.escape(c.title) in text for c in COURSE)
    missing = [c for c in COURSE if not (ROOT / "chapters" / c.filename).is_file()]
    assert text.count('class="lmc-planned"') == len(missing)


def test_a_chapter_without_a_notebook_is_on_the_map_as_planned_without_a_link(tmp_path):
    course = tmp_path / "course"
    (course / "chapters").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", course / "pyproject.toml")
    for nb in CHAPTERS[:2]:  # the course with only its first two chapters written
        shutil.copy(nb, course / "chapters" / nb.name)
    built = build_site(course, tmp_path / "site")
    text = (built.out / INDEX).read_text(encoding="utf-8")
    assert text.count('class="lmc-planned"') == 12 and "Compute and scaling" in text
    assert "13_compute_scaling.html" not in parse(built.out / INDEX).urls


def test_no_internal_link_is_broken(site):
    assert not broken_links(site.out)
    # and the check finds one: a page linking a missing page and a missing anchor
    (site.out / "zz_probe.html").write_text('<a href="nowhere.html">x</a><a href="index.html#no-such-id">y</a>')
    try:
        assert len(broken_links(site.out)) == 2
    finally:
        (site.out / "zz_probe.html").unlink()


def test_every_page_has_a_table_of_contents(site):
    for nb in CHAPTERS:
        page = parse(site.out / nb.with_suffix(".html").name)
        others = {p.with_suffix(".html").name for p in CHAPTERS} - {nb.with_suffix(".html").name}
        assert INDEX in page.urls and others <= set(page.urls), f"{nb.name}: the chapter list is incomplete"
        sections = [u for u in page.urls if u.startswith("#")]
        n_h2 = sum(line.startswith("## ") for c in nbformat.read(nb, as_version=4).cells
                   if c.cell_type == "markdown" for line in c.source.splitlines())
        assert len(sections) >= n_h2, f"{nb.name}: {len(sections)} section links for {n_h2} sections"


def test_every_stored_image_is_on_its_page(site):
    n = 0
    for nb_path in CHAPTERS:
        text = (site.out / nb_path.with_suffix(".html").name).read_text(encoding="utf-8")
        for cell in nbformat.read(nb_path, as_version=4).cells:
            for out in cell.get("outputs", []):
                for kind in IMAGE_TYPES:
                    if kind in out.get("data", {}):
                        data = out["data"][kind]
                        data = "".join(data) if isinstance(data, list) else data
                        if kind == "image/svg+xml":
                            assert data.strip()[-200:] in text, f"{nb_path.name}: an SVG output is not on its page"
                        else:
                            assert f"data:{kind};base64,{data.replace(chr(10), '')}" in text, \
                                f"{nb_path.name}: a {kind} output is not on its page"
                        n += 1
    assert n >= 10  # the chapters do plot (16 figures when this test was written)


def test_each_page_links_its_own_notebook_on_colab(site):
    for nb in CHAPTERS:
        url = colab_url(f"chapters/{nb.name}")
        assert REPO_SLUG in url
        page = parse(site.out / nb.with_suffix(".html").name)
        colab = [u for u in page.urls if "colab.research.google.com/github" in u]
        assert colab == [url], f"{nb.name}: Colab links {colab}"
        assert url in parse(site.out / INDEX).urls


MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.S)


def test_math_reaches_the_page_as_tex_for_mathjax(site):
    n = 0
    for nb in CHAPTERS:
        text = (site.out / nb.with_suffix(".html").name).read_text(encoding="utf-8")
        assert MATHJAX_CDN in text, f"{nb.name}: no MathJax script"
        for cell in nbformat.read(nb, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for block, inline in MATH.findall(cell.source):
                tex = block or inline
                # as written, or with <, > and & as entities (what the browser hands MathJax is the same)
                assert tex in text or html.escape(tex, quote=False) in text, f"{nb.name}: TeX {tex[:80]!r} is not on the page"
                n += 1
    assert n >= 50


def test_widget_views_go_to_the_page_with_their_state(site):
    shown = 0
    for nb_path in CHAPTERS:
        views = shown_widgets(nbformat.read(nb_path, as_version=4))
        text = (site.out / nb_path.with_suffix(".html").name).read_text(encoding="utf-8")
        for model_id in views:
            assert f'"model_id": "{model_id}"' in text
        if views:
            state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', text, re.S)
            assert state, f"{nb_path.name}: shows widgets but its page has no widget state"
            assert set(views) <= set(json.loads(state.group(1))["state"])
            shown += 1
    assert shown >= 1


def test_links_between_notebooks_become_links_between_pages(tmp_path):
    course = tmp_path / "course"
    (course / "chapters").mkdir(parents=True)
    md = ("# A\n\n## Part one\n\nSee [the next chapter](01_b.ipynb#Part-two), [its code](../lmcourse/attention.py), "
          "[a folder](../solutions/), [the web](https://example.org/x.ipynb) and [here](#Part-one).\n\n"
          '<a href="./01_b.ipynb">next</a>')
    for name, source in (("00_a.ipynb", md), ("01_b.ipynb", "# B\n\n## Part two\n\n$x^2 < y$")):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(source)]), course / "chapters" / name)
    out = build_site(course, tmp_path / "site").out
    assert not broken_links(out)
    urls = parse(out / "00_a.html").urls
    assert "01_b.html#Part-two" in urls and "01_b.html" in urls and "#Part-one" in urls
    assert f"https://github.com/{REPO_SLUG}/blob/main/lmcourse/attention.py" in urls
    assert f"https://github.com/{REPO_SLUG}/tree/main/solutions" in urls
    assert "https://example.org/x.ipynb" in urls
    assert not any(u.endswith(".ipynb") and "://" not in u for u in urls)
    # a chapter the course map does not know is titled by its first heading
    assert [p.title for p in chapter_pages(course)] == ["Getting started", "Language models, from counting to predicting"]
    (course / "chapters" / "42_extra.ipynb").write_text((course / "chapters" / "01_b.ipynb").read_text())
    assert chapter_pages(course)[-1].title == "B"


def test_rewrite_links_keeps_what_is_not_relative():
    assert rewrite_links("[a](mailto:x@y.z) [b](#Top) ![c](data:image/png;base64,AA)", {}) == \
        "[a](mailto:x@y.z) [b](#Top) ![c](data:image/png;base64,AA)"


def test_a_folder_without_chapters_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="no chapter notebooks"):
        build_site(tmp_path, tmp_path / "site")
    assert main([str(tmp_path / "site"), "--root", str(tmp_path)]) == 2
    assert "not a course folder" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


# -- widget state, stored by the runner ----------------------------------------------------------
REF = re.compile(r"IPY_MODEL_([0-9a-f]{32})")


@pytest.mark.parametrize("path", [p for p in STORED if shown_widgets(nbformat.read(p, as_version=4))],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_notebooks_carry_the_state_of_the_widgets_they_show(path):
    nb = nbformat.read(path, as_version=4)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state")
    assert state, f"{path.name} shows widgets but stores no widget state: re-run it with `lmcourse notebooks run`"
    views = shown_widgets(nb)
    assert set(views) <= set(state), f"views without a model: {set(views) - set(state)}"
    # every reference resolves, and nothing is kept that no view reaches
    reached, todo = set(), list(views)
    while todo:
        m = todo.pop()
        if m not in reached:
            reached.add(m)
            refs = REF.findall(json.dumps(state[m]["state"]))
            assert set(refs) <= set(state), f"{m} references models that are not stored"
            todo += refs
    assert reached == set(state)
    # what a view draws is there: a box with its layout (the explorers' VBox, tqdm's HBox progress bar),
    # the explorer's heatmap bytes or the stepper's HTML
    kinds = {m["model_name"] for m in state.values()}
    assert "LayoutModel" in kinds and kinds & {"VBoxModel", "HBoxModel"}, sorted(kinds)
    if "ImageModel" in kinds:
        image = next(m for m in state.values() if m["model_name"] == "ImageModel")
        assert base64.b64decode(image["buffers"][0]["data"]).startswith(b"\x89PNG")


def _nb_with_state():
    """A notebook showing one VBox (a child, each with a layout) and a second, unshown widget."""
    ids = [f"{i:032x}" for i in range(1, 6)]
    box, child, box_layout, child_layout, unshown = ids

    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
                "state": {"_model_name": name, **state}}

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output(
        "execute_result", data={WIDGET_VIEW: {"model_id": box, "version_major": 2, "version_minor": 0},
                                "text/plain": "VBox()"}, execution_count=1)])])
    nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
        box: model("VBoxModel", children=[f"IPY_MODEL_{child}"], layout=f"IPY_MODEL_{box_layout}"),
        child: model("IntSliderModel", value=3, layout=f"IPY_MODEL_{child_layout}"),
        box_layout: model("LayoutModel"), child_layout: model("LayoutModel"),
        unshown: model("ImageModel", layout=f"IPY_MODEL_{child_layout}"),
    }}}
    return nb, ids


def test_keep_shown_widgets_keeps_what_the_views_reach_under_stable_ids():
    nb, (box, child, *_rest) = _nb_with_state()
    kept = keep_shown_widgets(nb, "04_x.ipynb")
    assert sorted(m["model_name"] for m in kept.values()) == ["IntSliderModel", "LayoutModel", "LayoutModel", "VBoxModel"]
    view = nb.cells[0].outputs[0]["data"][WIDGET_VIEW]["model_id"]
    assert view not in (box, child) and kept[view]["model_name"] == "VBoxModel"
    assert nb.metadata["widgets"][WIDGET_STATE]["state"] == kept
    assert set(REF.findall(json.dumps(kept))) <= set(kept)
    again, _ = _nb_with_state()
    assert keep_shown_widgets(again, "04_x.ipynb") == kept  # the same run twice: the same ids
    other, _ = _nb_with_state()
    assert not set(keep_shown_widgets(other, "02_y.ipynb")) & set(kept)  # another notebook: other ids


def test_keep_shown_widgets_drops_the_state_when_nothing_is_shown():
    nb, _ = _nb_with_state()
    nb.cells[0].outputs = []
    assert keep_shown_widgets(nb, "x.ipynb") == {} and "widgets" not in nb.metadata
    plain = nbformat.v4.new_notebook()
    assert keep_shown_widgets(plain) == {} and "widgets" not in plain.metadata


def test_the_runner_stores_the_state_of_a_shown_widget(tmp_path):
    path = tmp_path / "w.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import ipywidgets as W\nhidden = W.IntSlider(value=1)\nW.VBox([W.IntSlider(value=7)])"),
    ]), path)
    r = execute(path, timeout=60)
    assert r.ok, r.error
    nb = nbformat.read(path, as_version=4)
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    [view] = shown_widgets(nb)
    sliders = [m["state"] for m in state.values() if m["model_name"] == "IntSliderModel"]
    assert state[view]["model_name"] == "VBoxModel" and [s["value"] for s in sliders] == [7]


# -- a look at one page in a real browser ---------------------------------------------------------
@pytest.mark.slow
def test_a_chapter_page_in_chromium(site):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    executable = next(filter(None, map(shutil.which, ("chromium", "google-chrome", "google-chrome-stable", "chromium-browser"))), None)
    if sync_playwright is None or executable is None:
        why = "Playwright for Python is not installed" if sync_playwright is None else "no Chromium on PATH (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the site screenshot, but {why}; .ci/run installs both")
        pytest.skip(why)
    nb_path = next(p for p in CHAPTERS if "attention_explorer(" in p.read_text(encoding="utf-8"))
    page_path = site.out / nb_path.with_suffix(".html").name
    n_images = sum(k in o.get("data", {}) for c in nbformat.read(nb_path, as_version=4).cells
                   for o in c.get("outputs", []) for k in IMAGE_TYPES)
    local_mathjax = (DEBIAN_MATHJAX / "MathJax.js").is_file()

    def route(r):
        url = r.request.url
        if url.startswith("file://"):
            return r.continue_()
        if local_mathjax and url.startswith(MATHJAX_CDN):  # the CDN's MathJax 2.7, served from Debian's copy
            parts = urlsplit(url)
            rel = parts.path.split("/2.7.7/", 1)[1]
            if rel == "latest.js":  # as the CDN's latest.js does: load MathJax.js with the same query
                loader = (f"var s = document.createElement('script'); s.src = {MATHJAX_CDN + 'MathJax.js?' + parts.query!r};"
                          "document.head.appendChild(s);")
                return r.fulfill(body=loader, content_type="application/javascript")
            f = DEBIAN_MATHJAX / rel
            return r.fulfill(path=str(f)) if f.is_file() else r.fulfill(status=404)
        return r.abort()  # no network: the Colab badge, require.js and the widget renderer stay away

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True,
                                    args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.route("**/*", route)
            page.goto(page_path.as_uri())
            assert page.locator("nav.lmc-bar a.lmc-colab").get_attribute("href") == colab_url(f"chapters/{nb_path.name}")
            widths = page.locator(".jp-RenderedImage img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == n_images and all(w > 0 for w in widths), f"plots on the page: {widths}"
            if local_mathjax:
                page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
                                       " && document.querySelectorAll('.MathJax_CHTML, .mjx-chtml').length > 20",
                                       timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "site-chapter-top.png"))  # header, section list
            page.locator("h2").nth(2).scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "site-chapter.png"))  # a section with typeset math
            page.locator(".jp-RenderedImage img").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "site-chapter-plot.png"))
            page.goto((site.out / INDEX).as_uri())
            page.screenshot(path=str(ARTIFACTS / "site-index.png"))
        finally:
            browser.close()
