import io
import json
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reviews.models import Assignment, Campaign, Rubric
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(add_dataset_items):
    dataset = factories.DatasetFactory(name="tickets")
    systems = [factories.SystemFactory(name=n) for n in ("gpt-4", "gpt-4o")]
    add_dataset_items(dataset, systems, 12)
    return dataset


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def create(*extra):
    args = ["create_campaign", "--name", "GPT-4 vs 4o", "--dataset", "tickets"]
    return run(*args, "--baseline", "gpt-4", "--candidate", "gpt-4o", *extra)


def test_create_campaign_prints_the_slug_last_and_uses_the_default_rubric(dataset):
    out, _ = create()
    slug = out.strip().splitlines()[-1]
    campaign = Campaign.objects.get(slug=slug)
    assert slug == "gpt-4-vs-4o"
    assert campaign.campaign_items.count() == 12
    assert (campaign.overlap, campaign.margin) == (1, 0.05)
    assert campaign.rubric.name == "support-default"
    assert "12 items" in out


def test_create_campaign_options(dataset, tmp_path):
    rubric_file = tmp_path / "rubric.json"
    rubric = {"name": "tone", "criteria": [{"name": "polite", "kind": "binary", "per": "pair"}]}
    rubric_file.write_text(json.dumps(rubric))
    out, _ = create(
        "--rubric", str(rubric_file), "--overlap", "2", "--margin", "0.1", "--seed", "99"
    )
    campaign = Campaign.objects.get(slug=out.strip().splitlines()[-1])
    assert (campaign.overlap, campaign.margin, campaign.seed) == (2, 0.1, 99)
    assert campaign.rubric.name == "tone"

    out, _ = create("--rubric", str(rubric_file))  # the same file again reuses the rubric
    assert Rubric.objects.filter(name="tone").count() == 1
    assert out.strip().splitlines()[-1] == "gpt-4-vs-4o-2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "missing"], "No dataset named 'missing'"),
        (["--baseline", "nope"], "No system named 'nope'"),
        (["--candidate", "gpt-4"], "different systems"),
        (["--overlap", "0"], "at least 1"),
        (["--margin", "0.7"], "margin"),
        (["--rubric", "/does/not/exist.json"], "cannot read the rubric file"),
    ],
)
def test_create_campaign_errors(dataset, args, message):
    base = {"--name": "x", "--dataset": "tickets", "--baseline": "gpt-4", "--candidate": "gpt-4o"}
    options = dict(base)
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [part for pair in options.items() for part in pair]
    with pytest.raises(CommandError, match=message):
        run("create_campaign", *flat)
    assert not Campaign.objects.exists()


def test_create_campaign_rejects_an_invalid_rubric_file(dataset, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "r", "criteria": [{"name": "c", "kind": "stars"}]}')
    with pytest.raises(CommandError, match=r"bad.json: criteria\[0\] \(c\): kind"):
        create("--rubric", str(bad))
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="not a JSON rubric file"):
        create("--rubric", str(bad))


def test_assign_gives_every_item_k_reviewers_in_batches(dataset, make_reviewers):
    slug = create("--overlap", "2")[0].strip().splitlines()[-1]
    reviewers = make_reviewers(3)
    emails = ",".join(r.email.upper() for r in reviewers)  # emails match ignoring case

    out, _ = run("assign", slug, "--reviewers", emails, "--batch-size", "5")

    assert "24 assignments" in out
    assert "batch(es) 1, 2, 3" in out
    per_item = Counter(Assignment.objects.values_list("item", flat=True))
    assert set(per_item.values()) == {2}
    assert len(per_item) == 12
    assert set(Counter(Assignment.objects.values_list("reviewer", flat=True)).values()) == {8}

    with pytest.raises(CommandError, match="Nothing to assign"):
        run("assign", slug, "--reviewers", emails)


def test_assign_errors(dataset, make_reviewers, outsider):
    slug = create("--overlap", "2")[0].strip().splitlines()[-1]
    reviewer = make_reviewers(1)[0]
    with pytest.raises(CommandError, match="No campaign"):
        run("assign", "nope", "--reviewers", reviewer.email)
    with pytest.raises(CommandError, match=r"No account with the email: ghost@x\.org"):
        run("assign", slug, "--reviewers", f"{reviewer.email},ghost@x.org")
    with pytest.raises(CommandError, match="at least 2 reviewers"):
        run("assign", slug, "--reviewers", reviewer.email)
    with pytest.raises(CommandError, match="Not active reviewers"):
        run("assign", slug, "--reviewers", f"{reviewer.email},{outsider.email}")
    assert not Assignment.objects.exists()
