"""lmcourse.text: normalize against unicodedata and by example; scrub_pii on made-up positives
and look-alike negatives (every decision in the module docstring is pinned here)."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse.text import luhn_valid, normalize, scrub_pii

# ------------------------------------------------------------------------------ normalize


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Ｈｅｌｌｏ，ｗｏｒｌｄ", "Hello,world"),  # full-width forms fold (NFKC)
        ("ﬁne ﬂour", "fine flour"),  # ligatures
        ("x²", "x2"),
        ("caf\u0065\u0301", "café"),  # combining accent composes
        ("a\u00a0\u2009b", "a b"),  # no-break and thin spaces
        ("a\tb  \t c", "a b c"),
        ("line1\r\nline2\rline3\u2028line4", "line1\nline2\nline3\nline4"),
        ("keep\n\nparagraphs\n\n\n\n\nbut not more", "keep\n\nparagraphs\n\nbut not more"),
        ("three\n\n\nnewlines", "three\n\nnewlines"),  # exactly three collapse too
        ("bell\x07 and null\x00 gone", "bell and null gone"),
        ("zero\u200bwidth\ufeff and soft\u00adhyphen", "zerowidth and softhyphen"),
        ("trailing   \n   leading", "trailing\nleading"),
        ("  \n\n  padded  \n\n ", "padded"),
        ("中文，全角！", "中文,全角!"),
        ("family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"),  # ZWJ kept: emoji sequences survive
        ("", ""),
    ],
)
def test_normalize_examples(raw, expected):
    assert normalize(raw) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalize_is_idempotent_and_clean(s):
    out = normalize(s)
    assert normalize(out) == out
    assert unicodedata.is_normalized("NFKC", out)
    assert not any(unicodedata.category(c) == "Cc" and c != "\n" for c in out)
    assert "  " not in out and "\n\n\n" not in out
    assert out == out.strip()


def test_normalize_rejects_non_strings():
    with pytest.raises(ValueError, match="expects a str"):
        normalize(b"bytes")


# ------------------------------------------------------------------------------ Luhn


@pytest.mark.parametrize("number", ["4111111111111111", "5555555555554444", "378282246310005", "79927398713"])
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "79927398710", "9783161484100"])
def test_luhn_rejects_invalid_numbers(number):
    assert not luhn_valid(number)


def test_luhn_oracle_check_digit():
    # oracle: the check digit computed the textbook way makes every prefix valid, no other digit does
    for prefix in ["7992739871", "411111111111111", "37828224631000"]:
        s = sum(int(d) if i % 2 else sum(divmod(2 * int(d), 10)) for i, d in enumerate(reversed(prefix)))
        check = (10 - s % 10) % 10
        for d in range(10):
            assert luhn_valid(prefix + str(d)) == (d == check)


# ------------------------------------------------------------------------------ scrub_pii

POSITIVES = [
    ("Write to jane.doe@example.com today.", "Write to <EMAIL> today."),
    ("cc: bob+news@mail.example.co.uk, alice_99@uni.edu", "cc: <EMAIL>, <EMAIL>"),
    ("Card 4111 1111 1111 1111 expires soon", "Card <CARD> expires soon"),
    ("card no. 5555-5555-5555-4444.", "card no. <CARD>."),
    ("amex 3782 822463 10005 ok", "amex <CARD> ok"),
    ("paid with 4111111111111111", "paid with <CARD>"),
    ("server at 192.168.0.12 is down", "server at <IP> is down"),
    ("ping 8.8.8.8.", "ping <IP>."),
    ("from 10.0.0.1 to 255.255.255.255", "from <IP> to <IP>"),
    ("call (415) 555-0132 now", "call <PHONE> now"),
    ("call 415-555-0132", "call <PHONE>"),
    ("call 415.555.0132", "call <PHONE>"),
    ("UK office: +44 20 7946 0958.", "UK office: <PHONE>."),
    ("US: +1 415 555 0132", "US: <PHONE>"),
    ("text +14155550132", "text <PHONE>"),
    ("ring 020 7946 0958", "ring <PHONE>"),
    ("mobile 07700 900123", "mobile <PHONE>"),
    ("hotline 0800-123456", "hotline <PHONE>"),  # two groups with a leading 0
    ("Mia (mia@example.org, 415-555-0199) sent it from 172.16.4.2",
     "Mia (<EMAIL>, <PHONE>) sent it from <IP>"),
]

NEGATIVES = [
    "Python 3.11.7 and torch 2.13.0",          # versions with three parts
    "release 1.2.3.4.5 is out",                 # five dotted parts: not an address
    "v1.2.3.4",                                 # glued to a letter
    "256.1.1.1 and 1.2.3.999",                  # octets out of range
    "01.02.03.04",                              # leading zeros
    "on 2024-01-31 at 12:30",                   # ISO date and time
    "on 31.01.2024 or 31/01/2024",              # European dates
    "costs $1,299.00 or €12.50",                # prices
    "pi is 3.14159 and e is 2.71828",           # decimals
    "123.456789",                               # a decimal with a long fraction
    "ISBN 978-3-16-148410-0",                   # ISBN with hyphens
    "ISBN 9783161484100",                       # 13 digits failing Luhn
    "order 4111 1111 1111 1112",                # card-shaped, fails Luhn
    "order 1234-5678-1234-5678",                # card-shaped, fails Luhn
    "years 1999-2005",                          # a range
    "in 2019 2020 2021 we grew",                # space-separated years
    "dial 555-0132",                            # too short to be a full number
    "part 12-345-678",                          # phone-shaped, but 8 digits: too few
    "see a@b.c",                                # a one-letter top-level domain is no domain
    "San Francisco, CA 94103-1234",             # ZIP+4 code: two groups without a leading 0
    "invoice 2024-000123",                      # year-number: two groups without a leading 0
    "id 4155550132",                            # a bare digit run is a number, not a phone
    "email me at jane at example dot com",      # obfuscated, not an address
    "user@localhost",                           # no top-level domain
    "@handle and #tag",
    "room 12 at 10:45, 3 people, 7.5 kg",
]


@pytest.mark.parametrize("raw, expected", POSITIVES)
def test_scrub_pii_positives(raw, expected):
    assert scrub_pii(raw) == expected


@pytest.mark.parametrize("raw", NEGATIVES)
def test_scrub_pii_leaves_look_alikes_alone(raw):
    assert scrub_pii(raw) == raw


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="@0123456789")))
def test_scrub_pii_never_touches_text_without_digits_or_at(s):
    assert scrub_pii(s) == s


def test_scrub_pii_is_idempotent_on_examples():
    for raw, _ in POSITIVES:
        once = scrub_pii(raw)
        assert scrub_pii(once) == once


# ------------------------------------------------------------------ linear time, hostile input

import time  # noqa: E402

from lmcourse import text as textmod  # noqa: E402


@pytest.fixture(autouse=True)
def _empty_fold_table():
    """The fold table fills as it meets characters: start every test from an empty one, so each
    test exercises the code that fills it (and not what an earlier test left behind)."""
    textmod._FOLD.clear()

# Runs that once made a pattern rescan the rest of the text from every position ("%20" did,
# for the e-mail pattern: 300 KB took 29 s), and runs of each character the patterns use.
HOSTILE = ["%20", "1", ".", "@", "-", " ", "+", "a.", "a@", "1 ", "1.", "1-", "+1 ", "(1", "%", "_a", "a-",
           "１", "٤", "％２０", "\u3000１"]


def _cpu_seconds(fn, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn(text)
        best = min(best, time.process_time() - t)
    return best


def _assert_linear(fn, unit: str, label: str, n: int = 2000) -> None:
    # 8x the text must cost about 8x the work; quadratic work would cost 64x. The bound (24x plus
    # 2 ms for timer resolution) is loose enough for a loaded machine and tight enough to catch it.
    small, large = unit * (n // len(unit)), unit * (8 * n // len(unit))
    t_small, t_large = _cpu_seconds(fn, small), _cpu_seconds(fn, large)
    assert t_large <= 24 * t_small + 0.002, f"{label} on {unit!r}: {t_small * 1e3:.2f} ms -> {t_large * 1e3:.2f} ms"


@pytest.mark.parametrize("name", ["_EMAIL", "_CARD", "_IP", "_PHONE"])
def test_every_pii_pattern_does_linear_work_on_hostile_runs(name):
    pattern = getattr(textmod, name)
    for unit in HOSTILE:
        _assert_linear(lambda s: pattern.sub("", textmod._fold(s)), unit, name)


def test_scrub_pii_and_normalize_do_linear_work_on_hostile_runs():
    for unit in HOSTILE + ["a@b.c", "x@a.", "1.2.3.4.", "4111 ", "\n\n\n", " \t"]:
        _assert_linear(scrub_pii, unit, "scrub_pii")
        _assert_linear(normalize, unit, "normalize")


# ------------------------------------------------------------------ digits of any script

FULL_WIDTH_CARD = "４１１１ １１１１ １１１１ １１１１"
ARABIC_INDIC_CARD = "٤١١١١١١١١١١١١١١١"  # 4111111111111111 in Arabic-Indic digits


def test_luhn_reads_digits_of_any_script():
    assert luhn_valid("４１１１１１１１１１１１１１１１") and luhn_valid(ARABIC_INDIC_CARD)
    assert luhn_valid("۷۹۹۲۷۳۹۸۷۱۳")  # 79927398713 in Extended Arabic-Indic (Persian) digits
    assert not luhn_valid("４１１１１１１１１１１１１１１２") and not luhn_valid("٧٩٩٢٧٣٩٨٧١٠")
    assert luhn_valid("७९९२७३९८७१३")  # Devanagari


@pytest.mark.parametrize("bad", ["", "12a4", "4111 1111", "x²", "²", "①②", "-42"])
def test_luhn_rejects_what_is_not_a_digit_string(bad):
    with pytest.raises(ValueError, match="non-empty string of digits"):
        luhn_valid(bad)


@pytest.mark.parametrize("bad", [4111111111111111, None, b"4111"])
def test_luhn_rejects_non_strings(bad):
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        luhn_valid(bad)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (f"card {FULL_WIDTH_CARD} ok", "card <CARD> ok"),
        ("card ４１１１－１１１１－１１１１－１１１１.", "card <CARD>."),  # full-width hyphens
        (f"البطاقة {ARABIC_INDIC_CARD}", "البطاقة <CARD>"),
        ("Ｈｅｌｌｏ ＋４４ ２０ ７９４６ ０９５８！", "Ｈｅｌｌｏ <PHONE>！"),  # full-width plus and digits
        ("call （４１５） ５５５－０１３２ now", "call <PHONE> now"),
        ("هاتف +٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", "هاتف <PHONE>"),
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ さん", "<EMAIL> さん"),
        ("server １９２．１６８．０．１２ down", "server <IP> down"),
        ("mixed ４111 1111 １111 1111 and 415-555-0132", "mixed <CARD> and <PHONE>"),
        # every stage matches the folded text, also after an earlier stage replaced something
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ， ＋４４ ２０ ７９４６ ０９５８， １．２．３．４", "<EMAIL>， <PHONE>， <IP>"),
        ("１．２．３．４ ４１１１ １１１１ １１１１ １１１１ ａ＠ｂ．ｃｏ ＋４４ ２０ ７９４６ ０９５８",
         "<IP> <CARD> <EMAIL> <PHONE>"),
    ],
)
def test_scrub_pii_catches_non_ascii_digits(raw, expected):
    assert scrub_pii(raw) == expected


@pytest.mark.parametrize("raw", [
    "order ４１１１ １１１１ １１１１ １１１２",  # fails Luhn: left exactly as written, full-width digits and all
    "Ｐｙｔｈｏｎ ３．１１．７ ２０２４－０１－３１",  # a version and a date in full-width forms
    "in ２０１９ ２０２０ ２０２１ we grew",
    "۱۲۳۴۵ is a number",
])
def test_scrub_pii_leaves_non_ascii_look_alikes_exactly_alone(raw):
    assert scrub_pii(raw) == raw


def test_fold_maps_one_character_to_one():
    fold = textmod._fold
    assert fold("！～\u3000٤४１") == "!~ 441"  # both ends of the full-width block, ideographic space, digits
    assert fold("\uff00\uff5f｟\u00b2①") == "\uff00\uff5f｟\u00b2①"  # just outside the block; not decimal digits
    assert fold("ab\u00e9") == "ab\u00e9" and fold("plain ascii") == "plain ascii"
    assert fold("٤٤") == "44" and fold("٤٤") == "44"  # the table caches what it saw, correctly
    assert textmod._FOLD[ord("٤")] == ord("4") and textmod._FOLD[ord("é")] == ord("é")


# ------------------------------------------------------------------ boundaries, one per decision


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+12345678", "+12345678"),              # 8 digits: too few
        ("+123456789", "<PHONE>"),               # 9: enough
        ("+123456789012345", "<PHONE>"),         # 15: the most
        ("+1234567890123456", "+1234567890123456"),  # 16 contiguous: not the pattern
        ("02 123 456", "02 123 456"),            # grouped, 8 digits
        ("020 123 456", "<PHONE>"),              # grouped, 9 digits
        ("+12 3456 123456 123", "<PHONE>"),      # grouped, 15 digits
        ("+12 3456 123456 1234", "+12 3456 123456 1234"),  # grouped, 16 digits
        ("(020) 123-456", "<PHONE>"),            # parentheses count as a leading area code
        ("020.7946.0958", "<PHONE>"),            # dotted, three groups
        ("012.345678", "012.345678"),            # dotted, two groups: a decimal even with a leading 0
        ("+44.20.7946.0958", "<PHONE>"),
        ("020-7946-0958-1", "020-7946-0958-1"),  # glued to a further -group
        ("020 7946 0958x", "020 7946 0958x"),    # glued to a letter
        ("+020 7946 0958", "<PHONE>"),
        ("a+44 20 7946 0958", "a+44 20 7946 0958"),  # glued to a letter before
        ("v415-555-0132", "v415-555-0132"),
        ("415-555-0132.5", "415-555-0132.5"),    # followed by a decimal part
        ("415-555-0132.", "<PHONE>."),            # a full stop is fine
    ],
)
def test_scrub_pii_phone_boundaries(raw, expected):
    assert scrub_pii(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("4111111111111", "4111111111111"),          # 13 digits failing Luhn
        ("4222222222222", "<CARD>"),                 # 13 digits passing Luhn
        ("4111111111111111111", "4111111111111111111"),  # 19 digits failing Luhn ...
        ("4111111111111111110", "<CARD>"),           # ... and passing
        ("41111111111111111113", "41111111111111111113"),  # 20 digits: too long, even if it passed
        ("422222222222", "422222222222"),            # 12 digits: too short
        ("4111 1111 1111 1111 1", "<CARD> 1"),     # a number after a card is a separate number
        ("4111 1111-1111 1111", "<PHONE> 1111"),  # mixed separators: no card (the phone pattern takes 3 groups)
        ("4111  1111 1111 1111", "4111  1111 1111 1111"),  # double space
        ("3782-822463-10005", "<CARD>"),             # Amex with hyphens
        ("3782 822463 10005x", "3782 822463 10005x"),
        ("x4111111111111111", "x4111111111111111"),
        ("4111111111111111-2", "4111111111111111-2"),
        ("-4111111111111111", "-4111111111111111"),
        ("4111 1111 1111 1111 ok", "<CARD> ok"),
        ("4111 1111 1111 11111", "4111 1111 1111 11111"),  # last group of 5 failing Luhn
        ("4111 1111 1111 1111111", "4111 1111 1111 1111111"),  # last group of 7 failing Luhn
        ("4111 1111 1111 1111110", "<CARD>"),                  # ... and passing
    ],
)
def test_scrub_pii_card_boundaries(raw, expected):
    assert scrub_pii(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("0.0.0.0", "<IP>"), ("249.250.199.100", "<IP>"), ("9.99.100.255", "<IP>"),
        ("1.2.3.256", "1.2.3.256"), ("1.2.3.260", "1.2.3.260"), ("1.2.300.4", "1.2.300.4"),
        ("1.2.3", "1.2.3"), ("1.2.3.4a", "1.2.3.4a"), ("a1.2.3.4", "a1.2.3.4"), (".1.2.3.4", ".1.2.3.4"),
        ("1.2.3.4.a", "1.2.3.4.a"), ("1.2.3.4. Next", "<IP>. Next"), ("1.2.3.4-5", "<IP>-5"),
        ("1.2.3.04", "1.2.3.04"),
    ],
)
def test_scrub_pii_ip_boundaries(raw, expected):
    assert scrub_pii(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a@b.co", "<EMAIL>"), ("a@b.c", "a@b.c"), ("a@b.c1", "a@b.c1"), ("a@b.com1", "a@b.com1"),
        ("jane@example.com.", "<EMAIL>."), ("jane@example.com.123", "<EMAIL>.123"),
        ("jane@example.com-x", "<EMAIL>-x"), ("x-y_z%w+v.u@sub-1.ex-ample.org", "<EMAIL>"),
        ("a.b@example.com", "<EMAIL>"), ("josé.garcía@example.com", "<EMAIL>"), ("张伟@example.cn", "<EMAIL>"),
        ("50%off@shop.example", "<EMAIL>"), ("%x@shop.example", "<EMAIL>"),
        ("x@@example.com", "x@@example.com"), ("jane@.example.com", "jane@.example.com"),
        ("4155550132@example.com", "<EMAIL>"),  # e-mail first: its digits are no phone number
        ("mail 192.168.0.1@example.com", "mail <EMAIL>"),
    ],
)
def test_scrub_pii_email_boundaries(raw, expected):
    assert scrub_pii(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a\u2029b\x0bc\x0cd\x85e", "a\nb\nc\nd\ne"),       # every line-break convention
        ("a\u2060b\u200ec\u200fd", "abcd"),                  # word joiner and direction marks go
        ("X marks\nthe spot X", "X marks\nthe spot X"),      # only spaces are stripped at line ends
        ("X \n X", "X\nX"),
        ("a\x1fb\x7fc", "abc"),
    ],
)
def test_normalize_more_examples(raw, expected):
    assert normalize(raw) == expected
