"""The redaction rules on their own: each kind's positives, the near misses that must stay as typed (a false mask
destroys the customer's question), the findings' offsets in the original text, and idempotence."""

from __future__ import annotations

import pytest

from appliance.errors import ConfigError
from appliance.redaction import BULLET, DEFAULT_KINDS, KINDS, Redactor, redact
from appliance.redaction.rules import iban_valid, luhn_valid, nhs_valid, ssn_valid

B = BULLET

MASKED = [
    ("pan", "my card is 4111 1111 1111 1111 thanks", f"my card is {B * 4} {B * 4} {B * 4} 1111 thanks"),
    ("pan", "4111111111111111", f"{B * 4} {B * 4} {B * 4} 1111"),
    ("pan", "card 4111-1111-1111-1111.", f"card {B * 4} {B * 4} {B * 4} 1111."),
    ("pan", "mastercard 5555555555554444, expired", f"mastercard {B * 4} {B * 4} {B * 4} 4444, expired"),
    ("pan", "2-series 2223003122003222", f"2-series {B * 4} {B * 4} {B * 4} 3222"),
    ("pan", "amex 3782 822463 10005", f"amex {B * 4} {B * 4} {B * 3} 0005"),
    ("pan", "discover 6011111111111117", f"discover {B * 4} {B * 4} {B * 4} 1117"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 please", f"IBAN {B * 4} {B * 4} {B * 4} {B * 4} {B * 2}30 00 please"),
    ("iban", "GB82WEST12345698765432", f"{B * 18}5432"),
    ("iban", "to gb82 west 1234 5698 7654 32 today", f"to {B * 4} {B * 4} {B * 4} {B * 4} {B * 2}54 32 today"),
    ("us_ssn", "ssn 123-45-6789", f"ssn {B * 3}-{B * 2}-{B * 4}"),
    ("us_ssn", "my social security number is 123456789", f"my social security number is {B * 9}"),
    ("us_ssn", "SSN: 123 45 6789", f"SSN: {B * 3} {B * 2} {B * 4}"),
    ("cvv", "the CVV is 123", f"the CVV is {B * 3}"),
    ("cvv", "security code: 1234", f"security code: {B * 4}"),
    ("cvv", "CVC2 987 ok", f"CVC2 {B * 3} ok"),
    ("pan cvv", "4111 1111 1111 1111 12/27 123", f"{B * 4} {B * 4} {B * 4} 1111 12/27 {B * 3}"),
    ("pan cvv", "card 4111111111111111, 737 thanks", f"card {B * 4} {B * 4} {B * 4} 1111, {B * 3} thanks"),
    ("pan", "4111111111111111 exp 12/27", f"{B * 4} {B * 4} {B * 4} 1111 exp 12/27"),
    ("nhs_number", "my NHS number is 943 476 5919", f"my NHS number is {B * 3} {B * 3} {B * 4}"),
    ("nhs_number", "NHS no 9434765919", f"NHS no {B * 10}"),
    ("mrn", "MRN: A1234567", f"MRN: {B * 8}"),
    ("mrn", "medical record number 00123456 please", f"medical record number {B * 8} please"),
    ("mrn", "patient ID is HX-99812", f"patient ID is {B * 2}-{B * 5}"),
]

KEPT = [
    "card 4111 1111 1111 1112",  # Luhn-invalid
    "4111111111111112",
    "order 1234567890123 has not arrived",  # Luhn-invalid order number
    "order ORD-4111111111111111",  # glued to a word: an order id, not a card
    "ref 8111111111111111",  # Luhn-valid, but no card scheme issues 8
    "ref 0000000000000000",
    "4111 1111-1111 1111",  # mixed separators: a list of numbers
    "4111-1111-1111-1111-2027",  # a dashed reference with a fifth group
    "4111 1111 1111 1111 12345",  # a longer number, not a card and five digits
    "1234 5678 9012 3456 7890",
    "account 41111111111111111111",  # 20 digits: longer than any card
    "4111111111111111.50",  # an amount
    "call me on +44 20 7946 0958 or 020 7946 0958",
    "mobile +4111111111111111",  # Luhn-valid after a plus sign: a phone number
    "call 555-123-4567 or (555) 123-4567",
    "call the support line on 555-0199 [2].",  # Luhn-valid, but seven digits
    "codes 4111 1111 and 2222 4444",
    "I was charged 1234.56 and 1,234.56 twice",
    "on 2024-01-15, 15/01/2024 and 01.15.2024",
    "tracking 1Z999AA10123456784 and 9400 1000 0000 0000 0000 00",
    "IBAN DE89 3704 0044 0532 0130 01",  # wrong check digits
    "XX89 3704 0044 0532 0130 00",  # no such country
    "DE89 3704 0044 0532 0130",  # too short for DE
    "123456789 is my reference",  # 9 digits without context
    "my member number 123-45-6789X",
    "ssn 666-12-3456, 000-12-3456, 912-34-5678, 123-00-4567, 123-45-0000",  # never issued
    "cvv",  # the word alone
    "I typed 123 into the box",  # 3 digits without context
    "my CVV was rejected 3 times",
    "security code 123456",  # a 6-digit one-time code, not a card's
    "what is a CVV? 123 tries",  # the next sentence
    "NHS 943 476 5918",  # fails mod 11
    "943 476 5919",  # no context word
    "patient ID please, I lost it",  # no digit: words stay
    "MRN 12345",  # too short
    "email me at jane.doe@example.com",  # emails are off by default
]


@pytest.mark.parametrize("kind, text, expected", MASKED)
def test_each_kind_is_masked(kind: str, text: str, expected: str) -> None:
    got = redact(text)
    assert got.text == expected
    assert [f.kind for f in got.findings] == kind.split()


@pytest.mark.parametrize("text", KEPT)
def test_near_misses_stay_as_typed(text: str) -> None:
    got = redact(text)
    assert (got.text, got.findings) == (text, ())


def test_findings_are_spans_of_the_original_text_and_never_values() -> None:
    text = "Card 4111 1111 1111 1111, CVV 123, SSN 123-45-6789, IBAN GB82 WEST 1234 5698 7654 32."
    got = redact(text)
    spans = {f.kind: text[f.start:f.end] for f in got.findings}
    assert spans == {"pan": "4111 1111 1111 1111", "cvv": "123", "us_ssn": "123-45-6789",
                     "iban": "GB82 WEST 1234 5698 7654 32"}  # fmt: skip
    assert got.counts() == {"pan": 1, "iban": 1, "us_ssn": 1, "cvv": 1}
    assert all(set(vars(f)) == {"kind", "start", "end"} for f in got.findings)
    assert got.text == (f"Card {B * 4} {B * 4} {B * 4} 1111, CVV {B * 3}, SSN {B * 3}-{B * 2}-{B * 4},"
                        f" IBAN {B * 4} {B * 4} {B * 4} {B * 4} {B * 2}54 32.")  # fmt: skip


@pytest.mark.parametrize("text", [t for _, t, _ in MASKED] + ["Card 4111 1111 1111 1111 CVV 123 and 4012888888881881"])
def test_redacting_redacted_text_changes_nothing(text: str) -> None:
    once = redact(text, KINDS)
    twice = redact(once.text, KINDS)
    assert (twice.text, twice.findings) == (once.text, ())


def test_several_cards_in_one_message_are_each_found() -> None:
    got = redact("old 4111111111111111 new 4012888888881881")
    assert got.counts() == {"pan": 2} and got.text.count("1111") == 1 and got.text.endswith("1881")


def test_the_kinds_are_chosen_and_checked() -> None:
    assert DEFAULT_KINDS == ("pan", "iban", "us_ssn", "cvv", "nhs_number", "mrn")
    assert Redactor.of([]).redact("card 4111111111111111").findings == ()
    only_cards = Redactor.of(["pan"]).redact("card 4111111111111111 ssn 123-45-6789")
    assert [f.kind for f in only_cards.findings] == ["pan"] and "123-45-6789" in only_cards.text
    assert redact("mail jane.doe@example.com", ["email"]).text == f"mail {B * 3}@example.com"
    with pytest.raises(ConfigError, match="unknown kind phone"):
        Redactor.of(["pan", "phone"])


def test_the_checks() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE88370400440532013000")
    assert ssn_valid("123456789") and not ssn_valid("666123456") and not ssn_valid("900123456")
    assert nhs_valid("9434765919") and not nhs_valid("9434765918")
