"""Load the demo: support tickets answered by two systems, a campaign, and four users."""

import random

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from datasets.models import Dataset, Item, Response, System
from reviews.models import Assignment, Batch, Campaign, CampaignItem, Rubric

PASSWORD = "evalsite-demo"  # noqa: S105 (printed for the local demo only)
USERS = [
    ("lead@example.org", "lead"),
    ("analyst@example.org", "analyst"),
    ("reviewer1@example.org", "reviewer"),
    ("reviewer2@example.org", "reviewer"),
]
CRITERIA = [
    {
        "name": "correctness",
        "label": "Is it correct?",
        "kind": "scale",
        "min": 1,
        "max": 5,
        "per": "response",
        "anchors": {"1": "Wrong", "5": "Fully correct"},
        "critical": True,
    },
    {
        "name": "refusal_ok",
        "label": "Refuses only when it should",
        "kind": "binary",
        "per": "response",
    },
    {
        "name": "overall",
        "label": "Which is better overall?",
        "kind": "scale",
        "min": 1,
        "max": 7,
        "per": "pair",
    },
]
TOPICS = [
    ("shipping", "My parcel {n} has been 'in transit' for nine days. Where is it?"),
    ("billing", "I was charged twice for order {n}. How do I get the second charge back?"),
    ("account", "I can't log in after resetting my password (ticket {n}). What should I do?"),
    ("returns", "The shoes from order {n} don't fit. Can I return them after 40 days?"),
]
REGIONS = ["EU", "US", "APAC"]
BASELINE_STYLE = (
    "Thanks for reaching out about ticket {n}.\n\n"
    "1. Check your confirmation email.\n2. Open **My orders**.\n3. Contact us if it persists."
)
CANDIDATE_STYLE = (
    "I'm sorry for the trouble with ticket {n}. Here is what to do:\n\n"
    "- Go to **My orders** and pick the order.\n- Choose *Get help* and follow the steps.\n\n"
    "If nothing changes within 48 hours, reply here and we'll escalate it."
)


class Command(BaseCommand):
    help = "Create the demo dataset, campaign and users (idempotent), and print the logins."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = self.create_users()
            campaign = self.create_campaign(users)
        self.stdout.write(self.style.SUCCESS(f"Demo campaign: {campaign.name} ({campaign.slug})"))
        self.stdout.write(f"Demo logins (password for all: {PASSWORD}):")
        for email, role in USERS:
            self.stdout.write(f"  {role:<9} {email}")

    def create_users(self):
        User = get_user_model()
        users = {}
        for email, role in USERS:
            user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role))
            users[email] = user
        return users

    def create_campaign(self, users):
        existing = Campaign.objects.filter(slug="support-demo").first()
        if existing:
            return existing
        baseline, _ = System.objects.get_or_create(name="helpdesk-gpt-4")
        candidate, _ = System.objects.get_or_create(name="helpdesk-gpt-4o")
        dataset, _ = Dataset.objects.get_or_create(
            name="Support tickets (demo)", defaults={"slug": "support-tickets-demo"}
        )
        rubric, _ = Rubric.objects.get_or_create(
            name="support-default", defaults={"criteria": CRITERIA}
        )
        campaign = Campaign.objects.create(
            name="GPT-4 → GPT-4o support answers",
            slug="support-demo",
            dataset=dataset,
            baseline=baseline,
            candidate=candidate,
            rubric=rubric,
            overlap=2,
            instructions=(
                "Read the customer's ticket, then both answers. Pick the answer you would "
                "rather send. Judge **correctness** first, then tone."
            ),
            mask_patterns=["helpdesk-gpt-4o", "helpdesk-gpt-4", "OpenAI", "GPT-4o?"],
            seed=2026,
        )
        rng = random.Random(campaign.seed)
        reviewers = [users["reviewer1@example.org"], users["reviewer2@example.org"]]
        campaign.roster.add(*reviewers)
        batch = Batch.objects.create(campaign=campaign, number=1, name="Batch 1")
        for n in range(1, 25):
            category, prompt = TOPICS[n % len(TOPICS)]
            item = Item.objects.create(
                dataset=dataset,
                external_id=f"T-{1000 + n}",
                prompt=prompt.format(n=1000 + n),
                metadata={"category": category, "region": REGIONS[n % len(REGIONS)]},
            )
            base = Response.objects.create(
                item=item,
                system=baseline,
                text=BASELINE_STYLE.format(n=1000 + n),
                metadata={"latency_ms": rng.randint(900, 2500), "tokens": rng.randint(60, 140)},
            )
            cand = Response.objects.create(
                item=item,
                system=candidate,
                text=CANDIDATE_STYLE.format(n=1000 + n),
                metadata={"latency_ms": rng.randint(400, 1200), "tokens": rng.randint(70, 160)},
            )
            ci = CampaignItem.objects.create(
                campaign=campaign,
                item=item,
                baseline_response=base,
                candidate_response=cand,
                slots_taken=2,
            )
            for offset, reviewer in enumerate(reviewers):
                Assignment.objects.create(
                    campaign=campaign,
                    batch=batch,
                    campaign_item=ci,
                    item=item,
                    reviewer=reviewer,
                    candidate_left=(n + offset) % 2 == 0,
                    position=rng.randint(0, 10_000),
                )
        return campaign
