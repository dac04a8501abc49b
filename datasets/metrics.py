"""Automatic per-response metrics, computed once and stored in ``Response.metrics``.

``response_metrics(text)`` returns::

    characters  len(text)
    words       whitespace-separated tokens
    urls        http(s):// and www. links
    bullets     lines that are list items ("- ", "* ", "+ ", "• ", "1. ", "1) ")
    markdown    true when the text uses Markdown formatting (headings, emphasis, code, links,
                tables, lists, block quotes)
    sentiment   VADER compound score in [-1, 1] (vaderSentiment's bundled lexicon, no download)
    refusal     true when the text contains one of REFUSAL_PHRASES (case-insensitive)

``summarise(values)`` gives the mean, median and 90th percentile shown per system.
"""

import math
import re
from functools import cache

METRICS_VERSION = 1

# Phrases with which assistants decline a request. Matched case-insensitively anywhere in the
# response after typographic apostrophes are straightened. Kept short and specific: a phrase that
# also occurs in helpful answers ("I'm sorry for the trouble") does not belong here.
REFUSAL_PHRASES = (
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i can't help you with that",
    "i can't provide",
    "i cannot provide",
    "i can't share",
    "i cannot share",
    "i can't do that",
    "i cannot do that",
    "i'm unable to help",
    "i am unable to help",
    "i'm unable to assist",
    "i am unable to assist",
    "i'm unable to provide",
    "i am unable to provide",
    "i'm not able to help",
    "i am not able to help",
    "i'm not able to provide",
    "i am not able to provide",
    "i won't be able to help",
    "i must decline",
    "i have to decline",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "sorry, i can't",
    "sorry, but i can't",
    "i apologize, but i can't",
    "i apologize, but i cannot",
    "as an ai language model, i cannot",
    "as an ai, i cannot",
    "against my guidelines",
    "i'm not allowed to",
    "i am not allowed to",
)

_URL = re.compile(r"\bhttps?://[^\s<>()\]]+|\bwww\.[^\s<>()\]]+", re.IGNORECASE)
_BULLET = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+\S", re.MULTILINE)
_MARKDOWN = re.compile(
    r"^[ \t]{0,3}#{1,6}[ \t]+\S"  # heading
    r"|\*\*[^*\n]+\*\*|__[^_\n]+__"  # bold
    r"|(?<![\w*])\*[^*\s][^*\n]*\*(?![\w*])"  # italic
    r"|`[^`\n]+`|^[ \t]*```"  # code
    r"|\[[^\]\n]+\]\([^)\s]+\)"  # link
    r"|^[ \t]*\|.*\|[ \t]*$"  # table row
    r"|^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+\S"  # list item
    r"|^[ \t]{0,3}>[ \t]",  # block quote
    re.MULTILINE,
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


@cache
def _sentiment_analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def is_refusal(text: str) -> bool:
    lowered = text.translate(_APOSTROPHES).lower()
    return any(phrase in lowered for phrase in REFUSAL_PHRASES)


def response_metrics(text: str) -> dict:
    """The automatic metrics of one response (see the module docstring)."""
    return {
        "characters": len(text),
        "words": len(text.split()),
        "urls": len(_URL.findall(text)),
        "bullets": len(_BULLET.findall(text)),
        "markdown": _MARKDOWN.search(text) is not None,
        "sentiment": round(_sentiment_analyzer().polarity_scores(text)["compound"], 4),
        "refusal": is_refusal(text),
    }


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, Hyndman & Fan type 7)."""
    position = (len(sorted_values) - 1) * q
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction


def summarise(values) -> dict:
    """n, mean, median and p90 of the values, and p10, p25, p75 for the dataset page's box plots
    (``None`` statistics when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "mean": None, "median": None, "p90": None}
    return {
        "n": len(ordered),
        "mean": math.fsum(ordered) / len(ordered),
        "median": quantile(ordered, 0.5),
        "p90": quantile(ordered, 0.9),
        "p10": quantile(ordered, 0.1),
        "p25": quantile(ordered, 0.25),
        "p75": quantile(ordered, 0.75),
    }
