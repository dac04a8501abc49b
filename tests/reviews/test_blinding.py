"""The product's promise: nothing a reviewer can fetch reveals which system wrote what."""

import itertools
import math
import re
from collections import Counter
from os.path import commonpath

import pytest
from django.urls import reverse

from datasets.models import Response, System
from reviews.campaigns import batches
from reviews.campaigns.masking import default_mask_patterns
from reviews.models import Assignment
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory

pytestmark = pytest.mark.django_db

BASELINE, CANDIDATE = "orbit-gpt-4-0613", "orbit-gpt-4o-2024"
LEAKY = (
    "Certainly! As an AI language model developed by OpenAI, I can help. "
    f"I am {CANDIDATE} and my colleague {BASELINE} agrees."
)


@pytest.fixture
def blind_world(reviewer):
    baseline = System.objects.create(pk=7_770_001, name=BASELINE)
    candidate = System.objects.create(pk=7_770_002, name=CANDIDATE)
    campaign = CampaignFactory(
        name=f"{BASELINE} vs {CANDIDATE}",
        baseline=baseline,
        candidate=candidate,
        instructions=f"Compare answers (the new one is {CANDIDATE}).",
        mask_patterns=[*default_mask_patterns([BASELINE, CANDIDATE]), r"\bOrbitCorp\b"],
    )
    assignments = []
    for n in range(12):
        ci = CampaignItemFactory.build(campaign=campaign)
        ci.item.dataset = campaign.dataset
        ci.item.save()
        base = Response.objects.create(
            pk=8_880_000 + 2 * n,
            item=ci.item,
            system=baseline,
            text=f"First answer {n}. OrbitCorp says hi. {LEAKY}",
        )
        cand = Response.objects.create(
            pk=8_880_001 + 2 * n, item=ci.item, system=candidate, text=f"Second answer {n}. {LEAKY}"
        )
        ci.baseline_response, ci.candidate_response = base, cand
        ci.save()
        assignments.append(
            AssignmentFactory(
                campaign_item=ci, reviewer=reviewer, position=n, candidate_left=n % 2 == 0
            )
        )
    return campaign, assignments


FORBIDDEN_WORDS = [
    "candidate",
    "baseline",
    "candidate_left",
    "flip",
    "system",
    BASELINE,
    CANDIDATE,
    "OpenAI",
    "OrbitCorp",
    "developed by",
]


def assert_blind(response, campaign):
    text = response.content.decode()
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    for haystack, where in ((text, "body"), (headers, "headers")):
        lowered = haystack.lower()
        for word in FORBIDDEN_WORDS:
            assert word.lower() not in lowered, f"{word!r} leaked in the {where}"
        for pk in [
            campaign.baseline_id,
            campaign.candidate_id,
            *Response.objects.values_list("pk", flat=True),
        ]:
            assert not re.search(rf"(?<!\d){pk}(?!\d)", haystack), f"id {pk} leaked in the {where}"


def ticket_of(html):
    return re.search(r'name="ticket" value="([^"]+)"', html).group(1)


def test_every_page_and_fragment_a_reviewer_fetches_is_blind(client_for, reviewer, blind_world):
    campaign, assignments = blind_world
    client = client_for(reviewer)
    hx = {"HX-Request": "true"}
    queue = client.get(reverse("reviews:queue"))
    assert_blind(queue, campaign)
    start = client.get(reverse("grading:start", args=[campaign.public_id]))
    assert_blind(start, campaign)
    for a in assignments[:6]:
        page = client.get(reverse("grading:grade", args=[a.token]))
        assert "Response 1" in page.text
        assert_blind(page, campaign)
        assert_blind(client.get(reverse("grading:grade", args=[a.token]), headers=hx), campaign)
        submitted = client.post(
            reverse("grading:submit", args=[a.token]),
            {
                "ticket": ticket_of(page.text),
                "preference": "1",
                "correctness__1": "4",
                "correctness__2": "3",
                "refusal_ok__1": "1",
                "refusal_ok__2": "1",
                "overall__pair": "3",
            },
            headers=hx,
        )
        assert_blind(submitted, campaign)
        assert submitted.headers["HX-Push-Url"].startswith("/grade/")
    revision = client.get(reverse("grading:grade", args=[assignments[0].token]))
    assert_blind(revision, campaign)
    assert_blind(
        client.post(
            reverse("grading:skip", args=[assignments[7].token]), {"reason": "broken"}, headers=hx
        ),
        campaign,
    )
    assert_blind(
        client.post(
            reverse("grading:flag", args=[assignments[8].token]), {"note": "odd"}, headers=hx
        ),
        campaign,
    )
    assert_blind(
        client.get(
            reverse("grading:grade", args=[assignments[9].token]),
            headers={**hx, "HX-History-Restore-Request": "true"},
        ),
        campaign,
    )


def test_urls_a_reviewer_sees_carry_only_opaque_tokens(client_for, reviewer, blind_world):
    campaign, assignments = blind_world
    html = client_for(reviewer).get(reverse("grading:grade", args=[assignments[0].token])).text
    for url in re.findall(r'(?:href|hx-get|hx-post|action)="([^"]+)"', html):
        assert not re.search(r"/\d+/", url), f"a sequential id in {url}"
        assert campaign.slug not in url


def test_tokens_are_random_and_not_sequential(reviewer, blind_world):
    _, assignments = blind_world
    tokens = [a.token for a in assignments]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) >= 22 for t in tokens)  # 128 bits in URL-safe base64
    # No shared prefix beyond chance, and characters spread over the alphabet.
    common = max(len(commonpath([a, b])) for a, b in itertools.pairwise(tokens))
    assert common <= 2
    counts = Counter("".join(tokens))
    entropy = -sum(
        c / sum(counts.values()) * math.log2(c / sum(counts.values())) for c in counts.values()
    )
    assert entropy > 5.0


def test_a_reviewer_cannot_open_someone_elses_assignment(client_for, other_reviewer, blind_world):
    _, assignments = blind_world
    client = client_for(other_reviewer)
    token = assignments[0].token
    assert client.get(reverse("grading:grade", args=[token])).status_code == 404
    assert client.post(reverse("grading:submit", args=[token]), {}).status_code == 404
    assert client.post(reverse("grading:skip", args=[token]), {"reason": "pii"}).status_code == 404
    assert client.post(reverse("grading:flag", args=[token]), {"note": "x"}).status_code == 404
    assert Assignment.objects.get(token=token).status == "pending"


def test_left_right_placement_is_balanced_per_reviewer_through_the_assign_service(
    lead, reviewer, other_reviewer
):

    campaign = CampaignFactory(overlap=2)
    for _ in range(21):
        CampaignItemFactory(campaign=campaign)
    batches.create_batches_and_assign(
        campaign=campaign, reviewers=[reviewer, other_reviewer], batch_size=10, actor=lead
    )
    for user in (reviewer, other_reviewer):
        sides = list(
            Assignment.objects.filter(reviewer=user).values_list("candidate_left", flat=True)
        )
        assert len(sides) == 21
        assert abs(sum(sides) - len(sides) / 2) <= 1
    per_item = Counter(
        Assignment.objects.filter(candidate_left=True).values_list("item_id", flat=True)
    )
    assert all(v == 1 for v in per_item.values())
    assert len(per_item) == 21


def test_pair_scale_anchors_are_shown_in_response_terms_only(client_for, reviewer):
    """The default rubric's pair anchors face the candidate ("7: candidate much better")."""
    from reviews.campaigns.rubrics import DEFAULT_CRITERIA

    overall = next(c for c in DEFAULT_CRITERIA if c["per"] == "pair")
    assert "andidate" in " ".join(overall["anchors"].values())
    for candidate_left in (True, False):
        a = AssignmentFactory(reviewer=reviewer, candidate_left=candidate_left)
        html = client_for(reviewer).get(reverse("grading:grade", args=[a.token])).text
        assert "1 · Response 1 much better" in html
        assert "7 · Response 2 much better" in html
        assert "4 · About the same" in html
        for word in ("andidate", "aseline"):
            assert word not in html


def _skeleton(html: str) -> str:
    """The page with what differs between any two items taken out: the item's number, its
    token, the form's one-time ticket, CSRF token and CSP nonce."""
    html = re.sub(r"T-\d{5}", "T-N", html)
    html = re.sub(r"Question \d+", "Question N", html)
    html = re.sub(r'name="ticket" value="[^"]+"', 'name="ticket" value=""', html)
    html = re.sub(r'(csrfmiddlewaretoken" value=|x-csrftoken": ?|nonce=)"?[\w\-]+"?', r"\1X", html)
    return re.sub(r"/grade/[\w\-]+/", "/grade/TOKEN/", html)


def test_gold_items_and_repeats_look_exactly_like_live_ones(
    client_for, reviewer, lead, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from datasets.models import Item
    from tests.reviews.conftest import add_items

    dataset = CampaignFactory().dataset
    base = System.objects.create(pk=7_770_011, name=BASELINE)
    cand = System.objects.create(pk=7_770_012, name=CANDIDATE)
    items = add_items(dataset, [base, cand], 30, categories=())
    for pk in Response.objects.values_list("pk", flat=True):  # ids no page number could match
        Response.objects.filter(pk=pk).update(id=9_990_000 + pk)
    for item in items[20:]:
        item.gold, item.gold_note = CANDIDATE, "gold: the baseline invents a refund window"
    Item.objects.bulk_update(items[20:], ["gold", "gold_note"])
    from reviews.campaigns import services
    from tests.factories import RubricFactory

    campaign = services.create_campaign(
        name="Blind quality", dataset=dataset, baseline=base, candidate=cand,
        rubric=RubricFactory(criteria=[]), gold_rate=0.2, repeat_rate=0.2, qualify_items=2,
        min_accuracy=0.1, seed=5, actor=lead,
    )  # fmt: skip
    batches.create_batches_and_assign(campaign=campaign, reviewers=[reviewer], actor=lead)
    queue = list(Assignment.objects.filter(reviewer=reviewer).order_by("position"))
    kinds = {a.kind for a in queue}
    assert kinds == {"live", "gold", "repeat"}
    client = client_for(reviewer)
    pages, queries = {}, {}
    for a in queue:  # before any answer: every page should be the same but for its item
        with CaptureQueriesContext(connection) as read:
            page = client.get(reverse("grading:grade", args=[a.token]))
        assert_blind(page, campaign)
        # Random tokens (ticket, CSRF, nonce, URLs) can spell "gold" by chance: read the rest.
        assert "gold" not in _skeleton(page.text).lower()
        assert "refund window" not in page.text
        pages.setdefault(a.kind, set()).add(_skeleton(page.text))
        queries.setdefault(a.kind, set()).add(len(read))
    assert pages["gold"] == pages["live"] == pages["repeat"]
    assert len(pages["live"]) == 1
    assert queries["gold"] == queries["live"] == queries["repeat"]
    # Submitting: the same work on the server (timing) and the same kind of answer back.
    submits = {}
    for a in queue[:8]:
        ticket = ticket_of(client.get(reverse("grading:grade", args=[a.token])).text)
        with CaptureQueriesContext(connection) as wrote:
            response = client.post(
                reverse("grading:submit", args=[a.token]),
                {"ticket": ticket, "preference": "1"},
                headers={"HX-Request": "true"},
            )
        assert_blind(response, campaign)
        submits.setdefault(a.kind, set()).add(len(wrote))
    assert set(submits) >= {"gold", "live"}
    assert len(set().union(*submits.values())) == 1
