"""lmcourse.data: determinism, splits, balance, and the real download code against a local server."""
from __future__ import annotations

import functools
import hashlib
import http.server
import platform
import re
import sys
import threading
from pathlib import Path

import pytest

from lmcourse import data
from lmcourse.data.python_docs import SNAPSHOT_PYTHON

SHA = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

# ----------------------------------------------------------------------------- story corpus


def test_same_seed_same_text_and_prefix_property():
    a = data.story_corpus(50_000, seed=7)
    assert a == data.story_corpus(50_000, seed=7)
    assert len(a) == 50_000
    assert data.story_corpus(20_000, seed=7) == a[:20_000]
    assert data.story_corpus(50_000, seed=8) != a
    assert data.story_corpus(0) == ""


def test_pinned_hash_catches_cross_platform_changes():
    # If this fails, the generator's output changed: every stored notebook output that
    # depends on the corpus changes too. Update only on purpose.
    text = data.story_corpus(20_000, seed=0)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == PINNED_STORY_HASH
    assert text.startswith(PINNED_STORY_START)


PINNED_STORY_HASH = "fc1f677508166f48"
PINNED_STORY_START = "Ravi was a gentle boy. Home for Ravi was a yellow house on t"


def test_stories_keep_facts_consistent():
    for s in data.generate_stories(300, seed=1):
        f = s.facts
        assert f["hero"] in s.text and f["hero"] in s.summary
        if f["plot"] == "lost":
            # the lost object has one colour all story long, and the story says so
            colours = {c for c in data.COLOURS if re.search(rf"\b{c} {re.escape(f['object'])}\b", s.text)}
            assert colours <= {f["colour"]} and f["colour"] in s.text
        for q, a in s.qa:
            assert a.lower() in s.text.lower() or a in ("lonely",), (q, a, s.text)


def test_every_qa_answer_is_in_its_story():
    for split in data.SPLITS:
        for item in data.qa_set(split):
            assert item["answer"].lower() in item["story"].lower(), item


def test_corpus_is_varied_and_fast_enough_to_be_big():
    text = data.story_corpus(300_000, seed=0)
    st = data.corpus_stats(text)
    assert st["chars"] == 300_000
    assert st["vocab"] > 600
    assert st["word_4grams"] > 20_000
    assert st["word_1grams"] < st["word_2grams"] < st["word_3grams"] < st["word_4grams"]
    # pronouns and dialogue in several tenses are present
    for w in [" she ", " he ", " they ", '"', " will ", " was ", " is "]:
        assert w in text


def test_corpus_stats_by_hand():
    st = data.corpus_stats("a b a b.", max_n=2)
    assert st["words"] == 5 and st["vocab"] == 3
    assert st["word_2grams"] == 3  # (a,b) (b,a) (b,.)
    assert st["char_1grams"] == 4


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_chars"):
        data.story_corpus(-1)
    with pytest.raises(ValueError, match="split"):
        data.qa_set("training")
    with pytest.raises(ValueError, match="unknown text"):
        data.load_text("nope")


# ----------------------------------------------------------------------------- task sets


def _disjoint(fn, key):
    splits = {s: [key(x) for x in fn(s)] for s in data.SPLITS}
    assert all(splits.values())
    for a in data.SPLITS:
        for b in data.SPLITS:
            if a < b:
                assert not set(splits[a]) & set(splits[b]), (fn.__name__, a, b)
    return splits


def test_sentiment_set_disjoint_balanced_deterministic():
    _disjoint(data.sentiment_set, lambda x: x[0])
    for split in data.SPLITS:
        items = data.sentiment_set(split)
        pos = sum(y for _, y in items)
        assert abs(pos - len(items) / 2) <= 0.1 * len(items), split
        assert {y for _, y in items} == {0, 1}
    assert len(data.sentiment_set("train")) == 2400
    assert any("not bad at all" in s and y == 1 for s, y in data.sentiment_set("train"))


def test_qa_and_summaries_split_by_story():
    qa = _disjoint(data.qa_set, lambda x: x["story"])
    summ = _disjoint(data.summary_set, lambda x: x[0])
    for split in data.SPLITS:
        assert set(qa[split]) == set(summ[split])
    assert len(data.summary_set("train")) == 1200


def test_translation_set():
    _disjoint(data.translation_set, lambda x: x[0])
    pairs = data.translation_set("train")
    assert len(pairs) == 2400
    for en, zh in pairs:
        assert en[0].isupper() and en[-1] in ".?"
        assert zh[-1] in "。？" and not re.search(r"[A-Za-z]", zh)
    d = dict(pairs + data.translation_set("val") + data.translation_set("test"))
    # the grammar by example: 很 with adjectives, measure words, 了 for the past, 没有 for "not have"
    grammar = {
        r"^(\w+) is happy\.$": "很高兴。",
        r" has two cats\.$": "有两只猫。",
        r" went to the park\.$": "去了公园。",
        r" does not have a book\.$": "没有书。",
    }
    for pattern, ending in grammar.items():
        hits = [(en, zh) for en, zh in d.items() if re.search(pattern, en)]
        assert hits, pattern
        assert all(zh.endswith(ending) for _, zh in hits), hits


def test_reviews_balanced_disjoint_and_varied():
    _disjoint(data.reviews, lambda x: x[0])
    total = 0
    for split in data.SPLITS:
        items = data.reviews(split)
        assert sum(y for _, y in items) * 2 == len(items)
        total += len(items)
    assert total >= 300
    texts = [t for s in data.SPLITS for t, _ in data.reviews(s)]
    assert len(set(texts)) == len(texts)
    # not template-obvious: no opening sentence dominates
    openings = [re.split(r"(?<=[.!?:])\s", t)[0] for t in texts]
    assert max(openings.count(o) for o in set(openings)) < 0.05 * len(texts)
    assert ("Not bad at all for the price." in " ".join(texts))


def test_pydoc_prose_is_clean_english():
    text = data.pydoc_prose()
    assert len(text) > 150_000
    paragraphs = text.split("\n\n")
    assert all(p == p.strip() and "  " not in p and "\n" not in p for p in paragraphs)
    assert not any(">>>" in p or "::=" in p for p in paragraphs)
    assert "statement" in text and data.load_text("pydoc") == text


def test_pydoc_prose_is_the_pinned_snapshot_under_any_python():
    """Chapter 01 prints statistics of this text: they must not depend on the Python running it."""
    from lmcourse.data import python_docs

    text = data.pydoc_prose()
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == python_docs.SNAPSHOT_SHA256
    assert (len(text), len(set(text))) == (261_674, 103)  # what chapter 01 prints


def test_pydoc_snapshot_reads_no_standard_library_text(monkeypatch):
    from lmcourse.data import python_docs

    python_docs.pydoc_prose.cache_clear()
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # `import pydoc_data.topics` now fails
    try:
        assert len(python_docs.pydoc_prose()) == 261_674
    finally:
        python_docs.pydoc_prose.cache_clear()


def test_a_damaged_pydoc_snapshot_is_refused_with_its_name(monkeypatch):
    from lmcourse.data import python_docs

    python_docs.pydoc_prose.cache_clear()
    monkeypatch.setattr(python_docs, "SNAPSHOT_SHA256", "0" * 64)
    try:
        with pytest.raises(ValueError, match=r"pydoc_prose\.txt has SHA-256 [0-9a-f]{64}, expected 0{64}.*reinstall"):
            python_docs.pydoc_prose()
    finally:
        python_docs.pydoc_prose.cache_clear()


@pytest.mark.skipif(
    platform.python_version() != SNAPSHOT_PYTHON,
    reason="the snapshot was cleaned from one CPython's pydoc_data.topics; only that version can regenerate it",
)
def test_pydoc_snapshot_regenerates_from_its_own_python(tmp_path):
    from lmcourse.data import python_docs

    digest = python_docs.write_snapshot(tmp_path / "prose.txt")
    assert digest == python_docs.SNAPSHOT_SHA256
    assert (tmp_path / "prose.txt").read_text(encoding="utf-8") == data.pydoc_prose()


def test_clean_topics_keeps_prose_and_drops_headings_code_grammar_and_repeats():
    from lmcourse.data.python_docs import clean_topics

    topics = {
        "b": "Title\n*****\n\nThe second topic says one thing in plain words\nover two lines.\n\n"
             "   x = [i for i in range(10)] + {k: v}\n\n"
             "   expr ::= a | b\n\n>>> print(1, 2, 3, 4, 5)\n\nToo short.\n",
        "a": "* The first topic comes first because topics are sorted.\n\n"
             "The second topic says one thing in plain words over two lines.\n\n"
             "A paragraph without a final stop is dropped here\n",
    }
    assert clean_topics(topics) == (
        "The first topic comes first because topics are sorted.\n\n"
        "The second topic says one thing in plain words over two lines."
    )
    assert clean_topics({}) == ""


def test_whole_reviews_file_is_balanced_and_every_review_is_used():
    from lmcourse.data import written_reviews

    whole = written_reviews._whole_reviews()
    assert len(whole) == 40 and sum(label for _, label in whole) == 20
    used = {item for split in data.SPLITS for item in data.reviews(split)}
    assert set(whole) <= used


def test_data_files_are_declared_as_package_data(root):
    # a data file that pyproject does not declare is missing from the wheel, and reviews() breaks there
    tomllib = pytest.importorskip("tomllib")
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lmcourse"]
    package = root / "lmcourse"
    declared = {p for pat in patterns for p in package.glob(pat)}  # setuptools' glob semantics, ** included
    files = {p for p in (package / "data").iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert {"reviews.jsonl", "review_sentences.jsonl", "pydoc_prose.txt"} <= {p.name for p in files}
    assert files <= declared, sorted(p.name for p in files - declared)


def test_a_broken_data_line_is_named(monkeypatch):
    from lmcourse.data import written_reviews

    class Fake:
        def joinpath(self, name):
            return self

        def read_text(self, encoding):
            return '{"label": 1, "text": "fine"}\n{"label": 0, "text": oops}\n'

    monkeypatch.setattr(written_reviews.resources, "files", lambda package: Fake())
    with pytest.raises(ValueError, match=r"x\.jsonl, line 2"):
        written_reviews._jsonl("x.jsonl")


# ----------------------------------------------------------------------------- download


class _Server:
    """A static file server on 127.0.0.1 (ephemeral port) that counts the requests it serves."""

    def __init__(self, folder: Path):
        self.requests = 0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                return super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def shakespeare_dir(tmp_path, shakespeare_path):
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "input.txt").write_bytes(shakespeare_path.read_bytes())
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LMCOURSE_DATA", str(folder))
    monkeypatch.delenv("LMCOURSE_TINYSHAKESPEARE_URL", raising=False)
    return folder


def test_download_checks_caches_and_then_makes_no_request(shakespeare_dir, cache):
    with _Server(shakespeare_dir) as srv:
        text = data.load_text("tinyshakespeare", url=srv.url("input.txt"))
        assert srv.requests == 1
        assert text.startswith("First Citizen:") and len(text.encode()) == 1_115_394
        path = cache / "tinyshakespeare.txt"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA
        assert [p.name for p in cache.iterdir()] == ["tinyshakespeare.txt"]  # no temp file left
        assert data.load_text("tinyshakespeare", url=srv.url("input.txt")) == text
        assert srv.requests == 1  # cache hit


def test_url_from_environment_variable(shakespeare_dir, cache, monkeypatch):
    with _Server(shakespeare_dir) as srv:
        monkeypatch.setenv("LMCOURSE_TINYSHAKESPEARE_URL", srv.url("input.txt"))
        assert data.download("tinyshakespeare") == cache / "tinyshakespeare.txt"
        assert srv.requests == 1


def test_tampered_copy_is_rejected_and_nothing_is_cached(shakespeare_dir, cache):
    raw = bytearray((shakespeare_dir / "input.txt").read_bytes())
    raw[1000] ^= 1  # one flipped bit, same size
    (shakespeare_dir / "bad.txt").write_bytes(bytes(raw))
    with _Server(shakespeare_dir) as srv:
        with pytest.raises(data.DownloadError, match="checksum mismatch") as err:
            data.load_text("tinyshakespeare", url=srv.url("bad.txt"))
        assert SHA in str(err.value)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_corrupt_cache_is_replaced(shakespeare_dir, cache):
    cache.mkdir()
    (cache / "tinyshakespeare.txt").write_text("truncated")
    with _Server(shakespeare_dir) as srv:
        assert data.load_text("tinyshakespeare", url=srv.url("input.txt")).startswith("First Citizen:")
        assert srv.requests == 1


def test_unreachable_url_names_url_and_cache_path(cache):
    with _Server(cache.parent) as srv:  # a live server; then shut it down to get a dead port
        url = srv.url("input.txt")
    with pytest.raises(data.DownloadError) as err:
        data.download("tinyshakespeare", url=url, timeout=5)
    msg = str(err.value)
    assert url in msg and str(cache / "tinyshakespeare.txt") in msg and "by hand" in msg


def test_offline_with_a_bad_copy_in_the_cache_says_so(cache):
    cache.mkdir()
    (cache / "tinyshakespeare.txt").write_text("First Citizen:\r\n")  # e.g. a copy with Windows line ends
    with _Server(cache.parent) as srv:
        url = srv.url("input.txt")
    with pytest.raises(data.DownloadError, match="does not match the pinned sha256") as err:
        data.download("tinyshakespeare", url=url, timeout=5)
    assert url in str(err.value) and "by hand" in str(err.value)


def test_cache_dir_default_is_platform_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LMCOURSE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert data.cache_dir() == tmp_path / "lmcourse"
    assert data.cache_dir().name == "lmcourse"


# ----------------------------------------------------------------------------- download: hostile servers

PAYLOAD = ("To be, or not to be, that is the question.\n" * 250).encode()  # a small pinned text


@pytest.fixture
def tiny(cache, monkeypatch):
    """A pinned remote text "tiny" of 10,750 bytes, so these tests need no Tiny Shakespeare."""
    remote = data.Remote(url="http://127.0.0.1:9/tiny.txt", filename="tiny.txt",
                         sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    monkeypatch.setitem(data.REMOTES, "tiny", remote)
    return remote


class _Scripted(_Server):
    """A server on 127.0.0.1 whose every GET runs `respond(handler, server)`; it counts bytes sent."""

    def __init__(self, respond):
        self.requests = 0
        self.sent = 0
        self.stop = threading.Event()  # set on exit, so a handler that streams forever ends
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                try:
                    respond(self, outer)
                except OSError:  # the client hung up, as it should
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def write(self, handler, chunk: bytes) -> None:
        handler.wfile.write(chunk)
        handler.wfile.flush()
        self.sent += len(chunk)

    def __exit__(self, *exc):
        self.stop.set()
        super().__exit__(*exc)


def _headers(handler, length: int | None) -> None:
    handler.send_response(200)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _whole(handler, srv):
    _headers(handler, len(PAYLOAD))
    srv.write(handler, PAYLOAD)


def test_small_pinned_text_downloads(tiny, cache):
    with _Scripted(_whole) as srv:
        assert data.download("tiny", url=srv.url("tiny.txt")).read_bytes() == PAYLOAD
    assert data.cached_path("tiny") == cache / "tiny.txt"


def test_disconnect_mid_stream_is_a_download_error(tiny):
    def respond(handler, srv):
        _headers(handler, len(PAYLOAD))
        srv.write(handler, PAYLOAD[:1000])  # then the connection closes

    with _Scripted(respond) as srv:
        url = srv.url("tiny.txt")
        with pytest.raises(data.DownloadError, match="closed after 1000 of 10750 bytes") as err:
            data.download("tiny", url=url)
    assert url in str(err.value) and "by hand" in str(err.value)
    assert data.cached_path("tiny") is None


@pytest.mark.parametrize("announced", [None, 10**12])
def test_endless_stream_stops_just_past_the_pinned_size(tiny, announced):
    limit = 64 << 20  # the server gives up after 64 MB, so the test ends even if the client reads on

    def respond(handler, srv):
        _headers(handler, announced)
        while srv.sent < limit and not srv.stop.is_set():
            srv.write(handler, b"x" * 65536)

    with _Scripted(respond) as srv:
        url = srv.url("tiny.txt")
        with pytest.raises(data.DownloadError, match="more than the pinned 10750 bytes") as err:
            data.download("tiny", url=url)
        assert srv.sent < limit // 4  # the client hung up long before (what is left sat in socket buffers)
    assert url in str(err.value)


def test_trickling_server_meets_the_deadline(tiny):
    def respond(handler, srv):
        _headers(handler, len(PAYLOAD))
        for i in range(len(PAYLOAD)):  # one byte every 20 ms: each read succeeds, the whole takes 3.5 min
            if srv.stop.wait(0.02):
                return
            srv.write(handler, PAYLOAD[i : i + 1])

    with _Scripted(respond) as srv:
        url = srv.url("tiny.txt")
        with pytest.raises(data.DownloadError, match=r"within the 0\.3 s deadline") as err:
            data.download("tiny", url=url, timeout=5, deadline=0.3)
    assert url in str(err.value)


def test_server_trickling_its_headers_meets_the_deadline(tiny):
    def respond(handler, srv):
        srv.write(handler, b"HTTP/1.0 200 OK\r\nX-Slow: ")
        for _ in range(150):  # a header that never ends: one byte every 20 ms, for 3 s at most
            if srv.stop.wait(0.02):
                return
            srv.write(handler, b"z")

    with _Scripted(respond) as srv:
        url = srv.url("tiny.txt")
        with pytest.raises(data.DownloadError, match=r"within the 0\.3 s deadline") as err:
            data.download("tiny", url=url, timeout=5, deadline=0.3)
    assert url in str(err.value)


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"deadline": -1}, {"deadline": float("nan")}])
def test_timeout_and_deadline_must_be_positive(tiny, kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        data.download("tiny", url="http://127.0.0.1:9/tiny.txt", **kw)


def test_unwritable_cache_folder_is_named_before_any_request(tiny, tmp_path, monkeypatch):
    # chmod does not stop root, so the folder lies under a regular file: nobody can create it
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    folder = blocker / "cache"
    monkeypatch.setenv("LMCOURSE_DATA", str(folder))
    with _Scripted(_whole) as srv:
        with pytest.raises(data.DownloadError, match="cannot write to the cache folder") as err:
            data.download("tiny", url=srv.url("tiny.txt"))
        assert srv.requests == 0
    msg = str(err.value)
    assert str(folder) in msg and "LMCOURSE_DATA" in msg and ".tmp" not in msg


def test_cache_entry_that_cannot_be_replaced_names_the_folder(tiny, cache):
    (cache / "tiny.txt").mkdir(parents=True)  # a folder where the file should go: os.replace fails, even for root
    with _Scripted(_whole) as srv:
        with pytest.raises(data.DownloadError, match=r"cannot write tiny\.txt to the cache folder") as err:
            data.download("tiny", url=srv.url("tiny.txt"))
        assert srv.requests == 1
    msg = str(err.value)
    assert str(cache) in msg and "LMCOURSE_DATA" in msg and ".tmp" not in msg
    assert [p.name for p in cache.iterdir()] == ["tiny.txt"]  # no temp file left behind


def test_cached_path_checks_the_pinned_bytes(tiny, cache):
    assert data.cached_path("tiny") is None  # no folder yet
    cache.mkdir()
    (cache / "tiny.txt").write_bytes(PAYLOAD[:-1] + b"?")  # right size, wrong bytes
    assert data.cached_path("tiny") is None
    (cache / "tiny.txt").write_bytes(PAYLOAD)
    assert data.cached_path("tiny") == cache / "tiny.txt"
    with pytest.raises(ValueError, match="unknown remote text"):
        data.cached_path("nope")


def test_shakespeare_tests_also_use_a_verified_download_cache(tmp_path, cache, monkeypatch):
    from conftest import find_shakespeare

    pin = data.Remote(url="http://127.0.0.1:9/input.txt", filename="tinyshakespeare.txt",
                      sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    monkeypatch.setitem(data.REMOTES, "tinyshakespeare", pin)  # a small stand-in, so this needs no real copy
    absent = tmp_path / "shared" / "tinyshakespeare.txt"
    assert find_shakespeare(absent) is None
    cache.mkdir()
    (cache / "tinyshakespeare.txt").write_bytes(PAYLOAD)
    assert find_shakespeare(absent) == cache / "tinyshakespeare.txt"
    (cache / "tinyshakespeare.txt").write_bytes(PAYLOAD.upper())  # same size, not the pinned bytes
    assert find_shakespeare(absent) is None
    absent.parent.mkdir()
    absent.write_text("CI's copy")
    assert find_shakespeare(absent) == absent  # the shared copy comes first
