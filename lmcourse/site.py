"""The course website: the course map and every chapter, with its stored outputs, as static HTML.

`build_site(root, out)` renders each `chapters/NN_topic.ipynb` of a course folder with nbconvert's
HTML exporter (JupyterLab's look: the lab template), exactly as stored: plots are the PNGs embedded
in the page, widgets come with the state the runner stored (`lmcourse.notebooks.keep_shown_widgets`),
math is left as TeX for MathJax to typeset in the reader's browser. Around each notebook it adds a
header (course contents, previous / next chapter, "Open in Colab") and a list of the chapter's
sections; `index.html` is the course map from `lmcourse.course.CHAPTERS`, planned chapters
included. Links between notebooks (`03_embeddings.ipynb#Rotary`) become links between pages, and
other relative links (`../lmcourse/attention.py`) point at the repository on GitHub, so no link on
the site is broken. Pages are written atomically; nothing is fetched.

MathJax, require.js and the widget renderer are loaded from their CDNs by the reader's browser,
as nbconvert's lab template does: offline, the math shows as TeX and a widget shows nothing.

`make site` (or `python -m lmcourse.site [OUT]`) builds into build/site.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from .atomic import write_atomic
from .course import BADGE, BRANCH, CHAPTERS, REPO_SLUG, colab_url, find_root

INDEX = "index.html"
_CHAPTER_FILE = re.compile(r"^(\d\d)_.*\.ipynb$")

# The page chrome: a header bar above the notebook, a section list, a footer. Kept small and
# in the theme's own CSS variables so the notebook looks as it does in JupyterLab.
CSS = """
.lmc-bar { display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; align-items: center; padding: 8px 16px;
  border-bottom: 1px solid var(--jp-border-color2, #ddd); font-family: var(--jp-ui-font-family, sans-serif);
  font-size: 14px; background: var(--jp-layout-color1, #fff); position: sticky; top: 0; z-index: 10; }
.lmc-bar a { text-decoration: none; }
.lmc-bar .lmc-home { font-weight: 600; }
.lmc-bar details { position: relative; }
.lmc-bar details ol { position: absolute; background: var(--jp-layout-color1, #fff); margin: 4px 0; padding: 8px 8px 8px 2.5em;
  border: 1px solid var(--jp-border-color2, #ddd); box-shadow: 0 2px 6px rgba(0,0,0,.15); min-width: 22em; }
.lmc-bar .lmc-colab { margin-left: auto; }
.lmc-bar .lmc-colab img { vertical-align: middle; }
.lmc-sections { font-family: var(--jp-ui-font-family, sans-serif); font-size: 14px; margin: 12px 16px; }
.lmc-sections ul { margin: 4px 0; list-style: none; padding-left: 1.2em; }
.lmc-footer { display: flex; justify-content: space-between; padding: 16px; border-top: 1px solid var(--jp-border-color2, #ddd);
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 14px; }
.lmc-index { max-width: 60em; margin: 0 auto; padding: 16px; font-family: var(--jp-ui-font-family, sans-serif); }
.lmc-index table { border-collapse: collapse; width: 100%; }
.lmc-index th, .lmc-index td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #ddd; vertical-align: middle; }
.lmc-index .lmc-planned { color: #888; }
"""

# Extends the lab template (found on nbconvert's template path): chrome before and after the notebook.
TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block extra_css %}<style type="text/css">{{ resources.lmcourse.css }}</style>{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
{{ resources.lmcourse.header }}
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.lmcourse.footer }}
{{ super() }}
{% endblock body_footer %}
"""


@dataclass
class Page:
    """A chapter on the site: its notebook, its page (relative to the site folder), its title."""

    notebook: Path
    name: str
    number: int
    title: str
    colab: str


@dataclass
class Site:
    """What `build_site` wrote: the site folder, the pages (index first) and the seconds it took."""

    out: Path
    pages: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def chapter_pages(root: Path) -> list[Page]:
    """The chapters of the course folder `root` that have a notebook, in order, with their titles.

    The title is the course map's (`CHAPTERS`); a notebook the map does not know is titled by its
    first heading, so a new chapter appears on the site without being listed anywhere.
    """
    import nbformat

    known = {ch.number: ch.title for ch in CHAPTERS}
    pages = []
    for nb_path in sorted((Path(root) / "chapters").glob("*.ipynb")):
        m = _CHAPTER_FILE.match(nb_path.name)
        if not m or not nb_path.is_file():
            continue
        number = int(m.group(1))
        title = known.get(number)
        if title is None:
            nb = nbformat.read(nb_path, as_version=4)
            heads = [line.lstrip("#").strip() for c in nb.cells if c.cell_type == "markdown"
                     for line in c.source.splitlines() if line.startswith("# ")]
            title = heads[0] if heads else nb_path.stem
        pages.append(Page(nb_path, nb_path.with_suffix(".html").name, number, title,
                          colab_url(f"chapters/{nb_path.name}")))
    return pages


class _Headings(HTMLParser):
    """The (level, id, text) of every h1-h3 with an id in a page: the section list links to them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str, str]] = []
        self._open: tuple[int, str] | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h1", "h2", "h3") and a.get("id"):
            self._open, self._text = (int(tag[1]), a["id"]), []
        elif self._open and tag == "a" and "anchor-link" in (a.get("class") or ""):
            self._skip += 1  # nbconvert's ¶ link inside the heading

    def handle_endtag(self, tag):
        if self._open and tag == "a" and self._skip:
            self._skip -= 1
        elif self._open and tag == f"h{self._open[0]}":
            self.found.append((self._open[0], self._open[1], "".join(self._text).strip()))
            self._open = None

    def handle_data(self, data):
        if self._open and not self._skip:
            self._text.append(data)


def headings(page_html: str) -> list[tuple[int, str, str]]:
    """(level, id, text) of the h1-h3 headings that carry an id, in page order."""
    parser = _Headings()
    parser.feed(page_html)
    return parser.found


def rewrite_links(markdown: str, pages: dict[str, str]) -> str:
    """Markdown and HTML links of a chapter cell, made valid on the site.

    `pages` maps a notebook's file name to its page ("03_embeddings.ipynb" -> "03_embeddings.html").
    A link to one of those notebooks goes to its page (anchor kept); any other relative link
    (another folder, a file not on the site) goes to the file in the repository on GitHub.
    Absolute URLs, mail links and in-page anchors are left alone.
    """
    def fix(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or url.startswith("#") or not parts.path:
            return url
        name = parts.path.rsplit("/", 1)[-1]
        if parts.path in pages or (parts.path.startswith("./") and name in pages):
            return pages[name] + (f"#{parts.fragment}" if parts.fragment else "")
        target = (Path("chapters") / parts.path).as_posix()
        # normalise ../ by hand: the file may not exist here (a planned chapter), the URL still is its place
        stack: list[str] = []
        for seg in target.split("/"):
            if seg == "..":
                if stack:
                    stack.pop()
            elif seg not in (".", ""):
                stack.append(seg)
        kind = "blob" if "." in stack[-1] else "tree"
        return f"https://github.com/{REPO_SLUG}/{kind}/{BRANCH}/{'/'.join(stack)}" + (f"#{parts.fragment}" if parts.fragment else "")

    markdown = re.sub(r"(\]\()([^)\s]+)", lambda m: m.group(1) + fix(m.group(2)), markdown)
    return re.sub(r"""((?:href|src)=["'])([^"']+)""", lambda m: m.group(1) + fix(m.group(2)), markdown)


def _nav(pages: list[Page], current: Page | None) -> str:
    items = "".join(
        f'<li value="{p.number}"><a href="{p.name}">{html.escape(p.title)}</a></li>' if p is not current
        else f'<li value="{p.number}"><b>{html.escape(p.title)}</b></li>'
        for p in pages
    )
    parts = [f'<a class="lmc-home" href="{INDEX}">lmcourse</a>',
             f"<details><summary>Chapters</summary><ol>{items}</ol></details>"]
    if current is not None:
        i = pages.index(current)
        if i > 0:
            parts.append(f'<a class="lmc-prev" href="{pages[i - 1].name}">‹ {pages[i - 1].number:02d}</a>')
        if i + 1 < len(pages):
            parts.append(f'<a class="lmc-next" href="{pages[i + 1].name}">{pages[i + 1].number:02d} ›</a>')
        parts.append(f'<a class="lmc-colab" href="{html.escape(current.colab)}" target="_blank" rel="noopener">'
                     f'<img src="{BADGE}" alt="Open In Colab"/></a>')
    return f'<nav class="lmc-bar">{"".join(parts)}</nav>'


def _sections(found: list[tuple[int, str, str]]) -> str:
    items = "".join(f'<li><a href="#{html.escape(hid, quote=True)}">{html.escape(text)}</a></li>'
                    for level, hid, text in found if level == 2)
    # a list without numbers: the course's headings carry their own ("3. Why divide by ...")
    return f'<details class="lmc-sections" open><summary>On this page</summary><ul>{items}</ul></details>' if items else ""


def _footer(pages: list[Page], current: Page) -> str:
    i = pages.index(current)
    prev = f'<a href="{pages[i - 1].name}">‹ {pages[i - 1].number:02d} {html.escape(pages[i - 1].title)}</a>' if i > 0 else "<span></span>"
    nxt = (f'<a href="{pages[i + 1].name}">{pages[i + 1].number:02d} {html.escape(pages[i + 1].title)} ›</a>'
           if i + 1 < len(pages) else f'<a href="{INDEX}">course map</a>')
    return f'<footer class="lmc-footer">{prev}{nxt}</footer>'


def _exporter():
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"lmcourse_site.html.j2": TEMPLATE})],
                        template_file="lmcourse_site.html.j2")


def render_chapter(page: Page, pages: list[Page]) -> str:
    """The HTML page of one chapter: the notebook with its outputs, in the site's chrome."""
    import nbformat

    from .notebooks import read_notebook

    nb = read_notebook(page.notebook)
    names = {p.notebook.name: p.name for p in pages}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(cell.source, names)
    exporter = _exporter()
    title = f"{page.number:02d} · {page.title} — lmcourse"
    resources = {"metadata": {"name": title, "path": str(page.notebook.parent)},
                 "lmcourse": {"css": CSS, "header": _nav(pages, page), "footer": _footer(pages, page)}}
    body, _ = exporter.from_notebook_node(nbformat.from_dict(nb), resources=resources)
    # the section list needs the ids nbconvert gave the headings, so it goes in after rendering
    marker = '<nav class="lmc-bar">'
    if body.count(marker) != 1:
        raise RuntimeError(f"{page.notebook}: the page template did not place the header exactly once")
    end = body.index("</nav>", body.index(marker)) + len("</nav>")
    return body[:end] + _sections(headings(body)) + body[end:]


def render_index(pages: list[Page]) -> str:
    """The course map: every chapter of CHAPTERS, linked where its notebook exists, with its Colab link."""
    have = {p.number: p for p in pages}
    rows = []
    numbers = sorted({ch.number for ch in CHAPTERS} | set(have))
    by_number = {ch.number: ch for ch in CHAPTERS}
    for n in numbers:
        mods = ", ".join(f"<code>{html.escape(m)}</code>" for m in (by_number[n].modules if n in by_number else ()))
        if n in have:
            p = have[n]
            title = f'<a href="{p.name}">{html.escape(p.title)}</a>'
            colab = f'<a href="{html.escape(p.colab)}" target="_blank" rel="noopener"><img src="{BADGE}" alt="Open In Colab"/></a>'
            rows.append(f"<tr><td>{n:02d}</td><td>{title}</td><td>{mods}</td><td>{colab}</td></tr>")
        else:
            rows.append(f'<tr class="lmc-planned"><td>{n:02d}</td><td>{html.escape(by_number[n].title)}</td>'
                        f"<td>{mods}</td><td>planned</td></tr>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1.0"/>
<title>lmcourse — how large language models work</title>
<style type="text/css">{CSS}</style>
</head>
<body>
{_nav(pages, None)}
<main class="lmc-index">
<h1>lmcourse</h1>
<p>An open, interactive course on how large language models work: each idea is derived in a notebook
that runs on a laptop CPU in minutes, with a tested reference implementation in the library
<code>lmcourse</code>. Read a chapter here with its outputs, or run it on Colab.</p>
<h2 id="course-map">Course map</h2>
<table>
<thead><tr><th>#</th><th>chapter</th><th>library</th><th>open</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<p>Source: <a href="https://github.com/{REPO_SLUG}">github.com/{REPO_SLUG}</a></p>
</main>
</body>
</html>
"""


def build_site(root: Path, out: Path) -> Site:
    """Render the course folder `root`'s chapters and course map into `out` (created; pages overwritten).

    ValueError when `root` has no chapter notebooks. Returns the pages written, index first.
    """
    start = time.perf_counter()
    root, out = Path(root), Path(out)
    pages = chapter_pages(root)
    if not pages:
        raise ValueError(f"{root / 'chapters'}: no chapter notebooks (NN_topic.ipynb), so there is no site to build")
    rendered = [(out / p.name, render_chapter(p, pages)) for p in pages]  # all rendered before any is written
    site = Site(out)
    for path, text in [(out / INDEX, render_index(pages)), *rendered]:
        write_atomic(path, text)
        site.pages.append(path)
    site.seconds = time.perf_counter() - start
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcourse.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="build/site", help="the site folder (default build/site)")
    parser.add_argument("--root", help="the course folder (default: the one you stand in)")
    args = parser.parse_args(argv)
    try:
        root = find_root(root=args.root) if args.root else find_root()
        site = build_site(root, Path(args.out))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"site: {len(site.pages)} pages in {site.out} ({site.seconds:.1f} s); open {site.out / INDEX}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
