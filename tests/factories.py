"""factory-boy factories for every model (no JSON fixtures)."""

import copy

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from datasets.models import Dataset, Item, Response, System
from reviews.campaigns.rubrics import DEFAULT_CRITERIA
from reviews.models import Assignment, Batch, Campaign, CampaignItem, Judgment, Rubric


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.org")
    email = factory.LazyAttribute(lambda o: o.username)
    password = factory.django.Password("correct-horse-battery-staple")


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"system-{n}")


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"Dataset {n}")
    slug = factory.Sequence(lambda n: f"dataset-{n}")


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    dataset = factory.SubFactory(DatasetFactory)
    external_id = factory.Sequence(lambda n: f"T-{n:05d}")
    prompt = factory.Sequence(lambda n: f"My order #{n} has not arrived. What can I do?")
    metadata = factory.LazyFunction(lambda: {"category": "shipping"})


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    item = factory.SubFactory(ItemFactory)
    system = factory.SubFactory(SystemFactory)
    text = factory.Sequence(lambda n: f"Sorry about that. **Step {n}**: check the tracking page.")


class RubricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rubric
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"rubric-{n}")
    criteria = factory.LazyFunction(lambda: copy.deepcopy(DEFAULT_CRITERIA))


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    dataset = factory.SubFactory(DatasetFactory)
    baseline = factory.SubFactory(SystemFactory, name="baseline-model")
    candidate = factory.SubFactory(SystemFactory, name="candidate-model")
    rubric = factory.SubFactory(RubricFactory)
    seed = 1234


class CampaignItemFactory(factory.django.DjangoModelFactory):
    """An item of the campaign's dataset with a response from each of its two systems."""

    class Meta:
        model = CampaignItem

    campaign = factory.SubFactory(CampaignFactory)
    item = factory.SubFactory(ItemFactory, dataset=factory.SelfAttribute("..campaign.dataset"))
    baseline_response = factory.SubFactory(
        ResponseFactory,
        item=factory.SelfAttribute("..item"),
        system=factory.SelfAttribute("..campaign.baseline"),
    )
    candidate_response = factory.SubFactory(
        ResponseFactory,
        item=factory.SelfAttribute("..item"),
        system=factory.SelfAttribute("..campaign.candidate"),
    )


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    campaign = factory.SubFactory(CampaignFactory)
    number = factory.Sequence(lambda n: n + 1)


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    campaign_item = factory.SubFactory(CampaignItemFactory)
    campaign = factory.SelfAttribute("campaign_item.campaign")
    item = factory.SelfAttribute("campaign_item.item")
    reviewer = factory.SubFactory(UserFactory)
    candidate_left = factory.Sequence(lambda n: n % 2 == 0)
    position = factory.Sequence(lambda n: n)


class JudgmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Judgment

    assignment = factory.SubFactory(AssignmentFactory, status="done")
    campaign = factory.SelfAttribute("assignment.campaign")
    item = factory.SelfAttribute("assignment.item")
    reviewer = factory.SelfAttribute("assignment.reviewer")
    candidate_left = factory.SelfAttribute("assignment.candidate_left")
    preference = "candidate"
    submitted_at = factory.LazyFunction(timezone.now)
    submission_key = factory.Sequence(lambda n: f"key-{n}")
