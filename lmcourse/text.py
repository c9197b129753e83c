"""Text cleaning: Unicode normalisation and PII scrubbing.

`normalize` makes equivalent text byte-identical before tokenization; `scrub_pii` replaces
personal data with typed placeholders (<EMAIL>, <PHONE>, <IP>, <CARD>) before text goes
into a training set.

What counts as PII here (decisions, each pinned by a test):

- EMAIL: local@domain.tld; the local part is letters of any script, digits and . _ % + -,
  the domain ASCII, with a letters-only top-level domain of 2+ letters.
- CARD: 13-19 digits, either contiguous or in groups of four (last group 1-7) or 4-6-5
  (Amex), separated by one consistent space or hyphen, AND passing the Luhn checksum.
  Order numbers and ISBNs that fail Luhn are left alone; a random number that happens to
  pass Luhn is scrubbed (a false positive we accept: scrubbing too much is the safe side).
- IP: a dotted quad whose four parts are 0-255 without leading zeros, not glued to a longer
  dotted or alphanumeric sequence: "1.2.3.4.5", "v1.2.3.4", "01.02.03.04" and
  "256.1.1.1" are not addresses, but a bare "1.2.3.4" is (a 4-part version number is
  indistinguishable from an address, so it is scrubbed).
- PHONE: optional +country code, then an area part ("(digits)" or 2-5 digits) and one or
  two more groups (3-6 then 3-4 digits) separated by space, dot or hyphen, or "+" followed
  by 8-15 contiguous digits; 9-15 digits in total. Space-only numbers need a leading +,
  a leading 0 or parentheses, so "in 2019 2020 2021" stays; so do numbers of only two
  groups (07700 900123 is a phone number, the ZIP+4 code 94103-1234 and the invoice number
  2024-000123 are not); dotted ones need three groups (415.555.0132, not 123.456789). Dates (2024-01-31, 31.01.2024), times, prices
  ($1,299.00), versions, ISBNs and bare digit runs do not fit the pattern.

Digits of any script count: the patterns are matched against a folded copy of the text in
which every decimal digit (full-width "４", Arabic-Indic "٤", Devanagari "४", ...) reads as its
ASCII digit and the full-width forms U+FF01-U+FF5E ("＋", "（", "＠", "ａ") and the ideographic
space read as their ASCII twins, so "４１１１ １１１１ １１１１ １１１１" is a card. The fold maps
one character to one character, so the placeholders land on the same spans of the original text.

Every pattern runs in time linear in the length of the text (possessive quantifiers, and no
match may start inside a run of characters it could have started earlier), so hostile input
such as a megabyte of "%20" or of digits costs no more than ordinary prose; tests/test_text.py
checks this for each pattern.

Derived in chapters/02_tokenization.ipynb.
"""
from __future__ import annotations

import unicodedata

import regex

__all__ = ["normalize", "scrub_pii", "luhn_valid", "PLACEHOLDERS"]

PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP>", "card": "<CARD>"}

# Invisible format characters that carry no meaning in running text. ZWJ/ZWNJ (U+200C/D)
# are kept: they build emoji sequences and matter in some scripts.
_INVISIBLE = {"\u00ad", "\u200b", "\u2060", "\ufeff", "\u200e", "\u200f"}
_LINE_BREAKS = regex.compile(r"\r\n|[\r\u2028\u2029\x0b\x0c\x85]")
_HSPACE = regex.compile(r"[^\S\n]++")  # any whitespace except newline
_MANY_NEWLINES = regex.compile(r"\n{3,}+")


def normalize(text: str) -> str:
    """Unicode NFKC, unified line breaks, control characters removed, whitespace collapsed.

    Steps: every line-break convention (\\r\\n, \\r, U+2028, ...) becomes \\n; NFKC folds
    compatibility forms (full-width letters, ligatures, non-breaking spaces, superscripts);
    tabs become spaces; other control characters (Unicode category Cc) and invisible format
    characters (zero-width space, BOM, soft hyphen) are removed; runs of spaces collapse to
    one, spaces at line ends go, at most one blank line is kept between paragraphs, and the
    whole text is stripped. Idempotent: normalize(normalize(s)) == normalize(s).
    Derived in chapters/02_tokenization.ipynb.
    """
    if not isinstance(text, str):
        raise ValueError(f"normalize expects a str, got {type(text).__name__}")
    text = _LINE_BREAKS.sub("\n", text)
    text = unicodedata.normalize("NFKC", text)  # creates no line break (checked over every code point)
    text = "".join(
        " " if ch == "\t" else ch
        for ch in text
        if ch in "\n\t" or (unicodedata.category(ch) != "Cc" and ch not in _INVISIBLE)
    )
    text = _HSPACE.sub(" ", text)
    text = "\n".join(line.strip(" ") for line in text.split("\n"))
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def luhn_valid(digits: str) -> bool:
    """True if the digit string passes the Luhn checksum used by payment cards.

    From the right, double every second digit, subtract 9 from results above 9, and the
    total must be a multiple of 10. Decimal digits of any script count ("４" and "٤" are 4);
    anything else, superscripts such as "²" included, raises ValueError.
    Derived in chapters/02_tokenization.ipynb.
    """
    if not isinstance(digits, str) or not digits or not digits.isdecimal():
        raise ValueError(f"luhn_valid expects a non-empty string of digits, got {digits!r}")
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = unicodedata.decimal(ch)
        if i % 2 == 1:
            d = 2 * d - 9 if d > 4 else 2 * d
        total += d
    return total % 10 == 0


class _Fold(dict):
    """str.translate table, filled on first sight of each character: decimal digits of every
    script -> ASCII digits, full-width forms and the ideographic space -> ASCII; others unchanged."""

    def __missing__(self, cp: int) -> int:
        if 0xFF01 <= cp <= 0xFF5E:
            out = cp - 0xFEE0
        elif cp == 0x3000:
            out = 0x20
        else:
            d = unicodedata.decimal(chr(cp), None)
            out = cp if d is None else 48 + d
        self[cp] = out
        return out


_FOLD = _Fold()


_FOLDABLE = regex.compile(r"[\uff01-\uff5e\u3000]|(?![0-9])\d")


def _fold(text: str) -> str:
    """`text` with the same length, every character read as `_Fold` says (`text` itself if none changes)."""
    return text.translate(_FOLD) if not text.isascii() and _FOLDABLE.search(text) else text


# A match may not start right after a character the pattern could have started with: inside a
# run, the run's start was tried already, so each run is scanned once (linear time).
_EMAIL = regex.compile(
    r"(?<![\w.%+-])[\w.%+-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)*\.[A-Za-z]{2,}+\b"
)
_CARD = regex.compile(
    r"(?<![\w-])(?:"
    r"\d{13,19}"
    r"|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}"
    r"|\d{4}([ -])\d{6}\2\d{5}"
    r")(?![\w-])"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IP = regex.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\w)")
_PHONE = regex.compile(
    r"(?<![\w+.-])(?:"
    r"(?P<cc>\+\d{1,3}[ .-]?)?"
    r"(?:(?P<paren>\(\d{1,5}\))[ .-]?|(?P<area>\d{2,5})[ .-])"
    r"\d{3,6}(?:[ .-]\d{3,4})?"
    r"|\+\d{8,15}"
    r")(?![\w-]|\.\d)"
)
_NON_DIGIT = regex.compile(r"\D")
_SEPARATOR = regex.compile(r"[ .-]")


def _card(m: regex.Match) -> str:
    digits = _NON_DIGIT.sub("", m.group(0))
    return PLACEHOLDERS["card"] if luhn_valid(digits) else m.group(0)


def _phone(m: regex.Match) -> str:
    s = m.group(0)
    digits = _NON_DIGIT.sub("", s)
    if not 9 <= len(digits) <= 15:
        return s
    if m.group("area") is not None and not m.group("cc"):
        seps = _SEPARATOR.findall(s)
        if set(seps) == {" "} and not s.startswith("0"):
            return s  # "2019 2020 2021": space-separated groups need +, 0 or ( to count
        if len(seps) == 1 and not s.startswith("0"):
            return s  # two groups: "94103-1234" is a ZIP+4 code, "07700 900123" a phone number
        if set(seps) == {"."} and len(seps) < 2:
            return s  # "123.456789" is a decimal number, 415.555.0132 is a phone number
    return PLACEHOLDERS["phone"]


def _sub(pattern: regex.Pattern, repl, text: str, folded: str) -> tuple[str, str]:
    """pattern.sub(repl, ...) matched against `folded` (= _fold(text)), with each replacement made
    in both `text` and `folded` (a match that `repl` returns unchanged keeps the original)."""
    if folded is text:
        text = pattern.sub(repl, text)
        return text, text
    out, out_folded, last = [], [], 0
    for m in pattern.finditer(folded):
        new = repl if isinstance(repl, str) else repl(m)
        if new != m.group(0):
            out += [text[last:m.start()], new]
            out_folded += [folded[last:m.start()], new]
            last = m.end()
    return "".join(out) + text[last:], "".join(out_folded) + folded[last:]


def scrub_pii(text: str) -> str:
    """Replace e-mail addresses, card numbers, IPv4 addresses and phone numbers by placeholders.

    Applied in that order (so digits inside an e-mail are never read as a phone number);
    see the module docstring for exactly what matches and what is deliberately left alone.
    Derived in chapters/02_tokenization.ipynb.
    """
    if not isinstance(text, str):
        raise ValueError(f"scrub_pii expects a str, got {type(text).__name__}")
    folded = _fold(text)  # placeholders are ASCII, so folding commutes with each replacement
    text, folded = _sub(_EMAIL, PLACEHOLDERS["email"], text, folded)
    text, folded = _sub(_CARD, _card, text, folded)
    text, folded = _sub(_IP, PLACEHOLDERS["ip"], text, folded)
    text, folded = _sub(_PHONE, _phone, text, folded)
    return text
