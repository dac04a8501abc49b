"""python manage.py assign SLUG --reviewers a@x.org,b@x.org [--batch-size N]"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviews.campaigns import batches, lookups
from reviews.models import Campaign


class Command(BaseCommand):
    help = (
        "Assign every not yet assigned item of a campaign to the given reviewers (k distinct "
        "reviewers per item, balanced load), in batches of --batch-size."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The campaign's slug.")
        parser.add_argument("--reviewers", required=True, help="Comma-separated reviewer emails.")
        parser.add_argument("--batch-size", type=int, help="Items per batch (default: one batch).")

    def handle(self, *args, **options):
        campaign = Campaign.objects.select_related("rubric").filter(slug=options["slug"]).first()
        if campaign is None:
            raise CommandError(f"No campaign with the slug {options['slug']!r}.")
        reviewers = self.reviewers(options["reviewers"])
        try:
            result = batches.create_batches_and_assign(
                campaign=campaign, reviewers=reviewers, batch_size=options["batch_size"]
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        numbers = ", ".join(str(batch.number) for batch in result.batches)
        self.stdout.write(
            f"Assigned {result.n_items} items to {len(reviewers)} reviewers: "
            f"{result.n_assignments} assignments in batch(es) {numbers}."
        )
        if result.n_left_open:
            self.stderr.write(
                f"{result.n_left_open} item(s) still need reviewers other than these."
            )

    def reviewers(self, text):
        emails = list(dict.fromkeys(e.strip() for e in text.split(",") if e.strip()))
        if not emails:
            raise CommandError("--reviewers needs at least one email address.")
        try:
            return lookups.users_by_email(emails)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
