"""The redaction rules: one finder per kind, each a pattern narrowed by a check, so that a customer's order number,
phone number, date or amount is never mistaken for a card, an account or an identifier.

A false mask destroys the customer's question, so every rule trades recall for precision in the same way: the
shape alone is never enough. Numbers that carry their own check digit (cards: Luhn; IBANs: ISO 7064 mod 97; NHS
numbers: mod 11) must pass it; numbers without one (US SSNs, card security codes, medical record numbers) need
either an unmistakable layout (the dashed SSN) or a context word right before them.

A finder returns spans of the text it was given; masks never contain digits or letters of the value except the
last four of a card or an IBAN, so redacting redacted text finds nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BULLET = "\u2022"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    mask: str


Finder = Callable[[str], Iterator[Span]]


def _bullets(value: str, keep: int = 0) -> str:
    """Each letter and digit of `value` as a bullet, but the last `keep` of them; separators stay where they were."""
    alnum = [i for i, c in enumerate(value) if c.isalnum()]
    kept = set(alnum[len(alnum) - keep:]) if keep else set()
    return "".join(c if (i in kept or not c.isalnum()) else BULLET for i, c in enumerate(value))


# -- pan: payment card numbers --------------------------------------------------------------------------------
# A run of digit groups split by single spaces or dashes, starting where no word, digit, decimal point, slash or
# plus sign touches it. The card is the whole run, or the run without a last group of 1-4 digits that the customer
# typed after a space (an expiry or a security code: "4111 1111 1111 1111 12/27 123"); it is 13-19 digits, bare or
# in groups of 3-6, and what follows it is no word, slash or decimal part (so 1234.56, 2024/01/15, +44 phone
# numbers, a longer account number or an order id like ORD-4111111111111111 are not cards).
_DIGIT_RUN = re.compile(r"(?<![\w.,/+-])(?<!\d[ -])\d+(?:[ -]\d+)*")
_CARD_SHAPE = re.compile(r"\d{13,19}|\d{3,6}(?:[ -]\d{3,6}){1,5}")
_CARD_END = re.compile(r"(?![\w/-])(?![.,]\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _pan_mask(digits: str) -> str:
    """`•••• •••• •••• 1111`: bullets in groups of four for every digit but the last four, which stay."""
    hidden = BULLET * (len(digits) - 4)
    groups = [hidden[i:i + 4] for i in range(0, len(hidden), 4)]
    return " ".join([*groups, digits[-4:]])


def _card(value: str) -> str | None:
    """The card's digits, when `value` is shaped like a card number and passes its checks."""
    separators = {c for c in value if not c.isdigit()}
    digits = re.sub(r"\D", "", value)
    # One kind of separator (4111 1111-1111 1111 is a list of numbers, not a card); an IIN that card schemes issue
    # (2: Mastercard 2-series, 3: Amex/Diners/JCB, 4: Visa, 5: Mastercard, 6: Discover/UnionPay/Maestro), which
    # leaves out phone numbers in international form (+1.., +44.., 0..) and most reference numbers.
    if len(separators) > 1 or not 13 <= len(digits) <= 19 or not _CARD_SHAPE.fullmatch(value):
        return None
    if digits[0] not in "23456" or not luhn_valid(digits):
        return None
    return digits


def _card_ends(run: re.Match[str]) -> Iterator[int]:
    yield run.end()
    last = run.group().rfind(" ")
    if last > 0 and run.end() - (run.start() + last + 1) <= 4:
        yield run.start() + last


def find_pan(text: str) -> Iterator[Span]:
    for run in _DIGIT_RUN.finditer(text):
        for end in _card_ends(run):
            digits = _card(text[run.start():end])
            if digits is not None and _CARD_END.match(text, end):
                yield Span(run.start(), end, _pan_mask(digits))
                break


# -- iban ------------------------------------------------------------------------------------------------------
# Lengths by country (ISO 13616 registry): a candidate is read for exactly its country's length, so a word after
# the IBAN is never swallowed, and a country that issues no IBANs is not a candidate.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![\w])([A-Za-z]{2})(\d{2})(?=[ ]?[A-Za-z0-9])")
_IBAN_BODY = re.compile(r"[ ]?[A-Za-z0-9]")


def iban_valid(iban: str) -> bool:
    """ISO 7064 mod 97-10: the country code and check digits moved to the end, letters as 10..35, remainder 1."""
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved.upper())) % 97 == 1


def find_iban(text: str) -> Iterator[Span]:
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        pos, chars = m.end(), 4
        while chars < length and (b := _IBAN_BODY.match(text, pos)) is not None:
            pos, chars = b.end(), chars + 1
        if chars < length or (pos < len(text) and text[pos].isalnum()):
            continue
        value = text[m.start():pos]
        if iban_valid(re.sub(r"\s", "", value)):
            yield Span(m.start(), pos, _bullets(value, keep=4))


# -- context words ---------------------------------------------------------------------------------------------
# What may stand between a context word and its value: up to 15 characters of neither digits, a line break nor the
# end of a sentence ("CVV: 123", "security code is 123", "SSN # 123-45-6789"); so a value far from the word, or in
# the next sentence, is not taken.
_GAP = r"[^\d\n.?!]{0,15}?"


def _after(context: str, value: str) -> re.Pattern[str]:
    return re.compile(rf"(?i:\b(?:{context})\b){_GAP}(?<![\w])(?P<value>{value})(?![\w])(?![.,/-]\d)")


# -- us_ssn ----------------------------------------------------------------------------------------------------
_SSN_DASHED = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_SSN_CONTEXT = _after(r"ssn|ss\s?#|social\s+security(?:\s+(?:number|no|num|#))?", r"\d{3}[- ]?\d{2}[- ]?\d{4}")


def ssn_valid(digits: str) -> bool:
    """The SSA never issues area 000, 666 or 900-999, group 00 or serial 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def find_us_ssn(text: str) -> Iterator[Span]:
    for m in _SSN_DASHED.finditer(text):
        if ssn_valid("".join(m.groups())):
            yield Span(m.start(), m.end(), _bullets(m.group()))
    for m in _SSN_CONTEXT.finditer(text):
        value = m.group("value")
        if ssn_valid(re.sub(r"\D", "", value)):
            yield Span(m.start("value"), m.end("value"), _bullets(value))


# -- cvv -------------------------------------------------------------------------------------------------------
_CVV = _after(r"cvv2?|cvc2?|cid|csc|security\s+code|card\s+verification(?:\s+(?:code|value|number))?", r"\d{3,4}")
# Right after a card number, with or without its expiry between: what a customer pastes from the card itself.
_AFTER_CARD = re.compile(
    r"[ ,;]{1,3}(?:(?:0[1-9]|1[0-2]) ?/ ?(?:20)?\d{2}[ ,;]{1,3})?(?P<value>\d{3,4})(?![\w/-])(?![.,]\d)"
)


def find_cvv(text: str) -> Iterator[Span]:
    for m in _CVV.finditer(text):
        yield Span(m.start("value"), m.end("value"), _bullets(m.group("value")))
    for card in find_pan(text):
        if (after := _AFTER_CARD.match(text, card.end)) is not None:
            yield Span(after.start("value"), after.end("value"), _bullets(after.group("value")))


# -- nhs_number ------------------------------------------------------------------------------------------------
_NHS = _after(r"nhs(?:\s+(?:number|no|num|#))?", r"\d{3}[ -]?\d{3}[ -]?\d{4}")


def nhs_valid(digits: str) -> bool:
    """Modulus 11: weights 10..2 on the first nine digits; 11 - (sum mod 11) is the tenth (11 reads 0, 10 is never
    issued)."""
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1))) % 11
    return check != 10 and (check % 11) == int(digits[9])


def find_nhs_number(text: str) -> Iterator[Span]:
    for m in _NHS.finditer(text):
        value = m.group("value")
        if nhs_valid(re.sub(r"\D", "", value)):
            yield Span(m.start("value"), m.end("value"), _bullets(value))


# -- mrn -------------------------------------------------------------------------------------------------------
# Record numbers have no common format; an id of 6-12 letters and digits with at least one digit (so "patient ID
# please" keeps its words), right after the context word.
_MRN = _after(r"mrn|medical\s+record(?:\s+(?:number|no|num|#))?|patient\s+(?:id|number|no)|hospital\s+number",
              r"(?=[A-Za-z-]*\d)[A-Za-z0-9](?:-?[A-Za-z0-9]){5,11}")  # fmt: skip


def find_mrn(text: str) -> Iterator[Span]:
    for m in _MRN.finditer(text):
        yield Span(m.start("value"), m.end("value"), _bullets(m.group("value")))


# -- email (off by default) ------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}(?=@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b)")


def find_email(text: str) -> Iterator[Span]:
    """The local part only: the domain (which organisation) is what support usually needs."""
    for m in _EMAIL.finditer(text):
        yield Span(m.start(), m.end(), BULLET * 3)


# Every kind but email masks something with a digit in it: a message without one (most are) skips them all.
NEEDS_DIGIT = frozenset({"pan", "iban", "us_ssn", "cvv", "nhs_number", "mrn"})
DIGIT = re.compile(r"\d")

FINDERS: dict[str, Finder] = {
    "pan": find_pan, "iban": find_iban, "us_ssn": find_us_ssn, "cvv": find_cvv, "nhs_number": find_nhs_number,
    "mrn": find_mrn, "email": find_email,
}  # fmt: skip
