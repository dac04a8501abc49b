"""PII redaction for imported text: e-mail addresses, IBANs, payment cards and phone numbers.

Each match is replaced by a typed placeholder ([EMAIL], [IBAN], [CARD], [PHONE]) and counted.
What counts as a match, so that ordinary numbers (dates, prices, versions, order numbers) stay:

- EMAIL: ``local@domain.tld``.
- IBAN: two capital letters, two check digits and 11-30 letters or digits (contiguous or in
  groups of four), whose ISO 13616 mod-97 checksum is 1.
- CARD: 13-19 digits, optionally in groups split by spaces or hyphens, starting with a card network
  prefix (2-6) and passing the Luhn check.
- PHONE: digit groups split by spaces, dots, hyphens or parentheses, with 8-15 digits after a ``+``
  country code, or 9-15 digits in a parenthesised area code, or 9-12 digits with a leading
  trunk ``0``, or the North American 3-3-4 layout (optionally after a ``1``). Bare runs of digits
  without a leading ``+``, ``(`` or ``0`` are left alone: they are more often ids than phone
  numbers.
"""

import re
from collections import Counter

KINDS = ("EMAIL", "IBAN", "CARD", "PHONE")
PLACEHOLDER = {kind: f"[{kind}]" for kind in KINDS}

_EMAIL = re.compile(r"[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,24}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b")
_CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w])")
_PHONE = re.compile(
    r"(?<![\w+(])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,12}(?:[ .-]\d{1,12}){0,6}(?!\w)"
)
# Where a card, phone number or IBAN could be: eight or more digits and separators in a row.
_DIGIT_RUN = re.compile(r"\d[\d ().-]{7,}")
_DIGITS = "0123456789"
_NANP = re.compile(r"(?:1[ .-])?\d{3}[ .-]\d{3}[ .-]\d{4}")


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _card_ok(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


def _phone_ok(candidate: str) -> bool:
    digits = sum(char.isdigit() for char in candidate)
    if candidate.startswith("+"):
        return 8 <= digits <= 15
    if candidate.startswith("("):
        return 9 <= digits <= 15
    if candidate.startswith("0"):
        has_separator = any(char in " .-()" for char in candidate)
        return 9 <= digits <= 12 if has_separator else 10 <= digits <= 11
    return _NANP.fullmatch(candidate) is not None


class Redactor:
    """Replaces PII with placeholders and counts what it replaced, across all texts it is given."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        if not text:
            return text
        # Python's regex engine scans at ~40 MB/s, so find the few places worth a closer look with
        # C-speed string methods first, and run the patterns only around them.
        if "@" in text:
            text = self._redact_emails(text)
        if sum(text.count(digit) for digit in _DIGITS) >= 8:
            text = self._redact_numbers(text)
        return text

    def _redact_emails(self, text: str) -> str:
        pieces = []
        done = 0
        at = text.find("@")
        while at != -1:
            match = _EMAIL.search(text, max(done, at - 64), at + 1 + 63 * 9)
            if match is not None and match.start() < at < match.end():
                pieces += [text[done : match.start()], PLACEHOLDER["EMAIL"]]
                self.counts["EMAIL"] += 1
                done = match.end()
                at = text.find("@", done)
            else:
                at = text.find("@", at + 1)
        return "".join(pieces) + text[done:] if pieces else text

    def _redact_numbers(self, text: str) -> str:
        pieces = []
        done = 0
        for run in _DIGIT_RUN.finditer(text):
            if run.start() < done:
                continue
            # Widen to whole words: an IBAN starts with letters ("GB82 WEST 1234 ..."), a phone
            # number with "+" or "(".
            start = max(done, run.start() - 12)
            while start > done and not text[start - 1].isspace() and run.start() - start < 40:
                start -= 1
            end = run.end()
            while end < len(text) and not text[end].isspace() and end - run.end() < 40:
                end += 1
            window = text[start:end]
            redacted = _PHONE.sub(self._phone, _CARD.sub(self._card, _IBAN.sub(self._iban, window)))
            if redacted != window:
                pieces += [text[done:start], redacted]
                done = end
        return "".join(pieces) + text[done:] if pieces else text

    def summary(self) -> dict[str, int]:
        return {kind: self.counts[kind] for kind in KINDS}

    def _email(self, match: re.Match) -> str:
        self.counts["EMAIL"] += 1
        return PLACEHOLDER["EMAIL"]

    def _iban(self, match: re.Match) -> str:
        found = match.group()
        groups = found.split(" ")
        # The last group(s) may be a following word in capitals: keep the longest valid prefix.
        for end in range(len(groups), 0, -1):
            if iban_ok("".join(groups[:end])):
                self.counts["IBAN"] += 1
                rest = " ".join(groups[end:])
                return PLACEHOLDER["IBAN"] + (" " + rest if rest else "")
        return found

    def _card(self, match: re.Match) -> str:
        found = match.group()
        if _card_ok(found.replace(" ", "").replace("-", "")):
            self.counts["CARD"] += 1
            return PLACEHOLDER["CARD"]
        # A card number run together with neighbouring numbers: find the longest run of whole
        # groups that is a card, and keep the rest as it was.
        pieces = re.split(r"([ -])", found)
        groups, separators = pieces[0::2], pieces[1::2]
        best: tuple[int, int] | None = None
        for start in range(len(groups)):
            for end in range(len(groups), start, -1):
                if best is not None and end - start <= best[1] - best[0]:
                    break
                if _card_ok("".join(groups[start:end])):
                    best = (start, end)
                    break
        if best is None:
            return found
        self.counts["CARD"] += 1
        start, end = best
        before = "".join(g + s for g, s in zip(groups[:start], separators[:start], strict=True))
        after = "".join(s + g for s, g in zip(separators[end - 1 :], groups[end:], strict=True))
        return before + PLACEHOLDER["CARD"] + after

    def _phone(self, match: re.Match) -> str:
        found = match.group()
        if _phone_ok(found):
            self.counts["PHONE"] += 1
            return PLACEHOLDER["PHONE"]
        return found
