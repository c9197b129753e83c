"""Tokenizers: characters, byte-level BPE (GPT-2 / GPT-4 style) and BERT's WordPiece.

A tokenizer turns text into a list of integer ids and back. Three kinds live here,
each a small subclass of `Tokenizer` (minbpe is the model):

- `CharTokenizer`: one id per character seen during `fit`; an unseen character is an error.
- `BPETokenizer`: byte-level byte-pair encoding. Text is pre-split by a regex (the GPT-2 or
  GPT-4 pattern) into chunks, each chunk becomes its UTF-8 bytes (ids 0..255), and learned
  merges glue adjacent ids into new ones. Training keeps pair counts over the *unique* chunks
  and updates them incrementally after each merge; encoding applies merges lowest rank first,
  exactly as tiktoken does, so the ids are identical to a `tiktoken.Encoding` built from the
  same merges.
- `WordPiece`: BERT's encoder from a given vocab.txt (greedy longest-match-first, "##"
  continuation pieces, [UNK]), after BERT's basic pre-tokenisation.

Derived in chapters/02_tokenization.ipynb.
"""
from __future__ import annotations

import heapq
import json
import os
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import regex

from .atomic import write_atomic

# The pre-split patterns, character for character as tiktoken ships them (r50k_base = GPT-2,
# cl100k_base = GPT-4). `\p{L}` (any letter) and possessive quantifiers need the `regex` module.
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}

_FORMAT = "lmcourse-bpe 1"


def _as_ids(ids) -> list[int]:
    """`ids` as a list of Python ints: a sequence of ints, or a 1-D integer tensor or NumPy array.

    Floats and bools are refused, even 65.0 and True: an id is an integer, and a float or bool
    tensor reaching `decode` is almost always a bug (logits or a mask passed by mistake).
    """
    if isinstance(ids, (str, bytes, bytearray)) or not hasattr(ids, "__iter__"):
        raise ValueError(f"ids must be a sequence of ints, got {type(ids).__name__}: {ids!r:.60}; "
                         "wrap a single id in a list")
    ndim = getattr(ids, "ndim", None)
    if ndim is not None and hasattr(ids, "tolist"):  # a tensor or array
        if ndim != 1:
            raise ValueError(f"ids must be 1-D, got a {ndim}-D {type(ids).__name__} of shape {tuple(ids.shape)}"
                             + ("; wrap a single id in a list" if ndim == 0 else ""))
        ids = ids.tolist()
    out: list[int] = []
    for pos, i in enumerate(ids):
        if type(i) is not int:
            if hasattr(i, "tolist") and getattr(i, "ndim", None) == 0:
                i = i.tolist()  # a NumPy scalar or 0-d tensor -> int, float or bool
            if isinstance(i, bool) or not isinstance(i, int):
                raise ValueError(f"ids must be ints, got {i!r} ({type(i).__name__}) at position {pos}")
        out.append(int(i))
    return out


def _without_surrogates(text: str) -> str:
    """`text` as tiktoken encodes it: a surrogate pair becomes its character, a lone surrogate
    (which UTF-8 cannot hold) becomes U+FFFD; text without surrogates comes back unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class Tokenizer:
    """Base class: text -> list of ids -> text.

    Subclasses implement `encode`, `decode` and `vocab_size`. Derived in chapters/02_tokenization.ipynb.
    """

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.vocab_size


# ---------------------------------------------------------------------------------------------
# Characters
# ---------------------------------------------------------------------------------------------


class CharTokenizer(Tokenizer):
    """One id per distinct character, in sorted order (so the ids do not depend on the text's order).

    `CharTokenizer.fit(text)` builds the vocabulary; `encode` raises ValueError naming any
    character it has not seen. Derived in chapters/02_tokenization.ipynb.
    """

    def __init__(self, chars: Iterable[str]):
        chars = sorted(set(chars))
        for c in chars:
            if len(c) != 1:
                raise ValueError(f"CharTokenizer needs single characters, got {c!r}")
        self.itos: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}

    @classmethod
    def fit(cls, text: str) -> "CharTokenizer":
        """The tokenizer whose vocabulary is the set of characters in `text`."""
        return cls(set(text))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"encode expects a str, got {type(text).__name__}")
        stoi = self.stoi
        try:
            return [stoi[c] for c in text]
        except KeyError:
            pos = next(i for i, c in enumerate(text) if c not in stoi)
            raise ValueError(
                f"character {text[pos]!r} (U+{ord(text[pos]):04X}) at position {pos} is not in the "
                f"vocabulary of {self.vocab_size} characters; fit the tokenizer on text that contains it"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """Ids (a sequence of ints, or a 1-D integer tensor or array) -> text."""
        n = len(self.itos)
        out = []
        for i in _as_ids(ids):
            if not 0 <= i < n:
                raise ValueError(f"id {i} is outside the vocabulary (0..{n - 1})")
            out.append(self.itos[i])
        return "".join(out)


# ---------------------------------------------------------------------------------------------
# Byte-level BPE
# ---------------------------------------------------------------------------------------------


def get_pair_counts(ids: Sequence[int], counts: dict | None = None, weight: int = 1) -> dict:
    """Count adjacent pairs in `ids` (overlapping: "aaa" holds the pair (a, a) twice).

    Adds `weight` per occurrence into `counts` (a new dict if None) and returns it; insertion
    order is order of first occurrence. Derived in chapters/02_tokenization.ipynb.
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids` by `new_id`, scanning left to right.

    Occurrences cannot overlap: [a, a, a] with pair (a, a) becomes [new, a].
    Derived in chapters/02_tokenization.ipynb.
    """
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _printable(b: bytes) -> str:
    """A token's bytes as readable text: UTF-8 where valid, \\xNN escapes for partial characters."""
    s = b.decode("utf-8", errors="backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in s)


class BPETokenizer(Tokenizer):
    """Byte-level BPE with regex pre-splitting and special tokens (GPT-2 / GPT-4 style).

    `pattern` is "gpt2", "gpt4" (default), a regex string, or "" for no pre-split. Ids 0..255 are
    the bytes; merge number r (0-based) creates id 256 + r from a pair of older ids; special
    tokens take ids after the merges. `merges` maps (left id, right id) -> new id, its order
    is the rank. Derived in chapters/02_tokenization.ipynb.
    """

    def __init__(self, pattern: str = "gpt4", special_tokens: Iterable[str] = ()):
        if not isinstance(pattern, str):
            raise ValueError(f"pattern must be 'gpt2', 'gpt4', '' or a regex string, got {type(pattern).__name__}")
        self.pattern = _PATTERNS.get(pattern, pattern)
        try:
            self._compiled = regex.compile(self.pattern) if self.pattern else None
        except regex.error as e:
            raise ValueError(f"pattern {self.pattern[:60]!r} is not a valid regex: {e}") from None
        self.merges: dict[tuple[int, int], int] = {}
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        if isinstance(special_tokens, str):
            raise ValueError(f"special_tokens must be a list of strings, got the single string {special_tokens!r}")
        self._special_names = list(dict.fromkeys(special_tokens))
        for s in self._special_names:
            if not isinstance(s, str) or not s:
                raise ValueError(f"special tokens must be non-empty strings, got {s!r}")
            if s != _without_surrogates(s):
                raise ValueError(f"special token {s!r} contains a surrogate, which UTF-8 cannot encode")
        self._assign_special_ids()

    # -- bookkeeping ------------------------------------------------------------------------

    def _assign_special_ids(self) -> None:
        base = 256 + len(self.merges)
        self.special_tokens: dict[str, int] = {s: base + i for i, s in enumerate(self._special_names)}
        self._rebuild()

    def _rebuild(self) -> None:
        self.inverse_special = {i: s for s, i in self.special_tokens.items()}
        self._special_re = (
            regex.compile("(" + "|".join(regex.escape(s) for s in sorted(self.special_tokens, key=len, reverse=True)) + ")")
            if self.special_tokens
            else None
        )
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    def split(self, text: str) -> list[str]:
        """The pre-split chunks of `text` (no merge ever crosses a chunk boundary).

        Raises ValueError if the pattern skips some characters (they would be silently lost).
        """
        if self._compiled is None:
            return [text] if text else []
        chunks = self._compiled.findall(text)
        if sum(map(len, chunks)) != len(text):
            raise ValueError(
                f"the split pattern {self.pattern[:60]!r} does not cover the whole text, so characters would "
                "be lost; use 'gpt2', 'gpt4', '' (no split) or a pattern whose matches cover every character"
            )
        return chunks

    # -- training ---------------------------------------------------------------------------

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> "BPETokenizer":
        """Learn `vocab_size - 256` merges from `text` (special tokens do not count).

        Each step merges the most frequent adjacent pair; ties go to the smallest pair
        (lowest left id, then lowest right id), so training is deterministic. Pairs are
        counted once per *unique* chunk, weighted by how often the chunk occurs. A merge
        never recounts: an index pair -> positions finds its occurrences, and only the pairs
        touching them change count. Occurrences merge left to right without overlap, exactly
        like `merge`. Stops early when no adjacent pair is left. Returns self.
        """
        if not isinstance(text, str):
            raise ValueError(f"train expects text as a str, got {type(text).__name__}")
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the bytes), got {vocab_size!r}")
        text = _without_surrogates(text)  # as encode sees it
        pieces = [text]
        if self.special_tokens:  # special tokens are separators, never part of a merge
            pieces = [p for p in self._special_re.split(text) if p not in self.special_tokens]
        chunk_freq: Counter[str] = Counter()
        for p in pieces:
            chunk_freq.update(self.split(p))

        # Every byte of every unique chunk, as doubly linked lists in flat arrays:
        # tok[p] is the id at position p (-1 once merged away), prv/nxt link within a chunk
        # (-1 at its ends), weight[p] is how often p's chunk occurs in the text.
        tok: list[int] = []
        prv: list[int] = []
        nxt: list[int] = []
        weight: list[int] = []
        for chunk, f in chunk_freq.items():
            b, start = chunk.encode("utf-8"), len(tok)
            tok.extend(b)
            weight.extend([f] * len(b))
            prv.extend([-1] + list(range(start, start + len(b) - 1)))
            nxt.extend(list(range(start + 1, start + len(b))) + [-1])

        counts: dict[tuple[int, int], int] = defaultdict(int)
        where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> positions of its left id
        for p, q in enumerate(nxt):
            if q != -1:
                counts[(tok[p], tok[q])] += weight[p]
                where[(tok[p], tok[q])].add(p)
        # max-heap by (count, then smallest pair) with lazy deletion of stale entries
        heap = [(-c, pair) for pair, c in counts.items()]
        heapq.heapify(heap)

        self.merges, self.vocab = {}, {i: bytes([i]) for i in range(256)}
        for r in range(vocab_size - 256):
            best = None
            while heap:
                negc, pair = heapq.heappop(heap)
                if counts.get(pair, 0) == -negc:  # else stale: the count changed since the push
                    best = pair
                    break
            if best is None:
                break  # nothing left to merge
            a, b = best
            z = 256 + r
            self.merges[best] = z
            self.vocab[z] = self.vocab[a] + self.vocab[b]
            if verbose:
                print(f"merge {r + 1}: {best} -> {z} ({_printable(self.vocab[z])!r}) had {counts[best]} occurrences")
            changed: set[tuple[int, int]] = set()
            for p in sorted(where.pop(best)):  # left to right within each chunk
                q = nxt[p]
                if tok[p] != a or q == -1 or tok[q] != b:
                    continue  # stale entry (merged away, or overlapped by the previous occurrence)
                f, x, y = weight[p], prv[p], nxt[q]
                # [.. x, a, b, y ..] -> [.. x, z, y ..]: pairs (x, a), (a, b), (b, y) go, (x, z), (z, y) come
                counts[best] -= f
                if x != -1:
                    counts[(tok[x], a)] -= f
                    counts[(tok[x], z)] += f
                    where[(tok[x], z)].add(x)
                    changed.update([(tok[x], a), (tok[x], z)])
                if y != -1:
                    counts[(b, tok[y])] -= f
                    counts[(z, tok[y])] += f
                    where[(z, tok[y])].add(p)
                    changed.update([(b, tok[y]), (z, tok[y])])
                tok[p], tok[q], nxt[p] = z, -1, y
                if y != -1:
                    prv[y] = p
            for pair in changed:
                c = counts.get(pair, 0)
                if c > 0:
                    heapq.heappush(heap, (-c, pair))
                else:
                    counts.pop(pair, None)
            counts.pop(best, None)
        self._assign_special_ids()
        return self

    # -- encoding / decoding ----------------------------------------------------------------

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = list(chunk.encode("utf-8"))
        if len(ids) > 128:
            return self._encode_long(ids)
        merges = self.merges
        while len(ids) >= 2:
            # the adjacent pair with the lowest rank (= smallest new id); none left -> done
            pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, 1 << 62))
            if pair not in merges:
                break
            ids = merge(ids, pair, merges[pair])
        return ids

    def _encode_long(self, ids: list[int]) -> list[int]:
        """The same merges for a long chunk in O(n log n): a linked list plus a heap of
        (rank, position) candidates, so the lowest rank goes first and, among equal ranks, the
        leftmost (which is what merging all occurrences left to right does)."""
        merges, n = self.merges, len(ids)
        tok, nxt, prv, alive = list(ids), list(range(1, n + 1)), list(range(-1, n - 1)), [True] * n
        heap = [(merges[p], i) for i, p in enumerate(zip(ids, ids[1:])) if p in merges]
        heapq.heapify(heap)
        while heap:
            rank, i = heapq.heappop(heap)
            j = nxt[i]
            if not alive[i] or j >= n or merges.get((tok[i], tok[j])) != rank:
                continue  # stale candidate: one of its two tokens has changed since
            tok[i], alive[j], nxt[i] = rank, False, nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            p, k = prv[i], nxt[i]
            if p >= 0 and (tok[p], rank) in merges:
                heapq.heappush(heap, (merges[(tok[p], rank)], p))
            if k < n and (rank, tok[k]) in merges:
                heapq.heappush(heap, (merges[(rank, tok[k])], i))
        return [t for t, a in zip(tok, alive) if a]

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text`, treating special-token strings as ordinary text.

        Surrogates are handled as tiktoken does: a pair becomes its character, a lone one U+FFFD.
        """
        if not isinstance(text, str):
            raise ValueError(f"encode expects a str, got {type(text).__name__} (bytes: decode them first)")
        text = _without_surrogates(text)
        cache = self._cache
        out: list[int] = []
        for chunk in self.split(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = self._encode_chunk(chunk)
                if len(cache) < 1_000_000:
                    cache[chunk] = ids
            out.extend(ids)
        return out

    def encode(self, text: str, allowed_special: str | Iterable[str] = "none_raise") -> list[int]:
        """Encode `text` to ids.

        `allowed_special`: "all" (special-token strings become their ids), "none" (they are
        encoded as ordinary text), "none_raise" (default: raise ValueError if one occurs, like
        tiktoken), or a set of the special tokens to allow (the others are ordinary text).
        Surrogates are handled as tiktoken does: a pair becomes its character, a lone one U+FFFD.
        """
        if not isinstance(text, str):
            raise ValueError(f"encode expects a str, got {type(text).__name__} (bytes: decode them first)")
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special in ("none", "none_raise"):
            allowed = set()
            if allowed_special == "none_raise" and self._special_re is not None:
                m = self._special_re.search(text)
                if m:
                    raise ValueError(
                        f"text contains the special token {m.group()!r} at position {m.start()}; pass "
                        f"allowed_special='all' to encode it as id {self.special_tokens[m.group()]}, "
                        "or 'none' to encode it as ordinary text"
                    )
        else:
            allowed = set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise ValueError(f"unknown special tokens {sorted(unknown)}; known: {sorted(self.special_tokens)}")
        if not allowed:
            return self.encode_ordinary(text)
        text = _without_surrogates(text)
        pattern = "(" + "|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True)) + ")"
        out: list[int] = []
        for part in regex.split(pattern, text):
            if part in allowed:
                out.append(self.special_tokens[part])
            elif part:
                out.extend(self.encode_ordinary(part))
        return out

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The bytes that `ids` (a sequence of ints, or a 1-D integer tensor or array) stand for
        (special tokens as their UTF-8 text)."""
        parts = []
        for i in _as_ids(ids):
            if i in self.vocab:
                parts.append(self.vocab[i])
            elif i in self.inverse_special:
                parts.append(self.inverse_special[i].encode("utf-8"))
            else:
                raise ValueError(f"id {i} is not in the vocabulary (size {self.vocab_size})")
        return b"".join(parts)

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """Decode ids to text; invalid UTF-8 (a cut multi-byte character) becomes U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def token_str(self, i: int) -> str:
        """A readable form of token `i`: its text, or \\xNN escapes for bytes of a cut character."""
        (i,) = _as_ids([i])
        if i in self.inverse_special:
            return self.inverse_special[i]
        return _printable(self.decode_bytes([i]))

    def tokens(self, text: str, allowed_special: str | Iterable[str] = "none_raise") -> list[str]:
        """`encode(text)` shown as token strings (see `token_str`)."""
        return [self.token_str(i) for i in self.encode(text, allowed_special)]

    def truncated(self, num_merges: int) -> "BPETokenizer":
        """A copy that keeps only the first `num_merges` merges (the tokenizer after that many steps)."""
        if (not isinstance(num_merges, int) or isinstance(num_merges, bool)
                or not 0 <= num_merges <= len(self.merges)):
            raise ValueError(f"num_merges must be in 0..{len(self.merges)}, got {num_merges}")
        tok = BPETokenizer(self.pattern, self._special_names)
        for pair, new_id in list(self.merges.items())[:num_merges]:
            tok.merges[pair] = new_id
            tok.vocab[new_id] = self.vocab[new_id]
        tok._assign_special_ids()
        return tok

    def mergeable_ranks(self) -> dict[bytes, int]:
        """tiktoken's view of the vocabulary: token bytes -> rank (= id), bytes first, then merges."""
        return {self.vocab[i]: i for i in range(256 + len(self.merges))}

    # -- save / load ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer to a human-readable text file, atomically. Returns the path.

        Format: a header line, the pattern and each special token as JSON strings, then one
        merge per line, `left right<TAB>"readable token"` (the part after the tab is only for people).
        """
        lines = [_FORMAT, json.dumps(self.pattern, ensure_ascii=False), f"{len(self._special_names)}"]
        lines += [json.dumps(s, ensure_ascii=False) for s in self._special_names]
        lines.append(f"{len(self.merges)}")
        for (a, b), new_id in self.merges.items():
            lines.append(f"{a} {b}\t{json.dumps(_printable(self.vocab[new_id]), ensure_ascii=False)}")
        path = Path(path)
        write_atomic(path, "\n".join(lines) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Read a tokenizer written by `save`.

        A file that is not in that format raises ValueError naming the file and the line:
        a bad count, pattern or special token, a malformed merge, a merge that uses an id created
        only later, a merge that repeats an earlier one, a missing merge or text after the last.
        """
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
        if lines[0] != _FORMAT:
            raise ValueError(f"{path} is not a {_FORMAT!r} file (first line {lines[0][:40]!r})")
        n_lines = len(lines) - (lines[-1] == "")  # the text after the final newline is no line

        def error(k: int, what: str) -> ValueError:
            return ValueError(f"{path}, line {k + 1}: {what}")

        def line(k: int, what: str) -> str:
            if k >= n_lines:
                raise error(k, f"missing {what}: the file ends after {n_lines} lines (truncated?)")
            return lines[k]

        def count(k: int, what: str) -> int:
            s = line(k, what)
            if not (s.isascii() and s.isdigit()):
                raise error(k, f"expected {what} (a whole number), got {s[:40]!r}")
            return int(s)

        def string(k: int, what: str) -> str:
            s = line(k, what)
            try:
                value = json.loads(s)
            except json.JSONDecodeError:
                value = None
            if not isinstance(value, str):
                raise error(k, f"expected {what} as a JSON string, got {s[:40]!r}")
            return value

        pattern = string(1, "the split pattern")
        n_special = count(2, "the number of special tokens")
        specials = [string(3 + j, f"special token {j}") for j in range(n_special)]
        n_merges = count(3 + n_special, "the number of merges")
        try:
            tok = cls(pattern, specials)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        first = 4 + n_special
        for r in range(n_merges):
            s = line(first + r, f"merge {r} of {n_merges}")
            ids = s.split("\t", 1)[0].split(" ")
            if len(ids) != 2 or not all(x.isascii() and x.isdigit() for x in ids):
                raise error(first + r, f"expected a merge 'left right<TAB>token', got {s[:40]!r}")
            a, b = int(ids[0]), int(ids[1])
            if not (a < 256 + r and b < 256 + r):
                raise error(first + r, f"merge {r} uses an id that does not exist yet: {a} {b}")
            if (a, b) in tok.merges:
                raise error(first + r, f"merge {r} ({a} {b}) repeats merge {tok.merges[(a, b)] - 256}")
            tok.merges[(a, b)] = 256 + r
            tok.vocab[256 + r] = tok.vocab[a] + tok.vocab[b]
        if first + n_merges < n_lines:
            k = first + n_merges
            raise error(k, f"unexpected text after the last of {n_merges} merges: {lines[k][:40]!r}")
        tok._assign_special_ids()
        return tok


# ---------------------------------------------------------------------------------------------
# WordPiece (BERT)
# ---------------------------------------------------------------------------------------------


def _is_control(ch: str) -> bool:  # as BERT: every "C*" category (control, format, private use, ...)
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    # BERT counts all non-alphanumeric printable ASCII as punctuation: beyond Unicode's P* categories,
    # that adds the ASCII symbols below (currency, math and modifier symbols)
    return ch in "$+<=>^`|~" or unicodedata.category(ch).startswith("P")


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPiece(Tokenizer):
    """BERT's WordPiece encoder over a given vocabulary (one token per line of vocab.txt, id = line).

    Basic pre-tokenisation first (drop control characters, CJK characters as separate words,
    NFC, split on whitespace, optionally lowercase and strip accents, split off punctuation), then
    each word greedily takes the longest vocabulary prefix, continuing with "##" pieces; a
    word that cannot be covered becomes `unk_token`. Derived in chapters/02_tokenization.ipynb.
    """

    def __init__(self, vocab: Sequence[str] | dict[str, int], lowercase: bool = True,
                 strip_accents: bool | None = None, unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 100,
                 never_split: Iterable[str] = ("[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]")):
        self.vocab: dict[str, int] = dict(vocab) if isinstance(vocab, dict) else {t: i for i, t in enumerate(vocab)}
        if unk_token not in self.vocab:
            raise ValueError(f"the unknown token {unk_token!r} is not in the vocabulary")
        self.inv_vocab = {i: t for t, i in self.vocab.items()}
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.never_split = {t for t in never_split if t in self.vocab}

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> "WordPiece":
        """Load a vocab.txt (one token per line; the line number is the id; \\n, \\r\\n and \\r end a
        line, as when BERT's own code reads it)."""
        tokens = Path(path).read_text(encoding="utf-8").split("\n")  # read_text turns \r\n and \r into \n
        if tokens[-1] == "":
            tokens.pop()  # the final newline ends the last line; it starts no empty token
        return cls(tokens, **kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def basic_tokenize(self, text: str) -> list[str]:
        """BERT's pre-tokenisation: words and punctuation marks, before WordPiece."""
        if not isinstance(text, str):
            raise ValueError(f"WordPiece expects text as a str, got {type(text).__name__}")
        chars = []
        for ch in text:
            if ch == "\ufffd" or _is_control(ch):  # \x00 is a control character too
                continue
            chars += [" ", ch, " "] if _is_cjk(ch) else [ch]
        out: list[str] = []
        # str.split() splits at BERT's whitespace (" ", \t, \n, \r and every Zs space) and at \u2028,
        # \u2029, as BERT's own split after its clean-up does
        for word in unicodedata.normalize("NFC", "".join(chars)).split():
            if word in self.never_split:
                out.append(word)
                continue
            if self.lowercase:
                word = word.lower()
            if self.strip_accents:
                word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            current = ""
            for ch in word:
                if _is_punctuation(ch):
                    if current:
                        out.append(current)
                    out.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                out.append(current)
        return out

    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first split of one word into vocabulary pieces ("##" = continuation)."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return [self.unk_token]  # some part of the word has no piece: the whole word is unknown
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece token strings."""
        return [p for w in self.basic_tokenize(text) for p in (
            [w] if w in self.never_split else self.wordpiece(w))]

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = False,
               max_length: int | None = None) -> list[int]:
        """Text -> ids. With `add_special_tokens`: [CLS] text [SEP] (text_pair [SEP]); `max_length`
        truncates the longer text first (the special tokens always stay)."""
        a = [self.vocab[t] for t in self.tokenize(text)]
        b = [self.vocab[t] for t in self.tokenize(text_pair)] if text_pair is not None else None
        extra = (2 + (b is not None)) if add_special_tokens else 0
        if max_length is not None:
            if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 0:
                raise ValueError(f"max_length must be an int >= 0 or None, got {max_length!r}")
            if max_length < extra:
                raise ValueError(f"max_length={max_length} cannot hold the {extra} special tokens")
            while len(a) + len(b or []) + extra > max_length:
                if b is not None and len(b) > len(a):
                    b.pop()
                else:
                    a.pop()
        if not add_special_tokens:
            return a + (b or [])
        cls_id, sep_id = self.vocab["[CLS]"], self.vocab["[SEP]"]
        return [cls_id] + a + [sep_id] + ((b + [sep_id]) if b is not None else [])

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text: pieces joined by spaces, "##" continuations glued to the previous piece."""
        out = ""
        for i in _as_ids(ids):
            if i not in self.inv_vocab:
                raise ValueError(f"id {i} is not in the vocabulary (size {self.vocab_size})")
            t = self.inv_vocab[i]
            out += t[2:] if t.startswith("##") else (" " + t if out else t)
        return out
