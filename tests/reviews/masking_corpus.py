"""Names disguised the ways a response (or a lead's text) can disguise them, and how a reviewer
reads a page: the check is written independently of reviews.campaigns.masking, so it cannot
share its blind spots."""

import html
import re
import unicodedata
from html.parser import HTMLParser

import pytest

from datasets.models import System
from reviews.campaigns.masking import default_mask_patterns
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory, RubricFactory

BASELINE, CANDIDATE = "orbit-1", "nova-chat-2"
# Each case names Claude, OpenAI, GPT-4o or the candidate system, disguised.
CORPUS = {
    "entity": "I am Cl&#97;ude.",
    "hex entity": "I am &#x43;laude.",
    "markdown escapes": "Made by nova\\-chat\\-2.",
    "emphasis split": "I am Clau*de*.",
    "strong split": "I am **Cl**aude.",
    "code split": "Built by Open`AI`.",
    "link title": '[the docs](https://example.org/docs "Cl&#97;ude")',
    "link text": "[Claude](https://example.org/about)",
    "autolink": "<https://claude.example.org/chat>",
    "soft hyphen": "Built by Open\u00adAI.",
    "shy entity": "Built by Open&shy;AI.",
    "combining grapheme joiner": "I am Cl\u034faude.",
    "mongolian vowel separator": "I am Cla\u180eude.",
    "tag characters": "I am Cl\U000e0061\U000e007faude.",
    "zero width": "I am Cl\u200bau\u200dde.",
    "non-breaking hyphen": "I am GPT\u20114o.",
    "fullwidth": "I am \uff23\uff4c\uff41\uff55\uff44\uff45.",
    "cyrillic homoglyphs": "I am \u0421l\u0430ud\u0435.",
    "greek homoglyphs": "Built by \u039fpen\u0391\u0399.",
    "combining marks": "I am Cla\u0301u\u0308de.",
    "system name spaced": "I am Nova Chat 2.",
}
NAMES = ("claude", "openai", "gpt4o", "novachat2", "orbit1")
# A few look-alikes, written out here rather than taken from the code under test.
_LOOKALIKES = str.maketrans("\u0421\u0430\u0435\u039f\u0391\u0399", "CaeOAI")
# Text that matches nothing must reach the reviewer exactly as written.
INNOCENT = "Crème brûlée — “naïve” café ‑ ok"


def reads(text: str) -> str:
    """What a reader takes in: entities decoded, invisible characters and accents gone,
    width and look-alikes folded, case and punctuation ignored."""
    text = unicodedata.normalize("NFKD", html.unescape(text)).translate(_LOOKALIKES)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Me", "Cf", "Cc", "Zs"))
    return re.sub(r"[^a-z0-9]", "", text.lower())


def leaked_names(text: str) -> list[str]:
    read = reads(text)
    return [name for name in NAMES if name in read]


class _Visible(HTMLParser):
    """Text and shown attribute values of a page's <main>, as a browser would present them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.depth = 0
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self.depth += 1
        if tag in ("script", "style", "template"):
            self.skip += 1
        if self.depth:
            self.parts.extend(
                v or "" for k, v in attrs if k in ("title", "alt", "href", "aria-label")
            )

    def handle_endtag(self, tag):
        if tag == "main":
            self.depth -= 1
        if tag in ("script", "style", "template"):
            self.skip -= 1

    def handle_data(self, data):
        if self.depth and not self.skip:
            self.parts.append(data)


def visible_text(page_html: str) -> str:
    parser = _Visible()
    parser.feed(page_html)
    return "\n".join(parser.parts)


def corpus_assignment(reviewer, text: str, **campaign_fields):
    """A pending assignment whose responses, prompt and context hold ``text``."""
    baseline = System.objects.get_or_create(name=BASELINE)[0]
    candidate = System.objects.get_or_create(name=CANDIDATE)[0]
    campaign_fields.setdefault("mask_patterns", default_mask_patterns([BASELINE, CANDIDATE]))
    campaign = CampaignFactory(baseline=baseline, candidate=candidate, **campaign_fields)
    ci = CampaignItemFactory(
        campaign=campaign,
        item__prompt=f"{text}\n\n{INNOCENT}",
        item__context=text,
        baseline_response__text=f"{text}\n\n{INNOCENT}",
        candidate_response__text=text,
    )
    return AssignmentFactory(campaign_item=ci, reviewer=reviewer, candidate_left=True)


def lead_texts_campaign(reviewer):
    """A campaign whose lead-written texts name the systems: title, instructions, rubric,
    batch and item ids; the reviewer has answered one item and has one to go."""
    from reviews.models import Assignment, Batch

    rubric = RubricFactory(
        criteria=[
            {
                "name": "tone",
                "label": "Does it sound like nova\u2011chat\u20112?",
                "kind": "scale",
                "min": 1,
                "max": 5,
                "per": "response",
                "help": "Clau\u00adde-style answers are terse.",
                "anchors": {"1": "Like orbit-1", "5": "Like \uff2f\uff50\uff45\uff4e\uff21\uff29"},
            },
            {"name": "ok", "label": "Would Open\u200bAI ship it?", "kind": "binary"},
        ]
    )
    first = corpus_assignment(
        reviewer,
        "Hello.",
        name="Mini vs Llama",
        reviewer_title="Support answers (nova chat 2 round)",
        instructions="Compare answers: the new one is *nova*-chat-2, the old one Orbit-1.",
        rubric=rubric,
    )
    campaign = first.campaign
    batch = Batch.objects.create(campaign=campaign, number=1, name="nova-chat-2 wave")
    Assignment.objects.filter(pk=first.pk).update(batch=batch)
    first.item.external_id = "nova-chat-2-vs-orbit-1-0001"
    first.item.save(update_fields=["external_id"])
    Assignment.objects.filter(pk=first.pk).update(status=Assignment.Status.DONE)
    second = AssignmentFactory(
        campaign_item=CampaignItemFactory(campaign=campaign),
        reviewer=reviewer,
        batch=batch,
        position=1,
    )
    return campaign, second


corpus_cases = pytest.mark.parametrize("case", list(CORPUS))
