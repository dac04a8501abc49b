"""Hostile response texts are shown safely and the grading page stays usable."""

import re

import pytest
from django.urls import reverse

from tests.factories import AssignmentFactory, CampaignItemFactory

pytestmark = pytest.mark.django_db

HOSTILE = {
    "script tag": "Hello <script>alert('x')</script> world",
    "event handler": '<img src="x" onerror="alert(1)"> <a href="#" onclick="steal()">click</a>',
    "javascript link": "[click me](javascript:alert(1)) and <a href='javascript:alert(2)'>b</a>",
    "data url": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "svg onload": '<svg onload="alert(1)"><circle r="4"/></svg>',
    "iframe": '<iframe src="https://evil.example"></iframe>',
    "style injection": '<style>body{display:none}</style><p style="position:fixed">x</p>',
    "huge table": "| a | b |\n|---|---|\n" + "| cell | cell |\n" * 3000,
    "deep nesting": "> " * 500 + "deep" + "\n" + "- " * 300 + "list",
    "one megabyte line": "A" * 1_000_000,
    "rtl override": "Pay \u202eexe.txt\u202c now",
    "zero width": "pass\u200bword\u200d and \ufeffBOM",
    "html comment": "<!-- <script>alert(1)</script> -->visible",
    "form injection": '<form action="/evil"><input name="preference" value="1"></form>',
}


@pytest.fixture
def hostile_assignment(reviewer, request):
    text = HOSTILE[request.param]
    ci = CampaignItemFactory(
        baseline_response__text=text, candidate_response__text=text, item__prompt=text[:100_000]
    )
    return AssignmentFactory(campaign_item=ci, reviewer=reviewer, candidate_left=True)


@pytest.mark.parametrize("hostile_assignment", list(HOSTILE), indirect=True)
def test_hostile_text_is_rendered_inert(client_for, reviewer, hostile_assignment):
    response = client_for(reviewer).get(reverse("grading:grade", args=[hostile_assignment.token]))
    assert response.status_code == 200
    html = response.text
    main = html[html.index("<main") :]
    # Our own script tags are in <head> and after </main>; the content adds none.
    assert "<script" not in main.split("</main>")[0]
    for attribute in ("onerror", "onclick", "onload"):
        assert not re.search(rf"<[^>]+\s{attribute}\s*=", html, re.IGNORECASE)
    assert not re.search(r"""<[^>]+(href|src)\s*=\s*["']?\s*(javascript|data):""", html, re.I)
    assert "<iframe" not in html
    assert "<style" not in main
    assert not re.search(r"<[^>]+\sstyle\s*=", main, re.IGNORECASE)
    # Log-out, judgment, skip and flag forms: nothing injected.
    assert html.count("<form") == 4
    assert 'id="judgment-form"' in html


def test_bidi_and_zero_width_characters_cannot_disguise_text(client_for, reviewer):
    ci = CampaignItemFactory(candidate_response__text=HOSTILE["rtl override"])
    a = AssignmentFactory(campaign_item=ci, reviewer=reviewer, candidate_left=True)
    html = client_for(reviewer).get(reverse("grading:grade", args=[a.token])).text
    assert "\u202e" not in html


def test_zero_width_characters_cannot_smuggle_a_vendor_name_past_masking(client_for, reviewer):
    ci = CampaignItemFactory(candidate_response__text="Built by Open\u200bAI, I am G\u200dPT-4.")
    ci.campaign.mask_patterns = [r"\bOpenAI\b", r"\bGPT-4\b"]
    ci.campaign.save(update_fields=["mask_patterns"])
    a = AssignmentFactory(campaign_item=ci, reviewer=reviewer, candidate_left=True)
    html = client_for(reviewer).get(reverse("grading:grade", args=[a.token])).text
    assert "Built by [masked], I am [masked]." in html
