"""Masking of self-identifying text (a system's or vendor's name) before it is shown to reviewers.

Patterns are regular expressions, matched case-insensitively; the stored original is never changed.
"""

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from django.core.exceptions import ValidationError

MASK = "[masked]"
MAX_PATTERN_LENGTH = 500

# Phrases first: the longest match wins where patterns overlap, so the whole sentence goes.
VENDOR_PATTERNS: tuple[str, ...] = (
    r"As an AI(?: language model| assistant| model)?,? (?:developed|trained|created|built|made)"
    r" by [\w.-]+(?: \w+)?",
    r"\bI(?:'m| am) (?:an AI|a language model|a large language model)"
    r" (?:developed|trained|created|built|made) by [\w.-]+",
    r"\bOpenAI\b",
    r"\bAnthropic\b",
    r"\bChatGPT\b",
    r"\bGPT-?[345](?:\.\d)?(?:o|-?turbo|-?mini)?\b",
    r"\bClaude\b",
    r"\bGemini\b",
    r"\bBard\b",
    r"\bGoogle(?: DeepMind)?\b",
    r"\bDeepMind\b",
    r"\bMeta AI\b",
    r"\bLlama\b",
    r"\bMistral(?: AI)?\b",
    r"\bMixtral\b",
    r"\bCohere\b",
    r"\bDeepSeek\b",
    r"\bQwen\b",
    r"\bMicrosoft Copilot\b",
)


def system_name_pattern(name: str) -> str:
    """A pattern matching a system's name as a whole word (even one ending in punctuation)."""
    return rf"(?<!\w){re.escape(name.strip())}(?!\w)"


def default_mask_patterns(system_names: Iterable[str]) -> list[str]:
    """The compared systems' own names, then the vendor phrases and names."""
    names = [system_name_pattern(name) for name in system_names if name.strip()]
    return list(dict.fromkeys([*names, *VENDOR_PATTERNS]))


def validate_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns stripped, without blanks or duplicates; ValidationError lists each bad one."""
    cleaned = list(dict.fromkeys(p.strip() for p in patterns if p and p.strip()))
    errors = []
    for pattern in cleaned:
        if len(pattern) > MAX_PATTERN_LENGTH:
            errors.append(f"{pattern[:40]}…: longer than {MAX_PATTERN_LENGTH} characters")
            continue
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            errors.append(f"{pattern}: not a valid regular expression ({exc})")
            continue
        if compiled.search("") is not None:
            errors.append(f"{pattern}: matches empty text, so it would mask everything")
    if errors:
        raise ValidationError(errors, code="invalid_pattern")
    return cleaned


@lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def mask_text(text: str, patterns: Sequence[str]) -> str:
    """Replace every match of any pattern with "[masked]" (overlapping matches merge into one)."""
    if not text or not patterns:
        return text
    # Matches are found on the original text, pattern by pattern, so one pattern cannot match
    # inside another's replacement, and numbered groups in a pattern mean what they say.
    spans = sorted(
        match.span()
        for regex in _compile(tuple(patterns))
        for match in regex.finditer(text)
        if match.end() > match.start()
    )
    if not spans:
        return text
    pieces, cursor, start, end = [], 0, *spans[0]
    for s, e in spans[1:]:
        if s <= end:
            end = max(end, e)
            continue
        pieces += [text[cursor:start], MASK]
        cursor, start, end = end, s, e
    pieces += [text[cursor:start], MASK, text[end:]]
    return "".join(pieces)
