"""Builders for campaigns with many items and reviewers, fast enough for 2-core machines."""

import itertools

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from datasets.models import Item, Response
from reviews.campaigns import services
from reviews.models import Assignment, Judgment
from tests import factories
from tests.conftest import on_postgres, require_service

_counter = itertools.count()


def add_items(dataset, systems, n, *, categories=("billing", "shipping", "account"), start=0):
    """n items in the dataset, each answered by every one of `systems` (bulk inserts)."""
    items = Item.objects.bulk_create(
        Item(
            dataset=dataset,
            external_id=f"T-{start + i:05d}",
            prompt=f"Question {start + i}: where is my parcel?",
            metadata={"category": categories[i % len(categories)]} if categories else {},
        )
        for i in range(n)
    )
    Response.objects.bulk_create(
        Response(item=item, system=system, text=f"{system.name} answers {item.external_id}.")
        for item in items
        for system in systems
    )
    return items


@pytest.fixture
def make_reviewers(db):
    # get_or_create: a transactional test may run after a flush dropped the migrated groups.
    group, _ = Group.objects.get_or_create(name="reviewer")

    def make(n, prefix="rev"):
        batch = next(_counter)
        users = [
            factories.UserFactory(username=f"{prefix}{batch}-{i}@example.org") for i in range(n)
        ]
        group.user_set.add(*users)
        return users

    return make


@pytest.fixture
def build_campaign(db, lead):
    """build_campaign(n_items=12, overlap=1, seed=7, **create_campaign kwargs) -> Campaign."""

    def build(
        n_items=12, *, overlap=1, seed=7, categories=("billing", "shipping", "account"), **kw
    ):
        n = next(_counter)
        dataset = factories.DatasetFactory()
        baseline = factories.SystemFactory(name=kw.pop("baseline_name", "acme-base"))
        candidate = factories.SystemFactory(name=kw.pop("candidate_name", "acme-next"))
        add_items(dataset, [baseline, candidate], n_items, categories=categories)
        return services.create_campaign(
            name=kw.pop("name", f"Support eval {n}"),
            dataset=dataset,
            baseline=baseline,
            candidate=candidate,
            rubric=kw.pop("rubric", None) or factories.RubricFactory(),
            overlap=overlap,
            seed=seed,
            actor=lead,
            **kw,
        )

    return build


def complete(assignment, *, seconds=30.0, preference="candidate"):
    """Mark an assignment done with a current judgment (what the grading view will do)."""
    Assignment.objects.filter(pk=assignment.pk).update(
        status=Assignment.Status.DONE, completed_at=timezone.now()
    )
    return Judgment.objects.create(
        assignment=assignment,
        campaign_id=assignment.campaign_id,
        item_id=assignment.item_id,
        reviewer_id=assignment.reviewer_id,
        candidate_left=assignment.candidate_left,
        preference=preference,
        submitted_at=timezone.now(),
        duration_seconds=seconds,
        submission_key=f"sk-{assignment.pk}-{next(_counter)}",
    )


@pytest.fixture
def complete_assignment(db):
    return complete


@pytest.fixture
def add_dataset_items(db):
    """add_dataset_items(dataset, systems, n, start=0): n items answered by every system."""
    return add_items


@pytest.fixture
def postgres_only():
    """Skip (or under REQUIRE_SERVICES=1 fail) before any data is made, unless on PostgreSQL."""
    require_service("this test needs PostgreSQL (set DATABASE_URL)", on_postgres())
