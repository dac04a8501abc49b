"""python manage.py decide SLUG [--json] [--wait SECONDS]: the release gate.

Exit status 0 migrate, 2 do_not_migrate, 3 need_more_labels, 1 an error (no such campaign)."""

import json

from django.core.management.base import BaseCommand, CommandError

from reviews.models import Campaign
from reviews.reports import gate


class Command(BaseCommand):
    help = (
        "Print a campaign's migration decision from its latest report and exit 0 (migrate), "
        "2 (do_not_migrate) or 3 (need_more_labels); 1 on errors."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The campaign's slug.")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print JSON.")
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait up to SECONDS for a migrate / do_not_migrate verdict (polling the reports).",
        )

    def handle(self, *args, slug: str, as_json: bool, wait: float, **options):
        campaign = Campaign.objects.filter(slug=slug).first()
        if campaign is None:
            raise CommandError(f"No campaign with the slug {slug!r}.")
        if wait < 0:
            raise CommandError("--wait takes a number of seconds, 0 or more.")
        decision = gate.wait_for_decision(campaign=campaign, seconds=wait)
        if as_json:
            self.stdout.write(json.dumps(decision, indent=2, allow_nan=False))
        else:
            p = decision["probability"]
            self.stdout.write(
                f"{campaign.slug}: {decision['verdict']}"
                + (
                    ""
                    if p is None
                    else f" (probability {p:.3f}, threshold {decision['threshold']:g})"
                )
            )
            for reason in decision["reasons"]:
                self.stdout.write(f"  {reason}")
        self.stdout.flush()
        # BaseCommand has no exit status of its own besides CommandError's 1.
        if code := gate.EXIT_CODES[decision["verdict"]]:
            raise SystemExit(code)
