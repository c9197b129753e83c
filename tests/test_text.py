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
