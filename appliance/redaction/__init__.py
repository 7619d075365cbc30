"""Redaction: payment card numbers, IBANs and health or national identifiers masked in a message before it is
stored, scored, answered or sent anywhere (PCI DSS 3.3/3.4, HIPAA minimum necessary).

`Redactor(kinds).redact(text)` returns the masked text and its findings: the kind and the span in the original
text, never the value. The kinds and why each rule is as narrow as it is are in `rules.py` and
docs/compliance.md. Which kinds run is the installation's setting `redact_kinds`; an unknown kind stops the
installation from opening.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from appliance.errors import ConfigError
from appliance.redaction.rules import BULLET, DIGIT, FINDERS, NEEDS_DIGIT, Span

KINDS = tuple(FINDERS)
DEFAULT_KINDS = ("pan", "iban", "us_ssn", "cvv", "nhs_number", "mrn")

__all__ = ["BULLET", "DEFAULT_KINDS", "KINDS", "Finding", "Redacted", "Redactor", "redact"]


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int  # in the original text
    end: int


@dataclass(frozen=True)
class Redacted:
    text: str
    findings: tuple[Finding, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.findings)

    def counts(self) -> dict[str, int]:
        """Findings per kind, in the order of KINDS (what is stored with the message and audited)."""
        got = Counter(f.kind for f in self.findings)
        return {kind: got[kind] for kind in KINDS if got[kind]}


@dataclass(frozen=True)
class Redactor:
    kinds: tuple[str, ...] = field(default=DEFAULT_KINDS)

    @classmethod
    def of(cls, kinds: Iterable[str]) -> Redactor:
        """The redactor for these kinds (an empty list turns redaction off); ConfigError names an unknown kind."""
        chosen = tuple(dict.fromkeys(k.strip() for k in kinds if k.strip()))
        unknown = [k for k in chosen if k not in FINDERS]
        if unknown:
            raise ConfigError(f"bad setting redact_kinds: unknown kind {', '.join(unknown)}; "
                              f"the kinds are {', '.join(KINDS)}")  # fmt: skip
        return cls(chosen)

    def redact(self, text: str) -> Redacted:
        spans: list[tuple[Span, str]] = []
        digits = DIGIT.search(text) is not None
        for kind in self.kinds:
            if kind in NEEDS_DIGIT and not digits:
                continue
            spans.extend((span, kind) for span in FINDERS[kind](text))
        # Overlaps (a CVV rule seeing the end of a card number): the earliest span wins, then the longest, then
        # the kind listed first.
        spans.sort(key=lambda s: (s[0].start, -(s[0].end - s[0].start), KINDS.index(s[1])))
        kept: list[tuple[Span, str]] = []
        for span, kind in spans:
            if not kept or span.start >= kept[-1][0].end:
                kept.append((span, kind))
        if not kept:
            return Redacted(text)
        pieces, pos = [], 0
        for span, _ in kept:
            pieces += [text[pos:span.start], span.mask]
            pos = span.end
        pieces.append(text[pos:])
        return Redacted("".join(pieces), tuple(Finding(kind, s.start, s.end) for s, kind in kept))


def redact(text: str, kinds: Iterable[str] = DEFAULT_KINDS) -> Redacted:
    return Redactor.of(kinds).redact(text)
