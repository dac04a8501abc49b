"""python manage.py create_campaign --name NAME --dataset NAME --baseline SYSTEM --candidate SYSTEM
[--rubric PATH] [--overlap K] [--margin 0.05] [--seed N] [--gold-rate R] [--repeat-rate R]
[--qualify N --min-accuracy A] [--claim-timeout MINUTES] [--reviewer-title TITLE]
[--mask-pattern PATTERN ...]; prints the campaign's slug last."""

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviews.campaigns import lookups, rubrics, services
from reviews.campaigns.masking import default_mask_patterns


class Command(BaseCommand):
    help = (
        "Create a campaign comparing a candidate system with a baseline on a dataset's items that "
        "have responses from both. Prints the campaign's slug as the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The campaign's name.")
        parser.add_argument("--dataset", required=True, help="The dataset's name.")
        parser.add_argument("--baseline", required=True, help="The baseline system's name.")
        parser.add_argument("--candidate", required=True, help="The candidate system's name.")
        parser.add_argument(
            "--rubric", type=Path, help='Rubric JSON file (default: the "support-default" rubric).'
        )
        parser.add_argument(
            "--overlap", type=int, default=1, help="Distinct reviewers per item (default 1)."
        )
        parser.add_argument(
            "--margin", type=float, default=0.05, help="Non-inferiority margin (default 0.05)."
        )
        parser.add_argument("--seed", type=int, help="Seed for assignment (default: random).")
        parser.add_argument(
            "--gold-rate",
            type=float,
            default=0.05,
            help="Share of each queue that is gold (known-answer) items (default 0.05, 1 in 20).",
        )
        parser.add_argument(
            "--repeat-rate",
            type=float,
            default=0.0,
            help="Share of answered items shown again later with the sides swapped (default 0).",
        )
        parser.add_argument(
            "--qualify", type=int, default=0, help="The first N items of each queue are gold."
        )
        parser.add_argument(
            "--min-accuracy",
            type=float,
            help="Pause a reviewer whose gold accuracy falls below this (needs --qualify).",
        )
        parser.add_argument(
            "--reviewer-title",
            default="",
            help="What reviewers see as the campaign's name (default: a neutral title).",
        )
        parser.add_argument(
            "--mask-pattern",
            action="append",
            default=[],
            metavar="PATTERN",
            help="One more masking pattern (RE2 syntax, ignoring case), besides the systems' names "
            "and vendor phrases; repeat for more.",
        )
        parser.add_argument(
            "--claim-timeout",
            type=int,
            default=30,
            metavar="MINUTES",
            help="Pull mode: a claimed item not answered within this returns to the pool "
            "(default 30).",
        )

    def handle(self, *args, **options):
        try:
            dataset = lookups.dataset_named(options["dataset"])
            baseline = lookups.system_named(options["baseline"])
            candidate = lookups.system_named(options["candidate"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        try:
            rubric = self.rubric(options["rubric"])
            campaign = services.create_campaign(
                name=options["name"],
                dataset=dataset,
                baseline=baseline,
                candidate=candidate,
                rubric=rubric,
                overlap=options["overlap"],
                margin=options["margin"],
                seed=options["seed"],
                gold_rate=options["gold_rate"],
                repeat_rate=options["repeat_rate"],
                qualify_items=options["qualify"],
                min_accuracy=options["min_accuracy"],
                reviewer_title=options["reviewer_title"],
                mask_patterns=[
                    *default_mask_patterns([baseline.name, candidate.name]),
                    *options["mask_pattern"],
                ],
                claim_timeout_minutes=options["claim_timeout"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        n_items = campaign.campaign_items.filter(is_gold=False).count()
        n_gold = campaign.campaign_items.filter(is_gold=True).count()
        self.stdout.write(
            f"Created campaign {campaign.name!r}: {n_items} items and {n_gold} gold items, "
            f"{baseline.name} (baseline) vs "
            f"{candidate.name} (candidate), rubric {rubric.name!r} v{rubric.version}, "
            f"overlap {campaign.overlap}, seed {campaign.seed}."
        )
        self.stdout.write(campaign.slug)

    def rubric(self, path):
        if path is None:
            return rubrics.get_or_create_default_rubric()
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise CommandError(f"{path}: cannot read the rubric file ({exc.strerror}).") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"{path}: not a JSON rubric file ({exc}).") from exc
        try:
            return rubrics.import_rubric(data=data)
        except ValidationError as exc:
            raise CommandError(f"{path}: " + "; ".join(exc.messages)) from exc
