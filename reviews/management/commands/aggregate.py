import json

from django.core.management.base import BaseCommand, CommandError

from reviews.models import Campaign
from reviews.reports.aggregation import run_aggregation


class Command(BaseCommand):
    help = "Aggregate a campaign's judgments now, store the report and print it."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print JSON")

    def handle(self, *args, slug: str, as_json: bool = False, **options):
        campaign = Campaign.objects.filter(slug=slug).only("pk").first()
        if campaign is None:
            raise CommandError(f"No campaign with slug {slug!r}.")
        report = run_aggregation(campaign_id=campaign.pk)
        if as_json:
            self.stdout.write(_dumps(report.result))
            return
        self.stdout.write(summary(report))


def _dumps(result) -> str:
    return json.dumps(result, indent=2, sort_keys=False, allow_nan=False)


def summary(report) -> str:
    r = report.result
    pref = r["preference"]
    rate = pref["win_rate"]
    lines = [
        f"{r['campaign']}: {r['candidate']} vs {r['baseline']}",
        f"{r['n_judgments']} judgments on {r['n_items']} items by {r['n_reviewers']} reviewers",
        "win rate: "
        + ("n/a" if rate is None else f"{rate:.3f}")
        + (
            f" (95% CI {pref['win_rate_ci95'][0]:.3f}-{pref['win_rate_ci95'][1]:.3f})"
            if pref["win_rate_ci95"]
            else ""
        ),
        f"P(non-inferior at margin {pref['margin']:g}): {pref['p_non_inferior']:.3f}"
        if pref["p_non_inferior"] is not None
        else "P(non-inferior): n/a",
        f"decision: {r['decision']['verdict'] or 'none'}"
        + (f" (basis {r['decision']['basis']})" if r["decision"].get("basis") else ""),
        f"report {report.pk}, computed in {report.seconds or 0:.2f} s",
    ]
    return "\n".join(lines)
