"""python manage.py import_pairs PATH --dataset NAME [--redact-pii]"""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.importing import errors as import_errors
from datasets.importing import services as importing

PHASES = {"validating": "Validating", "importing": "Importing"}


class Command(BaseCommand):
    help = "Import a pairs file (CSV, JSONL or .xlsx; wide or long form), all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the .csv, .jsonl or .xlsx file")
        parser.add_argument("--dataset", required=True, help="dataset name (created if new)")
        parser.add_argument(
            "--redact-pii",
            action="store_true",
            help="replace e-mail addresses, phone numbers, card numbers and IBANs before storing",
        )

    def handle(self, *args, path, dataset, redact_pii, **options):
        source = Path(path)
        if not source.is_file():
            raise CommandError(f"{path}: no such file")
        self.on_terminal = self.stderr.isatty()
        try:
            summary = importing.import_pairs(
                path=source,
                filename=source.name,
                dataset_name=dataset,
                redact_pii=redact_pii,
                progress=self.progress,
            )
        except import_errors.ImportFailed as failure:
            self.clear_line()
            for error in failure.errors:
                self.stderr.write(error)
            raise CommandError("nothing was imported", returncode=1) from None
        self.clear_line()
        self.stdout.write(
            f"{summary['dataset']}: {summary['rows']:,} rows ({summary['form']} form), "
            f"{summary['items_created']:,} new items, {summary['responses_created']:,} new "
            f"responses, {summary['rows_unchanged']:,} rows unchanged, in {summary['seconds']} s"
        )
        if summary["redactions"] is not None:
            counts = ", ".join(f"{n:,} [{kind}]" for kind, n in summary["redactions"].items())
            self.stdout.write(f"Redacted: {counts}")
        if summary["responses_created"]:
            self.stdout.write("Response metrics are computed by the datasets.compute_metrics task.")

    def progress(self, phase: str, done: int, total: int) -> None:
        if not self.on_terminal or phase not in PHASES:
            return
        percent = f" ({100 * done // total}%)" if total else ""
        about = "about " if phase == "validating" else ""
        sys.stderr.write(f"\r\033[K{PHASES[phase]}: {done:,} of {about}{total:,} rows{percent}")
        sys.stderr.flush()

    def clear_line(self) -> None:
        if self.on_terminal:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
