"""python manage.py import_judgments PATH --campaign SLUG"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reviews.exports.judgment_import import JudgmentImportError, import_judgments
from reviews.models import Campaign


class Command(BaseCommand):
    help = (
        "Import judgments gathered elsewhere (CSV: item_id, reviewer, preference, optional "
        "rationale, submitted_at and score.* columns). Any error: nothing is imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The judgments CSV.")
        parser.add_argument("--campaign", required=True, help="The campaign's slug.")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        campaign = (
            Campaign.objects.select_related("baseline", "candidate", "rubric")
            .filter(slug=options["campaign"])
            .first()
        )
        if campaign is None:
            raise CommandError(f"No campaign with the slug {options['campaign']!r}.")
        try:
            summary = import_judgments(path=path, filename=str(path), campaign=campaign)
        except JudgmentImportError as exc:
            for error in exc.errors:
                self.stderr.write(error)
            raise CommandError(f"Nothing imported: {len(exc.errors)} error(s).") from exc
        self.stdout.write(
            f"Imported {summary.created} judgments into {campaign.slug} "
            f"({summary.already_imported} already imported, "
            f"{len(summary.new_reviewers)} new reviewer account(s))."
        )
