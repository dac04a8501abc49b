"""Load the demo through the same services a lead uses: import the demo pairs file, import the
rubric, create two campaigns (one fresh for the reviewers, one pilot with earlier judgments
imported so the report has figures), assign, aggregate. Idempotent; prints the logins."""

import csv
import json
import random
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.utils import timezone

from datasets.importing.services import import_pairs
from datasets.models import Dataset, System
from reviews.campaigns import batches, rubrics, services
from reviews.exports.judgment_import import import_judgments
from reviews.models import Campaign
from reviews.reports import aggregation

DEMO = Path(settings.BASE_DIR) / "demo"
PASSWORD = "evalsite-demo"  # noqa: S105 (printed for the local demo only)
USERS = [
    ("lead@example.org", "lead"),
    ("analyst@example.org", "analyst"),
    ("reviewer1@example.org", "reviewer"),
    ("reviewer2@example.org", "reviewer"),
]
DATASET = "Support tickets (demo)"
BASELINE, CANDIDATE = "helpdesk-gpt-4", "helpdesk-gpt-4o"
INSTRUCTIONS = (
    "Read the customer's ticket, then both answers. Choose the one **you would rather send**.\n\n"
    "- Judge *correctness* first, then completeness and tone.\n"
    "- A polite refusal is right only when the request must be refused.\n"
    "- Skip a ticket that contains personal data and say so."
)


class Command(BaseCommand):
    help = "Create the demo dataset, campaigns and users (idempotent), and print the logins."

    def handle(self, *args, **options):
        users = self.create_users()
        lead = users["lead@example.org"]
        reviewers = [users["reviewer1@example.org"], users["reviewer2@example.org"]]
        if not Dataset.objects.filter(name=DATASET).exists():
            import_pairs(
                path=DEMO / "support_tickets.csv",
                filename="support_tickets.csv",
                dataset_name=DATASET,
                redact_pii=True,
                user=lead,
            )
        dataset = Dataset.objects.get(name=DATASET)
        rubric = rubrics.import_rubric(
            data=json.loads((DEMO / "rubric.json").read_text()), actor=lead
        )
        baseline, candidate = System.objects.get(name=BASELINE), System.objects.get(name=CANDIDATE)
        live = Campaign.objects.filter(name="GPT-4 → GPT-4o support answers").first()
        if live is None:
            live = services.create_campaign(
                name="GPT-4 → GPT-4o support answers", dataset=dataset, baseline=baseline,
                candidate=candidate, rubric=rubric, overlap=2, instructions=INSTRUCTIONS,
                seed=2026, reviewer_title="Support answers, December", actor=lead,
            )  # fmt: skip
            batches.create_batches_and_assign(
                campaign=live, reviewers=reviewers, batch_size=12,
                due_date=timezone.localdate() + timedelta(days=7), actor=lead,
            )  # fmt: skip
        pilot = Campaign.objects.filter(name="Pilot (earlier grades)").first()
        if pilot is None:
            pilot = services.create_campaign(
                name="Pilot (earlier grades)", dataset=dataset, baseline=baseline,
                candidate=candidate, rubric=rubric, overlap=3, instructions=INSTRUCTIONS,
                seed=7, actor=lead,
            )  # fmt: skip
            self.import_pilot_grades(pilot, lead)
            aggregation.run_aggregation(campaign_id=pilot.pk)
        self.stdout.write(self.style.SUCCESS(f"Campaign for the reviewers: {live.name}"))
        self.stdout.write(self.style.SUCCESS(f"Campaign with a report: {pilot.name}"))
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

    def import_pilot_grades(self, campaign, lead):
        """Three earlier graders per ticket, leaning to the candidate, as a judgments file."""
        rng = random.Random(campaign.seed)
        rows = []
        for item_id in campaign.campaign_items.values_list("item__external_id", flat=True):
            for grader in (
                "pilot.ana@example.org",
                "pilot.ben@example.org",
                "pilot.cy@example.org",
            ):
                preference = rng.choices(
                    ["candidate", "baseline", "tie", "both_bad"], weights=[55, 25, 15, 5]
                )[0]
                better = preference == "candidate"
                rows.append({
                    "item_id": item_id, "reviewer": grader, "preference": preference,
                    "score.correctness.baseline": rng.randint(2, 5),
                    "score.correctness.candidate": rng.randint(3 if better else 2, 5),
                    "score.refusal_ok.baseline": 1, "score.refusal_ok.candidate": 1,
                    "score.overall": rng.randint(4, 7) if better else rng.randint(1, 4),
                    "rationale": "",
                })  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "pilot_judgments.csv"
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            import_judgments(path=path, filename=path.name, campaign=campaign, actor=lead)
