"""python manage.py export_judgments SLUG [-o PATH]"""

from django.core.management.base import BaseCommand, CommandError

from reviews.exports import services as exports
from reviews.models import Campaign


class Command(BaseCommand):
    help = (
        "Export a campaign's current judgments as the design's Export CSV (one row per judgment, "
        "de-blinded, formulas defused) to PATH, or to stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The campaign's slug.")
        parser.add_argument("-o", "--output", metavar="PATH", help="Write here, not to stdout.")
        parser.add_argument(
            "--format", choices=exports.KINDS, default="csv", help="csv (default), jsonl or tidy."
        )
        parser.add_argument(
            "--pseudonymise",
            action="store_true",
            help="Name reviewers by stable pseudonyms instead of their emails.",
        )

    def handle(self, *args, **options):
        try:
            campaign = exports.campaign_for_export(options["slug"])
        except Campaign.DoesNotExist:
            raise CommandError(f"No campaign with the slug {options['slug']!r}.") from None
        log, lines = exports.start_export(
            campaign=campaign,
            kind=options["format"],
            filters={},
            pseudonymise=options["pseudonymise"],
        )
        if options["output"]:
            try:
                with open(options["output"], "w", encoding="utf-8", newline="") as out:
                    out.writelines(lines)
            except OSError as exc:
                raise CommandError(f"Cannot write {options['output']}: {exc.strerror}.") from exc
            self.stderr.write(f"Exported {log.row_count} judgments to {options['output']}.")
        else:
            for line in lines:
                self.stdout.write(line, ending="")
