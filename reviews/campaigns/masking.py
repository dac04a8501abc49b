"""Masking of self-identifying text (a system's or vendor's name) in what a reviewer reads.

Patterns are RE2 regular expressions (google-re2): matching takes time linear in the text whatever
a lead types, so no pattern can pin a CPU (with Python's re, ``(a+)+$`` against 22 a's and a b
takes 0.24 s, doubling with every further a: some 17 hours for 40). RE2 has no look-arounds or
back-references; ``\\b`` is an ASCII word boundary. Patterns match ignoring case, against a
normalised form of the text (``fold``: NFKC, marks and default-ignorable characters removed,
dashes and look-alike letters folded), and what matched is replaced in the original text, which
is shown unchanged wherever nothing matched.

``mask_html`` masks rendered, sanitised HTML: the text a reader sees across inline markup
(``Clau<em>de</em>``) and the attribute values a browser shows (title, alt, href), entities
decoded. The stored original is never changed.
"""

import html
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache

import re2
from django.core.exceptions import ValidationError
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger(__name__)

MASK = "[masked]"
MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 300

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

# ---------------------------------------------------------------------------------------------
# The normalised form

# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties.txt): drawn as nothing, so they
# can split a name without a reader seeing it (soft hyphen, U+034F, U+180E, tags U+E0000-E0FFF).
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip  (U+2800, the blank Braille cell, is not in the property but shows as nothing)
# Characters that fold to themselves: printable ASCII and the usual whitespace.
_NOT_PLAIN = re.compile(r"[^\t\n\r\x20-\x7e]")


def _ignorable(ch: str) -> bool:
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in _IGNORABLE_RANGES):
        return True
    return unicodedata.category(ch) in ("Cc", "Cf", "Mn", "Me") and ch not in "\t\n\r"


@cache
def _homoglyphs() -> dict[str, str]:
    """Non-ASCII letters that look like one ASCII letter or digit, from Unicode's confusables.txt
    (as shipped by confusable-homoglyphs). Loaded the first time a character folds to something
    outside ASCII (a typographic quote is enough): ~0.15 s, once per process."""
    from confusable_homoglyphs.utils import load

    table = {}
    for char, glyphs in load("confusables.json").items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_alnum = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii()]
        ascii_alnum = [c for c in ascii_alnum if c.isalnum()]
        if ascii_alnum:
            # A letter over a digit, of the same case where there is a choice.
            best = min(ascii_alnum, key=lambda c: (not c.isalpha(), c.isupper() != char.isupper()))
            # confusables.txt folds capital I itself to l: Greek capital iota reads as I.
            table[char] = "I" if best == "l" and char.isupper() else best
    return table


def _fold_char_uncached(ch: str) -> str:
    if _ignorable(ch):
        return ""
    category = unicodedata.category(ch)
    if category == "Pd" or ch == "\u2212":  # every dash (U+2011 non-breaking hyphen) and minus
        return "-"
    if category in ("Zs", "Zl", "Zp"):
        return " "
    # NFKD, then marks dropped (é -> e, fullwidth and mathematical letters -> ASCII), then NFC
    # so that scripts built from parts (Hangul) come back whole.
    decomposed = [
        "-" if unicodedata.category(d) == "Pd" else d
        for d in unicodedata.normalize("NFKD", ch)
        if not _ignorable(d)
    ]
    out = unicodedata.normalize("NFC", "".join(decomposed))
    if out.isascii():
        return out
    table = _homoglyphs()
    return "".join(table.get(c, c) for c in out)


class _FoldTable(dict):
    def __missing__(self, ch: str) -> str:
        folded = self[ch] = _fold_char_uncached(ch)
        return folded


_FOLDED = _FoldTable()


def _fold_match(match: re.Match[str]) -> str:
    return _FOLDED[match.group()]


def fold(text: str) -> str:
    """The normalised form patterns are matched against (case is left to the matcher)."""
    return _NOT_PLAIN.sub(_fold_match, text)


def _positions(text: str) -> list[int]:
    """For each character of ``fold(text)``, the index of the character of ``text`` it came from."""
    positions: list[int] = []
    last = 0
    for match in _NOT_PLAIN.finditer(text):
        i = match.start()
        positions.extend(range(last, i))
        positions.extend([i] * len(_FOLDED[match.group()]))
        last = i + 1
    positions.extend(range(last, len(text)))
    return positions


# ---------------------------------------------------------------------------------------------
# Patterns

_SEPARATORS = re.compile(r"[\s._-]+")
_OPTIONS = re2.Options()
_OPTIONS.case_sensitive = False
_OPTIONS.max_mem = 8 << 20  # RE2's own default, stated: a pattern needing more fails to compile
_OPTIONS.log_errors = False  # a refused pattern is reported to the lead, not to stderr


_ASCII_WORD = re.compile(r"[A-Za-z0-9_]")


@lru_cache(maxsize=1024)
def system_name_pattern(name: str) -> str:
    """A pattern matching a system's name as a whole word, spelt with any separators:
    nova-chat-2, "nova chat 2", nova_chat_2 and novachat2 alike."""
    parts = [re2.escape(p) for p in _SEPARATORS.split(fold(name.strip())) if p]
    if not parts:
        return ""
    body = r"[\s._-]*".join(parts)
    # \b in RE2 counts _ as a letter: item ids such as nova_chat_2_0001 need it as a separator.
    head = r"(?:\b|_)" if _ASCII_WORD.match(parts[0][0]) else ""
    tail = r"(?:\b|_)" if _ASCII_WORD.match(parts[-1][-1]) else ""
    return f"{head}{body}{tail}"


def default_mask_patterns(system_names: Iterable[str]) -> list[str]:
    """The compared systems' own names, then the vendor phrases and names."""
    names = [system_name_pattern(name) for name in system_names if name.strip()]
    return list(dict.fromkeys([*filter(None, names), *VENDOR_PATTERNS]))


_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\\[1-9]")


def _pattern_error(pattern: str) -> str | None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"{pattern[:40]}…: longer than {MAX_PATTERN_LENGTH} characters"
    if _UNSUPPORTED.search(pattern):
        return (
            f"{pattern}: look-arounds such as (?<!…) and back-references such as \\1 are not "
            "supported (patterns must run in linear time); use \\b for a word boundary"
        )
    try:
        compiled = re2.compile(fold(pattern), _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return f"{pattern}: not a valid regular expression ({reason})"
    if compiled.search("") is not None:
        return f"{pattern}: matches empty text, so it would mask everything"
    return None


def validate_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns stripped, without blanks or duplicates; ValidationError lists each bad one
    (too long, too many, not RE2 syntax, or matching empty text)."""
    cleaned = list(dict.fromkeys(p.strip() for p in patterns if p and p.strip()))
    errors = [error for error in map(_pattern_error, cleaned) if error]
    if len(cleaned) > MAX_PATTERNS:
        errors.append(f"{len(cleaned)} patterns: at most {MAX_PATTERNS} are allowed")
    if errors:
        raise ValidationError(errors, code="invalid_pattern")
    return cleaned


_LEGACY_NAME = re.compile(r"^\(\?<!\\w\)(.+)\(\?!\\w\)$")


def upgrade_pattern(pattern: str) -> str:
    """A system name stored as (?<!\\w)name(?!\\w) (Python re, before RE2) in today's form;
    any other pattern unchanged."""
    legacy = _LEGACY_NAME.match(pattern)
    if legacy is None:
        return pattern
    return system_name_pattern(re.sub(r"\\(.)", r"\1", legacy[1])) or pattern


def _usable(pattern: str) -> str:
    """A stored pattern as RE2 runs it. Campaigns created before RE2 stored system names as
    (?<!\\w)name(?!\\w); anything else RE2 refuses is matched as literal text, never dropped."""
    try:
        re2.compile(fold(pattern), _OPTIONS)
    except re2.error:
        pass
    else:
        return fold(pattern)
    upgraded = upgrade_pattern(pattern)
    if upgraded != pattern:
        return fold(upgraded)
    logger.warning("mask pattern %r is not valid RE2; matching it as literal text", pattern)
    return re2.escape(fold(pattern))


class Masker:
    """Compiled patterns; ``text`` masks plain text, ``html`` masks rendered HTML."""

    def __init__(self, patterns: Sequence[str]) -> None:
        usable = [p for p in dict.fromkeys(map(_usable, patterns)) if p]
        self._regexes = [re2.compile(p, _OPTIONS) for p in usable]
        self._set = None
        if usable:
            # One pass over the text says which patterns match at all (usually none).
            self._set = re2.Set.SearchSet(_OPTIONS)
            for p in usable:
                self._set.Add(p)
            self._set.Compile()

    def matches(self, text: str) -> bool:
        """Whether anything in ``text`` would be masked."""
        return self._set is not None and bool(text) and bool(self._set.Match(fold(text)))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where to mask in ``text``: merged (start, end) spans in its own characters."""
        if self._set is None or not text:
            return []
        folded = fold(text)
        hits = self._set.Match(folded)
        if not hits:
            return []
        found = sorted(
            m.span() for i in hits for m in self._regexes[i].finditer(folded) if m.end() > m.start()
        )
        if not found:
            return []
        positions = None if folded == text else _positions(text)
        spans: list[tuple[int, int]] = []
        for start, end in found:
            if positions is not None:
                start, end = positions[start], positions[end - 1] + 1
                # Marks and invisible characters right after the name go with it.
                while end < len(text) and not _FOLDED[text[end]]:
                    end += 1
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        return spans

    def text(self, text: str) -> str:
        """Every match of any pattern replaced with "[masked]"."""
        spans = self.spans(text)
        if not spans:
            return text
        pieces, cursor = [], 0
        for start, end in spans:
            pieces += [text[cursor:start], MASK]
            cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)

    def html(self, markup: str) -> SafeString:
        """Sanitised HTML (nh3's output) with what a reader sees masked: text across inline
        elements and the title, alt and href values. Untouched parts are returned byte for byte."""
        if self._set is None or not markup:
            return mark_safe(markup)  # noqa: S308 - the caller's sanitised HTML, unchanged
        return mark_safe(_mask_markup(markup, self))  # noqa: S308 - text re-escaped below


@lru_cache(maxsize=128)
def _masker(patterns: tuple[str, ...]) -> Masker:
    return Masker(patterns)


def masker(patterns: Sequence[str]) -> Masker:
    """The compiled masker for these patterns (cached: compiling costs ~0.1 ms a pattern)."""
    return _masker(tuple(patterns))


def mask_text(text: str, patterns: Sequence[str]) -> str:
    """Replace every match of any pattern with "[masked]" (overlapping matches merge into one)."""
    if not text or not patterns:
        return text
    return masker(patterns).text(text)


def mask_html(markup: str, patterns: Sequence[str]) -> SafeString:
    """``Masker.html`` for these patterns."""
    return masker(patterns).html(markup)


# ---------------------------------------------------------------------------------------------
# Rendered HTML

# A tag as nh3 serialises it: attribute values always in double quotes, where ">" may appear.
_TAG = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:"[^"]*"|[^">])*)>')
_SHOWN_ATTRIBUTE = re.compile(r'\b(title|alt|href|aria-label)="([^"]*)"')
# Elements that end a run of text as a reader sees it (anything else is inline: em, code, a...).
_BLOCKS = frozenset(
    {
        "p", "br", "hr", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
        "pre", "blockquote", "table", "thead", "tbody", "tr", "th", "td", "div",
    }
)  # fmt: skip


def _mask_attribute(match: re.Match[str], masker: Masker) -> str:
    value = html.unescape(match[2])
    masked = masker.text(value)
    if masked == value:
        return match[0]
    return f'{match[1]}="{html.escape(masked, quote=True)}"'


_BLOCK_TAG = re.compile(
    r'</?(?:p|h[1-6]|[uo]l|li|pre|blockquote|t[rdh]|thead|tbody|table|br|hr|div)\b(?:"[^"]*"|[^">])*>'
)
_TAG_WITH_ATTRIBUTES = re.compile(r'<[a-zA-Z][a-zA-Z0-9]*\s(?:"[^"]*"|[^">])*>')


def _mask_markup(markup: str, masker: Masker) -> str:
    if '="' in markup:
        markup = _TAG_WITH_ATTRIBUTES.sub(
            lambda tag: _SHOWN_ATTRIBUTE.sub(lambda m: _mask_attribute(m, masker), tag[0]), markup
        )
    # Most responses name no one: two substitutions in C say so, where walking the nodes in
    # Python cost ~0.1 ms per ~1 KB response (measured with benchmarks/markdown_render.py).
    if not masker.matches(html.unescape(_TAG.sub("", _BLOCK_TAG.sub("\n", markup)))):
        return markup
    return _mask_text_nodes(markup, masker)


def _mask_text_nodes(markup: str, masker: Masker) -> str:
    # The page's text as one string (entities decoded, "\n" between blocks), each text node
    # remembered by where it starts in it, so a name split by inline markup still matches.
    tokens: list[str] = []  # tags and raw text nodes, in order
    texts: list[tuple[int, int, str]] = []  # (token index, start in joined, decoded text)
    joined: list[str] = []
    length = 0
    cursor = 0
    for match in _TAG.finditer(markup):
        if match.start() > cursor:
            raw = markup[cursor : match.start()]
            decoded = html.unescape(raw) if "&" in raw else raw
            texts.append((len(tokens), length, decoded))
            tokens.append(raw)
            joined.append(decoded)
            length += len(decoded)
        tokens.append(match[0])
        if match[2].lower() in _BLOCKS:
            joined.append("\n")
            length += 1
        cursor = match.end()
    if cursor < len(markup):
        raw = markup[cursor:]
        decoded = html.unescape(raw) if "&" in raw else raw
        texts.append((len(tokens), length, decoded))
        tokens.append(raw)
        joined.append(decoded)
    spans = masker.spans("".join(joined))
    # Nodes and spans both run in text order: one sweep, however many of either there are.
    first, placed = 0, -1  # placed: the last span whose "[masked]" is written
    for index, start, decoded in texts:
        end = start + len(decoded)
        while first < len(spans) and spans[first][1] <= start:
            first += 1
        pieces, at, k = [], 0, first
        while k < len(spans) and spans[k][0] < end:
            s, e = spans[k]
            local_start, local_end = max(s - start, 0), min(e - start, len(decoded))
            pieces.append(html.escape(decoded[at:local_start], quote=False))
            if k > placed:  # in the first text node the span reaches
                pieces.append(MASK)
                placed = k
            at = local_end
            k += 1
        if pieces:
            pieces.append(html.escape(decoded[at:], quote=False))
            tokens[index] = "".join(pieces)
    return "".join(tokens)
