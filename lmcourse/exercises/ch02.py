"""Chapter 02 exercises: counting pairs, one BPE merge, training BPE, encoding with a merge table.

Derived in chapters/02_tokenization.ipynb; practised in solutions/02_tokenization.ipynb.
"""
from __future__ import annotations

import random

from lmcourse.checks import Case, Exercise, Wrong
from lmcourse.tokenizers import GPT4_SPLIT_PATTERN, BPETokenizer, get_pair_counts, merge

# ---------------------------------------------------------------- 2.1 count pairs in chunks


def _chunks(text: str) -> list[list[int]]:
    import regex

    return [list(c.encode("utf-8")) for c in regex.findall(GPT4_SPLIT_PATTERN, text)]


def _count_pairs(chunks: list[list[int]]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for ids in chunks:
        for pair in zip(ids, ids[1:]):  # adjacent, overlapping, never across a chunk boundary
            counts[pair] = counts.get(pair, 0) + 1
    return counts


def _count_cases(seed: int) -> list[Case]:
    rng = random.Random(seed)
    noise = "".join(rng.choice("ab ") for _ in range(rng.randint(10, 80)))
    return [
        Case(([list(b"abcd")],), label='one chunk "abcd"'),
        Case(([[97, 97, 97]],), label='one chunk "aaa"'),
        Case((_chunks("the cat sat on the mat"),), label="a sentence, pre-split"),
        Case((_chunks("aaabdaaabac"),), label='"aaabdaaabac"'),
        Case(([[1, 2], [3], [], [2, 3, 2, 3]],), label="empty and one-id chunks"),
        Case((_chunks(noise),), label="random a/b text"),
    ]


def _count_across_chunks(chunks):
    flat = [i for ids in chunks for i in ids]
    return get_pair_counts(flat)


def _count_missing_last(chunks):
    counts: dict = {}
    for ids in chunks:
        for i in range(len(ids) - 2):
            counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
    return counts


def _count_non_overlapping(chunks):
    counts: dict = {}
    for ids in chunks:
        i = 0
        while i < len(ids) - 1:
            counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
            i += 2
    return counts


count_pairs = Exercise(
    id="2.1",
    name="count_pairs",
    title="Count adjacent pairs inside pre-split chunks",
    reference=_count_pairs,
    forbidden=("lmcourse.tokenizers.get_pair_counts",),
    cases=_count_cases,
    wrong=[
        Wrong(_count_across_chunks, "you counted pairs across chunk boundaries (the last id of one chunk with the "
              "first of the next). The pre-split exists so that merges never cross a boundary: count inside each chunk."),
        Wrong(_count_missing_last, "the last pair of each chunk is missing: a chunk of n ids has n - 1 pairs, "
              "i = 0 .. n - 2, so loop over range(len(ids) - 1) (or zip(ids, ids[1:]))."),
        Wrong(_count_non_overlapping, "you stepped two ids at a time, so pairs starting at odd positions were never "
              "counted. Counting is overlapping: [a, a, a] holds the pair (a, a) twice, at positions 0 and 1."),
    ],
    hint="Loop over the chunks and count the adjacent pairs inside each one separately, so no pair spans two "
    "chunks. Zipping a list with itself shifted by one gives its adjacent pairs; a dict's .get(key, 0) starts a count.",
)

# ---------------------------------------------------------------- 2.2 one merge step


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)  # the pair at i, i+1 becomes one id ...
            i += 2              # ... and the scan continues after it: occurrences never overlap
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_cases(seed: int) -> list[Case]:
    rng = random.Random(seed + 1)
    rand = [rng.choice([97, 98]) for _ in range(rng.randint(10, 60))]
    return [
        Case((list(b"aaa"), (97, 97), 256), label='"aaa", merge (a, a)'),
        Case((list(b"aaabdaaabac"), (97, 97), 256), label='"aaabdaaabac", merge (a, a)'),
        Case(([256, 97, 98, 100, 256, 97, 98, 97, 99], (97, 98), 257), label="second textbook merge (a, b)"),
        Case((list(b"abab"), (97, 98), 300), label='"abab", two occurrences'),
        Case((list(b"hello"), (120, 121), 256), label="pair absent"),
        Case(([], (97, 97), 256), label="empty"),
        Case((rand, (98, 98), 256), label="random a/b, merge (b, b)"),
    ]


def _merge_overlapping(ids, pair, new_id):
    starts = {i for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) == tuple(pair)}
    covered = starts | {i + 1 for i in starts}
    return [new_id if i in starts else x for i, x in enumerate(ids) if i in starts or i not in covered]


def _merge_right_to_left(ids, pair, new_id):
    out, i = [], len(ids) - 1
    while i >= 0:
        if i > 0 and (ids[i - 1], ids[i]) == tuple(pair):
            out.append(new_id)
            i -= 2
        else:
            out.append(ids[i])
            i -= 1
    return out[::-1]


def _merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == tuple(pair):
            return ids[:i] + [new_id] + ids[i + 2:]
    return list(ids)


merge_pair = Exercise(
    id="2.2",
    name="merge_pair",
    title="One BPE merge: replace a pair by a new id",
    reference=_merge_pair,
    forbidden=("lmcourse.tokenizers.merge",),
    cases=_merge_cases,
    wrong=[
        Wrong(_merge_overlapping, "overlapping occurrences were both merged: [a, a, a] with (a, a) became two new "
              "tokens, which would need four a's. After a merge at i, i+1, continue at i + 2: [a, a, a] -> [Z, a]."),
        Wrong(_merge_right_to_left, "you scanned from the right, so [a, a, a] became [a, Z]. BPE scans left to right: "
              "[a, a, a] -> [Z, a] (this is what tiktoken and GPT-2 do)."),
        Wrong(_merge_first_only, "only the first occurrence was merged: a merge step replaces every "
              "(non-overlapping) occurrence of the pair in one left-to-right pass."),
    ],
    hint="Walk along ids with an index, building a new list: where the pair starts, emit new_id and skip past "
    "both ids; elsewhere copy one id and move on by one. Mind the last element, which has no right neighbour.",
)

# ---------------------------------------------------------------- 2.3 train BPE


def _train_bpe(ids: list[int], num_merges: int) -> dict[tuple[int, int], int]:
    merges: dict[tuple[int, int], int] = {}
    for r in range(num_merges):
        counts = _count_pairs([ids])
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))  # most frequent; ties: smallest pair
        merges[pair] = 256 + r
        ids = _merge_pair(ids, pair, 256 + r)
    return merges


def _train_cases(seed: int) -> list[Case]:
    rng = random.Random(seed + 2)
    rand = "".join(rng.choice("abcd") for _ in range(rng.randint(40, 120)))
    merges = rng.randint(6, 16)
    return [
        Case((list(b"aaabdaaabac"), 3), label='"aaabdaaabac", 3 merges'),
        Case((list(b"cdab cdab"), 2), label="a tie between (c, d) and (a, b)"),
        Case((list("the cat sat on the mat with the hat".encode()), 8), label="a sentence, 8 merges"),
        Case((list(rand.encode()), merges), label="random a-d text, random number of merges"),
        Case((list(b"ab"), 5), label="runs out of pairs"),
    ]


def _train_first_occurrence(ids, num_merges):
    merges = {}
    for r in range(num_merges):
        counts = get_pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)  # ties -> first occurring pair
        merges[pair] = 256 + r
        ids = merge(ids, pair, 256 + r)
    return merges


def _train_no_recount(ids, num_merges):
    counts = get_pair_counts(ids)
    top = sorted(counts, key=lambda p: (-counts[p], p))[:num_merges]
    return {p: 256 + r for r, p in enumerate(top)}


def _train_ids_after_max(ids, num_merges):
    merges, nxt = {}, max(ids, default=255) + 1
    for r in range(num_merges):
        counts = get_pair_counts(ids)
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges[pair] = nxt + r
        ids = merge(ids, pair, nxt + r)
    return merges


train_bpe = Exercise(
    id="2.3",
    name="train_bpe",
    title="Train BPE: repeatedly merge the most frequent pair",
    reference=_train_bpe,
    forbidden=("lmcourse.tokenizers.BPETokenizer.train",),
    cases=_train_cases,
    wrong=[
        Wrong(_train_first_occurrence, "ties were broken by first occurrence (max(counts, key=counts.get)). "
              "This exercise fixes the rule: highest count, then the smallest pair, e.g. "
              "min(counts, key=lambda p: (-counts[p], p)) — a deterministic choice that does not depend on dict order."),
        Wrong(_train_no_recount, "you took the most frequent pairs of the original text all at once. After each "
              "merge the sequence changes (new pairs like (Z, b) appear, others vanish): merge, then count again."),
        Wrong(_train_ids_after_max, "new ids must start at 256, right after the 256 byte values, whatever bytes "
              "the text happens to use: merge r gets id 256 + r."),
    ],
    hint="Each round: count the pairs (exercise 2.1), stop if there are none, choose the most frequent pair "
    "(on a tie the smallest; min with a key that sorts by minus the count, then the pair, does both), record its "
    "new id and merge it (exercise 2.2). Count again every round: the sequence changed.",
)

# ---------------------------------------------------------------- 2.4 encode with a merge table


def _encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, float("inf")))  # lowest rank present
        if pair not in merges:
            break
        ids = _merge_pair(ids, pair, merges[pair])
    return ids


def _shuffled(merges: dict, rng: random.Random) -> dict:
    items = list(merges.items())
    rng.shuffle(items)
    return dict(items)


def _encode_cases(seed: int) -> list[Case]:
    rng = random.Random(seed + 3)
    story = "the cat sat on the mat. the cat ate the rat. that cat is fat and the rat is sad."
    m_story = BPETokenizer(pattern="").train(story, 256 + 30).merges
    zh = "我喜欢学习语言模型。语言模型喜欢我。"
    m_zh = BPETokenizer(pattern="").train(zh * 3, 256 + 12).merges
    rand = "".join(rng.choice("abc") for _ in range(rng.randint(120, 260)))
    m_rand = BPETokenizer(pattern="").train(rand, 256 + 25).merges
    tricky = {(98, 99): 256, (97, 98): 257, (257, 98): 258}  # "bc", "ab", "abb"
    return [
        Case(("aaabdaaabac", {(97, 97): 256, (97, 98): 257, (256, 257): 258}), label="textbook table"),
        Case(("aaaa", {(97, 97): 256, (256, 97): 257}), label='"aaaa" with merges aa, aaa'),
        Case(("abc", {(98, 99): 256, (97, 98): 257, (97, 256): 258}), label='"abc" with merges bc, ab, a+bc'),
        Case(("abbc", tricky), label='"abbc" with merges bc, ab, abb'),
        Case(("the rat sat on the cat", _shuffled(m_story, rng)), label="story merges, table in shuffled order"),
        Case(("语言模型", _shuffled(m_zh, rng)), label="Chinese, merges glue UTF-8 bytes"),
        Case(("".join(rng.choice("abc") for _ in range(rng.randint(20, 90))), _shuffled(m_rand, rng)),
             label="random a-c text"),
        Case(("", tricky), label="empty text"),
    ]


def _encode_table_order(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new_id in merges.items():  # the dict's order, not the rank
        ids = merge(ids, pair, new_id)
    return ids


def _encode_leftmost(text, merges):
    ids = list(text.encode("utf-8"))
    while True:
        pair = next((p for p in zip(ids, ids[1:]) if p in merges), None)
        if pair is None:
            return ids
        ids = merge(ids, pair, merges[pair])


def _encode_longest_match(text, merges):
    vocab = {bytes([i]): i for i in range(256)}
    by_id = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in sorted(merges.items(), key=lambda kv: kv[1]):
        by_id[new_id] = by_id[a] + by_id[b]
        vocab[by_id[new_id]] = new_id
    data, out, i = text.encode("utf-8"), [], 0
    while i < len(data):
        j = len(data)
        while data[i:j] not in vocab:
            j -= 1
        out.append(vocab[data[i:j]])
        i = j
    return out


encode_with_merges = Exercise(
    id="2.4",
    name="encode_with_merges",
    title="Encode text with a merge table, lowest rank first",
    reference=_encode,
    forbidden=("lmcourse.tokenizers.BPETokenizer.encode", "lmcourse.tokenizers.BPETokenizer.encode_ordinary"),
    cases=_encode_cases,
    wrong=[
        Wrong(_encode_table_order, "you applied the merges in the order the table lists them. The rank is the new id "
              "(the order in which training learned them), and the table here is shuffled: always merge the present "
              "pair with the lowest new id first."),
        Wrong(_encode_leftmost, "you merged the leftmost mergeable pair. BPE merges the pair with the lowest rank "
              "anywhere in the sequence first, exactly as training did, whatever its position."),
        Wrong(_encode_longest_match, "this is greedy longest-match (WordPiece style), not BPE: it grabs the longest "
              "token at each position, e.g. 'aaa' + 'a' for 'aaaa', where BPE's first merge (a, a), applied "
              "everywhere, gives 'aa' + 'aa'. Replay the merges by rank."),
    ],
    hint="Start from the UTF-8 bytes. Repeat: among the adjacent pairs, find the one with the lowest rank in the "
    "table (a pair not in the table ranks as infinity); stop when even that one is not in the table; otherwise "
    "merge it everywhere with your merge_pair.",
)
