import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from datasets.models import Dataset
from reviews.reports import timeline


class Command(BaseCommand):
    help = "Print a dataset's timeline: every campaign that graded it, oldest first."

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="the dataset's name or slug")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print JSON")

    def handle(self, *args, dataset: str, as_json: bool = False, **options):
        found = Dataset.objects.filter(Q(name=dataset) | Q(slug=dataset)).first()
        if found is None:
            raise CommandError(f"No dataset named {dataset!r}.")
        rows = timeline.json_rows(dataset=found)
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2, allow_nan=False))
            return
        if not rows:
            self.stdout.write(f"No campaign has graded {found.name} yet.")
            return
        for row in rows:
            self.stdout.write(line(row))
        if any(row["regression"] for row in rows):
            self.stdout.write(f"REGRESSION: {timeline.REGRESSION_TEST}")


def line(row: dict) -> str:
    rate, ci = row["win_rate"], row["win_rate_ci95"]
    figure = "no report" if rate is None else f"win rate {rate:.3f}"
    if ci:
        figure += f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
    mark = "  REGRESSION" if row["regression"] else ""
    return (
        f"{row['created_at'][:10]}  {row['campaign']}: {row['candidate']} vs {row['baseline']}, "
        f"{figure}, decision {row['verdict'] or 'none'}{mark}"
    )
